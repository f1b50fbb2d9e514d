"""Conformance of every registered game: the checks of ``metarena.games.testing.check_game``
(spec, determinism, spaces, rendering, Gymnasium/SB3 and PettingZoo checkers, golden
playthroughs, a vectorized step; solvability is in test_levels.py), then the episode,
autoreset and vector semantics of the interfaces.

Parametrized over ``metarena.games.names()``, so a newly registered game is covered
without touching this file.
"""

from __future__ import annotations


import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode

from metarena import games
from metarena.games import pz_env
from metarena.games.gym_env import MetarenaEnv, MetarenaVectorEnv, env_id
from metarena.games.testing import CHECKS, player_counts, smallest_variant

POOL = 16
GAMES = games.names()


def small(game: str) -> str:
    return smallest_variant(game)


CASES = [pytest.param(g, p, id=f"{g}-p{p}") for g in GAMES for p in player_counts(g)]
GAME_IDS = [pytest.param(g, id=g) for g in GAMES]

CHECK_CASES = [pytest.param(g, c, id=f"{g}-{c}") for g in GAMES for c in CHECKS if c != "solvable"]


@pytest.mark.parametrize("game,check", CHECK_CASES)
def test_check_game(game, check):
    CHECKS[check](game, small(game))


# -- Gymnasium / SB3 single env -----------------------------------------------------------------


@pytest.mark.parametrize("game", GAME_IDS)
def test_single_env_episode_semantics(game):
    env = MetarenaEnv(game, small(game), pool_size=POOL, episodes=2, seed=5)
    obs, info = env.reset()
    first = obs
    assert obs["scalars"][0] == 1.0 and info["episode_index"] == 0
    level = info["level_seed"]
    done, steps = False, 0
    while not done:  # "stay" never wins: the episode runs to the step limit
        obs, reward, terminated, truncated, info = env.step(0)
        done, steps = terminated or truncated, steps + 1
    assert truncated and not terminated and steps == env.benv.engine.limit
    assert obs["scalars"][0] == 0.0, "the last step returns the final observation, not the next episode's"
    assert info == {"level_seed": level, "episode_index": 0, "trial_end": False}
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    obs, info = env.reset()  # the trial goes on: same level, next episode
    assert info == {"level_seed": level, "episode_index": 1, "trial_end": False}
    assert data_equivalence(obs, first, exact=True)
    while True:
        obs, _, terminated, truncated, info = env.step(0)
        if terminated or truncated:
            break
    assert info["trial_end"] and info["episode_index"] == 1
    _, info = env.reset()
    assert info["episode_index"] == 0  # a new trial
    _, info = env.reset(seed=5)
    assert info["level_seed"] == level  # the seed picks the level again


@pytest.mark.parametrize("game", GAME_IDS)
def test_single_env_seeded_rollout(game):
    def rollout(seed):
        env = MetarenaEnv(game, small(game), pool_size=POOL, players=2, others="random")
        env.action_space.seed(seed)
        obs, info = env.reset(seed=seed)
        out = [obs, info]
        for _ in range(3 * env.benv.engine.limit):
            obs, r, te, tr, info = env.step(env.action_space.sample())
            out += [obs, r, te, tr, info]
            if te or tr:
                obs, info = env.reset()
                out += [obs, info]
        return out

    assert data_equivalence(rollout(11), rollout(11), exact=True)
    assert not data_equivalence(rollout(11), rollout(12))


@pytest.mark.parametrize("game", GAME_IDS)
def test_render_after_the_last_step_shows_the_end(game):
    """The BatchEnv restarts a slot inside the step that ends its episode; render() after
    that step must still show the episode's end, not the next episode's start."""
    env = MetarenaEnv(game, small(game), pool_size=POOL, episodes=2, render_mode="rgb_array")
    env.reset(seed=0)
    start = env.render()
    while True:
        *_, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            break
    end = env.render()
    assert np.array_equal(env.render(), end)
    env.reset()  # the trial's second episode: what the slot already held after the last step
    assert not np.array_equal(env.render(), end)
    env.reset(seed=0)
    assert np.array_equal(env.render(), start)


# -- PettingZoo ---------------------------------------------------------------------------------


@pytest.mark.parametrize("game,players", CASES)
def test_pettingzoo_episode_ends_for_all(game, players):
    par = pz_env.parallel_env(game, small(game), players=players, pool_size=POOL, seed=3)
    obs, infos = par.reset()
    assert set(obs) == set(infos) == set(par.possible_agents)
    space = par.observation_space("player_0")
    assert all(obs[a] in par.observation_space(a) for a in par.agents)
    assert space["grid"].shape == (games.VIEW, games.VIEW, games.tiles.NUM_CHANNELS)
    steps = 0
    while par.agents:
        obs, rew, terms, truncs, infos = par.step({a: 0 for a in par.agents})
        steps += 1
    assert steps == par.benv.engine.limit
    assert all(truncs.values()) and not any(terms.values())
    assert all(o["scalars"][0] == 0.0 for o in obs.values())
    with pytest.raises(RuntimeError, match="reset"):
        par.step({})


# -- vector env ---------------------------------------------------------------------------------


@pytest.mark.parametrize("game", GAME_IDS)
def test_make_vec_uses_the_batched_env(game):
    envs = gymnasium.make_vec(env_id(game), num_envs=3, vectorization_mode="vector_entry_point",
                              variant=small(game), pool_size=POOL)
    assert isinstance(envs.unwrapped, MetarenaVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, infos = envs.reset(seed=0)
    v, c, s = games.VIEW, games.tiles.NUM_CHANNELS, len(games.engine.SCALAR_NAMES)
    assert obs["grid"].shape == (3, v, v, c) and obs["grid"].dtype == np.uint8
    assert obs["scalars"].shape == (3, s) and obs["scalars"].dtype == np.float32
    assert obs in envs.observation_space
    assert envs.single_observation_space == MetarenaEnv(game, small(game), pool_size=POOL).observation_space
    obs, rew, term, trunc, infos = envs.step(envs.action_space.sample())
    assert obs in envs.observation_space
    assert rew.shape == term.shape == trunc.shape == (3,) and rew.dtype == np.float32
    assert infos["level_seed"].shape == (3,) and infos["_level_seed"].all()
    envs.close()


@pytest.mark.parametrize("game", GAME_IDS)
@pytest.mark.parametrize("episodes", [1, 2])
def test_vector_same_step_autoreset(game, episodes):
    n = 4
    envs = MetarenaVectorEnv(n, game, small(game), pool_size=POOL, episodes=episodes)
    first, info0 = envs.reset(seed=1)
    limit = envs.benv.engine.limit
    for t in range(limit):
        obs, rew, term, trunc, infos = envs.step(np.zeros(n, dtype=np.int64))  # stay: truncated at the limit
        if t < limit - 1:
            assert "final_obs" not in infos and not (term | trunc).any()
    assert trunc.all() and not term.any()
    assert infos["_final_obs"].all() and infos["_final_info"].all()
    for i in range(n):
        final = infos["final_obs"][i]
        assert final in envs.single_observation_space
        assert final["scalars"][0] == 0.0  # the episode's last observation
        assert obs["scalars"][i, 0] == 1.0  # already the next episode's first
    assert (infos["final_info"]["episode_index"] == 0).all()
    assert (infos["final_info"]["level_seed"] == info0["level_seed"]).all()
    assert (infos["final_info"]["trial_end"] == (episodes == 1)).all()
    if episodes == 2:  # the trial goes on: same level, same start
        assert (infos["episode_index"] == 1).all()
        assert (infos["level_seed"] == info0["level_seed"]).all()
        assert np.array_equal(obs["grid"], first["grid"]) and np.array_equal(obs["scalars"], first["scalars"])
    else:
        assert (infos["episode_index"] == 0).all()


@pytest.mark.parametrize("game", [g for g in GAME_IDS if games.get(g.values[0]).spec.terminates])
def test_vector_partial_autoreset(game):
    """Only the slots that end are reset; the others carry on. (Only games whose episodes can
    end before the step limit: where every episode lasts the limit, e.g. coinrush, every slot
    ends on the same step and there is nothing partial to see.)"""
    n = 6
    envs = MetarenaVectorEnv(n, game, small(game), pool_size=POOL, players=2, others="oracle")
    envs.reset(seed=2)
    envs.action_space.seed(2)
    for _ in range(envs.benv.engine.limit):
        obs, rew, term, trunc, infos = envs.step(envs.action_space.sample())
        done = term | trunc
        if done.any() and not done.all():
            assert np.array_equal(infos["_final_obs"], done)
            assert all((infos["final_obs"][i] is None) != done[i] for i in range(n))
            assert np.all(obs["scalars"][done, 0] == 1.0)
            assert np.all(obs["scalars"][~done, 0] < 1.0)
            break
    else:
        pytest.fail("no step ended the episodes of some slots but not of the others")


@pytest.mark.parametrize("game", GAME_IDS)
def test_vector_seeded_determinism(game):
    def rollout(seed):
        envs = MetarenaVectorEnv(5, game, small(game), pool_size=POOL, players=2, others="random")
        envs.action_space.seed(seed)
        out = list(envs.reset(seed=seed))
        for _ in range(2 * envs.benv.engine.limit):
            out += list(envs.step(envs.action_space.sample()))
        return out

    assert data_equivalence(rollout(4), rollout(4), exact=True)
    assert not data_equivalence(rollout(4), rollout(5))


@pytest.mark.parametrize("game", GAME_IDS)
def test_vector_matches_single_env(game):
    """Slot 0 of a vector env and a single env on the same pool level play the same episode."""
    single = MetarenaEnv(game, small(game), pool_size=POOL)
    envs = MetarenaVectorEnv(2, game, small(game), pool_size=POOL)
    o1, _ = single.reset(seed=0, options={"level": 3})
    ov, _ = envs.reset(seed=0, options={"levels": [3, 7]})
    rng = np.random.default_rng(0)
    for _ in range(single.benv.engine.limit):
        a = int(rng.integers(0, 5))
        o1, r1, te, tr, _ = single.step(a)
        ov, rv, tev, trv, infos = envs.step(np.array([a, 0]))
        slot0 = infos["final_obs"][0] if te or tr else {"grid": ov["grid"][0], "scalars": ov["scalars"][0]}
        assert data_equivalence(o1, slot0, exact=True)
        assert r1 == rv[0] and te == tev[0] and tr == trv[0]
        if te or tr:
            break


def test_vector_render_rgb_array():
    game = GAMES[0]
    envs = MetarenaVectorEnv(2, game, small(game), pool_size=POOL, render_mode="rgb_array")
    envs.reset(seed=0)
    frames = envs.render()
    assert len(frames) == 2 and all(f.dtype == np.uint8 and f.ndim == 3 for f in frames)


def test_every_game_is_registered():
    for game in GAMES:
        assert env_id(game) in gymnasium.registry
        # the step limit depends on the variant: each made env carries its own (tests/games/test_clients.py)
        assert gymnasium.spec(env_id(game)).max_episode_steps is None
        env = gymnasium.make(env_id(game), variant=small(game), pool_size=POOL)
        assert env.spec.max_episode_steps == env.unwrapped.benv.engine.limit
