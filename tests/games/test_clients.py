"""The Gymnasium and PettingZoo envs as their usual clients take them (docs/INTERFACES.md).

Each client runs the way its own docs show, at a tiny budget: SuperSuit + SB3 PPO, Gymnasium's
vector wrappers and ``make_vec(wrappers=...)``, TorchRL's GymWrapper and PettingZooWrapper,
RecordVideo, PettingZoo's API tests; and the interface details they rely on: the flat Box,
the autoreset modes, the info keys, outside truncation, ``max_episode_steps``, ``max_cycles``
and ``state()``.
"""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from metarena import games
from metarena.games import pz_env
from metarena.games.gym_env import INFO_KEYS, MetarenaEnv, MetarenaVectorEnv, env_id

TREASURE, COINRUSH = env_id("treasure"), env_id("coinrush")
POOL = 8


def limit(game: str, variant: str | None = None) -> int:
    return games.get(game).step_limit(games.variant(game, variant))


def run(fn, *args, **kwargs) -> list[str]:
    """Call ``fn``; returns the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    return [str(w.message) for w in caught]


# -- the flat Box ---------------------------------------------------------------------------------


@pytest.mark.parametrize("trial_features", [False, True])
def test_flat_observation_is_the_dict_flattened(trial_features):
    kwargs = dict(variant="small", pool_size=POOL, episodes=2, trial_features=trial_features)
    plain, flat = MetarenaEnv("coinrush", **kwargs), MetarenaEnv("coinrush", flatten=True, **kwargs)
    assert isinstance(flat.observation_space, gymnasium.spaces.Box)
    assert flat.observation_space == gymnasium.spaces.flatten_space(plain.observation_space)
    assert flat.observation_space.dtype == np.float32
    assert flat.observation_space.shape == (5 * 5 * 16 + 4 + 8 * trial_features,)
    pairs = [(plain.reset(seed=1)[0], flat.reset(seed=1)[0])]
    for a in np.random.default_rng(0).integers(0, 5, 2 * limit("coinrush", "small") + 2):
        (d, _, term, trunc, _), (f, *_) = plain.step(a), flat.step(a)
        pairs.append((d, f))
        if term or trunc:
            pairs.append((plain.reset()[0], flat.reset()[0]))
    for d, f in pairs:
        assert f.dtype == np.float32 and f in flat.observation_space
        assert np.array_equal(f, gymnasium.spaces.flatten(plain.observation_space, d))


@pytest.mark.parametrize("trial_features", [False, True])
def test_flat_env_passes_the_env_checkers(trial_features):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    kwargs = dict(variant="small", pool_size=POOL, episodes=2, trial_features=trial_features, flatten=True)
    caught = run(check_env, MetarenaEnv("treasure", **kwargs), skip_render_check=True)
    caught += run(sb3_check_env, MetarenaEnv("coinrush", **kwargs), warn=True)
    # the score is unbounded; the checkers reset mid-trial, which cuts a trial short
    assert all("infinity" in m or "cut a trial short" in m for m in caught), caught


def test_flat_vector_and_pettingzoo_observations():
    envs = MetarenaVectorEnv(3, "treasure", "small", pool_size=POOL, flatten=True)
    dict_envs = MetarenaVectorEnv(3, "treasure", "small", pool_size=POOL)
    obs, d = envs.reset(seed=0)[0], dict_envs.reset(seed=0)[0]
    assert obs.shape == (3, 404) and obs.dtype == np.float32 and obs in envs.observation_space
    assert np.array_equal(obs[:, :400], d["grid"].reshape(3, -1)) and np.array_equal(obs[:, 400:], d["scalars"])
    par = pz_env.parallel_env("treasure", "small", players=3, pool_size=POOL, flatten=True)
    obs, _ = par.reset(seed=0)
    for agent in par.possible_agents:
        assert isinstance(par.observation_space(agent), gymnasium.spaces.Box)
        assert obs[agent].shape == (404,) and obs[agent] in par.observation_space(agent)


def test_pettingzoo_api_tests_see_a_box():
    """api_test warns that a Dict observation is no Box and skips checks; the flat form passes
    both API tests without that (only the unbounded score's infinity warnings stay)."""
    from pettingzoo.test import api_test, parallel_api_test

    not_a_box = ("probably should be gymnasium.spaces.box", "not a NumPy array")
    caught = run(api_test, pz_env.env("treasure", "small", players=2, pool_size=POOL, flatten=True), num_cycles=100)
    caught += run(parallel_api_test, pz_env.parallel_env("coinrush", "small", players=2, pool_size=POOL,
                                                         flatten=True), num_cycles=100)
    assert not [m for m in caught if any(p in m for p in not_a_box)], caught
    assert all("infinity" in m for m in caught), caught


def test_supersuit_sb3_ppo_mlp_policy(tmp_path, monkeypatch):
    """PettingZoo's SB3 tutorial: every agent becomes one env of an SB3 VecEnv, PPO MlpPolicy."""
    import tempfile

    import supersuit as ss

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # SB3's default logger makes SB3-<date> there
    from stable_baselines3 import PPO

    env = pz_env.parallel_env("coinrush", variant="small", players=2, pool_size=POOL, flatten=True)
    env.reset(seed=0)
    env = ss.pettingzoo_env_to_vec_env_v1(env)
    env = ss.concat_vec_envs_v1(env, 2, num_cpus=0, base_class="stable_baselines3")
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256 and env.num_envs == 4
    obs = env.reset()
    assert obs.shape == (4, 404)
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (4,) and ((0 <= actions) & (actions < 5)).all()
    env.close()


# -- the vector env's autoreset modes ------------------------------------------------------------


@pytest.mark.parametrize("mode,expected", [("same_step", AutoresetMode.SAME_STEP),
                                           ("next_step", AutoresetMode.NEXT_STEP),
                                           (AutoresetMode.NEXT_STEP, AutoresetMode.NEXT_STEP)])
def test_autoreset_mode_is_declared(mode, expected):
    envs = gymnasium.make_vec(TREASURE, num_envs=2, variant="small", pool_size=POOL, autoreset_mode=mode)
    assert envs.autoreset_mode == expected and envs.metadata["autoreset_mode"] == expected


@pytest.mark.parametrize("mode", ["disabled", AutoresetMode.DISABLED, "bogus", 1])
def test_unknown_autoreset_modes_say_what_is_allowed(mode):
    with pytest.raises(ValueError, match="same_step.*next_step"):
        MetarenaVectorEnv(2, "treasure", "small", pool_size=POOL, autoreset_mode=mode)


def test_next_step_autoreset():
    """The step that ends an episode returns its final observation; the next step ignores the
    actions of those slots and returns the next episode's first observation, reward 0."""
    n, lim = 3, limit("coinrush", "small")
    envs = MetarenaVectorEnv(n, "coinrush", "small", pool_size=POOL, episodes=2, autoreset_mode="next_step")
    first, info0 = envs.reset(seed=0)
    for _ in range(lim):  # coinrush runs every episode to the step limit
        obs, rew, term, trunc, infos = envs.step(np.zeros(n, dtype=np.int64))
    assert trunc.all() and not term.any() and "final_obs" not in infos
    assert (obs["scalars"][:, 0] == 0.0).all(), "the final observation, not the next episode's"
    assert (infos["episode_index"] == 0).all() and not infos["trial_end"].any()
    obs, rew, term, trunc, infos = envs.step(np.full(n, 4, dtype=np.int64))  # ignored: a reset step
    assert not (term | trunc).any() and (rew == 0).all()
    assert data_equivalence(obs, first, exact=True), "the trial's next episode starts where the first did"
    assert (infos["episode_index"] == 1).all() and (infos["level_seed"] == info0["level_seed"]).all()
    for _ in range(lim):
        obs, rew, term, trunc, infos = envs.step(np.zeros(n, dtype=np.int64))
    assert trunc.all() and infos["trial_end"].all() and (infos["episode_index"] == 1).all()


def test_next_step_render_shows_the_end_then_the_next_start():
    lim = limit("coinrush", "small")
    single = MetarenaEnv("coinrush", "small", pool_size=1, episodes=2, render_mode="rgb_array")
    envs = MetarenaVectorEnv(2, "coinrush", "small", pool_size=1, episodes=2, render_mode="rgb_array",
                             autoreset_mode="next_step")
    single.reset(seed=0)
    envs.reset(seed=0)
    for _ in range(lim):
        single.step(0)
        envs.step(np.zeros(2, dtype=np.int64))
    assert all(np.array_equal(f, single.render()) for f in envs.render())  # the episode's last frame
    single.reset()
    envs.step(np.ones(2, dtype=np.int64))
    assert all(np.array_equal(f, single.render()) for f in envs.render())  # the next episode's first


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_vector_env_matches_sync_vector_env(mode):
    """The batched env gives what Gymnasium's SyncVectorEnv of single envs gives in the same
    mode, step for step, across episode and trial ends that come at different steps per slot."""
    n = 4
    kwargs = dict(variant="small", pool_size=1, episodes=2, players=2, others="stay")  # no draws
    ours = MetarenaVectorEnv(n, "treasure", autoreset_mode=mode, **kwargs)
    ref = SyncVectorEnv([lambda: MetarenaEnv("treasure", **kwargs) for _ in range(n)],
                        autoreset_mode=ours.autoreset_mode)
    assert data_equivalence(ours.reset(seed=0), ref.reset(seed=0), exact=True)
    rng, ends, partial = np.random.default_rng(1), 0, False
    for _ in range(3 * limit("treasure", "small")):
        actions = rng.integers(0, 5, n)
        mine, theirs = ours.step(actions), ref.step(actions)
        assert data_equivalence(mine[0], theirs[0], exact=True)
        assert all(np.array_equal(a, b) for a, b in zip(mine[1:4], theirs[1:4]))  # its rewards are float64
        assert set(mine[4]) == set(theirs[4])
        for key in mine[4]:
            if key.startswith("final_obs"):
                assert all(data_equivalence(a, b, exact=True) for a, b in zip(mine[4][key], theirs[4][key]))
            else:
                assert data_equivalence(mine[4][key], theirs[4][key]), key
        done = mine[2] | mine[3]
        ends += done.sum()
        partial |= done.any() and not done.all()
    assert ends >= 2 * n and partial


def test_gymnasium_vector_observation_wrappers():
    """Gymnasium's vector observation wrappers need next-step autoreset; they refuse same-step."""
    from gymnasium.wrappers.vector import (DtypeObservation, FlattenObservation, NormalizeObservation,
                                           RecordEpisodeStatistics)

    with pytest.raises(ValueError, match="NEXT_STEP"):
        FlattenObservation(gymnasium.make_vec(TREASURE, num_envs=2, variant="small", pool_size=POOL))
    n, lim = 3, limit("treasure", "small")
    envs = gymnasium.make_vec(TREASURE, num_envs=n, variant="small", pool_size=POOL, autoreset_mode="next_step")
    envs = RecordEpisodeStatistics(DtypeObservation(NormalizeObservation(FlattenObservation(envs)), np.float64))
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (n, 404) and obs.dtype == np.float64
    for _ in range(lim + 1):  # "stay" never finds the treasure: every slot runs to the limit
        obs, rew, term, trunc, infos = envs.step(np.zeros(n, dtype=np.int64))
        if trunc.any():
            assert trunc.all() and (infos["episode"]["l"] == lim).all()
    assert obs.dtype == np.float64 and not trunc.any()
    assert abs(float(envs.env.env.obs_rms.mean.mean())) > 0  # NormalizeObservation saw the steps


def test_make_vec_with_wrappers():
    """``make_vec(wrappers=...)`` wraps single envs, so Gymnasium needs a sync (or async)
    vectorization for it; the batched env takes ``flatten=True`` for the same Box."""
    from gymnasium.wrappers.vector import NormalizeObservation

    with pytest.raises(gymnasium.error.Error, match="vector_entry_point"):
        gymnasium.make_vec(TREASURE, num_envs=2, wrappers=[gymnasium.wrappers.FlattenObservation])
    envs = gymnasium.make_vec(TREASURE, num_envs=2, vectorization_mode="sync", variant="small", pool_size=POOL,
                              wrappers=[gymnasium.wrappers.FlattenObservation])
    assert isinstance(envs, SyncVectorEnv) and envs.single_observation_space.shape == (404,)
    batched = gymnasium.make_vec(TREASURE, num_envs=2, variant="small", pool_size=POOL, flatten=True,
                                 autoreset_mode="next_step")
    assert batched.single_observation_space == envs.single_observation_space
    for e in (envs, batched):
        e = NormalizeObservation(e)
        e.reset(seed=0)
        for _ in range(limit("treasure", "small") + 1):
            obs, *_ = e.step(np.zeros(2, dtype=np.int64))
        assert obs.shape == (2, 404) and np.isfinite(obs).all()


# -- the same info keys on every step ------------------------------------------------------------


def test_every_info_has_the_same_keys():
    keys = set(INFO_KEYS)
    env = MetarenaEnv("coinrush", "small", pool_size=POOL, episodes=2)
    trial_env = MetarenaEnv("coinrush", "small", pool_size=POOL, episodes=2, trial_features=True)
    par = pz_env.parallel_env("coinrush", "small", players=2, pool_size=POOL, episodes=2)
    vecs = [MetarenaVectorEnv(2, "coinrush", "small", pool_size=POOL, episodes=2, autoreset_mode=m)
            for m in ("same_step", "next_step")]
    assert set(env.reset(seed=0)[1]) == set(trial_env.reset(seed=0)[1]) == keys
    assert all(set(i) == keys for i in par.reset(seed=0)[1].values())
    assert all(set(v.reset(seed=0)[1]) == keys | {f"_{k}" for k in keys} for v in vecs)
    ends = 0
    for _ in range(2 * limit("coinrush", "small") + 2):
        *_, term, trunc, info = env.step(0)
        assert set(info) == keys
        if term or trunc:
            ends += 1
            env.reset()
        *_, term, _, info = trial_env.step(0)
        assert set(info) - {"episode_end"} == keys
        if term:
            trial_env.reset()
        _, _, terms, truncs, infos = par.step({a: 0 for a in par.agents})
        assert all(set(i) == keys for i in infos.values())
        if not par.agents:
            par.reset()
        for v in vecs:
            assert keys | {f"_{k}" for k in keys} <= set(v.step(np.zeros(2, dtype=np.int64))[4])
    assert ends == 2


# -- TorchRL ------------------------------------------------------------------------------------


def test_torchrl_gym_wrapper_on_the_vector_env():
    from torchrl.envs import GymWrapper
    from torchrl.envs.utils import check_env_specs

    lim = limit("coinrush", "small")
    env = GymWrapper(gymnasium.make_vec(COINRUSH, num_envs=3, variant="small", pool_size=POOL))
    check_env_specs(env, seed=0)
    td = env.rollout(lim + 8, break_when_any_done=False)  # across the episode end at the limit
    assert td.batch_size == (3, lim + 8)
    done = td["next", "done"].squeeze(-1)
    assert done[:, lim - 1].all() and done.sum() == 3
    assert (td["next", "scalars"][:, lim - 1, 0] == 0).all()  # the final observation: no time left
    assert (td["scalars"][:, lim, 0] == 1).all()  # then the next episode's first


def test_torchrl_gym_wrapper_on_the_single_env():
    from torchrl.envs import GymWrapper
    from torchrl.envs.utils import check_env_specs

    env = GymWrapper(gymnasium.make(TREASURE, variant="small", pool_size=POOL, flatten=True))
    check_env_specs(env, seed=0)
    td = env.rollout(2 * limit("treasure", "small"), break_when_any_done=False)
    assert td["next", "done"].sum() >= 1 and td["observation"].shape[-1] == 404


def test_torchrl_pettingzoo_wrapper():
    """PettingZooWrapper builds its specs from the reset infos and crashed on a key that only
    an episode's last step had; with ``max_cycles=10`` the rollout crosses two episode ends."""
    from torchrl.envs import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    par = pz_env.parallel_env("coinrush", variant="small", players=2, pool_size=POOL, max_cycles=10)
    env = PettingZooWrapper(par, return_state=True)
    check_env_specs(env, seed=0)
    td = env.rollout(25, break_when_any_done=False)
    done = td["next", "done"].reshape(25)
    assert done.nonzero().reshape(-1).tolist() == [9, 19]
    assert td["next", "player", "info", "trial_end"].all(-1)[[9, 19]].all()  # episodes=1: each ends its trial
    assert td["next", "state"].shape == (25, par.state_space.shape[0])
    time_left = td["next", "state"][:, -2]
    assert np.isclose(float(time_left[9]), 1 - 10 / limit("coinrush", "small"))  # how the episode ended
    assert float(td["state"][10, -2]) == 1.0  # the next episode's start


# -- RecordVideo --------------------------------------------------------------------------------


def test_record_video(tmp_path):
    from gymnasium.wrappers import RecordVideo

    folder = tmp_path / "videos"
    env = RecordVideo(gymnasium.make(COINRUSH, variant="small", pool_size=POOL, render_mode="rgb_array"),
                      str(folder), episode_trigger=lambda episode: True, disable_logger=True)
    env.reset(seed=0)
    done = False
    while not done:
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    env.close()
    (video,) = folder.glob("*.mp4")
    assert video.stat().st_size > 1000


# -- outside truncation, max_episode_steps --------------------------------------------------------


def test_outside_time_limit_goes_on_with_the_trial():
    """A TimeLimit shorter than the step limit ends episodes early; reset() then goes on with
    the trial (same level, next episode), and only after the trial's last episode draws a new one."""
    env = gymnasium.make(TREASURE, max_episode_steps=5, variant="small", pool_size=64, episodes=3)
    first, info = env.reset(seed=0)
    level = info["level_seed"]
    seen = []
    for k in range(3):
        for t in range(5):
            obs, _, terminated, truncated, info = env.step(0)
        assert truncated and not terminated and obs["scalars"][0] < 1.0
        assert info["episode_index"] == k and info["level_seed"] == level
        obs, info = env.reset()
        seen.append((info["episode_index"], info["level_seed"]))
        if k < 2:
            assert data_equivalence(obs, first, exact=True)  # the same level from its start
    assert seen[:2] == [(1, level), (2, level)] and seen[2][0] == 0  # then a new trial
    env.step(0)
    _, info = env.reset()  # reset() mid-episode counts the same way
    assert info["episode_index"] == 1
    _, info = env.reset(options={"new_trial": True})
    assert info["episode_index"] == 0


def test_outside_truncation_of_a_trial_warns_once():
    """With trial_features a Gymnasium episode is a whole trial: a TimeLimit shorter than a trial
    cuts it, the next reset() starts a new trial, and the env warns (once)."""
    env = gymnasium.make(TREASURE, max_episode_steps=10, variant="small", pool_size=POOL, episodes=3,
                         trial_features=True)
    assert env.unwrapped.max_episode_steps == 3 * limit("treasure", "small")
    env.reset(seed=0)
    for cut in range(2):
        for _ in range(10):
            obs, _, terminated, truncated, info = env.step(0)
        assert truncated and not terminated
        caught = run(env.reset)
        assert len([m for m in caught if "cut a trial short" in m]) == (cut == 0), caught
        assert env.unwrapped.benv.state.episode[0] == 0


def test_max_episode_steps_in_the_spec():
    for game in games.names():
        assert gymnasium.spec(env_id(game)).max_episode_steps is None  # it depends on the variant
        default = gymnasium.make(env_id(game), pool_size=POOL)
        assert default.spec.max_episode_steps == limit(game) == default.unwrapped.benv.engine.limit
        for variant in ("small", "large"):
            assert gymnasium.make(env_id(game), variant=variant, pool_size=POOL).spec.max_episode_steps == \
                limit(game, variant)
    trial = gymnasium.make(TREASURE, variant="small", pool_size=POOL, episodes=3, trial_features=True)
    assert trial.spec.max_episode_steps == 3 * limit("treasure", "small")


def test_time_limit_from_the_spec_agrees_with_the_engine():
    """gymnasium.make(env.spec) wraps the env in a TimeLimit at its step limit: both end the
    episode on the same step, and the trial goes on as after any episode."""
    lim = limit("coinrush", "small")
    env = gymnasium.make(gymnasium.make(COINRUSH, variant="small", pool_size=POOL, episodes=2).spec)
    assert isinstance(env, gymnasium.wrappers.TimeLimit) and env.spec.max_episode_steps == lim
    for k in range(2):
        _, info = env.reset(seed=0) if k == 0 else env.reset()
        assert info["episode_index"] == k
        for t in range(1, lim + 1):
            obs, _, terminated, truncated, info = env.step(0)
            assert truncated == (t == lim) and not terminated
        assert obs["scalars"][0] == 0.0 and info["trial_end"] == (k == 1)


# -- PettingZoo max_cycles and state -------------------------------------------------------------


def test_max_cycles():
    par = pz_env.parallel_env("treasure", "small", players=2, pool_size=POOL, episodes=2, max_cycles=7)
    _, infos = par.reset(seed=0)
    level = infos["player_0"]["level_seed"]
    for k in range(2):
        steps = 0
        while par.agents:
            _, _, terms, truncs, infos = par.step({a: 0 for a in par.agents})
            steps += 1
        assert steps == 7 and all(truncs.values()) and not any(terms.values())
        assert all(i["trial_end"] == (k == 1) and i["episode_index"] == k for i in infos.values())
        _, infos = par.reset()
        assert infos["player_0"]["episode_index"] == (k + 1) % 2
        if k == 0:
            assert infos["player_0"]["level_seed"] == level  # the trial goes on on its level
    assert pz_env.parallel_env("treasure", "small").max_cycles == limit("treasure", "small")


@pytest.mark.parametrize("bad", [0, 41, True, 2.5, "10"])
def test_max_cycles_beyond_the_step_limit_is_refused(bad):
    with pytest.raises(ValueError, match=r"max_cycles must be an integer in \[1, 40\]"):
        pz_env.parallel_env("treasure", "small", max_cycles=bad)


def test_state():
    from pettingzoo.test import state_test

    players, lim = 3, limit("coinrush", "small")
    par = pz_env.parallel_env("coinrush", "small", players=players, pool_size=POOL, episodes=2, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        par.state()
    par.reset()
    eng = par.benv.engine
    assert par.state_space.shape == (9 * 9 * (games.tiles.NUM_TILES + players) + 2,)
    rng = np.random.default_rng(0)
    for t in range(1, lim + 1):
        par.step({a: int(rng.integers(5)) for a in par.agents})
        state = par.state()
        assert state in par.state_space and state.dtype == np.float32
        planes = state[:-2].reshape(9, 9, games.tiles.NUM_TILES + players)
        assert (planes[..., :games.tiles.NUM_TILES].sum(-1) == 1).all()  # one tile per cell
        if t < lim:
            row, col = eng.rowcol(par.benv.state)
            for p in range(players):
                assert planes[..., games.tiles.NUM_TILES + p].sum() == 1
                assert planes[row[0, p], col[0, p], games.tiles.NUM_TILES + p] == 1
        assert np.isclose(state[-2], 1 - t / lim) and state[-1] == 0.0
    assert not par.agents and state[-2] == 0.0  # the episode's end, not the next one's start
    par.reset()
    assert par.state()[-2] == 1.0 and par.state()[-1] == 0.5  # the trial's second episode
    assert run(state_test, pz_env.env("coinrush", "small", players=2, pool_size=POOL, max_cycles=5),
               pz_env.parallel_env("coinrush", "small", players=2, pool_size=POOL)) == []
