"""cycles: trails, crashes, pads, the bots and the planners.

(The conformance checks, solvability on 1000 seeds and the goldens cover cycles as every game:
test_conformance.py, test_levels.py, test_golden.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from metarena import games
from metarena.games import cycles as C
from metarena.games import tiles as T
from metarena.games.engine import MAX_PLAYERS, Engine, Level, LevelBatch, make_levels
from metarena.games.maze import UNREACHABLE, bfs

GAME = games.get("cycles")
STAY, UP, DOWN, LEFT, RIGHT = range(5)


def room(pads=(), values=(), bot=(5, 7), seed: int = 0) -> Level:
    """A 7 x 9 room (5 x 7 inside): the players start on the left, the one bot on the right."""
    tiles = np.full((7, 9), T.WALL, dtype=np.uint8)
    tiles[1:6, 1:8] = T.FLOOR
    for y, x in pads:
        tiles[y, x] = T.BOOST
    spawn = np.array([[3, 1], [1, 1], [5, 1], [1, 3], bot])
    items = np.array(pads, dtype=np.int64).reshape(-1, 2)
    return Level("cycles", "small", seed, tiles, spawn, items, np.array(values, dtype=np.float32))


def engine(level: Level, players: int = 1):
    eng = Engine(GAME, games.variant("cycles", "small"), LevelBatch.stack([level]), batch=1, players=players)
    st = eng.new_state(np.array([0]))
    return eng, st


def where(eng, st):
    r, c = eng.rowcol(st)
    return [(int(a), int(b)) for a, b in zip(r[0], c[0])]


def tile(eng, st, y, x):
    return int(st.cells[0, y + eng.radius, x + eng.radius])


def park_bot(eng, st, y=5, x=7, heading=UP):
    """Put the bot on (y, x) heading ``heading`` with nothing in front but floor (styles kept)."""
    ex = st.extra
    flat = st.cells.reshape(-1)
    flat[ex["bot_pos"][0]] = T.FLOOR
    ex["bot_pos"][0, 0] = (y + eng.radius) * eng.wp + x + eng.radius
    ex["bot_heading"][0, 0] = heading
    flat[ex["bot_pos"][0]] = T.TRAIL | T.PLAYER


@pytest.mark.parametrize("variant", ["small", "medium", "large", "heldout"])
def test_levels_hide_pads_and_bot_styles(variant):
    v = games.variant("cycles", variant)
    styles = set()
    for seed in range(20):
        lv = GAME.generate(v, seed)
        agg, bias, depth = GAME.hidden(v, seed)
        assert set(agg) <= set(C.AGGRESSION) and set(bias) <= {-1, 1} and ((depth >= 1) & (depth <= v.depth_max)).all()
        styles.add((tuple(agg[: v.bots]), tuple(bias[: v.bots]), tuple(depth[: v.bots])))
        assert lv.spawn.shape == (MAX_PLAYERS + v.bots, 2) and len(lv.item_pos) == v.pads
        assert (lv.tiles[tuple(lv.item_pos.T)] == T.BOOST).all()
        assert set(np.unique(lv.item_value)) == {C.BOOST, C.TRAP_COST}  # at least one of each
        assert (lv.tiles[tuple(lv.spawn.T)] == T.FLOOR).all() and len({tuple(s) for s in lv.spawn}) == len(lv.spawn)
        walls = lv.tiles == T.WALL
        assert (bfs(walls, tuple(lv.spawn[0]))[~walls] < UNREACHABLE).all()  # one connected floor
        assert "bot 1" in GAME.describe_level(lv) and "traps" in GAME.describe_level(lv)
    assert len(styles) > 10


def test_a_cycle_always_moves_leaves_a_trail_and_ignores_reverses():
    eng, st = engine(room())
    assert st.extra["heading"][0, 0] == RIGHT  # the start cell's longest free run
    eng.step(st, np.array([[STAY]]))  # stay keeps the heading
    assert where(eng, st) == [(3, 2)] and tile(eng, st, 3, 1) == T.TRAIL
    assert st.extra["owner"][0, (3 + eng.radius) * eng.wp + 1 + eng.radius] == 0
    eng.step(st, np.array([[LEFT]]))  # a reverse is ignored
    assert where(eng, st) == [(3, 3)] and st.last_action[0, 0] == LEFT
    eng.step(st, np.array([[UP]]))
    assert where(eng, st) == [(2, 3)] and st.extra["heading"][0, 0] == UP


def test_reversing_on_the_first_step_is_allowed():
    eng, st = engine(room())  # heading right from (3, 1): left at the first step drives into the wall
    eng.step(st, np.array([[LEFT]]))
    assert not st.extra["alive"][0, 0] and where(eng, st) == [(3, 1)]


def test_crashing_into_a_trail_or_a_wall_kills_and_stops_the_reward():
    eng, st = engine(room())
    for a in (RIGHT, UP, LEFT):
        rewards, term, trunc = eng.step(st, np.array([[a]]))
        assert st.extra["alive"][0, 0] and np.isclose(rewards[0, 0], 1 / eng.limit)
    rewards, term, _ = eng.step(st, np.array([[DOWN]]))  # back into its own trail at (3, 2)
    assert not st.extra["alive"][0, 0] and rewards[0, 0] == 0.0 and not term[0]
    here = where(eng, st)[0]
    assert here == (2, 1) and tile(eng, st, *here) == T.TRAIL  # its wreck
    for a in (UP, LEFT, RIGHT):  # a crashed cycle does nothing more
        rewards, *_ = eng.step(st, np.array([[a]]))
        assert where(eng, st)[0] == here and rewards[0, 0] == 0.0
    eng2, st2 = engine(room())
    for _ in range(6):
        eng2.step(st2, np.array([[STAY]]))
    assert where(eng2, st2) == [(3, 7)] and st2.extra["alive"][0, 0]
    eng2.step(st2, np.array([[STAY]]))  # into the wall
    assert not st2.extra["alive"][0, 0] and where(eng2, st2) == [(3, 7)]


def test_episodes_run_to_the_limit_and_restart_fully():
    eng, st = engine(room())
    for t in range(eng.limit):
        _, term, trunc = eng.step(st, np.array([[STAY]]))
        assert not term[0] and trunc[0] == (t == eng.limit - 1)
    assert not st.extra["alive"][0, 0]
    eng.restart(st, np.array([0]))
    fresh, fresh_st = engine(room())
    assert np.array_equal(st.cells, fresh_st.cells) and st.extra["alive"].all()
    for key in ("heading", "bot_pos", "bot_heading", "bot_alive", "owner"):
        assert np.array_equal(st.extra[key], fresh_st.extra[key]), key


def test_head_on_crashes_both():
    eng, st = engine(room(), players=2)
    r = eng.radius
    st.cells[0] &= T.TILE_MASK
    st.pos[0] = [(3 + r) * eng.wp + 2 + r, (3 + r) * eng.wp + 4 + r]
    st.cells.reshape(-1)[st.pos[0]] |= T.PLAYER
    st.extra["heading"][0] = [RIGHT, LEFT]
    park_bot(eng, st, 5, 7, LEFT)
    st.t[0] = 1
    eng.step(st, np.array([[RIGHT, LEFT]]))  # both into (3, 3)
    assert not st.extra["alive"][0].any() and where(eng, st) == [(3, 2), (3, 4)]
    # a player and a bot into the same cell
    eng, st = engine(room())
    park_bot(eng, st, 2, 4, DOWN)
    hid = C.hidden_of(eng)
    hid.aggression[:], hid.depth[:] = 0.0, 1
    st.pos[0, 0] = (3 + r) * eng.wp + 3 + r
    st.t[0] = 1
    target, _ = C.bot_moves(eng, st, hid)
    assert target[0, 0] == (3 + r) * eng.wp + 4 + r  # the bot goes straight down into (3, 4)
    eng.step(st, np.array([[RIGHT]]))
    assert not st.extra["alive"][0, 0] and not st.extra["bot_alive"][0, 0]
    assert where(eng, st) == [(3, 3)]


def test_pads_pay_or_kill_the_same_way_every_episode():
    eng, st = engine(room(pads=[(3, 3), (2, 4)], values=[C.BOOST, C.TRAP_COST]))
    rewards, *_ = eng.step(st, np.array([[STAY]]))
    rewards, *_ = eng.step(st, np.array([[STAY]]))  # onto the boost at (3, 3)
    assert np.isclose(rewards[0, 0], C.BOOST + 1 / eng.limit) and tile(eng, st, 3, 3) == T.FLOOR
    eng.step(st, np.array([[STAY]]))
    assert tile(eng, st, 3, 3) == T.TRAIL
    rewards, *_ = eng.step(st, np.array([[UP]]))  # onto the trap at (2, 4)
    assert np.isclose(rewards[0, 0], C.TRAP_COST) and not st.extra["alive"][0, 0]
    assert tile(eng, st, 2, 4) == T.TRAP and not st.alive[0].any()
    eng.restart(st, np.array([0]))
    assert tile(eng, st, 3, 3) == T.BOOST and tile(eng, st, 2, 4) == T.BOOST and st.alive[0].all()
    eng.step(st, np.array([[STAY]]))
    rewards, *_ = eng.step(st, np.array([[STAY]]))
    assert np.isclose(rewards[0, 0], C.BOOST + 1 / eng.limit)


def test_bots_follow_their_style_and_never_take_pads():
    eng, st = engine(room(pads=[(4, 7)], values=[C.BOOST]))
    hid = C.hidden_of(eng)
    r = eng.radius
    park_bot(eng, st, 5, 6, RIGHT)
    hid.aggression[:], hid.bias[:] = 0.0, 1
    hid.depth[:] = 3  # looks 3 ahead: up has the longer run
    assert C.bot_moves(eng, st, hid)[1][0, 0] == UP
    hid.depth[:] = 1  # looks 1 ahead: the runs tie, straight on wins
    assert C.bot_moves(eng, st, hid)[1][0, 0] == RIGHT
    park_bot(eng, st, 5, 7, RIGHT)  # walls right and down, the pad up: it drives on into the wall
    target, heading = C.bot_moves(eng, st, hid)
    assert heading[0, 0] == RIGHT and target[0, 0] == (5 + r) * eng.wp + 8 + r
    eng.step(st, np.array([[STAY]]))
    assert not st.extra["bot_alive"][0, 0] and tile(eng, st, 4, 7) == T.BOOST
    assert tile(eng, st, 5, 7) == T.TRAIL  # a crashed bot is a wreck (no PLAYER bit)
    # aggression steers towards the player; a bias breaks ties its way
    eng, st = engine(room())
    hid = C.hidden_of(eng)
    park_bot(eng, st, 3, 5, UP)
    st.pos[0, 0] = (5 + r) * eng.wp + 2 + r
    hid.depth[:] = 1
    for aggression, bias, want in ((1.5, 1, LEFT), (0.0, 1, UP), (0.0, -1, UP)):
        hid.aggression[:], hid.bias[:] = aggression, bias
        assert C.bot_moves(eng, st, hid)[1][0, 0] == want
    st.cells.reshape(-1)[(2 + r) * eng.wp + 5 + r] = T.WALL  # blocked ahead: left or right by the bias
    for bias, want in ((1, LEFT), (-1, RIGHT)):
        hid.aggression[:], hid.bias[:] = 0.0, bias
        assert C.bot_moves(eng, st, hid)[1][0, 0] == want


def reference_bot_move(eng, st, slot, pos, heading, aggression, bias, depth):
    """One bot's move, cell by cell as the module docstring says (the test's own reading)."""
    flat = st.cells.reshape(-1)
    alive = st.extra["alive"][slot]
    players = [st.pos[slot, i] for i in range(st.players) if alive[i]]

    def free(cell):
        return flat[cell] == T.FLOOR and (eng._mark_players or cell != st.pos[slot, 0])

    def manhattan(a, b):
        return abs(a // eng.wp - b // eng.wp) + abs(a % eng.wp - b % eng.wp)

    near = min(players, key=lambda c: manhattan(pos, c)) if players else None
    best, best_score = heading, -np.inf
    ways = (heading, C.LEFT[heading], C.RIGHT[heading])
    for way, bonus in zip(ways, (C.STRAIGHT_BONUS, C.BIAS_BONUS * bias, -C.BIAS_BONUS * bias)):
        step = eng._moves[way]
        if not free(pos + step):
            continue
        run = 0
        while run < depth and free(pos + (run + 1) * step):
            run += 1
        closer = 0 if near is None else manhattan(pos, near) - manhattan(pos + step, near)
        score = run + aggression * closer + bonus
        if score > best_score:
            best, best_score = way, score
    return pos + eng._moves[best], best


@pytest.mark.parametrize("variant,players", [("medium", 1), ("heldout", 2)])
def test_the_bot_moves_match_the_rules(variant, players):
    env = games.make_batch_env("cycles", variant, batch=48, players=players, pool_size=16)
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    eng, hid = env.engine, C.hidden_of(env.engine)
    checked = 0
    for _ in range(12):
        st = env.state
        target, heading = C.bot_moves(eng, st, hid)
        for s in range(st.batch):
            for j in range(C.bots_of(eng)):
                if not st.extra["bot_alive"][s, j]:
                    continue
                lv = st.level[s]
                want = reference_bot_move(eng, st, s, st.extra["bot_pos"][s, j], st.extra["bot_heading"][s, j],
                                          hid.aggression[lv, j], hid.bias[lv, j], hid.depth[lv, j])
                assert (target[s, j], heading[s, j]) == want
                checked += 1
        env.step(rng.integers(0, 5, size=(48, players)))
    assert checked > 300


def numpy_bot_choice(eng, st, aggression, bias, depth, pos, heading, slot):
    """``C._bot_choice`` written with whole-array numpy operations (the game's first version,
    kept as a second reading: the compiled loop must agree with it on every bot)."""
    flat = st.cells.reshape(-1)
    n = len(pos)
    wp = eng.wp
    if n == 0:
        return pos.copy(), heading.copy()
    ways = C.TURNS.take(heading, axis=0)  # (n, 3): straight, left, right
    step = eng._moves.take(ways)
    # the free run of cells ahead each way, counted up to the depth; a lone player's cell carries
    # no PLAYER bit, so it is marked for the look-ahead and put back after
    lone = not eng._mark_players
    if lone:
        me = st.pos[:, 0]
        mine = flat.take(me)
        flat[me] = mine | T.PLAYER
    try:
        cell = pos[:, None] + step
        first = flat.take(cell) == T.FLOOR
        run = first.astype(np.uint8)
        ok = first.copy()
        for _ in range(2, int(depth.max()) + 1):
            cell += step
            ok &= flat.take(cell, mode="clip") == T.FLOOR
            run += ok.view(np.uint8)
    finally:
        if lone:
            flat[me] = mine
    run = np.minimum(run.T, depth.astype(np.uint8))  # (3, n)
    ways, first = ways.T, first.T
    # the nearest living player's cycle (Manhattan) from each bot
    by, bx = np.divmod(pos, wp)
    rows = np.arange(n)
    py, px = np.divmod(st.pos[slot], wp)  # (n, P)
    d = np.abs(py - by[:, None]) + np.abs(px - bx[:, None])
    d = np.where(st.extra["alive"][slot], d, C.FAR)
    near = d.argmin(-1)
    has = d.min(-1) < C.FAR
    ty, tx = py[rows, near], px[rows, near]
    # a step takes the bot one closer where it goes the target's way, else one farther
    toward = np.stack([np.zeros(n, bool), ty < by, ty > by, tx < bx, tx > bx]).astype(np.int64) * 2 - 1
    toward[0] = 0
    toward *= has
    closer = toward.reshape(-1).take(ways * n + np.arange(n))
    score = aggression * closer
    score += run
    score[0] += C.STRAIGHT_BONUS
    tilt = C.BIAS_BONUS * bias
    score[1] += tilt
    score[2] += -tilt
    # the best of the moves into free cells: straight, then left, then right on exact ties; all
    # blocked: straight
    f0, f1, f2 = first
    left = f1 & (~f0 | (score[1] > score[0]))
    best = np.where(left, score[1], score[0])
    right = f2 & ~(f0 | f1) | f2 & (score[2] > best)
    chosen = np.where(right, ways[2], np.where(left, ways[1], ways[0]))
    return pos + eng._moves.take(chosen), chosen


@pytest.mark.parametrize("variant,players", [("small", 1), ("medium", 1), ("large", 3), ("heldout", 4)])
def test_the_bot_choice_matches_the_numpy_reading(variant, players):
    """On many random states (trails strewn at random, bots on any floor cell with any heading
    and style, players alive or not), every bot's choice is the whole-array numpy one."""
    env = games.make_batch_env("cycles", variant, batch=64, players=players, pool_size=16)
    env.reset(seed=5)
    rng = np.random.default_rng(5)
    eng = env.engine
    agg, bias, depth = (x.ravel() for x in np.meshgrid(C.AGGRESSION, C.BIAS, np.arange(13), indexing="ij"))
    checked = 0
    for _ in range(8):
        env.step(rng.integers(0, 5, size=(64, players)))
        st = env.state
        flat = st.cells.reshape(-1)
        floor = np.flatnonzero(flat & T.TILE_MASK == T.FLOOR)
        flat[rng.choice(floor, len(floor) // 4, replace=False)] |= T.TRAIL  # trails
        st.extra["alive"][:] = rng.random(st.extra["alive"].shape) < 0.8
        floor = np.flatnonzero(flat == T.FLOOR)
        pos = rng.choice(floor, 2000)  # bots on floor cells, some on the players' cells
        pos[:300] = rng.choice(st.pos.ravel(), 300)
        slot = pos // (eng.hp * eng.wp)
        style = rng.integers(0, len(agg), 2000)
        heading = rng.integers(1, 5, 2000)
        cells = st.cells.copy()
        want = numpy_bot_choice(eng, st, agg[style], bias[style], depth[style], pos, heading, slot)
        got = C._bot_choice(eng, st, agg[style], bias[style], depth[style], pos, heading, slot)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert np.array_equal(st.cells, cells)  # the look-ahead changes no cell
        checked += len(pos)
        env.reset(seed=int(rng.integers(1000)))
    assert checked == 16000


class NumpyCycles(C.Cycles):
    """The game with its step in whole-array numpy operations (its first version, kept as a
    second reading of the compiled loops): the bots' choices of :func:`numpy_bot_choice`, the
    players' moves, and the crashes and trails."""

    def dynamics(self, eng, st, actions):
        ex = st.extra
        np.copyto(ex["prev"], st.pos)
        hid = C.hidden_of(eng)
        b, nb = ex["bot_pos"].shape
        style = (st.level[:, None] * hid.aggression.shape[1] + np.arange(nb)).ravel()  # (B * bots,)
        target, heading = numpy_bot_choice(eng, st, hid.aggression.take(style), hid.bias.take(style),
                                           hid.depth.take(style), ex["bot_pos"].ravel(), ex["bot_heading"].ravel(),
                                           np.repeat(np.arange(b), nb))
        alive = ex["bot_alive"]
        ex["bot_target"][:] = np.where(alive, target.reshape(b, nb), ex["bot_pos"])
        ex["bot_heading"][:] = np.where(alive, heading.reshape(b, nb), ex["bot_heading"])
        heading, alive = ex["heading"], ex["alive"]
        want = np.where(actions == 0, heading, actions)
        want = np.where((st.t > 0)[:, None] & (want == C.REVERSE.take(heading)), heading, want)
        np.copyto(heading, want, where=alive)
        return np.where(alive, want, 0)

    def tick(self, eng, st):
        ex = st.extra
        flat = st.cells.reshape(-1)
        owner = ex["owner"].reshape(-1)
        alive, prev, pos = ex["alive"], ex["prev"], st.pos
        mark = eng._mark_players
        moved = alive & (pos != prev)
        crashed = alive & ~moved  # the engine cancelled the move: a wall, a trail, a cycle
        p = st.players
        for i in range(p):  # into the cell another player just left: a trail now
            for j in range(p):
                if i != j:
                    crashed[:, i] |= moved[:, i] & moved[:, j] & (pos[:, i] == prev[:, j])
        bot_alive, target, bot_pos = ex["bot_alive"], ex["bot_target"], ex["bot_pos"]
        b_alive, b_target = bot_alive.T.copy(), target.T.copy()  # one row per bot
        b_crash = b_alive & (b_target == bot_pos.T)
        for j in range(C.bots_of(eng)):  # head-on: a player and a bot drive into the same cell
            for i in range(p):
                head_on = moved[:, i] & ~crashed[:, i] & b_alive[j] & (pos[:, i] == b_target[j])
                crashed[:, i] |= head_on
                b_crash[j] |= head_on
        # crashed players go back to their cell, which becomes their wreck
        back = crashed & moved
        if mark:
            flat[pos[back]] &= T.TILE_MASK
        pos[back] = prev[back]
        safe = moved & ~crashed
        flat[prev[safe]] = T.TRAIL  # the cells the players left (the engine moved the PLAYER bits)
        owner[prev[safe]] = np.nonzero(safe)[1]
        wreck = pos[crashed]
        flat[wreck] = (T.TRAIL | T.PLAYER) if mark else T.TRAIL
        owner[wreck] = np.nonzero(crashed)[1]
        alive &= ~crashed
        # into a trail, a wreck or a player's cell (a lone player's cell has no PLAYER bit)
        b_crash |= b_alive & (flat.take(b_target) != T.FLOOR)
        if not mark:
            b_crash |= b_alive & alive[:, 0] & (b_target == pos[:, 0])
        for j in range(C.bots_of(eng)):
            for k in range(j + 1, C.bots_of(eng)):  # two bots into the same cell
                same = b_alive[j] & b_alive[k] & (b_target[j] == b_target[k])
                b_crash[j] |= same
                b_crash[k] |= same
        ok = b_alive & ~b_crash
        b_pos = bot_pos.T.copy()
        # a bot leaves a trail, a crashed one a wreck, the ones that moved stand on their target
        flat[b_pos] = T.TRAIL
        np.copyto(b_pos, b_target, where=ok)
        flat[b_pos] = np.where(ok, T.TRAIL | T.PLAYER, T.TRAIL)
        owner[b_pos] = (C.BOT_OWNER + np.arange(len(b_pos)))[:, None]
        bot_pos[:] = b_pos.T
        bot_alive[:] = ok.T


@pytest.mark.parametrize("variant,players", [("medium", 1), ("small", 2), ("heldout", 3), ("large", 4)])
def test_the_step_matches_the_numpy_reading(variant, players):
    """Two engines, one with the compiled step and one with the numpy step, played side by side
    (random and oracle actions, episodes restarted at the limit), stay identical."""
    v = games.variant("cycles", variant)
    levels = make_levels(GAME, v, np.arange(12))
    rng = np.random.default_rng(players)
    lv = rng.integers(0, 12, 48)
    engines = [Engine(game, v, levels, batch=48, players=players) for game in (NumpyCycles(), GAME)]
    states = [eng.new_state(lv) for eng in engines]
    for t in range(150):
        actions = rng.integers(0, 5, (48, players))
        if t % 3:  # players that live long enough to meet the bots
            actions = np.stack([GAME.oracle(engines[1], states[1], p) for p in range(players)], 1)
        results = [eng.step(st, actions) for eng, st in zip(engines, states)]
        for a, b in zip(*results):
            assert np.array_equal(a, b), t
        old, new = states
        for field in ("cells", "pos", "alive", "score"):
            assert np.array_equal(getattr(old, field), getattr(new, field)), (t, field)
        for key in old.extra:
            assert np.array_equal(old.extra[key], new.extra[key]), (t, key)
        done = np.flatnonzero(results[0][2])
        for eng, st in zip(engines, states):
            eng.restart(st, done)


def test_bots_are_deterministic_and_differ_by_level():
    def bot_path(seed_index):
        seeds = games.split_seeds("test", 8)[seed_index:seed_index + 1]
        env = games.make_batch_env("cycles", "medium", batch=1, seeds=seeds)
        env.reset(levels=[0])
        path = []
        for _ in range(15):
            env.step(np.array([[STAY]]))
            path.append(env.state.extra["bot_pos"][0].copy())
        return np.array(path)

    assert np.array_equal(bot_path(0), bot_path(0))
    assert not np.array_equal(bot_path(0), bot_path(1))


def test_the_state_copies_field_by_field():
    from metarena.arenas.board import copy_state

    env = games.make_batch_env("cycles", "small", batch=3, pool_size=4)
    env.reset()
    env.step(np.ones((3, 1), dtype=np.int64))
    one = copy_state(env.state, 1)
    assert one.extra["bot_pos"].shape == (1, 1) and one.extra["owner"].shape[0] == 1
    assert np.array_equal(one.extra["heading"], env.state.extra["heading"][1:2])
    one.extra["heading"][:] = 0
    assert env.state.extra["heading"][1, 0] != 0
    rows = np.array([True, False, True])  # kept by mask and put back (gym_env's next-step mode)
    kept = env.state.extra[rows].copy()
    env.step(np.ones((3, 1), dtype=np.int64))
    env.state.extra[rows] = kept
    assert np.array_equal(env.state.extra["bot_pos"][rows], kept["bot_pos"])


def test_frames_show_trails_bots_and_wrecks():
    from metarena.games.render import Renderer

    eng, st = engine(room(), players=2)
    for _ in range(3):
        eng.step(st, np.array([[STAY, STAY]]))
    eng.step(st, np.array([[UP, UP]]))  # player 1 drives into the wall at the top
    assert st.extra["alive"][0, 0] and not st.extra["alive"][0, 1]
    ren = Renderer(eng, tile=16)
    frame = ren.frame(st, 0)
    marks = GAME.decorations(eng, st, 0)
    assert marks["dead"] == [1] and len(marks["bots"]) == 1 and (marks["owner"] >= 0).sum() >= 5
    y, x = 3, 1  # player 0's first trail cell, drawn in its colour
    cell = frame[ren.hud_height + y * 16 + 8, x * 16 + 8].astype(int)
    floor = frame[ren.hud_height + 4 * 16 + 8, 2 * 16 + 8].astype(int)
    assert np.abs(cell - floor).sum() > 60


def test_adaptation_matters_on_the_default_variant():
    """The uninformed planner (knows the map, not the pads or the bots) scores well below the
    oracle on 500 test levels, well above random."""
    from metarena.agents.evaluate import reference_scores

    scores = reference_scores(GAME, games.variant("cycles"), "test", levels=500, seed=0)
    assert scores["oracle"]["return"] > scores["uninformed"]["return"] > scores["random"]["return"]
    assert scores["random"]["normalized"] + 0.3 < scores["uninformed"]["normalized"] <= 0.7


def test_the_recall_planner_learns_pads_and_bots_within_a_trial():
    from metarena.agents.evaluate import evaluate
    from metarena.agents.planners import make_planner

    result = evaluate(make_planner("recall", "cycles"), "cycles", "medium", levels=60, episodes=3)
    norm = result["per_episode"]["normalized"]
    uninformed = result["reference"]["uninformed"]["normalized"]
    assert norm[0] > uninformed[0] - 0.03  # it knows as much in the first episode (about 0.56 both)
    assert norm[2] >= norm[1] >= norm[0] and norm[2] > norm[0] + 0.05
    assert norm[2] > uninformed[2]


def test_the_planners_replay_their_best_episode():
    from metarena.agents.planners.cycles import Replay
    from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_REWARD, TRIAL_FEATURES

    limit, memory = 10, {}
    trial = np.zeros((1, TRIAL_FEATURES), np.float32)

    def play(actions, rewards, index):
        got = []
        for t, (a, r) in enumerate(zip(actions, rewards)):
            trial[0, EPISODE_START], trial[0, EPISODE_INDEX] = t == 0, index
            got.append(int(Replay.step(memory, trial, limit)[0]))
            Replay.record(memory, np.array([a]), limit)
            trial[0, PREV_REWARD] = r
        return got

    alive = [0.1] * limit
    assert play([1] * limit, [0.1] * 7 + [0.0] * 3, 0.0) == [-1] * limit  # crashed on step 7
    # the second episode replays the first up to BACKOFF steps before that crash
    assert play(list(range(limit)), alive, 0.25)[:7] == [1] * (7 - Replay.BACKOFF) + [-1] * Replay.BACKOFF
    # the third replays the second, the best so far (it survived), up to the last TAIL of the limit
    kept = round((1 - Replay.TAIL) * limit)
    assert play([2] * limit, alive, 0.5) == list(range(kept)) + [-1] * (limit - kept)
    assert play([3] * limit, alive, 0.0)[0] == -1  # a new trial: nothing to replay


def test_the_window_recall_planner_plays_from_its_window():
    from metarena.agents.evaluate import evaluate
    from metarena.agents.planners import make_planner

    result = evaluate(make_planner("window-recall", "cycles"), "cycles", "small", levels=40, episodes=2)
    norm = result["per_episode"]["normalized"]
    assert 0.1 < norm[0] and norm[1] >= norm[0]
