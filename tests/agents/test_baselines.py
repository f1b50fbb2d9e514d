"""SB3 baselines: train_sb3's rows, SB3Agent, save/load without pickle, scratch PPO, trial env."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

from metarena import games  # noqa: F401  (registers the metarena ids)
from metarena.agents.base import Observation
from metarena.agents.baselines import (
    ALGOS, SB3Agent, SB3Config, load_sb3_agent, save_sb3, scratch_ppo, train_sb3)
from metarena.agents.checkpoint import CheckpointError, sb3_policy_state
from metarena.agents.rollout import play
from metarena.games.batch import BatchEnv, make_batch_env
from metarena.games.gym_env import MetarenaEnv
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, TRIAL_FEATURES

ROW_KEYS = {"update", "steps", "time_s", "steps_per_s", "rollout_s", "update_s", "return_by_episode",
            "episodes_ended", "policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac"}
K = 2


def tiny(algo: str, **kw) -> SB3Config:
    base = dict(games=("treasure",), variant="small", algo=algo, envs=2, n_steps=64, batch_size=64, n_epochs=1,
                pool_size=16, total_steps=256, episodes=K, net_arch=(16,), lstm_hidden=16, seed=0, device="cpu")
    base.update(kw)
    return SB3Config(**base)


@pytest.fixture(scope="module", params=ALGOS)
def trained(request):
    """(cfg, model, rows, callback args) of a tiny run of each algorithm (2 updates)."""
    torch.set_num_threads(1)
    cfg = tiny(request.param)
    seen = []
    model, rows = train_sb3(cfg, callback=lambda row, policy, opt: seen.append((row, policy, opt)))
    return cfg, model, rows, seen


# ---------------------------------------------------------------------------------------------
# config


def test_config_validates_and_serializes():
    cfg = SB3Config()
    cfg.validate()
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["algo"] == "ppo" and d["games"] == ["treasure"] and d["envs"] == 8
    assert SB3Config.from_dict(d) == cfg
    with pytest.raises(ValueError, match="unknown"):
        SB3Config.from_dict({**d, "chunk": 3})
    assert SB3Config(algo="recurrent-ppo").rollout_steps() == 128 and cfg.rollout_steps() == 2048
    for bad, match in [(dict(algo="dqn"), "algo"), (dict(games=("nope",)), "unknown game"),
                       (dict(games=("treasure", "coinrush"), envs=3), "split evenly"),
                       (dict(n_steps=0), "n_steps"), (dict(gamma=1.5), "gamma"), (dict(lr=-1.0), "lr"),
                       (dict(envs=1, n_steps=1), "at least 2"), (dict(episodes=0), "episodes")]:
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(cfg, **bad).validate()


# ---------------------------------------------------------------------------------------------
# training


def test_train_rows_follow_the_train_rl2_contract(trained):
    cfg, model, rows, seen = trained
    per = cfg.envs * cfg.n_steps
    assert len(rows) == 2 and [s[0] for s in seen] == rows and model.num_timesteps == 2 * per
    for i, row in enumerate(rows):
        assert set(row) == ROW_KEYS
        assert row["update"] == i + 1 and row["steps"] == (i + 1) * per
        assert len(row["return_by_episode"]) == K
        assert row["episodes_ended"] >= 1  # 40-step episodes, 64 steps per env copy
        assert all(np.isfinite(row[k]) for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac"))
        assert 0 < row["entropy"] <= np.log(5) + 1e-6
        assert row["rollout_s"] > 0 and row["update_s"] > 0 and row["steps_per_s"] > 0
    assert rows[1]["time_s"] > rows[0]["time_s"]
    assert all(policy is model.policy and opt is model.policy.optimizer for _, policy, opt in seen)
    firsts = [r["return_by_episode"][0] for r in rows]
    seconds = [r["return_by_episode"][1] for r in rows]
    assert all(v is not None for v in firsts)
    if cfg.algo == "ppo":  # plain episodes: all are index 0
        assert all(v is None for v in seconds)
    else:  # trials of K episodes: second episodes end too
        assert any(v is not None for v in seconds)
        assert sum(r["episodes_ended"] for r in rows) >= 4


def test_resume_restores_policy_optimizer_and_counters(trained):
    cfg, model, rows, _ = trained
    state = sb3_policy_state(model)
    opt_state = model.policy.optimizer.state_dict()
    # nothing left to do: the restored model is returned as saved
    same, none = train_sb3(cfg, net=model.policy, optimizer_state=opt_state, start_update=2)
    assert none == []
    for k, v in sb3_policy_state(same).items():
        assert torch.equal(v, state[k]), k
    step = next(iter(same.policy.optimizer.state_dict()["state"].values()))["step"]
    assert float(step) == float(next(iter(opt_state["state"].values()))["step"])
    if cfg.algo == "ppo":  # one more update continues the counters
        _, rows2 = train_sb3(dataclasses.replace(cfg, total_steps=3 * cfg.envs * cfg.n_steps),
                                net=model.policy, optimizer_state=opt_state, start_update=2,
                                start_steps=rows[-1]["steps"] + 5)
        assert [(r["update"], r["steps"]) for r in rows2] == [(3, rows[-1]["steps"] + 5 + cfg.envs * cfg.n_steps)]


# ---------------------------------------------------------------------------------------------
# the agent and checkpoints


def random_obs(n: int, seed: int) -> Observation:
    env = make_batch_env("treasure", "small", batch=n, pool_size=16, episodes=K)
    grid, scalars = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    tr = np.zeros((n, TRIAL_FEATURES), dtype=np.float32)
    tr[np.arange(n), rng.integers(0, 5, n)] = 1.0
    tr[:, EPISODE_INDEX] = rng.integers(0, K, n) / K
    return Observation(grid[:, 0].copy(), scalars[:, 0].copy(), tr)


def test_save_load_gives_the_same_policy(trained, tmp_path):
    cfg, model, _, _ = trained
    path = save_sb3(tmp_path / "ckpt", model, cfg, steps=512, extra={"update": 2})
    meta = json.loads((path / "meta.json").read_text())
    assert meta["algorithm"] == cfg.algo and meta["steps"] == 512 and meta["extra"]["update"] == 2
    assert meta["architecture"]["episodes"] == K and meta["games"][0]["game"] == "treasure"
    loaded = load_sb3_agent(path, game="treasure", greedy=True)
    assert loaded.algo == cfg.algo and loaded.episodes == K and loaded.name.startswith(cfg.algo)
    own = model.policy.state_dict()
    for k, v in loaded.policy.state_dict().items():
        assert torch.equal(v, own[k]), k
    original = SB3Agent(model.policy, cfg.algo, greedy=True, episodes=K)
    recurrent = cfg.algo == "recurrent-ppo"
    m1, m2 = original.begin_trial(6), loaded.begin_trial(6)
    for step in range(4):  # a few steps, so that the recurrent state is exercised
        obs = random_obs(6, step)
        a1, m1 = original.act(obs, m1)
        a2, m2 = loaded.act(obs, m2)
        assert a1.shape == (6,) and a1.dtype == np.int64 and np.array_equal(a1, a2)
        if recurrent:
            assert np.array_equal(m1["h"], m2["h"]) and np.abs(m1["h"]).sum() > 0
    # the greedy action is SB3's deterministic action
    obs = random_obs(6, 9)
    o = original.observation(obs)
    want, _ = model.policy.predict(o, deterministic=True)
    got, _ = original.act(obs, original.begin_trial(6))
    assert np.array_equal(got, want)
    with pytest.raises(CheckpointError, match="coinrush"):
        load_sb3_agent(path, game="coinrush")
    weights = save_sb3(tmp_path / "stem.safetensors", model.policy, cfg, steps=1)  # a policy, stem form
    assert np.array_equal(load_sb3_agent(weights, greedy=True).act(obs, loaded.begin_trial(6))[0], want)


def test_sampling_uses_its_own_generator(trained):
    cfg, model, _, _ = trained
    obs = random_obs(32, 1)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    runs = []
    for _ in range(2):
        agent = SB3Agent(model.policy, cfg.algo, seed=7, episodes=K)
        runs.append(agent.act(obs, agent.begin_trial(32))[0])
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(runs[0], runs[1]) and len(np.unique(runs[0])) > 1  # near-uniform policy
    other = SB3Agent(model.policy, cfg.algo, seed=8, episodes=K)
    assert not np.array_equal(other.act(obs, other.begin_trial(32))[0], runs[0])


@pytest.mark.parametrize("memory_reset", [False, True])
def test_agent_plays_episodes_on_a_batch_env(trained, memory_reset):
    cfg, model, _, _ = trained
    if memory_reset and cfg.algo == "ppo":
        pytest.skip("memory-less")
    env = make_batch_env("treasure", "small", batch=3, episodes=K, pool_size=8)
    stats = [play(env, [SB3Agent(model.policy, cfg.algo, seed=5, episodes=K)], seed=2, memory_reset=memory_reset)
             for _ in range(2)]
    s = stats[0]
    assert s.returns.shape == (3, K, 1) and s.lengths.shape == (3, K)
    assert (s.lengths > 0).all() and (s.lengths <= 40).all() and np.isfinite(s.returns).all()
    assert np.array_equal(s.returns, stats[1].returns) and np.array_equal(s.lengths, stats[1].lengths)


def test_recurrent_memory_resets_per_slot(trained):
    from metarena.agents.rollout import reset_memory

    cfg, model, _, _ = trained
    agent = SB3Agent(model.policy, cfg.algo, episodes=K)
    memory = agent.begin_trial(4)
    if memory is None:
        assert agent.end_episode(None, np.array([1])) is None
        return
    _, memory = agent.act(random_obs(4, 0), memory)
    memory = agent.end_episode(memory, np.array([0, 1]))
    assert memory["h"].shape == (1, 4, 16)
    assert (memory["h"] != 0).any(axis=(0, 2)).all()  # kept across the episode end
    fresh = reset_memory(agent, memory, np.array([1, 3]), 4)
    assert (fresh["h"][:, [1, 3]] == 0).all() and (fresh["c"][:, [1, 3]] == 0).all()
    assert np.array_equal(fresh["h"][:, [0, 2]], memory["h"][:, [0, 2]])


def test_recurrent_agent_sees_what_the_gym_env_shows():
    """SB3Agent, given the trial features the trial loop passes, acts like RecurrentPPO's
    predict on the trial env, step for step across the episode boundary of a trial."""
    from metarena.games.trial import TrialEnv

    from sb3_contrib import RecurrentPPO

    torch.set_num_threads(1)
    genv = MetarenaEnv("treasure", "small", pool_size=8, episodes=K, trial_features=True)
    model = RecurrentPPO("MultiInputLstmPolicy", genv, n_steps=8, batch_size=8, seed=3, device="cpu",
                         policy_kwargs={"net_arch": [16], "lstm_hidden_size": 16})
    agent = SB3Agent(model.policy, "recurrent-ppo", greedy=True, episodes=K)
    benv = TrialEnv(make_batch_env("treasure", "small", batch=1, episodes=K, pool_size=8))
    grid, scalars, trial = benv.reset(levels=np.array([3]))
    obs, _ = genv.reset(seed=0, options={"level": 3})
    memory, state, start, ends = agent.begin_trial(1), None, np.ones(1, dtype=bool), 0
    while True:
        o = Observation(grid[:, 0], scalars[:, 0], trial[:, 0])
        assert np.array_equal(o.grid[0], obs["grid"]) and np.allclose(o.scalars[0], obs["scalars"])
        assert np.allclose(o.trial[0], obs["trial"])
        want, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
        action, memory = agent.act(o, memory)
        assert int(action[0]) == int(want)
        start = np.zeros(1, dtype=bool)
        step = benv.step(action[:, None])
        grid, scalars, trial, info = step.grid, step.scalars, step.trial, step.info
        obs, _, terminated, truncated, ginfo = genv.step(int(want))
        assert not truncated
        if "final" in info:
            memory = agent.end_episode(memory, info["final"]["slots"])
            ends += 1
            assert ginfo["episode_end"]["index"] == ends - 1
        if terminated:
            break
    assert ends == K


# ---------------------------------------------------------------------------------------------
# PPO from scratch


def test_scratch_ppo_shapes_and_determinism():
    torch.set_num_threads(1)
    a = scratch_ppo("treasure", "small", levels=2, episodes=2, seed=0)
    assert set(a) == {"returns", "lengths"}
    assert a["returns"].shape == (2, 2) and a["returns"].dtype == np.float32
    assert a["lengths"].shape == (2, 2) and a["lengths"].dtype == np.int32
    assert np.isfinite(a["returns"]).all() and ((a["lengths"] >= 1) & (a["lengths"] <= 40)).all()
    b = scratch_ppo("treasure", "small", levels=2, episodes=2, seed=0)
    assert np.array_equal(a["returns"], b["returns"]) and np.array_equal(a["lengths"], b["lengths"])


# ---------------------------------------------------------------------------------------------
# the trial option of MetarenaEnv


def test_trial_features_env_passes_check_env():
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unbounded scalar boxes warn, as without the option
        check_env(MetarenaEnv("treasure", "small", pool_size=8, episodes=3, trial_features=True, seed=0),
                  skip_render_check=True)
    plain = MetarenaEnv("treasure", "small", pool_size=8)
    assert set(plain.observation_space.spaces) == {"grid", "scalars"}
    assert set(plain.reset(seed=0)[0]) == {"grid", "scalars"}


def test_trial_env_ends_only_at_the_trial_end():
    import gymnasium

    k = 3
    env = gymnasium.make("metarena/Treasure-v0", variant="small", pool_size=8, episodes=k, trial_features=True)
    rng = np.random.default_rng(0)
    for trial in range(2):
        obs, info = env.reset(seed=trial)
        assert env.observation_space.contains(obs)
        assert obs["trial"][EPISODE_START] == 1.0 and obs["trial"][EPISODE_INDEX] == 0.0
        seed, ends, steps, total = info["level_seed"], [], 0, 0.0
        while True:
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(5)))
            steps += 1
            total += reward
            assert not truncated and env.observation_space.contains(obs)
            assert info["level_seed"] == seed  # one level for the whole trial
            if "episode_end" in info:
                end = info["episode_end"]
                assert end["index"] == len(ends) and np.isclose(end["return"], total)
                ends.append(end)
                total = 0.0
                assert info["trial_end"] == terminated == (len(ends) == k)
                if not terminated:  # the next episode's first observation
                    assert obs["trial"][EPISODE_START] == 1.0
                    assert np.isclose(obs["trial"][EPISODE_INDEX], len(ends) / k)
            else:
                assert not terminated and obs["trial"][EPISODE_START] == 0.0
            if terminated:
                break
        assert len(ends) == k and steps == sum(e["length"] for e in ends)


def test_sb3_runs_through_the_registry(tmp_path):
    """`metarena train --algo ppo|recurrent-ppo` writes a run whose checkpoint plays as an agent."""
    from metarena.agents.registry import load_agent
    from metarena.agents.rundir import read_metrics
    from metarena.agents.train import train

    for algo in ("ppo", "recurrent-ppo"):
        out = tmp_path / algo
        final = train(algo, ["treasure"], "small", steps=2 * 2 * 16, out=str(out), envs=2, progress=False,
                      n_steps=16, batch_size=32, n_epochs=1, pool_size=8, episodes=2)
        rows = read_metrics(out)
        assert [r["update"] for r in rows] == [1, 2] and rows[-1]["env_steps"] == 64
        config = json.loads((out / "config.json").read_text())
        assert config["algorithm"] == algo and config["algo"] == algo
        assert (final / "optimizer.safetensors").exists()
        agent = load_agent(out, game="treasure")
        assert isinstance(agent, SB3Agent) and agent.algo == algo
        env = BatchEnv(games.get("treasure"), games.variant("treasure", "small"), batch=3, pool_size=3,
                       episodes=2, seed=0)
        stats = play(env, [agent], seed=0)
        assert stats.returns.shape == (3, 2, 1)
        # resuming goes on from the checkpoint: the counters continue
        train(algo, ["treasure"], "small", steps=3 * 2 * 16, out=str(out), resume=True, progress=False)
        assert [r["update"] for r in read_metrics(out)] == [1, 2, 3]
