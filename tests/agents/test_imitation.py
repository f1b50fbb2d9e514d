"""Imitating a teacher (metarena.agents.imitation, ``--set imitate``): the ceiling planner or a
trained agent labels the steps of the agent's own trials, and the auxiliary loss reads them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metarena import games
from metarena.agents import ppo
from metarena.agents.base import Context, Observation
from metarena.agents.imitation import Imitation, ceiling_teachers
from metarena.agents.planners import make_planner
from metarena.agents.planners.coinrush import COLOUR_OF_TILE
from metarena.agents.registry import make_agent
from metarena.agents.ppo import Carry, RL2Config, RL2Envs, collect, imitation_for, imitation_terms
from metarena.agents.rl2 import RL2Net
from metarena.agents.rundir import IMITATION_COLUMNS, read_metrics
from metarena.agents.train import train
from metarena.games.batch import BatchEnv
from metarena.games.rules import KIND_OF_TILE, KINDS, OBJECTS
from metarena.games.trial import TrialEnv

N, K = 24, 4


def trial_env(game: str = "rules", seed: int = 3) -> TrialEnv:
    return TrialEnv(BatchEnv(games.get(game), games.variant(game, "small"), batch=N, episodes=K,
                             pool_size=64, split="train", seed=seed))


def first_trial_returns(env: TrialEnv, choose) -> np.ndarray:
    """(N,) what each slot's first trial paid player 0, the actions from ``choose(grid, scalars,
    trial, first, env)``."""
    grid, scalars, trial = (x[:, 0].copy() for x in env.reset())
    first = np.ones(N, dtype=bool)
    total, running = np.zeros(N), np.ones(N, dtype=bool)
    for _ in range(K * 200):
        action = choose(grid, scalars, trial, first, env)
        out = env.step(action[:, None])
        total += np.where(running, out.rewards[:, 0], 0.0)
        running &= ~out.trial_done
        first = out.trial_done.copy()
        grid, scalars, trial = (x[:, 0].copy() for x in out[:3])
        if not running.any():
            return total
    raise AssertionError("the first trials did not end")


@pytest.mark.parametrize("game", ["rules", "drift", "treasure", "coinrush"])
def test_labels_played_as_actions_replay_the_planner_itself(game):
    """Where the labelled slots play the labels (every episode labelled) and the others play at
    random, each labelled slot's first trial pays what the planner playing alone pays on the
    same level: it plans for a subset of the slots, step after step, exactly as for all of them."""
    labelled = np.arange(0, N, 3)
    rng = np.random.default_rng(0)

    def imitate(grid, scalars, trial, first, env):
        if not hasattr(env, "imitation"):
            env.imitation = Imitation(ceiling_teachers([game]), [env.env.engine], [labelled], K, K)
        label = env.imitation.labels(grid, scalars, trial, first)
        assert (label[labelled] >= 0).all() or not first.all()
        return np.where(label >= 0, label, rng.integers(0, 5, N))

    planner = make_planner("window-recall", game)
    memory = planner.begin_trial(N)

    def alone(grid, scalars, trial, first, env):
        nonlocal memory
        action, memory = planner.act(Observation(grid, scalars, trial), memory, Context(env.env.engine, None, 0))
        return action

    followed = first_trial_returns(trial_env(game), imitate)
    own = first_trial_returns(trial_env(game), alone)
    np.testing.assert_allclose(followed[labelled], own[labelled])
    others = np.setdiff1d(np.arange(N), labelled)
    assert followed[others].mean() < own[others].mean() - 0.5  # random play: the comparison can fail


def test_the_planner_learns_the_rules_from_anothers_actions():
    """Following a random player's first trial, the planner holds as taken this episode the kinds
    the player took, and the values it holds for the kinds it knows are the level's true values:
    it reads what each step did from the trial features, not from what it would have done."""
    env = trial_env(seed=5)
    imitation = Imitation(ceiling_teachers(["rules"]), [env.env.engine], [np.arange(N)], episodes=K, trial_episodes=K)
    rng = np.random.default_rng(1)
    truth = np.zeros((N, KINDS))
    eng = env.env.engine
    checked = 0

    def random_play(grid, scalars, trial, first, env):
        nonlocal checked
        imitation.labels(grid, scalars, trial, first)
        lv = env.env.state.level
        kind = KIND_OF_TILE[eng.item_tile[lv]]  # (N, items)
        for i in range(N):
            for k in range(KINDS):
                truth[i, k] = eng.levels.item_value[lv[i]][kind[i] == k][0]
        memory = imitation.memory[0]
        known = memory["known"]
        np.testing.assert_allclose(memory["value"][known], truth[known])
        # the kinds it holds as taken this episode are those the player took
        np.testing.assert_array_equal(memory["sampled"], env.env.state.touched[:, 0][:, list(OBJECTS)])
        checked += int(known.sum())
        return rng.integers(0, 5, N)

    first_trial_returns(env, random_play)
    assert checked > 100  # it did learn values along the way


def test_the_coinrush_planner_learns_the_values_from_anothers_actions():
    """Following a random player's first trial on coinrush, the value the planner holds for each
    colour it knows is what that colour's coins pay on the level."""
    env = trial_env("coinrush", seed=5)
    imitation = Imitation(ceiling_teachers(["coinrush"]), [env.env.engine], [np.arange(N)], K, K)
    rng = np.random.default_rng(2)
    eng = env.env.engine
    checked = 0

    def random_play(grid, scalars, trial, first, env):
        nonlocal checked
        imitation.labels(grid, scalars, trial, first)
        lv = env.env.state.level
        colour = COLOUR_OF_TILE[eng.item_tile[lv]]  # (N, coins)
        memory = imitation.memory[0]
        for i, c in zip(*np.nonzero(memory["known"])):
            np.testing.assert_allclose(eng.levels.item_value[lv[i]][colour[i] == c], memory["value"][i, c])
            checked += 1
        return rng.integers(0, 5, N)

    first_trial_returns(env, random_play)
    assert checked > 100  # it did learn values along the way


def test_the_drift_planner_learns_the_controls_from_anothers_actions():
    """Following a random player's first trial on drift, what the planner believes each action it
    has seen used does is, nearly always, what the level's hidden permutation makes it do (slips
    mislead it now and then); believing its own choices instead, it would be right about one time
    in four."""
    env = trial_env("drift", seed=2)
    imitation = Imitation(ceiling_teachers(["drift"]), [env.env.engine], [np.arange(N)], episodes=K, trial_episodes=K)
    rng = np.random.default_rng(4)
    grid, scalars, trial = (x[:, 0].copy() for x in env.reset())
    first = np.ones(N, dtype=bool)
    for _ in range(60):  # inside every slot's first trial
        imitation.labels(grid, scalars, trial, first)
        out = env.step(rng.integers(0, 5, (N, 1)))
        assert not out.trial_done.any()
        first = out.trial_done.copy()
        grid, scalars, trial = (x[:, 0].copy() for x in out[:3])
    imitation.labels(grid, scalars, trial, first)
    counts = imitation.memory[0]["counts"]  # (N, 5, 5) the directions seen per action
    variant, seeds = games.variant("drift", "small"), env.env.engine.levels.seeds
    perm = np.stack([games.get("drift").hidden(variant, int(seeds[lv]))[0] for lv in env.env.state.level])
    known = counts.sum(2) > 0
    known[:, 0] = False
    right = counts.argmax(2) == perm
    assert known.sum() > 40 and right[known].mean() > 0.9, (known.sum(), right[known].mean())


def test_imitation_terms_read_only_the_labelled_steps():
    logits = torch.tensor([[[2.0, 0, 0, 0, 0], [0, 0, 3.0, 0, 0]], [[0, 1.0, 0, 0, 0], [0, 0, 0, 0, 9.0]]])
    expert = torch.tensor([[0, 1], [-1, -1]])
    loss, agreement = imitation_terms(logits, expert)
    expected = torch.nn.functional.cross_entropy(logits[0], torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(expected.item()) and agreement == 0.5
    none, zero = imitation_terms(logits, torch.full((2, 2), -1))
    assert none.item() == 0.0 and zero == 0.0


def test_imitation_pulls_the_policy_towards_the_planner(tmp_path):
    """A short run with a heavy imitation weight: metrics.csv carries the cross-entropy and the
    agreement, and the cross-entropy falls."""
    train("rl2", ["rules"], "small", steps=32 * 32 * 12, out=tmp_path / "run", envs=32, progress=False,
          chunk=32, episodes=2, pool_size=32, minibatches=2, hidden=(32,), memory=32, lr=3e-3, imitate=5.0,
          imitate_share=0.5, torch_threads=1)
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 12 and all(set(IMITATION_COLUMNS) <= set(r) for r in rows)
    loss = [r["imitation"] for r in rows]
    assert all(0 <= r["agreement"] <= 1 for r in rows)
    assert np.mean(loss[-3:]) < np.mean(loss[:3]) - 0.1, loss


def test_imitation_is_refused_where_the_planner_cannot_follow():
    with pytest.raises(ValueError, match="coinrush, drift, rules, treasure"):
        RL2Config(games=("cycles",), variant="small", imitate=1.0).validate()
    RL2Config(games=("cycles", "rules"), variant="small", imitate=1.0).validate()  # rules is labelled
    for chosen, match in (("cycles", "whose window-only"), ("drift", "does not train on")):
        with pytest.raises(ValueError, match=match):
            RL2Config(games=("cycles", "rules"), variant="small", imitate=1.0, imitate_games=chosen).validate()
    with pytest.raises(ValueError, match="shards"):
        RL2Config(games=("rules",), variant="small", imitate=1.0, shards=2).validate()
    with pytest.raises(ValueError, match="imitate_share"):
        RL2Config(games=("rules",), variant="small", imitate=1.0, imitate_share=1.5).validate()


def test_only_the_games_whose_planner_follows_are_labelled():
    """cycles and rules side by side: a quarter of rules' slots are labelled, none of cycles';
    with ``imitate_games`` only the games named."""
    cfg = RL2Config(games=("rules", "drift"), variant="small", envs=16, pool_size=8, imitate=1.0,
                    imitate_games="drift")
    envs = RL2Envs(cfg)
    try:
        imitation = imitation_for(cfg, envs)
        assert [p.follows for p in imitation.teachers] == [True] and imitation.slots[0][0] == 8  # drift's
    finally:
        envs.close()
    cfg = RL2Config(games=("cycles", "rules"), variant="small", envs=16, pool_size=8, imitate=1.0,
                    imitate_share=0.25)
    envs = RL2Envs(cfg)
    try:
        imitation = imitation_for(cfg, envs)
        assert imitation.teachers[0].name == "window-recall" and len(imitation.slots) == 1
        np.testing.assert_array_equal(imitation.slots[0], [8, 9])  # rules' slots are 8..15
        grid, scalars, trial = envs.reset()
        label = imitation.labels(grid, scalars, trial, np.ones(16, dtype=bool))
        assert (label[[8, 9]] >= 0).all() and (np.delete(label, [8, 9]) == -1).all()
    finally:
        envs.close()


def test_the_teachers_beside_the_network_label_as_in_turn():
    """Where the run learns on two threads the teachers label on a thread of their own while the
    network plays on: the chunks' labels, actions and rewards are those of the teachers asked in
    turn, step by step."""
    def chunks(threads: int):
        cfg = RL2Config(games=("rules", "treasure"), variant="small", envs=16, chunk=24, episodes=2, pool_size=8,
                        hidden=(16,), memory=8, map=9, route=True, imitate=1.0, imitate_share=0.5, imitate_episodes=2,
                        torch_threads=threads, seed=4)
        cfg.validate()
        envs = RL2Envs(cfg)
        try:
            torch.manual_seed(0)
            net = RL2Net(cfg.net_spec()).eval()
            imitation = imitation_for(cfg, envs)
            assert (imitation._thread is not None) == (threads > 1) == cfg.teachers_beside()
            carry, sampler = Carry(envs, net, torch.device("cpu")), torch.Generator().manual_seed(0)
            return [collect(net, envs, carry, cfg.chunk, sampler, imitation) for _ in range(3)]
        finally:
            envs.close()

    beside, in_turn = chunks(2), chunks(1)
    for a, b in zip(beside, in_turn):
        assert (a.expert >= 0).sum() > 100  # half the slots, every episode labelled: the comparison can fail
        for name in ("expert", "action", "reward"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name))


def test_a_trained_agent_teaches_from_another_players_steps():
    """The shipped treasure agent (greedy) labels a third of the slots while every slot plays at
    random: each label is the action the agent takes when it is fed the same observations from a
    trial's start, alone; a teacher that cannot follow is refused."""
    labelled = np.arange(0, N, 3)
    teacher, alone = (make_agent("rl2", "treasure", greedy=True) for _ in range(2))
    env = trial_env("treasure")
    imitation = Imitation([teacher], [env.env.engine], [labelled], episodes=K, trial_episodes=K)
    memory = alone.begin_trial(len(labelled))
    grid, scalars, trial = (x[:, 0].copy() for x in env.reset())
    first, rng, agree = np.ones(N, dtype=bool), np.random.default_rng(1), []
    for _ in range(150):
        label = imitation.labels(grid, scalars, trial, first)
        own, memory = alone.act(Observation(grid[labelled], scalars[labelled], trial[labelled]), memory)
        np.testing.assert_array_equal(label[labelled], own)
        assert (np.delete(label, labelled) == -1).all()
        agree.append(own)
        out = env.step(rng.integers(0, 5, (N, 1)))
        first = out.trial_done.copy()
        grid, scalars, trial = (x[:, 0].copy() for x in out[:3])
    assert len(np.unique(np.concatenate(agree))) >= 4  # it steers, not a constant
    with pytest.raises(ValueError, match="cannot label"):
        Imitation([make_agent("scripted", "treasure")], [env.env.engine], [labelled], K, K)


def test_the_shipped_agents_teach_every_game_cycles_too(tmp_path, monkeypatch):
    """``teacher=rl2``: every game is labelled, cycles included, by that game's shipped agent;
    a run writes the cross-entropy towards it; an unknown teacher is refused before any level is
    built."""
    cfg = RL2Config(games=("cycles", "rules"), variant="small", envs=16, pool_size=8, imitate=1.0,
                    teacher="rl2", imitate_share=0.25)
    cfg.validate()
    envs = RL2Envs(cfg)
    try:
        imitation = imitation_for(cfg, envs, make_agent)
        assert [t.name for t in imitation.teachers] == ["rl2", "rl2"] and len(imitation.slots) == 2
        with pytest.raises(ValueError, match="metarena train"):
            imitation_for(cfg, envs)
    finally:
        envs.close()
    train("rl2", ["cycles", "rules"], "small", steps=32 * 16 * 2, out=tmp_path / "run", envs=32, progress=False,
          chunk=16, episodes=4, pool_size=16, minibatches=2, hidden=(32,), memory=32, imitate=1.0, teacher="rl2",
          imitate_episodes=4, torch_threads=1)
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 2 and all(r["imitation"] > 0 and 0 <= r["agreement"] <= 1 for r in rows)
    def no_levels(*args, **kwargs):
        raise AssertionError("the levels were built before the teacher was made")

    monkeypatch.setattr(ppo, "RL2Envs", no_levels)
    with pytest.raises(ValueError, match="unknown agent 'nobody'"):
        train("rl2", ["rules"], "small", steps=1024, out=tmp_path / "bad", envs=16, progress=False, chunk=16,
              pool_size=16, imitate=1.0, teacher="nobody")
    assert not (tmp_path / "bad").exists()
