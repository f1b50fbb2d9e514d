"""Levels: every generated level is solvable, and seeds split cleanly into train and test.

The property test plays the oracle on 1000 seeds of every game and built-in
variant (half train, half test) with the batched engine (``metarena.games.testing``).
"""

import pytest

from metarena import games
from metarena.games.variant import TRAIN_LEVELS
from metarena.games.testing import check_solvable, smallest_variant

SEEDS = 1000


@pytest.mark.parametrize("game", games.names())
def test_every_level_is_solvable_by_the_oracle(game):
    """``check_game``'s solvability check: every built-in variant, half train and half test seeds."""
    check_solvable(game, smallest_variant(game), seeds=SEEDS)


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
    with pytest.raises(ValueError, match="unknown split"):
        games.split_seed("dev", 0)


def test_the_valid_split_is_the_train_seeds_no_pool_reaches():
    """valid level i is train-distribution level TRAIN_LEVELS + i; the train split ends there."""
    last = games.split_seed("train", TRAIN_LEVELS - 1)
    valid = games.split_seeds("valid", 8)
    assert valid[0] > last and all(s % 5 for s in valid)
    assert len(set(valid.tolist())) == 8
    assert games.seed_split(last) == "train"
    assert all(games.seed_split(int(s)) == "valid" for s in valid)
    assert games.seed_split(int(valid[0]) - 1) == "test"  # the seed just before is a test seed
    with pytest.raises(ValueError, match="valid split"):
        games.split_seed("train", TRAIN_LEVELS)
    with pytest.raises(ValueError, match="non-negative"):
        games.split_seed("valid", -1)


def test_train_and_test_pools_hold_different_levels():
    a = games.make_batch_env("treasure", batch=1, split="train", pool_size=64).levels
    b = games.make_batch_env("treasure", batch=1, split="test", pool_size=64).levels
    assert not set(a.seeds.tolist()) & set(b.seeds.tolist())
