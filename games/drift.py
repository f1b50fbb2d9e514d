"""drift: reach the goal in a world whose controls and winds are hidden.

Description
    A maze of rooms holds one goal (the ``exit`` tile) in a room other than the
    start room, and ``wind`` wind tiles inside the rooms. The goal is visible;
    how the world moves is not. Each action moves the player by the level's
    hidden permutation of the four moves (action ``a`` in up, down, left, right
    moves as ``perm[a]``; stay stays); with the level's slip probability a move
    goes in a uniformly random direction instead (possibly the intended one). A
    move into a wall is cancelled. Then a player standing on a wind tile (after
    its move, or after staying) is pushed one cell in the level's hidden wind
    direction, unless that cell is a wall or holds a player; one push per step,
    even onto another wind tile. Stepping (or being pushed) onto the goal pays
    and ends the episode.

Hidden factor
    The level's dynamics: the permutation of the moves (one of the 9 that move
    no action as it is named: every move is scrambled), the slip
    probability (uniform in ``[0, slip_max]``) and the wind direction. The wind
    tiles themselves are visible. The dynamics stay the same for every episode of
    a trial; every episode starts from the same state. They are drawn from
    ``Game.rng(seed)`` before the map (:meth:`Drift.hidden`), so they are a pure
    function of the variant and the seed and are kept on no Level: the engine
    reads them per pool through :func:`dynamics_of` (computed once per engine).

Slips
    Deterministic and free of global state: a slip is decided by a counter-based
    hash (splitmix64, numpy integer ops) of ``(level seed, episode, t, player)``,
    so the same seed gives the same rollout and the episodes of a trial slip
    differently (:func:`step_hash`, :func:`slip_draws`). A stay never slips.

Actions
    ``Discrete(5)``: stay, up, down, left, right (as chosen; what they do is hidden).
    ``st.last_action`` and the trial features show the chosen actions.

Rewards
    ``1 - 0.9 * t / limit`` to the player who reaches the goal at step ``t``
    (1-based); 0 otherwise.

Termination
    Terminated when a player reaches the goal; truncated at the step limit
    ``steps_per_cell * size**2``.

Players and collisions
    1-4, a race: all start in the same room (same dynamics for all); the first
    to reach the goal ends the episode for everyone. Moves follow the engine's
    collision rule (no two players share a cell); a push is cancelled where its
    cell holds a player after the moves (pushes of one step never collide: they
    all go the same way).

Variants (``games/variants/drift.toml``)
    ``size``, ``rooms``, ``loops`` (chance of an extra doorway), ``slip_max``
    (largest slip probability), ``wind`` (wind tiles), ``steps_per_cell``.

Every level can be solved: wind tiles sit in rooms, away from doorways, start
cells and the goal; the goal is reachable from every floor cell under the
level's moves and winds (no pocket the wind lets no one out of, wherever a slip
leads); the goal is drawn among cells 35% to 55% of the step limit from the
first start cell (plain distance, where the map has such cells), and the
wind-aware way from there takes at most 55% of the limit (else the quickest
placement found), which leaves the oracle room for its slips.

Reference planners: the oracle knows the dynamics and walks the wind-aware
distance map (:func:`wind_dist`). The uninformed planner knows the map, not the
dynamics and has a leaky memory within the episode (none across episodes): it
learns ``perm[a]`` from a move of action ``a`` that was neither slipped nor
stopped by a wall, and forgets each such lesson with probability ``FORGET`` (0.2)
per step (drawn from the step hash, :func:`forget_draws`); for an action it does
not know it guesses the identity (:func:`act_for`). Why leaky: a learner that
kept every lesson of the episode learns the four moves in about five steps and
scores ~0.87 of the oracle in a first episode, one that kept only its last
lesson gets lost (~0.02); the leak puts it between. It learns the wind from its
first push and keeps it for the episode; until then it walks the plain distance
map. What it knows is
kept in ``st.touched[:, p, 1:5]`` and ``st.touched[:, p, WIND]`` (drift's one
item, the goal, leaves the tile-kind record free). The scripted planner heads
for a goal in view, else roams, assuming the identity. The ceiling planners
(``agents/planners/drift.py``) learn the same from their own moves and forget
nothing within a trial.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from . import tiles as T
from .engine import BLOCKS, MAX_PLAYERS, MOVES, Engine, Game, GameSpec, Level, LevelBatch, State
from .maze import UNREACHABLE, bfs, doorway_neighbours, room_maze, start_cells
from .planning import greedy_seek
from .variant import Param, Variant

PARAMS = (
    Param("size", int, 7, 41, "side of the square map, walls included", odd=True),
    Param("rooms", int, 2, 10, "rooms per side of the map"),
    Param("loops", float, 0.0, 1.0, "probability of a doorway beyond the spanning tree"),
    Param("slip_max", float, 0.0, 0.5, "largest slip probability (each level draws one in [0, slip_max])"),
    Param("wind", int, 0, 64, "wind tiles on the map"),
    Param("steps_per_cell", float, 0.05, 4.0, "step limit per map cell"),
)

GOAL_ITEM = 0  #: the goal is item 0 of every level (value 1)
BUDGET = 0.55  #: the wind-aware way from the first start cell fits this share of the step limit
FORGET = 0.2  #: the chance per step that the uninformed planner forgets what an action does
LEAST = 0.35  #: ... and takes at least this share, where the map allows
DIRECTION_NAMES = ("stay", "up", "down", "left", "right")
FAR = np.int64(UNREACHABLE)
#: the permutations of the four moves that move no action as it is named (9 of 24): every level
#: scrambles every move, so no guess that the controls are the usual ones ever pays
DERANGEMENTS = np.array([p for p in itertools.permutations(range(1, 5)) if all(a != b for a, b in zip(p, range(1, 5)))],
                        dtype=np.int64)


class Hidden(NamedTuple):
    """The hidden dynamics of pool levels, one row per level."""

    perm: np.ndarray  # (N, 5) int64: the move (index into MOVES) of each action; perm[:, 0] == 0
    inverse: np.ndarray  # (N, 5) int64: the action that moves in each direction
    slip: np.ndarray  # (N,) float64: slip probability
    wind: np.ndarray  # (N,) int64: wind direction, 1..4 (index into MOVES)


# ---------------------------------------------------------------------------------------------
# randomness of slips: a counter-based hash, no generator state

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def step_hash(seed: np.ndarray, episode: np.ndarray, t: np.ndarray, players: int) -> np.ndarray:
    """(B, P) uint64: a hash of each slot's (level ``seed``, ``episode``, step ``t`` before the
    step) and each player, a pure function of those four counters (splitmix64 rounds)."""
    with np.errstate(over="ignore"):
        x = _mix(seed.astype(np.uint64) + _GOLDEN)
        x = _mix(x ^ (episode.astype(np.uint64) * _GOLDEN))
        x = _mix(x ^ (t.astype(np.uint64) + np.uint64(1)) * np.uint64(0xD1B54A32D192ED03))
        return _mix(x[:, None] + (np.arange(1, players + 1, dtype=np.uint64) * _GOLDEN)[None, :])


def slip_draws(seed: np.ndarray, episode: np.ndarray, t: np.ndarray, players: int) -> tuple[np.ndarray, np.ndarray]:
    """``(u, direction)``, both (B, P): a uniform number in [0, 1) (the top 53 bits of
    :func:`step_hash`) and a direction 1..4 (its low 2 bits) for each slot and player."""
    x = step_hash(seed, episode, t, players)
    u = (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return u, (x & np.uint64(3)).astype(np.int64) + 1


def forget_draws(x: np.ndarray) -> np.ndarray:
    """(B, P, 4) bool: which of its four lessons the uninformed planner forgets this step, with
    probability ``FORGET`` each: four 16-bit fields of one more round on the step hash ``x``."""
    with np.errstate(over="ignore"):
        y = _mix(x ^ np.uint64(0x5851F42D4C957F2D))
    fields = (y[..., None] >> (np.arange(4, dtype=np.uint64) * np.uint64(16))) & np.uint64(0xFFFF)
    return fields < np.uint64(int(FORGET * 65536))


# ---------------------------------------------------------------------------------------------
# wind-aware distances


def landing(walls: np.ndarray, wind: np.ndarray, wind_dir: int) -> np.ndarray:
    """(H * W, 5) flat cell where a player at each cell ends a step in each direction (stay
    included), with no slip: a move into a wall is cancelled, then a wind tile pushes it one
    cell ``wind_dir`` unless that is a wall. Wall cells stay where they are."""
    h, w = walls.shape
    cells = np.arange(h * w)
    flat_walls, flat_wind = walls.ravel(), wind.ravel()
    offsets = MOVES[:, 0] * w + MOVES[:, 1]
    inside = np.flatnonzero(~flat_walls)  # the map is framed by walls: neighbours stay inside
    out = np.repeat(cells[:, None], len(MOVES), axis=1)
    step = inside[:, None] + offsets[None, :]
    step = np.where(flat_walls[step], inside[:, None], step)
    push = step + offsets[wind_dir]
    pushed = flat_wind[step] & ~flat_walls[np.clip(push, 0, h * w - 1)]
    out[inside] = np.where(pushed, push, step)
    return out


def wind_dist(walls: np.ndarray, wind: np.ndarray, wind_dir: int, goal: tuple[int, int]) -> np.ndarray:
    """(H, W) int16: fewest steps from every cell to ``goal`` under the level's walls and wind
    (no slips), ``UNREACHABLE`` where it cannot be reached."""
    h, w = walls.shape
    nxt = landing(walls, wind, wind_dir)[:, 1:]
    g = goal[0] * w + goal[1]
    dist = np.full(h * w, FAR, dtype=np.int64)
    dist[g] = 0
    free = ~walls.ravel()
    while True:
        new = np.where(free, np.minimum(dist, dist[nxt].min(1) + 1), FAR)
        new[g] = 0
        new = np.minimum(new, FAR)
        if np.array_equal(new, dist):
            break
        dist = new
    return dist.reshape(h, w).astype(np.int16)


# ---------------------------------------------------------------------------------------------
# choosing an action for a wanted direction, knowing part of the permutation


def act_for(direction: np.ndarray, belief: np.ndarray, known: np.ndarray, last: np.ndarray,
            t: np.ndarray) -> np.ndarray:
    """(n,) the action to take to move in ``direction`` (n,) 1..4 (0: stay) by a player who
    believes action ``a`` moves in ``belief[:, a]`` where ``known[:, a]`` (n, 5), at step ``t``.

    A known action that moves that way, if any. Else an action not known yet (one of them does
    move that way): the identity guess (the action named like the direction) unless it is the
    one tried at the previous step (``last``; a try that taught nothing slipped or hit a wall),
    else the unknown actions other than that one in turn (by ``t // 2``: the identity guess
    may take every other step); where no action is believed to move that way and none is
    unknown, the four in turn. Three known actions tell the fourth."""
    n = len(direction)
    rows = np.arange(n)
    known = known.copy()
    belief = belief.copy()
    known[:, 0], belief[:, 0] = True, 0
    tell = known[:, 1:].sum(1) == 3
    if tell.any():
        r = np.flatnonzero(tell)
        missing = (~known[r, 1:]).argmax(1) + 1
        used = np.zeros((len(r), 5), dtype=bool)
        used[np.arange(len(r))[:, None], np.where(known[r, 1:], belief[r, 1:], 0)] = True
        left = (~used[:, 1:]).argmax(1) + 1
        belief[r, missing], known[r, missing] = left, True
    match = known & (belief == direction[:, None])
    cand = ~known
    identity = cand[rows, direction] & (last != direction)
    others = cand.copy()
    others[rows, last] &= cand.sum(1) == 1  # not the one just tried, unless it is the only one
    count = np.maximum(others.sum(1), 1)
    turn = (np.cumsum(others, 1) > ((t // 2) % count)[:, None]).argmax(1)
    guess = np.where(identity, direction, turn)
    # beliefs that are no permutation (slips misled them) may leave no action: each in turn
    chosen = np.where(match.any(1), match.argmax(1), np.where(cand.any(1), guess, 1 + t % 4))
    return np.where(direction == 0, 0, chosen)


# ---------------------------------------------------------------------------------------------
# the game


class Drift(Game):
    spec = GameSpec(
        name="drift",
        title="Drift",
        summary="Reach the visible goal; each level hides how the controls and the winds move you.",
        hidden="a permutation of the four moves, a slip probability and the wind direction",
        adaptation="learn what each action does (and where the wind blows), then walk straight to the goal",
        min_players=1,
        max_players=MAX_PLAYERS,
        default_variant="medium",
        params=PARAMS,
        terminates=True,
    )

    @staticmethod
    def _draw_hidden(rng: np.random.Generator, variant: Variant) -> tuple[np.ndarray, float, int]:
        perm = np.concatenate([[0], DERANGEMENTS[rng.integers(len(DERANGEMENTS))]]).astype(np.int64)
        slip = float(variant.slip_max) * float(rng.random())
        wind = 1 + int(rng.integers(4))
        return perm, slip, wind

    def hidden(self, variant: Variant, seed: int) -> tuple[np.ndarray, float, int]:
        """``(perm (5,), slip, wind direction)`` of level ``seed``: the first draws of
        ``self.rng(seed)``, before :meth:`generate` draws the map."""
        return self._draw_hidden(self.rng(seed), variant)

    def generate(self, variant: Variant, seed: int) -> Level:
        rng = self.rng(seed)
        # 1. the hidden dynamics (first, so that hidden() can draw them alone)
        _, _, wind_dir = self._draw_hidden(rng, variant)
        # 2. a maze of rooms, MAX_PLAYERS start cells in one room
        walls, room_id = room_maze(rng, variant.size, variant.rooms, variant.loops)
        start_room, spawn = start_cells(rng, room_id, MAX_PLAYERS)
        # 3. the goal in another room, the wind tiles on room cells away from doorways; placed
        #    again until the goal is reachable from every start cell, and in time
        free = (room_id >= 0) & ~doorway_neighbours(walls, room_id)
        free[spawn[:, 0], spawn[:, 1]] = False
        goals = np.argwhere(free & (room_id != start_room))
        limit = self.step_limit(variant)
        budget, least = BUDGET * limit, LEAST * limit
        plain = bfs(walls, tuple(spawn[0]))[goals[:, 0], goals[:, 1]]
        band = (plain >= least) & (plain <= budget)
        goals = goals[band] if band.any() else goals[np.argsort(np.abs(plain - budget))[:4]]
        best, best_route = None, int(UNREACHABLE)
        for _ in range(100):
            goal = goals[rng.integers(len(goals))]
            left = free.copy()
            left[goal[0], goal[1]] = False
            cells = np.argwhere(left)
            if variant.wind > len(cells):
                raise ValueError(f"drift: {variant.wind} wind tiles do not fit a {variant.size} map")
            wind_cells = cells[rng.choice(len(cells), variant.wind, replace=False)]
            wind = np.zeros_like(walls)
            wind[wind_cells[:, 0], wind_cells[:, 1]] = True
            dist = wind_dist(walls, wind, wind_dir, tuple(goal))
            if (dist[~walls] >= UNREACHABLE).any():  # no pocket the wind would not let one out of
                continue
            route = int(dist[spawn[0, 0], spawn[0, 1]])
            if route < best_route:
                best, best_route = (goal, wind), route
            if route <= budget:
                break
        if best is None:
            raise ValueError(f"drift: could not place the goal on level {seed} of variant '{variant.name}'")
        goal, wind = best
        tiles = np.where(walls, T.WALL, T.FLOOR).astype(np.uint8)
        tiles[wind] = T.WIND
        tiles[goal[0], goal[1]] = T.EXIT
        items = goal[None].astype(np.int64)
        return Level(self.spec.name, variant.name, seed, tiles, spawn, items, np.ones(1, dtype=np.float32))

    # -- dynamics ---------------------------------------------------------------------------
    def dynamics(self, eng: Engine, st: State, actions: np.ndarray) -> np.ndarray:
        """The permuted moves, some slipped; records what each player can learn from its move
        (see the module docstring) for the uninformed planner."""
        hid = dynamics_of(eng)
        lv = st.level
        moves = np.take_along_axis(hid.perm[lv], actions, axis=1)
        x = step_hash(eng.levels.seeds[lv], st.episode, st.t, eng.players)
        u = (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))  # as slip_draws
        direction = (x & np.uint64(3)).astype(np.int64) + 1
        slipped = (actions > 0) & (u < hid.slip[lv][:, None])
        moves = np.where(slipped, direction, moves)
        step = np.array([0, -eng.wp, eng.wp, -1, 1], dtype=np.int64)
        walled = BLOCKS.take(st.cells.reshape(-1).take(st.pos + step.take(moves)))
        b, p = np.nonzero((actions > 0) & ~slipped & ~walled)
        st.touched[:, :, 1:5] &= ~forget_draws(x)  # the uninformed planner's leaky memory of its lessons
        st.touched[b, p, actions[b, p]] = True  # action a taught perm[a] (touched slots 1..4)
        return moves

    def tick(self, eng: Engine, st: State) -> None:
        """The wind: a player on a wind tile is pushed one cell the level's way, unless that cell
        is a wall or holds a player (all pushes of a step go the same way, so none collide)."""
        flat = st.cells.reshape(-1)
        on = (flat.take(st.pos) & T.TILE_MASK) == T.WIND
        if not on.any():
            return
        hid = dynamics_of(eng)
        offsets = np.array([0, -eng.wp, eng.wp, -1, 1], dtype=np.int64)
        dest = st.pos + offsets[hid.wind[st.level]][:, None]
        code = flat.take(dest)
        ok = on & ((code & T.TILE_MASK) != T.WALL) & ((code & T.PLAYER) == 0)
        if eng.players > 1:
            flat[st.pos[ok]] &= T.TILE_MASK
            flat[dest[ok]] |= T.PLAYER
        st.pos = np.where(ok, dest, st.pos)
        st.touched[..., T.WIND] |= ok  # the push taught the wind direction

    def touch(self, eng: Engine, st: State, player: int, slots: np.ndarray, item: np.ndarray,
              rewards: np.ndarray, terminated: np.ndarray) -> None:
        rewards[slots, player] = 1.0 - 0.9 * st.t[slots] / eng.limit
        terminated[slots] = True
        st.alive[slots, item] = False
        eng.set_tiles(st, eng.item_cell(st, slots, item), T.FLOOR)

    # -- reference planners -----------------------------------------------------------------
    def plan(self, eng: Engine, st: State, player: int, belief: np.ndarray, known: np.ndarray,
             wind_known: np.ndarray) -> np.ndarray:
        """(B,) actions of a player who believes action ``a`` moves in ``belief[:, a]`` where
        ``known[:, a]`` (B, 5), and knows the wind where ``wind_known`` (B,): the direction down
        the wind-aware distance map (:func:`goal_dist`) where it knows the wind, else down the
        plain one, turned into an action by :func:`act_for`."""
        lv = st.level
        row, col = eng.rowcol(st)
        y, x = row[:, player], col[:, player]
        tiles = eng.levels.tiles
        wind = dynamics_of(eng).wind[lv]
        windy, plain = goal_dist(eng.levels), eng.levels.dist[:, GOAL_ITEM]
        h, w = eng.height, eng.width
        options = np.empty((st.batch, len(MOVES) - 1), dtype=np.int64)
        for m in range(1, len(MOVES)):
            y1, x1 = y + MOVES[m, 0], x + MOVES[m, 1]
            wall = tiles[lv, y1, x1] == T.WALL
            y1, x1 = np.where(wall, y, y1), np.where(wall, x, x1)
            y2 = np.clip(y1 + MOVES[wind, 0], 0, h - 1)
            x2 = np.clip(x1 + MOVES[wind, 1], 0, w - 1)
            push = (tiles[lv, y1, x1] == T.WIND) & (tiles[lv, y2, x2] != T.WALL)
            y2, x2 = np.where(push, y2, y1), np.where(push, x2, x1)
            options[:, m - 1] = np.where(wind_known, windy[lv, y2, x2], plain[lv, y1, x1])
        if eng.players > 1:  # go round a player in the way where a path about as short exists
            ahead = st.cells.reshape(-1)[st.pos[:, player, None] + np.array([-eng.wp, eng.wp, -1, 1])]
            options += np.where(ahead & T.PLAYER, 3, 0)
        direction = options.argmin(1) + 1
        return act_for(direction, belief, known, st.last_action[:, player], st.t)

    def oracle(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Told the dynamics: down the wind-aware distance map, through the true permutation."""
        perm = dynamics_of(eng).perm[st.level]
        return self.plan(eng, st, player, perm, np.ones_like(perm, dtype=bool), np.ones(st.batch, dtype=bool))

    def uninformed(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Knows the map, not the dynamics: learns them within the episode only (see above)."""
        perm = dynamics_of(eng).perm[st.level]
        known = st.touched[:, player, :5].copy()
        return self.plan(eng, st, player, perm, known, st.touched[:, player, T.WIND])

    def scripted(self, grid: np.ndarray, rng: np.random.Generator, previous: np.ndarray) -> np.ndarray:
        """Sees only its window and assumes the identity: walks to the goal in view, else roams on."""
        return greedy_seek(grid, (T.EXIT,), rng, previous)

    def reveal_arrows(self, eng: Engine, level: int) -> tuple[np.ndarray, int]:
        """For ``--reveal`` (games/render.py): the wind tiles of pool level ``level`` and the
        direction (1..4) they blow."""
        return np.argwhere(eng.levels.tiles[level] == T.WIND), int(dynamics_of(eng).wind[level])

    def describe_level(self, level: Level) -> str:
        perm, slip, wind = self.hidden(_variant_of(level), level.seed)
        moves = ", ".join(f"{DIRECTION_NAMES[a]}->{DIRECTION_NAMES[perm[a]]}" for a in range(1, 5))
        return f"moves {moves}; slip {slip:.2f}; wind blows {DIRECTION_NAMES[wind]}"


GAME = Drift()


def _variant_of(level: Level) -> Variant:
    from . import registry

    return registry.variant("drift", level.variant)


def dynamics_of(eng: Engine) -> Hidden:
    """The hidden dynamics of the engine's pool levels (computed once per engine, kept on it)."""
    hid = eng.__dict__.get("_drift_hidden")
    if hid is None:
        rows = [GAME.hidden(eng.variant, int(s)) for s in eng.levels.seeds]
        perm = np.stack([r[0] for r in rows]).astype(np.int64)
        inverse = np.zeros_like(perm)
        np.put_along_axis(inverse, perm, np.arange(5)[None, :].repeat(len(perm), 0), axis=1)
        hid = Hidden(perm, inverse, np.array([r[1] for r in rows], dtype=np.float64),
                     np.array([r[2] for r in rows], dtype=np.int64))
        eng.__dict__["_drift_hidden"] = hid
    return hid


def goal_dist(levels: LevelBatch) -> np.ndarray:
    """(N, H, W) int16 wind-aware steps to the goal of every pool level (the oracle's maps;
    computed once per pool, kept on the batch)."""
    cached = levels.__dict__.get("_drift_goal_dist")
    if cached is None:
        cached = np.empty((len(levels),) + levels.shape, dtype=np.int16)
        for i in range(len(levels)):
            _, _, wind_dir = GAME._draw_hidden(GAME.rng(int(levels.seeds[i])), _NO_SLIP)
            goal = tuple(int(v) for v in levels.item_pos[i, GOAL_ITEM])
            cached[i] = wind_dist(levels.tiles[i] == T.WALL, levels.tiles[i] == T.WIND, wind_dir, goal)
        levels.__dict__["_drift_goal_dist"] = cached
    return cached


class _NoSlip:
    slip_max = 0.0


_NO_SLIP = _NoSlip()  # the wind direction does not depend on the variant
