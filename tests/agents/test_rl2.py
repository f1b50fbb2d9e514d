"""RL²: memory resets at trial starts only, rollout/BPTT agree, and a tiny run beats random."""

import dataclasses
import os
import time

import numpy as np
import pytest
import torch

from metarena import games
from metarena.agents.base import Observation
from metarena.agents.ppo import (Carry, RL2Config, RL2Envs, collect, cooled, features_dtype, precision, setup_torch, stagger,
                                 train_rl2)
from metarena.agents.reference import ReferenceAgent
from metarena.agents.rl2 import RL2Agent, RL2Net, RL2NetSpec, trial_starts
from metarena.agents.rollout import play
from metarena.games.batch import BatchEnv
from metarena.games.engine import SCALAR_NAMES
from metarena.games.tiles import NUM_CHANNELS
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, TRIAL_FEATURES, TrialEnv


def _tiny_net(episodes=2):
    torch.manual_seed(0)
    return RL2Net(RL2NetSpec(hidden=(32,), memory=16, episodes=episodes))


def test_hidden_state_resets_exactly_at_trial_starts():
    """Over several chunks of a real rollout: ``first`` marks exactly the observations that
    start a trial (never an episode start inside one), and re-unrolling each chunk from its
    first state (as BPTT does) reproduces what the rollout computed."""
    cfg = RL2Config(variant="small", envs=8, chunk=24, episodes=2, pool_size=8, torch_threads=1, seed=3)
    setup_torch(cfg)
    net = _tiny_net()
    envs = RL2Envs(cfg)
    try:
        carry = Carry(envs, net, torch.device("cpu"))
        sampler = torch.Generator().manual_seed(0)
        prev_done = torch.ones(cfg.envs)
        inner_starts = trial_starts_seen = 0
        for _ in range(4):  # 96 steps: several trials of two ~40-step episodes
            h_before = carry.h.clone()
            chunk = collect(net, envs, carry, cfg.chunk, sampler)
            torch.testing.assert_close(chunk.h0, h_before)  # carried over, not reset per chunk
            first_by_features = np.stack([trial_starts(tr.numpy()) for tr in chunk.trial])
            np.testing.assert_array_equal(chunk.first.numpy() > 0, first_by_features)
            np.testing.assert_array_equal(chunk.first[0], prev_done)
            np.testing.assert_array_equal(chunk.first[1:], chunk.done[:-1])
            prev_done = chunk.done[-1]
            episode_start = chunk.trial[..., EPISODE_START] > 0
            inner_starts += int((episode_start & (chunk.first == 0)).sum())
            trial_starts_seen += int(chunk.first[1:].sum())
            with torch.no_grad():
                logits, value, h_end = net.unroll(chunk.grid, chunk.scalars, chunk.trial, chunk.first, chunk.h0)
            logp = torch.log_softmax(logits, -1).gather(2, chunk.action[..., None]).squeeze(2)
            torch.testing.assert_close(logp, chunk.logp)
            torch.testing.assert_close(value, chunk.value)
            torch.testing.assert_close(h_end, carry.h)
        assert inner_starts > 0 and trial_starts_seen > 0
    finally:
        envs.close()


def test_unroll_forgets_only_at_first():
    net = _tiny_net()
    T, B = 5, 2
    g = torch.randint(0, 2, (T, B, 5, 5, net.spec.channels), dtype=torch.uint8)
    s, tr = torch.randn(T, B, net.spec.scalars), torch.randn(T, B, net.spec.trial)
    h0 = torch.randn(B, net.spec.memory)
    first = torch.zeros(T, B)
    first[3, 0] = 1.0
    with torch.no_grad():
        _, v, _ = net.unroll(g, s, tr, first, h0)
        _, v_fresh, _ = net.unroll(g[3:], s[3:], tr[3:], torch.zeros(2, B), net.initial_state(B))
        _, v_none, _ = net.unroll(g, s, tr, torch.zeros(T, B), h0)
    torch.testing.assert_close(v[3:, 0], v_fresh[:, 0])  # slot 0: history before step 3 forgotten
    assert not torch.allclose(v[3:, 1], v_fresh[:, 1])  # slot 1: history kept
    torch.testing.assert_close(v[:, 1], v_none[:, 1])
    torch.testing.assert_close(v[:3, 0], v_none[:3, 0])


def test_unroll_matches_step():
    """The agent steps one step at a time, training unrolls a chunk: the equations (and the
    weights) of ``nn.GRUCell``."""
    net = _tiny_net()
    T, B = 4, 3
    g = torch.randint(0, 2, (T, B, 5, 5, net.spec.channels), dtype=torch.uint8)
    s, tr = torch.randn(T, B, net.spec.scalars), torch.randn(T, B, net.spec.trial)
    h = h0 = torch.randn(B, net.spec.memory)
    with torch.no_grad():
        logits, values, h_end = net.unroll(g, s, tr, torch.zeros(T, B), h0)
        for t in range(T):
            cell = net.gru(net.encoder(net.features(g[t], s[t], tr[t])), h)
            lt, vt, h = net.step(g[t], s[t], tr[t], h)
            torch.testing.assert_close(h, cell)
            torch.testing.assert_close(lt, logits[t])
            torch.testing.assert_close(vt, values[t])
    torch.testing.assert_close(h, h_end)


def test_agent_memory_spans_the_trial():
    net = _tiny_net()
    agent = RL2Agent(net, greedy=True)
    v = games.variant("treasure", "small")
    env = TrialEnv(BatchEnv(games.get("treasure"), v, batch=6, pool_size=6, episodes=2, seed=0))
    grid, scalars, trial = env.reset(seed=0)
    memory = agent.begin_trial(6)
    np.testing.assert_array_equal(memory["h"], 0.0)
    ended_inside = ended_trial = False
    for _ in range(100):
        action, memory = agent.act(Observation(grid[:, 0], scalars[:, 0], trial[:, 0].copy()), memory)
        grid, scalars, trial, *_, info = env.step(action[:, None])
        final = info.get("final")
        if final is not None:
            h = memory["h"].copy()
            memory = agent.end_episode(memory, final["slots"])
            np.testing.assert_array_equal(memory["h"], h)  # end_episode keeps the memory
            ended_inside |= bool((~final["trial_end"]).any())
            ended_trial |= bool(final["trial_end"].any())
    assert ended_inside and ended_trial


def test_tiny_rl2_run_beats_random_on_test_levels():
    """~25 s on one core: 400k steps of treasure "small", trials of 2 episodes."""
    cfg = RL2Config(variant="small", envs=256, chunk=32, episodes=2, total_steps=400_000, lr=1e-3,
                    epochs=3, minibatches=2, hidden=(128,), memory=64, pool_size=512, torch_threads=1, seed=0)
    net, metrics = train_rl2(cfg)
    assert len(metrics) == 49 and metrics[-1]["steps"] == 49 * 256 * 32
    assert all(np.isfinite(m["policy_loss"]) and np.isfinite(m["value_loss"]) for m in metrics)
    v = games.variant("treasure", "small")

    def env():
        return BatchEnv(games.get("treasure"), v, batch=100, split="test", pool_size=100, episodes=2, seed=0)

    levels = np.arange(100)
    learned = play(env(), [RL2Agent(net, seed=0)], levels=levels, seed=0).returns[..., 0]
    random = np.mean([play(env(), [ReferenceAgent("random", s)], levels=levels, seed=s).returns[..., 0].mean()
                      for s in range(3)])
    # measured (trials staggered): learned 0.205 (training seeds 0-2: 0.205-0.257), random 0.032
    assert learned.mean() > random + 0.08, (learned.mean(0), random)


def test_stagger_puts_fixed_length_trials_out_of_step():
    """coinrush's episodes all last the same number of steps: left alone, every slot is at the
    same step of its trial for the whole run; staggered, the slots spread over the trial."""
    cfg = RL2Config(games=("coinrush",), variant="small", envs=64, episodes=2, pool_size=16, seed=0)
    envs = RL2Envs(cfg)
    limit = games.get("coinrush").step_limit(games.variant("coinrush", "small"))
    assert envs.trial_steps == 2 * limit
    net, dev = RL2Net(RL2NetSpec(hidden=(16,), memory=8, episodes=2)), torch.device("cpu")

    def phases(carry):  # step of each slot within its trial
        time_left, k = carry.scalars[:, 0].numpy(), carry.trial[:, EPISODE_INDEX].numpy() * 2
        return np.rint(k * limit + (1 - time_left) * limit).astype(int)

    try:
        carry = Carry(envs, net, dev)
        sampler = torch.Generator().manual_seed(0)
        collect(net, envs, carry, 5, sampler)
        assert set(phases(carry)) == {5}  # in lockstep
        stagger(net, envs, carry, sampler, np.random.default_rng(0))
        spread = phases(carry)
        assert len(set(spread)) >= 30 and spread.min() >= 0 and spread.max() < 2 * limit
        starts = trial_starts(carry.trial.numpy())  # a slot whose trial just began is marked first
        np.testing.assert_array_equal(carry.first.numpy() > 0, starts)
        h = carry.h.clone()
        chunk = collect(net, envs, carry, 4, sampler)  # and training goes on from there
        torch.testing.assert_close(chunk.h0, h)
    finally:
        envs.close()


@pytest.mark.parametrize("spec", [RL2NetSpec(hidden=(32, 16), memory=8), RL2NetSpec(hidden=(32,), memory=8, map=9),
                                  RL2NetSpec(hidden=(), memory=8)])
def test_the_features_are_the_inputs_side_by_side_and_unroll_reads_them(spec):
    """``features`` puts the window, the scalars, the trial features and the map's reading side
    by side, in the dtype asked for (the integers of the window exactly, in bfloat16 too);
    unrolling from them is unrolling from the observations (with a map, from a rollout's:
    ``test_network_with_a_map_reads_it_alike_in_rollouts_and_epochs``)."""
    torch.manual_seed(0)
    net = RL2Net(spec)
    T, B, gen = 5, 3, torch.Generator().manual_seed(1)
    grid = torch.randint(0, 2, (T, B, 5, 5, NUM_CHANNELS), generator=gen, dtype=torch.uint8)
    scalars = torch.randn(T, B, len(SCALAR_NAMES), generator=gen)
    trial = torch.randn(T, B, TRIAL_FEATURES, generator=gen)
    first, h0 = torch.zeros(T, B), net.initial_state(B)
    extra = torch.randn(T, B, net.map.features, generator=gen) if net.map else None
    x = net.features(grid, scalars, trial, extra)
    parts = [grid.flatten(-3).float(), scalars, trial] + ([extra] if extra is not None else [])
    assert torch.equal(x, torch.cat(parts, -1)) and x.shape[-1] == spec.inputs
    low = net.features(grid, scalars, trial, extra, dtype=torch.bfloat16)
    assert low.dtype == torch.bfloat16 and torch.equal(low[..., :grid[0, 0].numel()].float(), parts[0])
    if net.map is None:
        with torch.no_grad():
            for a, b in zip(net.unroll(grid, scalars, trial, first, h0), net.unroll_features(x, first, h0)):
                torch.testing.assert_close(a, b)


def test_the_threads_a_run_collects_and_learns_with():
    """torch_threads=0 learns on every core; a map collects with one torch thread and steps its
    slots on the learning threads, but on one where a worker process steps a shard or the
    teachers label on a thread of their own."""
    cores = os.cpu_count() or 1
    assert RL2Config(torch_threads=0).threads() == (cores, cores)
    assert RL2Config(torch_threads=0, map=9).threads() == (1, cores)
    assert RL2Config(torch_threads=0, map=9).map_threads() == cores
    assert RL2Config(torch_threads=0, map=9, shards=2).map_threads() == 1
    assert RL2Config(torch_threads=2, map=9, rollout_threads=2).threads() == (2, 2)
    assert RL2Config(map=9).map_threads() == 1  # the default: one thread for everything
    # teachers label beside the network where the run learns on several threads; then the map takes one
    assert RL2Config(torch_threads=2, map=9, imitate=1.0).teachers_beside()
    assert RL2Config(torch_threads=2, map=9, imitate=1.0).map_threads() == 1
    assert not RL2Config(torch_threads=1, map=9, imitate=1.0).teachers_beside()
    assert not RL2Config(torch_threads=2, map=9).teachers_beside()


def test_the_learning_rate_cools_down_at_the_end_of_the_run():
    """lr_decay: the learning rate holds, then falls linearly to zero over the last share of the
    steps, or of the time to a deadline (--minutes) where that share is larger."""
    assert cooled(2e-3, 0.0, 0.99) == 2e-3  # no decay: constant
    assert [cooled(1.0, 0.5, s) for s in (0.0, 0.5, 0.75, 1.0, 1.5)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    cfg = RL2Config(variant="small", envs=8, chunk=8, episodes=2, total_steps=4 * 64, minibatches=2, hidden=(16,),
                    memory=8, pool_size=8, lr_decay=0.5)
    lrs = []

    def record(row, net, opt):
        lrs.append(opt.param_groups[0]["lr"])

    train_rl2(cfg, callback=record)  # updates start at 0, 1/4, 2/4 and 3/4 of the steps
    assert lrs == pytest.approx([2e-3, 2e-3, 2e-3, 1e-3])
    lrs.clear()
    train_rl2(dataclasses.replace(cfg, total_steps=2 * 64), callback=record, deadline=time.perf_counter())
    assert lrs == [0.0, 0.0]  # the time is up from the start: the clock's share rules


def test_the_entropy_bonus_cools_down_at_the_end_of_the_run():
    """ent_decay: the entropy bonus holds, then falls linearly to zero over the last share of the
    run; the metrics show the weight each update used, and with no entropy bonus the loss is
    the same as with ent_coef = 0."""
    cfg = RL2Config(variant="small", envs=8, chunk=8, episodes=2, total_steps=4 * 64, minibatches=2, hidden=(16,),
                    memory=8, pool_size=8, ent_coef=0.02, ent_decay=0.5)
    rows = []
    train_rl2(cfg, callback=lambda row, net, opt: rows.append(row))
    assert [r["ent_coef"] for r in rows] == pytest.approx([0.02, 0.02, 0.02, 0.01])
    rows.clear()
    train_rl2(dataclasses.replace(cfg, ent_decay=0.0), callback=lambda row, net, opt: rows.append(row))
    assert "ent_coef" not in rows[0]  # a constant bonus adds no column
    late = [train_rl2(dataclasses.replace(cfg, **kw, total_steps=64), deadline=time.perf_counter())[0]
            for kw in ({"ent_coef": 0.02, "ent_decay": 1.0}, {"ent_coef": 0.0})]
    for a, b in zip(*(net.state_dict().values() for net in late)):
        assert torch.equal(a, b), "a bonus cooled to zero trains as no bonus at all"


def test_bf16_multiplies_in_bfloat16_and_keeps_the_rest_float32():
    """bf16: under the run's precision the matrix products round to bfloat16 (the outputs move,
    a little), what leaves the network is float32, a rollout's features kept in bfloat16 give
    the epochs the rollout's probabilities, and a run with a map trains float32 weights."""
    net = _tiny_net()
    T, B = 6, 4
    g = torch.randint(0, 2, (T, B, 5, 5, net.spec.channels), dtype=torch.uint8)
    s, tr = torch.randn(T, B, net.spec.scalars), torch.randn(T, B, net.spec.trial)
    first, h0 = torch.zeros(T, B), torch.randn(B, net.spec.memory)
    with torch.no_grad():
        exact = net.unroll(g, s, tr, first, h0)
        with precision(RL2Config(bf16=True), torch.device("cpu")):
            rounded = net.unroll(g, s, tr, first, h0)
        with precision(RL2Config(), torch.device("cpu")):  # off by default
            same = net.unroll(g, s, tr, first, h0)
    for a, b, c in zip(exact, rounded, same):
        assert b.dtype == torch.float32 and not torch.equal(a, b)
        torch.testing.assert_close(b, a, atol=0.05, rtol=0.05)
        assert torch.equal(a, c)
    cfg = RL2Config(variant="small", envs=8, chunk=8, episodes=2, total_steps=2 * 64, minibatches=2, hidden=(16,),
                    memory=8, pool_size=8, map=9, route=True, bf16=True, torch_threads=1)
    net = RL2Net(cfg.net_spec())
    envs = RL2Envs(cfg)
    try:  # the rollout keeps its features in bfloat16, and the epochs read them to the same probabilities
        with precision(cfg, torch.device("cpu")):
            chunk = collect(net, envs, Carry(envs, net, torch.device("cpu")), cfg.chunk,
                            torch.Generator().manual_seed(0), dtype=features_dtype(cfg))
            with torch.no_grad():
                logits, value, _ = net.unroll_features(chunk.features, chunk.first, chunk.h0)
    finally:
        envs.close()
    assert chunk.features.dtype == torch.bfloat16 and features_dtype(RL2Config()) == torch.float32
    logp = torch.log_softmax(logits, -1).gather(2, chunk.action[..., None]).squeeze(2)
    torch.testing.assert_close(logp, chunk.logp)
    torch.testing.assert_close(value, chunk.value)
    trained, metrics = train_rl2(cfg)
    assert len(metrics) == 2 and all(np.isfinite(m["policy_loss"]) for m in metrics)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in trained.parameters())


def test_two_games_over_two_shards():
    """The trainer's other paths: several games side by side, env slots in a worker process."""
    cfg = RL2Config(games=("treasure", "coinrush"), variant="small", envs=16, chunk=8, episodes=2,
                    total_steps=2 * 16 * 8, minibatches=2, hidden=(32,), memory=16, pool_size=8, shards=2,
                    seed=1)
    assert cfg.threads() == (1, cfg.threads()[1])  # one torch thread while the worker steps
    net, metrics = train_rl2(cfg)
    assert [m["steps"] for m in metrics] == [128, 256]
    assert all(np.isfinite(m["value_loss"]) for m in metrics)


def test_training_in_company():
    """players > 1: player 0 learns among players the env moves, the slots split between the
    policies of ``others``; bad company is refused."""
    cfg = RL2Config(variant="small", envs=8, chunk=8, episodes=2, pool_size=8, total_steps=64, players=2,
                    others="scripted,uninformed", hidden=(16,), memory=8, torch_threads=1)
    envs = RL2Envs(cfg)
    try:
        assert [(e.env.players, e.env.learners, e.env.others, e.batch) for e in envs.envs] == [
            (2, 1, "scripted", 4), (2, 1, "uninformed", 4)]
        grid, scalars, trial = envs.reset()
        assert grid.shape[0] == 8 and (grid[..., -1] > 0).any()  # the other player is in view somewhere
    finally:
        envs.close()
    net, rows = train_rl2(cfg)
    assert len(rows) == 1 and np.isfinite(rows[0]["policy_loss"])
    for bad, match in ((dict(others="nobody"), "unknown policy 'nobody'"),
                       (dict(others="scripted,uninformed,random"), "split evenly"),
                       (dict(players=5), "players")):
        with pytest.raises(ValueError, match=match):
            RL2Config(**{**dict(variant="small", envs=8, players=2), **bad}).validate()


def test_still_cost_is_taken_for_each_step_that_ends_where_it_began():
    """``still_cost`` comes off player 0's reward on a step that leaves it on its cell (a stay, a
    move into a wall), never on an episode's first step, and nowhere else."""
    base = dict(variant="small", envs=8, pool_size=8, episodes=2, hidden=(16,), memory=8)
    plain, costly = RL2Envs(RL2Config(**base)), RL2Envs(RL2Config(**base, still_cost=0.25))
    rng = np.random.default_rng(0)
    try:
        plain.reset(), costly.reset()
        pos, taken, starts = costly.envs[0].env.state.pos[:, 0].copy(), 0, 0
        for _ in range(120):
            a = rng.integers(0, 5, size=8)
            *_, r0, _, _, _ = plain.step(a)
            _, _, trial, r1, _, _, _ = costly.step(a)
            now = costly.envs[0].env.state.pos[:, 0].copy()
            first = trial[:, EPISODE_START] > 0
            still = (now == pos) & ~first
            np.testing.assert_allclose(r1, r0 - 0.25 * still)
            taken, starts, pos = taken + still.sum(), starts + first.sum(), now
        assert 0 < taken < 8 * 120 and starts > 0
    finally:
        plain.close(), costly.close()


def test_timeout_cost_is_taken_where_an_episode_runs_out_of_steps():
    """``timeout_cost`` comes off player 0's reward on the step where an episode reaches its step
    limit, and on no other: not where it ends by the game (rules' trap or exit)."""
    base = dict(games=("rules",), variant="small", envs=8, pool_size=8, episodes=2, hidden=(16,), memory=8)
    plain, costly = RL2Envs(RL2Config(**base)), RL2Envs(RL2Config(**base, timeout_cost=0.75))
    limit = costly.envs[0].env.engine.limit
    rng = np.random.default_rng(0)
    try:
        plain.reset(), costly.reset()
        cut = ended = 0
        for _ in range(4 * limit):
            a = rng.integers(0, 5, size=8)
            *_, r0, _, _, _ = plain.step(a)
            clock = costly.envs[0].env.state.t.copy()
            _, _, trial, r1, _, _, _ = costly.step(a)
            done = trial[:, EPISODE_START] > 0
            out_of_steps = done & (clock + 1 >= limit)
            np.testing.assert_allclose(r1, r0 - 0.75 * out_of_steps)
            cut, ended = cut + out_of_steps.sum(), ended + (done & ~out_of_steps).sum()
        assert cut > 0 and ended > 0
    finally:
        plain.close(), costly.close()
