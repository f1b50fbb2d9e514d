"""gymnasium.make by id, its keyword arguments, and the errors a wrong one gives."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from metarena import games
from metarena.games.gym_env import MetarenaEnv, env_id

TREASURE = "metarena/Treasure-v0"


def test_ids():
    assert env_id("treasure") == TREASURE
    assert env_id("coinrush") == "metarena/Coinrush-v0"
    assert env_id("two_words") == "metarena/TwoWords-v0"


def test_registration_is_idempotent():
    from metarena.games.gym_env import register_envs

    assert register_envs() == []  # importing games registered every game already


def test_make_with_kwargs():
    env = gymnasium.make(TREASURE, variant="small", split="test", seed=3, players=3, others="scripted",
                         pool_size=8, episodes=2)
    base = env.unwrapped
    assert isinstance(base, MetarenaEnv)
    assert base.benv.variant.name == "small" and base.benv.players == 3 and base.benv.learners == 1
    assert base.benv.others == "scripted" and base.benv.episodes == 2 and len(base.benv.levels) == 8
    obs, info = env.reset()
    assert obs in env.observation_space
    assert games.seed_split(info["level_seed"]) == "test"
    _, info2 = gymnasium.make(TREASURE, variant="small", split="test", seed=3, pool_size=8).reset()
    assert info2["level_seed"] == info["level_seed"]  # the seed kwarg seeds the first reset
    obs, reward, terminated, truncated, info = env.step(np.int64(2))
    assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
    env.close()


def test_spaces():
    env = gymnasium.make("metarena/Coinrush-v0", variant="small", pool_size=4)
    v = games.VIEW
    assert env.action_space == gymnasium.spaces.Discrete(5)
    grid, scalars = env.observation_space["grid"], env.observation_space["scalars"]
    assert grid.shape == (v, v, games.tiles.NUM_CHANNELS) and grid.dtype == np.uint8
    assert grid.low.min() == 0 and grid.high.max() == 1
    assert scalars.shape == (len(games.engine.SCALAR_NAMES),) and scalars.dtype == np.float32


def test_variant_from_toml(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('base = "small"\nchests = 2\n')
    env = gymnasium.make(TREASURE, variant=str(path), pool_size=4)
    assert env.unwrapped.benv.variant.chests == 2


def test_levels_differ_between_splits():
    train = gymnasium.make(TREASURE, variant="small", split="train", pool_size=8).unwrapped.benv.levels.seeds
    test = gymnasium.make(TREASURE, variant="small", split="test", pool_size=8).unwrapped.benv.levels.seeds
    assert not set(train) & set(test)


def test_unknown_variant_names_the_allowed_ones():
    with pytest.raises(games.VariantError, match="huge") as err:
        gymnasium.make(TREASURE, variant="huge")
    assert all(v in str(err.value) for v in ("small", "medium", "large"))


@pytest.mark.parametrize("kwargs,words", [
    ({"split": "val"}, ("val", "train", "test")),
    ({"others": "bogus"}, ("bogus", "oracle", "scripted", "random")),
    ({"players": 9}, ("1-4", "9")),
    ({"players": 0}, ("1-4",)),
    ({"render_mode": "bogus"}, ("rgb_array", "human")),
    ({"game": "chess"}, ("chess", "treasure", "coinrush")),
    ({"pool_size": 0}, ("pool_size",)),
    ({"episodes": 0}, ("episodes",)),
    ({"seed": -1}, ("seed",)),
])
@pytest.mark.filterwarnings("ignore:.*render_mode=.bogus.")
def test_bad_kwargs_say_what_is_allowed(kwargs, words):
    with pytest.raises(ValueError) as err:
        gymnasium.make(TREASURE, **kwargs)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_unknown_kwarg():
    with pytest.raises(TypeError, match="colour"):
        gymnasium.make(TREASURE, colour=3)


def test_bad_actions_and_options():
    env = MetarenaEnv("treasure", "small", pool_size=4)
    env.reset(seed=0)
    for bad in (5, -1, 1.5, [1, 2]):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
    with pytest.raises(ValueError, match="level"):
        env.reset(options={"level": 99})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"colour": 1})


def test_step_before_reset():
    with pytest.raises(RuntimeError, match="reset"):
        MetarenaEnv("treasure", "small", pool_size=4).step(0)


def test_others_play_by_their_policy():
    """In a treasure race against an oracle, a learner that stays never scores and the
    episodes that end early are the oracle's wins; against "stay" nothing ever ends early."""
    def episodes(others):
        env = gymnasium.make(TREASURE, variant="small", players=2, others=others, pool_size=8, seed=0)
        out = []
        for _ in range(5):
            env.reset()
            while True:
                _, reward, terminated, truncated, _ = env.step(0)
                if terminated or truncated:
                    break
            out.append((terminated, reward))
        return out

    oracle = episodes("oracle")
    assert sum(t for t, _ in oracle) >= 3 and all(r == 0.0 for _, r in oracle)
    assert not any(t for t, _ in episodes("stay"))


def test_render_human_headless():
    env = gymnasium.make(TREASURE, variant="small", pool_size=4, render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    env.step(1)
    env.close()
    env.close()  # closing twice is allowed
