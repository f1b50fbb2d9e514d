"""rules: the hidden rule table and key, the locked exit, traps, and the reference planners.

(The conformance checks, solvability on 1000 seeds and the goldens cover rules as every game:
test_conformance.py, test_levels.py, test_golden.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from metarena import games
from metarena.games import tiles as T
from metarena.games.engine import Engine, Level, LevelBatch
from metarena.games.rules import (EXIT_BONUS, EXIT_ITEM, KEY_ITEM, KIND_OF_TILE, OBJECTS, ROLE_VALUES, TRAP,
                                  careful_dist)

GAME = games.get("rules")
STAY, UP, DOWN, LEFT, RIGHT = range(5)


def corridor(values=(0.5, -0.5, TRAP)) -> Level:
    """Row 1: start, exit, then one object of each kind (a, b, c, values ``values``); row 2 free.
    The key is kind a (item 1)."""
    tiles = np.full((4, 7), T.WALL, dtype=np.uint8)
    tiles[1:3, 1:6] = T.FLOOR
    items = np.array([[1, 2], [1, 3], [1, 4], [1, 5]])
    tiles[1, 2], tiles[1, 3], tiles[1, 4], tiles[1, 5] = T.EXIT, *OBJECTS
    spawn = np.array([[1, 1], [2, 1], [2, 2], [2, 3]])
    value = np.array([EXIT_BONUS, *values], dtype=np.float32)
    return Level("rules", "small", 0, tiles, spawn, items, value)


def engine(players: int = 1, level: Level | None = None) -> tuple[Engine, object]:
    eng = Engine(GAME, games.variant("rules", "small"), LevelBatch.stack([level or corridor()]), batch=1,
                 players=players)
    return eng, eng.new_state(np.array([0]))


def step(eng, st, *actions):
    rewards, terminated, truncated = eng.step(st, np.array([actions]))
    return rewards[0].tolist(), bool(terminated[0])


@pytest.mark.parametrize("variant", ["small", "medium", "large"])
def test_levels_hide_a_shuffled_table_and_a_key_that_is_never_the_trap(variant):
    v = games.variant("rules", variant)
    keys = set()
    for seed in range(40):
        lv = GAME.generate(v, seed)
        kind = KIND_OF_TILE[lv.tiles[lv.item_pos[:, 0], lv.item_pos[:, 1]]]
        assert lv.tiles[tuple(lv.item_pos[EXIT_ITEM])] == T.EXIT and lv.item_value[EXIT_ITEM] == EXIT_BONUS
        assert (kind[1:] >= 0).all() and np.bincount(kind[1:], minlength=3).tolist() == [v.objects] * 3
        table = {int(k): float(x) for k, x in zip(kind[1:], lv.item_value[1:])}
        assert sorted(table.values()) == sorted(ROLE_VALUES.tolist())
        assert table[int(kind[KEY_ITEM])] != TRAP
        assert (lv.tiles == T.EXIT).sum() == 1
        keys.add(int(kind[KEY_ITEM]))
        desc = GAME.describe_level(lv)
        assert "trap" in desc and "opens after a" in desc
    assert keys == {0, 1, 2}


def test_the_exit_stays_locked_until_the_key_kind_is_collected():
    eng, st = engine()
    assert step(eng, st, RIGHT) == ([0.0], False)  # onto the locked exit: nothing happens
    assert st.alive[0, EXIT_ITEM] and (st.cells == T.EXIT).sum() == 1
    assert step(eng, st, STAY) == ([0.0], False)  # still locked
    assert step(eng, st, RIGHT) == ([0.5], False)  # the key object pays and is gone
    assert not st.alive[0, KEY_ITEM] and (st.cells == T.OBJECT_A).sum() == 0
    assert step(eng, st, LEFT) == ([EXIT_BONUS], True)  # back on the exit: open now


def test_a_costly_key_opens_the_exit_and_a_trap_ends_the_episode():
    eng, st = engine(level=corridor((-0.5, 0.5, TRAP)))
    step(eng, st, RIGHT)
    assert step(eng, st, RIGHT) == ([-0.5], False)
    assert step(eng, st, RIGHT) == ([0.5], False)
    assert step(eng, st, RIGHT) == ([TRAP], True)
    eng.restart(st, np.array([0]))  # every episode starts afresh: objects back, exit locked
    assert st.alive.all() and not st.touched.any()


def test_the_key_is_each_players_own():
    eng, st = engine(players=2)
    step(eng, st, RIGHT, RIGHT)  # player 0 onto the exit, player 1 beside it
    assert step(eng, st, RIGHT, STAY) == ([0.5, 0.0], False)  # player 0 takes the key
    assert step(eng, st, STAY, UP) == ([0.0, 0.0], False)  # player 1 on the exit: locked for it
    assert step(eng, st, DOWN, STAY) == ([0.0, 0.0], False)  # still locked while it stays there
    assert step(eng, st, STAY, DOWN) == ([0.0, 0.0], False)  # player 1 makes way
    assert step(eng, st, UP, STAY) == ([0.0, 0.0], False)
    assert step(eng, st, LEFT, STAY) == ([EXIT_BONUS, 0.0], True)  # player 0 leaves first: the race ends


def test_the_oracle_never_steps_on_a_costly_object_but_the_key_nor_on_a_trap():
    env = games.make_batch_env("rules", "medium", batch=64, pool_size=64, split="test")
    grid, _ = env.reset(levels=np.arange(64))
    rng = np.random.default_rng(0)
    done = np.zeros(64, dtype=bool)
    for _ in range(env.engine.limit):
        act = GAME.policy("oracle", env.engine, env.state, 0, grid[:, 0], rng)
        grid, _, rewards, term, trunc, _ = env.step(act[:, None])
        live = ~done
        assert (rewards[live, 0] != TRAP).all()
        done |= term | trunc
    assert done.all()


def test_careful_maps_walk_round_every_object():
    levels = games.make_batch_env("rules", "small", batch=4, pool_size=4).levels
    maps = careful_dist(levels)
    assert careful_dist(levels) is maps  # computed once per pool
    for i in range(len(levels)):
        for j in range(len(levels.item_pos[i])):
            others = np.delete(levels.item_pos[i], [EXIT_ITEM, j], axis=0)  # every object but item j
            assert (maps[i, j][others[:, 0], others[:, 1]] >= 32000).all()
            assert maps[i, j][tuple(levels.spawn[i, 0])] < 32000 or j != EXIT_ITEM


def test_adaptation_matters_on_the_default_variant():
    """The uninformed planner (a careful explorer) scores well below the oracle, well above random."""
    from metarena.agents.evaluate import reference_scores

    scores = reference_scores(GAME, games.variant("rules"), "test", levels=200, seed=0)
    assert scores["oracle"]["return"] > scores["uninformed"]["return"] > scores["random"]["return"]
    assert 0.3 < scores["uninformed"]["normalized"] <= 0.7


@pytest.mark.parametrize("planner", ["recall", "window-recall"])
def test_ceiling_planners_learn_the_rules_within_a_trial(planner):
    from metarena.agents.evaluate import evaluate
    from metarena.agents.planners import make_planner

    result = evaluate(make_planner(planner, "rules"), "rules", "small", levels=40, episodes=3)
    norm, uninformed = result["per_episode"]["normalized"], result["reference"]["uninformed"]["normalized"]
    for e in (1, 2):
        assert norm[e] > norm[0] + 0.2 and norm[e] > uninformed[e] + 0.2
