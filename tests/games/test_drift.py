"""drift: the hidden permutation, slips and wind, the engine's dynamics hook, and the planners.

(The conformance checks, solvability on 1000 seeds and the goldens cover drift as every game:
test_conformance.py, test_levels.py, test_golden.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from metarena import games
from metarena.games import tiles as T
from metarena.games.drift import (DERANGEMENTS, GOAL_ITEM, act_for, dynamics_of, goal_dist, slip_draws,
                                  wind_dist)
from metarena.games.engine import Engine, Level, LevelBatch
from metarena.games.maze import UNREACHABLE

GAME = games.get("drift")
STAY, UP, DOWN, LEFT, RIGHT = range(5)


def room(seed: int = 0, wind=()) -> Level:
    """A 5 x 7 room (3 x 5 inside), the goal in the far corner, start cells on the left."""
    tiles = np.full((5, 7), T.WALL, dtype=np.uint8)
    tiles[1:4, 1:6] = T.FLOOR
    for y, x in wind:
        tiles[y, x] = T.WIND
    tiles[3, 5] = T.EXIT
    spawn = np.array([[1, 1], [2, 1], [3, 1], [1, 2]])
    return Level("drift", "small", seed, tiles, spawn, np.array([[3, 5]]), np.ones(1, dtype=np.float32))


def engine(level: Level, players: int = 1, slip: float = 0.0):
    eng = Engine(GAME, games.variant("drift", "small"), LevelBatch.stack([level]), batch=1, players=players)
    st = eng.new_state(np.array([0]))
    hid = dynamics_of(eng)
    hid.slip[:] = slip
    return eng, st, hid


def put(eng, st, cells):
    """Stand the players of slot 0 on ``cells`` (map row, column), PLAYER bits included."""
    r = eng.radius
    st.cells[0] &= T.TILE_MASK
    st.pos[0] = [(y + r) * eng.wp + x + r for y, x in cells]
    if eng.players > 1:
        st.cells.reshape(-1)[st.pos[0]] |= T.PLAYER


def where(eng, st):
    r, c = eng.rowcol(st)
    return [(int(a), int(b)) for a, b in zip(r[0], c[0])]


@pytest.mark.parametrize("variant", ["small", "medium", "large", "heldout"])
def test_levels_hide_a_scrambled_permutation_a_slip_and_a_wind(variant):
    v = games.variant("drift", variant)
    perms, winds = set(), set()
    for seed in range(30):
        lv = GAME.generate(v, seed)
        perm, slip, wind = GAME.hidden(v, seed)
        assert perm[0] == 0 and sorted(perm[1:]) == [1, 2, 3, 4] and (perm[1:] != np.arange(1, 5)).all()
        assert 0 <= slip <= v.slip_max and 1 <= wind <= 4
        assert (lv.tiles == T.WIND).sum() == v.wind and (lv.tiles == T.EXIT).sum() == 1
        assert tuple(lv.item_pos[GOAL_ITEM]) == tuple(np.argwhere(lv.tiles == T.EXIT)[0])
        d = wind_dist(lv.tiles == T.WALL, lv.tiles == T.WIND, wind, tuple(lv.item_pos[GOAL_ITEM]))
        assert (d[lv.tiles != T.WALL] < UNREACHABLE).all()  # no pocket the wind lets no one out of
        assert "moves" in GAME.describe_level(lv) and "wind blows" in GAME.describe_level(lv)
        perms.add(tuple(perm))
        winds.add(wind)
    assert len(perms) > 5 and winds == {1, 2, 3, 4}
    assert len(DERANGEMENTS) == 9


def test_actions_move_by_the_permutation_and_last_action_keeps_the_choice():
    eng, st, hid = engine(room())
    perm = hid.perm[0]
    for a in (RIGHT, DOWN, LEFT, UP):
        before = where(eng, st)[0]
        eng.step(st, np.array([[a]]))
        assert st.last_action[0, 0] == a
        dy, dx = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)][perm[a]]
        y, x = before[0] + dy, before[1] + dx
        expect = (y, x) if room().tiles[y, x] != T.WALL else before
        assert where(eng, st)[0] == expect


def test_slips_are_a_pure_function_of_seed_episode_step_and_player():
    seed, ep, t = np.array([3, 3, 4]), np.array([0, 1, 0]), np.array([5, 5, 5])
    u, d = slip_draws(seed, ep, t, 2)
    u2, d2 = slip_draws(seed, ep, t, 2)
    assert np.array_equal(u, u2) and np.array_equal(d, d2)
    assert len({float(x) for x in u.ravel()}) == 6 and ((d >= 1) & (d <= 4)).all()
    many, _ = slip_draws(np.arange(20000), np.zeros(20000, int), np.zeros(20000, int), 1)
    assert abs(many.mean() - 0.5) < 0.01  # about uniform
    eng, st, _ = engine(room(), slip=1.0)  # every move slips: random directions, all four
    seen = set()
    for _ in range(40):
        before = where(eng, st)[0]
        eng.step(st, np.array([[RIGHT]]))
        after = where(eng, st)[0]
        seen.add((after[0] - before[0], after[1] - before[1]))
        eng.restart(st, np.array([0])) if st.t[0] > 30 else None
    assert len(seen - {(0, 0)}) >= 3


def test_wind_pushes_one_cell_after_the_move_unless_a_wall_or_a_player_is_there():
    eng, st, hid = engine(room(wind=[(2, 3)]), players=2)
    hid.wind[:] = UP
    inverse = hid.inverse[0]
    put(eng, st, [(2, 2), (1, 3)])
    eng.step(st, np.array([[inverse[RIGHT], STAY]]))  # onto the wind: (1, 3) holds player 1
    assert where(eng, st) == [(2, 3), (1, 3)]
    eng.step(st, np.array([[STAY, inverse[RIGHT]]]))  # player 1 leaves; player 0 stays: pushed up
    assert where(eng, st) == [(1, 3), (1, 4)]
    assert (st.cells[0] & T.PLAYER).sum() == 2 * T.PLAYER  # one PLAYER bit per player
    assert st.touched[0, 0, T.WIND] and not st.touched[0, 1, T.WIND]


def test_reaching_the_goal_pays_like_treasure_and_ends_the_race():
    eng, st, hid = engine(room(), players=2)
    inverse = hid.inverse[0]
    put(eng, st, [(1, 1), (1, 3)])
    rewards = None
    for a in (DOWN, DOWN, RIGHT, RIGHT, RIGHT, RIGHT):
        rewards, term, _ = eng.step(st, np.array([[inverse[a], STAY]]))
    assert term[0] and rewards[0, 1] == 0.0
    assert np.isclose(rewards[0, 0], 1.0 - 0.9 * 6 / eng.limit)


def test_act_for_uses_what_is_known_and_guesses_the_rest():
    belief = np.array([[0, 2, 1, 4, 3]] * 3)
    known = np.array([[True, True, True, True, True], [True, False, False, False, False],
                      [True, True, True, True, False]])
    last = np.array([0, UP, 0])
    act = act_for(np.array([UP, UP, LEFT]), belief, known, last, np.array([0, 0, 0]))
    assert act[0] == DOWN  # known: down moves up
    assert act[1] != UP  # the identity guess was just tried and taught nothing
    assert act[2] == RIGHT  # three known tell the fourth (right moves left)


def test_the_uninformed_planner_learns_within_an_episode_only():
    env = games.make_batch_env("drift", "small", batch=8, pool_size=8, episodes=2)
    grid, _ = env.reset(levels=np.arange(8))
    rng = np.random.default_rng(0)
    for _ in range(6):
        act = GAME.policy("uninformed", env.engine, env.state, 0, grid[:, 0], rng)
        grid, *_ = env.step(act[:, None])
    assert env.state.touched[:, 0, 1:5].any()
    env.engine.restart(env.state, np.arange(8))
    assert not env.state.touched.any()


def test_goal_maps_are_cached_per_pool():
    levels = games.make_batch_env("drift", "small", batch=2, pool_size=4).levels
    assert goal_dist(levels) is goal_dist(levels)
    assert (goal_dist(levels)[np.arange(4), levels.item_pos[:, 0, 0], levels.item_pos[:, 0, 1]] == 0).all()


def test_adaptation_matters_on_the_default_variant():
    """The uninformed planner (a leaky within-episode learner) scores well below the oracle,
    well above random."""
    from metarena.agents.evaluate import reference_scores

    scores = reference_scores(GAME, games.variant("drift"), "test", levels=200, seed=0)
    assert scores["oracle"]["return"] > scores["uninformed"]["return"] > scores["random"]["return"]
    assert scores["random"]["normalized"] + 0.3 < scores["uninformed"]["normalized"] <= 0.7


@pytest.mark.parametrize("planner", ["recall", "window-recall"])
def test_ceiling_planners_learn_the_dynamics_within_a_trial(planner):
    from metarena.agents.evaluate import evaluate
    from metarena.agents.planners import make_planner

    result = evaluate(make_planner(planner, "drift"), "drift", "medium", levels=40, episodes=3)
    norm, uninformed = result["per_episode"]["normalized"], result["reference"]["uninformed"]["normalized"]
    for e in (1, 2):
        assert norm[e] > 0.85 and norm[e] > uninformed[e] + 0.2
