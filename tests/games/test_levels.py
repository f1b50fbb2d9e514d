"""Levels: every generated level is solvable, and seeds split cleanly into train and test.

The property test plays the oracle on 1000 seeds of every game and built-in
variant (half train, half test) with the batched engine.
"""

import numpy as np
import pytest

from metarena import games
from metarena.agents import ReferenceAgent, play
from metarena.games.batch import BatchEnv
from metarena.games.maze import UNREACHABLE
from metarena.games.variant import builtin_variants

SEEDS = 1000
CASES = [(g, v) for g in games.names() for v in builtin_variants(g)]


@pytest.mark.parametrize("game,variant", CASES)
def test_every_level_is_solvable_by_the_oracle(game, variant):
    g, v = games.get(game), games.variant(game, variant)
    seeds = np.concatenate([games.split_seeds("train", SEEDS // 2), games.split_seeds("test", SEEDS // 2)])
    env = BatchEnv(g, v, batch=SEEDS, seeds=seeds, seed=0)
    levels = env.levels
    # every item is reachable from every start cell
    for i in range(SEEDS):
        y, x = levels.spawn[i].T
        assert (levels.dist[i][:, y, x] < UNREACHABLE).all(), f"{game}/{variant} seed {seeds[i]}: unreachable item"
    # the oracle reaches the goal within the step limit
    stats = play(env, [ReferenceAgent("oracle", 0)], levels=np.arange(SEEDS), seed=0)
    ret = stats.returns[:, 0, 0]
    if g.spec.terminates:  # treasure: found on every level, before the limit
        assert (ret > 0).all(), f"oracle failed on seeds {seeds[ret <= 0][:10]}"
        assert (stats.lengths[:, 0] < env.engine.limit).all()
    else:  # coinrush: the oracle never loses and always collects something
        assert (ret > 0).all(), f"oracle scored <= 0 on seeds {seeds[ret <= 0][:10]}"


@pytest.mark.parametrize("game", games.names())
def test_adaptation_matters_on_the_default_variant(game):
    """The uninformed planner (a perfect explorer) stays well below the oracle in an episode."""
    from metarena.agents.evaluate import reference_scores

    scores = reference_scores(games.get(game), games.variant(game), "test", levels=300, seed=0)
    assert scores["uninformed"]["normalized"] <= 0.7
    assert scores["uninformed"]["normalized"] > scores["random"]["normalized"] + 0.3


def test_splits_are_disjoint_and_stated():
    train, test = set(games.split_seeds("train", 4000)), set(games.split_seeds("test", 1000))
    assert not train & test
    assert all(games.seed_split(s) == "test" for s in test)
    assert all(games.seed_split(s) == "train" for s in train)
    assert train | test == set(range(5000)), "the two splits cover every seed"
    with pytest.raises(ValueError):
        games.split_seed("valid", 0)


def test_train_and_test_pools_hold_different_levels():
    a = games.make_batch_env("treasure", batch=1, split="train", pool_size=64).levels
    b = games.make_batch_env("treasure", batch=1, split="test", pool_size=64).levels
    assert not set(a.seeds.tolist()) & set(b.seeds.tolist())
