"""drift: the hidden permutation, slips and wind, the engine's dynamics hook, and the planners.

(The conformance checks, solvability on 1000 seeds and the goldens cover drift as every game:
test_conformance.py, test_levels.py, test_golden.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from metarena import games
from metarena.games import tiles as T
from metarena.games.drift import (DERANGEMENTS, GOAL_ITEM, act_for, dynamics_of, goal_maps, set_dynamics,
                                  slip_draws, wind_dist)
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


def engine(level: Level, players: int = 1, slip: float = 0.0, wind: int | None = None):
    eng = Engine(GAME, games.variant("drift", "small"), LevelBatch.stack([level]), batch=1, players=players)
    st = eng.new_state(np.array([0]))
    hid = dynamics_of(eng)
    hid.slip[:] = slip
    if wind is not None:
        hid.wind[:] = wind
    set_dynamics(eng, hid)
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
    eng, st, hid = engine(room(wind=[(2, 3)]), players=2, wind=UP)
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


def test_goal_maps_are_cached_per_pool_and_made_when_asked_for():
    env = games.make_batch_env("drift", "small", batch=2, pool_size=4)
    levels, hid = env.levels, dynamics_of(env.engine)
    lv = np.arange(4)
    maps = goal_maps(levels, lv, hid.wind[:4])
    assert goal_maps(levels) is maps
    assert (maps[lv, hid.wind[:4], levels.item_pos[:, 0, 0], levels.item_pos[:, 0, 1]] == 0).all()
    assert np.array_equal(maps[:, 0], levels.dist[:, GOAL_ITEM])  # 0: no wind, the plain map
    for i in range(4):
        goal = tuple(levels.item_pos[i, GOAL_ITEM])
        assert np.array_equal(maps[i, hid.wind[i]], wind_dist(levels.tiles[i] == T.WALL, levels.tiles[i] == T.WIND,
                                                              int(hid.wind[i]), goal))


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


def test_the_engine_slips_as_slip_draws_say():
    """The engine's per-pool level keys give the same draws as :func:`slip_draws` from seeds."""
    env = games.make_batch_env("drift", "small", batch=16, pool_size=16, players=2)
    env.reset(levels=np.arange(16))
    eng, st = env.engine, env.state
    hid = dynamics_of(eng)
    hid.slip[:] = 0.5
    set_dynamics(eng, hid)
    rng = np.random.default_rng(1)
    for _ in range(5):
        actions = rng.integers(1, 5, size=(16, 2))
        u, direction = slip_draws(eng.levels.seeds[st.level], st.episode, st.t, 2)
        moves = GAME.dynamics(eng, st, actions)
        expect = np.where(u < 0.5, direction, np.take_along_axis(hid.perm[st.level], actions, axis=1))
        assert np.array_equal(moves, expect)
        eng.step(st, actions)


# -- drift/shift ---------------------------------------------------------------------------------

SHIFT = games.variant("drift", "shift")


def test_shift_is_validated_like_every_key(tmp_path):
    from metarena.games.variant import VariantError

    for bad, says in (("-1", "out of range"), ("17", "out of range"), ("1.5", "expected an integer"),
                      ("true", "expected an integer")):
        f = tmp_path / "v.toml"
        f.write_text(f"base = \"medium\"\nshift = {bad}\n")
        with pytest.raises(VariantError, match=f"shift.*{says}|{says}.*shift"):
            games.variant("drift", str(f))
    assert games.variant("drift").shift == 0 and SHIFT.shift == 2


def test_shift_levels_draw_a_change_episode_and_other_dynamics():
    changes, seen = [], set()
    for seed in range(60):
        change, phases = GAME.phases(SHIFT, seed)
        assert (change, [(p.tolist(), s, w) for p, s, w in phases]) == \
            (lambda c, ph: (c, [(p.tolist(), s, w) for p, s, w in ph]))(*GAME.phases(SHIFT, seed))  # deterministic
        assert 1 <= change <= SHIFT.shift and len(phases) == 2
        (perm, slip, wind), (perm2, slip2, wind2) = phases
        for p, s, w in phases:
            assert p[0] == 0 and sorted(p[1:]) == [1, 2, 3, 4] and (p[1:] != np.arange(1, 5)).all()
            assert 0 <= s <= SHIFT.slip_max and 1 <= w <= 4
        assert not np.array_equal(perm, perm2) and wind != wind2
        assert tuple(GAME.hidden(SHIFT, seed)[0]) == tuple(perm)
        assert "from episode" in GAME.describe_level(GAME.generate(SHIFT, seed)) if seed < 3 else True
        changes.append(change)
        seen.add((tuple(perm), tuple(perm2)))
    assert set(changes) == {1, 2} and len(seen) > 20
    assert GAME.phases(games.variant("drift"), 0)[0] is None


def test_change_episode_is_none_without_a_shift_and_the_drawn_episode_with_one():
    base = games.make_batch_env("drift", "medium", batch=2, pool_size=8).levels
    assert GAME.change_episode(base) is None
    levels = games.make_batch_env("drift", "shift", batch=2, pool_size=8).levels
    change = GAME.change_episode(levels)
    assert change.shape == (8,) and change.dtype.kind == "i"
    assert change.tolist() == [GAME.phases(SHIFT, int(s))[0] for s in levels.seeds]
    assert np.array_equal(dynamics_of(games.make_batch_env("drift", "shift", batch=2, pool_size=8).engine).change,
                          change)


def test_a_variant_file_with_a_shift_changes_where_it_says(tmp_path):
    path = tmp_path / "early.toml"
    path.write_text('base = "small"\nshift = 1\n')
    env = games.make_batch_env("drift", str(path), batch=2, pool_size=6)
    assert env.levels.variant == "early"  # levels keep the file's name only: the game remembers the rest
    assert GAME.change_episode(env.levels).tolist() == [1] * 6
    assert "from episode 2 on" in GAME.describe_level(env.levels.level(0))


def test_shift_levels_move_by_the_first_dynamics_then_by_the_second():
    env = games.make_batch_env("drift", "shift", batch=8, pool_size=8, episodes=4)
    env.reset(levels=np.arange(8))
    eng, st = env.engine, env.state
    hid = dynamics_of(eng)
    assert hid.perm.shape == (16, 5) and hid.wind.shape == (16,)
    hid.slip[:] = 0.0
    set_dynamics(eng, hid)
    change = GAME.change_episode(env.levels)
    rng = np.random.default_rng(0)
    for episode in range(4):
        lv = st.level.copy()
        row = np.where(episode >= change[lv], lv + 8, lv)
        for _ in range(5):
            actions = rng.integers(0, 5, size=(8, 1))
            moves = GAME.dynamics(eng, st, actions)
            assert np.array_equal(moves[:, 0], hid.perm[row, actions[:, 0]])
            eng.step(st, actions)
        eng.restart(st, np.arange(8)) if episode < 3 else None
        assert (st.episode == min(episode + 1, 3)).all()


def test_shift_rollouts_are_deterministic_and_differ_from_medium():
    def rollout(variant):
        env = games.make_batch_env("drift", variant, batch=4, pool_size=4, episodes=4, seed=3)
        env.reset(levels=np.arange(4))
        rng = np.random.default_rng(0)
        out = []
        for _ in range(200):
            env.step(rng.integers(0, 5, size=(4, 1)))
            out.append(env.state.pos.copy())
        return np.stack(out)

    assert np.array_equal(rollout("shift"), rollout("shift"))
    assert not np.array_equal(rollout("shift"), rollout("medium"))


def test_the_oracle_solves_every_episode_of_a_shift_trial():
    """Every level can be solved under both phases' winds, and the oracle, told the dynamics of
    the current episode, reaches the goal in time in every episode (before and after the change)."""
    n, k = 200, 4
    env = games.make_batch_env("drift", "shift", batch=n, pool_size=n, episodes=k, split="test")
    grid, _ = env.reset(levels=np.arange(n))
    rng = np.random.default_rng(0)
    returns = np.full((n, k), np.nan)
    while np.isnan(returns).any():
        episode = env.state.episode.copy()
        actions = GAME.policy("oracle", env.engine, env.state, 0, grid[:, 0], rng)
        grid, _, _, _, _, info = env.step(actions[:, None])
        final = info.get("final")
        if final is not None:
            slots = final["slots"]
            fresh = np.isnan(returns[slots, episode[slots]])
            returns[slots[fresh], episode[slots][fresh]] = final["score"][fresh, 0]
            assert (final["length"] < env.engine.limit).all()
    assert (returns > 0).all()
    hid = dynamics_of(env.engine)
    for i in range(n):
        goal = tuple(env.levels.item_pos[i, GOAL_ITEM])
        walls, wind = env.levels.tiles[i] == T.WALL, env.levels.tiles[i] == T.WIND
        for row in (i, i + n):
            d = wind_dist(walls, wind, int(hid.wind[row]), goal)
            assert (d[~walls] < UNREACHABLE).all()


@pytest.mark.parametrize("planner", ["recall", "window-recall"])
def test_ceiling_planners_find_the_change_and_relearn(planner):
    """After the change the ceiling planners relearn: the episode after it scores near what the
    episode before it did, well above the uninformed planner."""
    from metarena.agents.evaluate import evaluate
    from metarena.agents.planners import make_planner

    result = evaluate(make_planner(planner, "drift"), "drift", "shift", levels=40, episodes=4)
    since = result["since_change"]
    norm = dict(zip(since["offsets"], since["agent"]["normalized"]))
    uninformed = dict(zip(since["offsets"], since["reference"]["uninformed"]["normalized"]))
    assert norm[1] > 0.8 and norm[1] > uninformed[1] + 0.15  # recovered the episode after the change
    assert norm[0] < norm[1]  # the change costs the episode it happens in


def test_learn_overturns_a_settled_belief_after_two_contradictions_and_forgets_the_rest():
    from metarena.agents.planners.drift import learn

    counts = np.zeros((1, 5, 5))
    wind = np.array([3])

    def see(dy, dx, a=UP):
        return learn(counts, wind, np.array([a]), np.array([dy]), np.array([dx]), np.array([False]),
                     lambda r, ddy, ddx: np.full(len(r), 1), np.array([True]))

    see(0, 1), see(0, 1), see(1, 0, a=DOWN)  # up moves right, twice; down moves down
    assert counts[0, UP].argmax() == RIGHT
    assert not see(1, 0).any() and counts[0, UP].argmax() == RIGHT  # one slip: the belief holds
    assert see(1, 0).any()  # two in a row: the dynamics changed
    assert counts[0, UP].argmax() == DOWN and counts[0, DOWN].sum() == 0 and wind[0] == 0
