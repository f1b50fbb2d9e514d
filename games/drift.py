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
    a trial (except on a ``shift`` variant, below); every episode starts from the
    same state. They are drawn from ``Game.rng(seed)`` before the map
    (:meth:`Drift.hidden`, :meth:`Drift.phases`), so they are a pure function of the
    variant and the seed and are kept on no Level: the engine reads them per pool
    through :func:`dynamics_of` (computed once per engine).

Shift (``drift/shift``, any variant with ``shift = k >= 1``)
    Each level also draws, right after its first dynamics and from the same
    generator, a change episode ``c`` uniform in ``1..k`` (0-based: with ``k = 2``
    the second or the third episode of the trial) and a second set of dynamics:
    another permutation (one of the 8 other derangements), a new slip probability
    (uniform in ``[0, slip_max]``) and another wind direction (one of the 3
    others). Episodes ``0..c-1`` of a trial play with the first set, episodes
    ``c`` on with the second; nothing announces the change. A trial shorter than
    ``c + 1`` episodes never sees it (``metarena eval``'s default of 4 episodes
    always does with ``k <= 3``). The wind tiles are placed so that the goal is
    reachable from every floor cell, in time, under both winds.
    :meth:`Drift.change_episode` gives ``c`` of every level (None where ``shift = 0``);
    ``metarena eval`` reports the episodes relative to it.

Slips
    Deterministic and free of global state: a slip is decided by a counter-based
    hash of ``(level seed, episode, t, player)``: one splitmix64 output of the
    level's stream (its key, :func:`level_key`, hashed once per pool) at the
    counter ``(episode << 18) | (t << 2) | player``, so the same seed gives the same
    rollout and the episodes of a trial slip differently (:func:`step_hash`,
    :func:`slip_draws`). A stay never slips.

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
    (largest slip probability), ``wind`` (wind tiles), ``steps_per_cell``,
    ``shift`` (0: the dynamics never change; ``k``: they change from an episode
    drawn in ``1..k``).

Every level can be solved: wind tiles sit in rooms, away from doorways, start
cells and the goal; the goal is reachable from every floor cell under the
level's moves and winds (every phase's wind on a ``shift`` variant: no pocket the
wind lets no one out of, wherever a slip leads); the goal is drawn among cells 35%
to 55% of the step limit from the first start cell (plain distance, where the map
has such cells), and the wind-aware way from there (the longer of the two winds',
on a ``shift`` variant) takes at most 55% of the limit (else the quickest
placement found), which leaves the oracle room for its slips.

Reference planners: the oracle knows the dynamics of the current episode and
walks the wind-aware distance map (:func:`wind_dist`, :func:`goal_maps`). The
uninformed planner knows the map, not the dynamics and has a leaky memory within
the episode (none across episodes, so a change costs it nothing): it learns
``perm[a]`` from a move of action ``a`` that went as the permutation says and was
not stopped by a wall, and forgets each such lesson with probability ``FORGET`` (0.2)
per step (drawn from the step hash, :func:`forget_draws`); it updates that memory
in its own call, from what the step recorded in ``st.extra`` (:meth:`Drift.start`,
:meth:`Drift._lessons`), not in the engine's step; for an action it does not know it
guesses the identity (:func:`act_for`). Why leaky: a learner that
kept every lesson of the episode learns the four moves in about five steps and
scores ~0.87 of the oracle in a first episode, one that kept only its last
lesson gets lost (~0.02); the leak puts it between. It learns the wind from its
first push and keeps it for the episode; until then it walks the plain distance
map. What it knows is
kept in ``st.touched[:, p, 1:5]`` and ``st.touched[:, p, WIND]`` (drift's one
item, the goal, leaves the tile-kind record free). The scripted planner heads
for a goal in view, else roams, assuming the identity. The ceiling planners
(``agents/planners/drift.py``) learn the same from their own moves and forget
nothing within a trial, unless their moves contradict what they believe often
enough to tell a change (``shift``): then they learn the dynamics again.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from . import tiles as T
from .engine import MAX_PLAYERS, MOVES, Engine, Game, GameSpec, Level, LevelBatch, State
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
    Param("shift", int, 0, 16, "0: the dynamics never change; k >= 1: each level redraws them, unannounced, "
                               "from an episode drawn in 1..k (0-based) of the trial"),
)

GOAL_ITEM = 0  #: the goal is item 0 of every level (value 1)
BUDGET = 0.55  #: the wind-aware way from the first start cell fits this share of the step limit
FORGET = 0.2  #: the chance per step that the uninformed planner forgets what an action does
LEAST = 0.35  #: ... and takes at least this share, where the map allows
DIRECTION_NAMES = ("stay", "up", "down", "left", "right")
FAR = np.int64(UNREACHABLE)
NEVER = np.int64(1) << 40  #: the change episode of a level whose dynamics never change
#: the permutations of the four moves that move no action as it is named (9 of 24): every level
#: scrambles every move, so no guess that the controls are the usual ones ever pays
DERANGEMENTS = np.array([p for p in itertools.permutations(range(1, 5)) if all(a != b for a, b in zip(p, range(1, 5)))],
                        dtype=np.int64)


#: ``(perm (5,), slip, wind direction)``: the dynamics of one phase of a level
Phase = tuple[np.ndarray, float, int]


class Hidden(NamedTuple):
    """The hidden dynamics of pool levels. Rows ``0..N-1`` are each level's dynamics from episode
    0; on a ``shift`` variant rows ``N..2N-1`` are its dynamics from its change episode on
    (:func:`dynamics_row` picks the row of a slot). Treat the arrays as read-only: what the
    engine steps with is derived from them once (:func:`set_dynamics` replaces them)."""

    perm: np.ndarray  # (R, 5) int64: the move (index into MOVES) of each action; perm[:, 0] == 0
    inverse: np.ndarray  # (R, 5) int64: the action that moves in each direction
    slip: np.ndarray  # (R,) float64: slip probability
    wind: np.ndarray  # (R,) int64: wind direction, 1..4 (index into MOVES)
    change: np.ndarray  # (N,) int64: the episode from which rows N.. apply (NEVER without a shift)


# ---------------------------------------------------------------------------------------------
# randomness of slips: a counter-based hash, no generator state

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_KEY = np.uint64(0xD1B54A32D192ED03)
#: bits of the step counter: (episode << 18) | (t << 2) | player
_T_SHIFT, _EPISODE_SHIFT = np.uint64(2), np.uint64(18)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _mix_inplace(x: np.ndarray) -> None:
    """:func:`_mix` in place (one temporary)."""
    tmp = x >> np.uint64(30)
    x ^= tmp
    x *= np.uint64(0xBF58476D1CE4E5B9)
    np.right_shift(x, np.uint64(27), out=tmp)
    x ^= tmp
    x *= np.uint64(0x94D049BB133111EB)
    np.right_shift(x, np.uint64(31), out=tmp)
    x ^= tmp


def level_key(seed: np.ndarray) -> np.ndarray:
    """(n,) uint64: the key of each level ``seed`` that its slips are hashed with (once per pool)."""
    with np.errstate(over="ignore"):
        return _mix(np.asarray(seed).astype(np.uint64) * _GOLDEN + _KEY)


def _counter(episode: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(n,) uint64: ``(episode << 18) | (t << 2)``, the step counter of player 0 (steps < 2**16)."""
    return (np.asarray(episode).astype(np.uint64) << _EPISODE_SHIFT) | (np.asarray(t).astype(np.uint64) << _T_SHIFT)


def step_hash(seed: np.ndarray, episode: np.ndarray, t: np.ndarray, players: int) -> np.ndarray:
    """(B, P) uint64: a hash of each slot's (level ``seed``, ``episode``, step ``t`` before the
    step) and each player, a pure function of those four counters: one splitmix64 output of the
    level's stream (:func:`level_key`) at the counter ``(episode << 18) | (t << 2) | player``."""
    with np.errstate(over="ignore"):
        x = level_key(seed) + _counter(episode, t) * _GOLDEN
        return _mix(x[:, None] + np.arange(players, dtype=np.uint64)[None, :] * _GOLDEN)


def slip_threshold(slip: np.ndarray) -> np.ndarray:
    """uint64 thresholds: a step hash ``x`` slips where ``x < threshold``, exactly where the
    uniform number of :func:`slip_draws` is below ``slip`` (a slip of 1 or more: all but one
    hash value in 2**64)."""
    k = np.ceil(np.clip(np.asarray(slip, dtype=np.float64), 0.0, 1.0) * float(1 << 53)).astype(np.uint64)
    return np.where(k >= np.uint64(1 << 53), np.uint64(0xFFFFFFFFFFFFFFFF), k << np.uint64(11))


def slip_draws(seed: np.ndarray, episode: np.ndarray, t: np.ndarray, players: int) -> tuple[np.ndarray, np.ndarray]:
    """``(u, direction)``, both (B, P): a uniform number in [0, 1) (the top 53 bits of
    :func:`step_hash`) and a direction 1..4 (its low 2 bits) for each slot and player."""
    x = step_hash(seed, episode, t, players)
    u = (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return u, (x & np.uint64(3)).astype(np.int64) + 1


def forget_draws(x: np.ndarray) -> np.ndarray:
    """(..., 4) bool: which of its four lessons the uninformed planner forgets this step, with
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

    def __init__(self) -> None:
        #: the variant generate() last saw under each name (a LevelBatch keeps only the name)
        self._seen: dict[str, Variant] = {}

    @staticmethod
    def _draw_hidden(rng: np.random.Generator, variant: Variant) -> tuple[int | None, list[Phase]]:
        """``(change, phases)``: the change episode (None without a shift) and the dynamics
        ``(perm, slip, wind)`` of each phase, drawn in this order from ``rng``."""
        which = int(rng.integers(len(DERANGEMENTS)))
        slip = float(variant.slip_max) * float(rng.random())
        wind = 1 + int(rng.integers(4))
        phases = [(which, slip, wind)]
        change = None
        shift = int(getattr(variant, "shift", 0) or 0)
        if shift:
            change = 1 + int(rng.integers(shift))
            which2 = (which + 1 + int(rng.integers(len(DERANGEMENTS) - 1))) % len(DERANGEMENTS)  # another
            slip2 = float(variant.slip_max) * float(rng.random())
            wind2 = 1 + (wind - 1 + 1 + int(rng.integers(3))) % 4  # another direction
            phases.append((which2, slip2, wind2))
        return change, [(np.concatenate([[0], DERANGEMENTS[w]]).astype(np.int64), s, d) for w, s, d in phases]

    def hidden(self, variant: Variant, seed: int) -> tuple[np.ndarray, float, int]:
        """``(perm (5,), slip, wind direction)`` of level ``seed`` from its first episode: the
        first draws of ``self.rng(seed)``, before :meth:`generate` draws the map."""
        return self._draw_hidden(self.rng(seed), variant)[1][0]

    def phases(self, variant: Variant, seed: int) -> tuple[int | None, list[Phase]]:
        """``(change, phases)`` of level ``seed``: the episode from which its dynamics change
        (None where they never do) and ``(perm, slip, wind)`` before it (and from it on)."""
        return self._draw_hidden(self.rng(seed), variant)

    def change_episode(self, levels: LevelBatch) -> np.ndarray | None:
        """(N,) the episode (0-based) from which each level's dynamics are redrawn on a ``shift``
        variant (drawn in ``1..shift``); None on the others."""
        v = _variant_named(levels.variant)
        if not int(getattr(v, "shift", 0) or 0):
            return None
        return np.array([self.phases(v, int(s))[0] for s in levels.seeds], dtype=np.int64)

    def generate(self, variant: Variant, seed: int) -> Level:
        self._seen[variant.name] = variant
        rng = self.rng(seed)
        # 1. the hidden dynamics (first, so that hidden() can draw them alone)
        _, phases = self._draw_hidden(rng, variant)
        winds = [wind for _, _, wind in phases]
        # 2. a maze of rooms, MAX_PLAYERS start cells in one room
        walls, room_id = room_maze(rng, variant.size, variant.rooms, variant.loops)
        start_room, spawn = start_cells(rng, room_id, MAX_PLAYERS)
        # 3. the goal in another room, the wind tiles on room cells away from doorways; placed
        #    again until the goal is reachable from every start cell under every phase's wind,
        #    and in time
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
            dists = [wind_dist(walls, wind, wind_dir, tuple(goal)) for wind_dir in winds]
            if any((dist[~walls] >= UNREACHABLE).any() for dist in dists):  # no pocket the wind lets no one out of
                continue
            route = max(int(dist[spawn[0, 0], spawn[0, 1]]) for dist in dists)
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
    def start(self, eng: Engine, st: State, slots: np.ndarray) -> None:
        """The uninformed planner's record of the last step, in ``st.extra`` (B, P) each:
        ``drift_prev`` (each player's cell before it), ``drift_moves`` (the moves it applied)
        and ``drift_lessons`` (the step ``t`` whose lessons were taken; 0 at an episode start)."""
        if "drift_prev" not in st.extra:
            shape = st.pos.shape
            st.extra["drift_prev"] = np.zeros(shape, dtype=np.int64)
            st.extra["drift_moves"] = np.zeros(shape, dtype=np.int64)
            st.extra["drift_lessons"] = np.zeros(shape, dtype=np.int32)
        st.extra["drift_lessons"][slots] = 0

    def dynamics(self, eng: Engine, st: State, actions: np.ndarray) -> np.ndarray:
        """The permuted moves of the slot's current phase, some slipped (one splitmix64 round
        per player on the pool's level keys). Records the step's start cells and moves in
        ``st.extra`` for the uninformed planner's lessons (:meth:`_lessons`)."""
        f = _fast(eng)
        lv = st.level
        row = f.row(st)
        with np.errstate(over="ignore"):
            x = f.key.take(lv)
            x += _counter(st.episode, st.t) * _GOLDEN
            x = x[:, None] + f.players if eng.players > 1 else x[:, None]
            _mix_inplace(x)
        at = row[:, None] * 5 + actions
        moves = f.perm_flat.take(at)
        slipped = x < f.thr_flat.take(at)  # a stay never slips: its threshold is 0
        x &= np.uint64(3)
        x += np.uint64(1)
        np.copyto(moves, x, where=slipped, casting="unsafe")  # the slip's direction, 1..4
        if "drift_prev" in st.extra:
            np.copyto(st.extra["drift_prev"], st.pos)
            np.copyto(st.extra["drift_moves"], moves)
        return moves

    def tick(self, eng: Engine, st: State) -> None:
        """The wind: a player on a wind tile is pushed one cell the way of its phase, unless that
        cell is a wall or holds a player (all pushes of a step go the same way, so none collide)."""
        flat = st.cells.reshape(-1)
        on = _ON_WIND.take(flat.take(st.pos))
        idx = np.flatnonzero(on)
        if not len(idx):
            return
        f = _fast(eng)
        row = f.row(st)
        p = eng.players
        slot = idx // p if p > 1 else idx
        if not st.pos.flags.c_contiguous:
            st.pos = np.ascontiguousarray(st.pos)
        pos = st.pos.reshape(-1)
        at = pos.take(idx)
        dest = at + f.wind_off.take(row.take(slot))
        ok = ~_PUSH_BLOCKED.take(flat.take(dest))
        if not ok.all():
            idx, slot, at, dest = idx[ok], slot[ok], at[ok], dest[ok]
        if p > 1:
            flat[at] &= T.TILE_MASK
            flat[dest] |= T.PLAYER
        pos[idx] = dest
        st.touched[slot, idx % p if p > 1 else 0, T.WIND] = True  # the push taught the wind direction

    def touch(self, eng: Engine, st: State, player: int, slots: np.ndarray, item: np.ndarray,
              rewards: np.ndarray, terminated: np.ndarray) -> None:
        rewards[slots, player] = 1.0 - 0.9 * st.t[slots] / eng.limit
        terminated[slots] = True
        st.alive[slots, item] = False
        eng.set_tiles(st, eng.item_cell(st, slots, item), T.FLOOR)

    # -- reference planners -----------------------------------------------------------------
    def plan(self, eng: Engine, st: State, player: int, belief: np.ndarray, known: np.ndarray,
             wind: np.ndarray) -> np.ndarray:
        """(B,) actions of a player who believes action ``a`` moves in ``belief[:, a]`` where
        ``known[:, a]`` (B, 5), and that the wind blows ``wind`` (B,) (1..4; 0: not known): the
        direction down the distance map of that wind (:func:`goal_maps`; the plain one where
        the wind is not known), turned into an action by :func:`act_for`."""
        lv = st.level
        row, col = eng.rowcol(st)
        y, x = row[:, player], col[:, player]
        tiles = eng.levels.tiles
        wind = np.asarray(wind, dtype=np.int64)
        maps = goal_maps(eng.levels, lv, wind)
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
            options[:, m - 1] = maps[lv, wind, y2, x2]
        if eng.players > 1:  # go round a player in the way where a path about as short exists
            ahead = st.cells.reshape(-1)[st.pos[:, player, None] + np.array([-eng.wp, eng.wp, -1, 1])]
            options += np.where(ahead & T.PLAYER, 3, 0)
        direction = options.argmin(1) + 1
        return act_for(direction, belief, known, st.last_action[:, player], st.t)

    def oracle(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Told the dynamics of the current episode: down the wind-aware distance map, through
        the true permutation."""
        hid, row = dynamics_of(eng), _fast(eng).row(st)
        perm = hid.perm[row]
        return self.plan(eng, st, player, perm, np.ones_like(perm, dtype=bool), hid.wind[row])

    def uninformed(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Knows the map, not the dynamics: learns them within the episode only (see above)."""
        self._lessons(eng, st, player)
        hid, row = dynamics_of(eng), _fast(eng).row(st)
        known = st.touched[:, player, :5].copy()
        wind = np.where(st.touched[:, player, T.WIND], hid.wind[row], 0)
        return self.plan(eng, st, player, hid.perm[row], known, wind)

    def _lessons(self, eng: Engine, st: State, player: int) -> None:
        """The uninformed planner's memory of its moves, kept in ``st.touched[:, player, 1:5]``
        (cleared where an episode starts): once per step, it forgets each lesson with
        probability FORGET (:func:`forget_draws` of the last step's hash), then learns
        ``perm[a]`` from its last move of action ``a`` where that move went as the permutation
        says and was not stopped by a wall (what :meth:`dynamics` recorded tells)."""
        if "drift_prev" not in st.extra:
            return
        prev, moves, taken = st.extra["drift_prev"], st.extra["drift_moves"], st.extra["drift_lessons"]
        live = (st.t > 0) & (taken[:, player] != st.t)  # an episode's last step, not yet learned from
        if not live.any():
            return
        taken[live, player] = st.t[live]
        f = _fast(eng)
        row = f.row(st)
        with np.errstate(over="ignore"):
            x = _mix(f.key[st.level] + (_counter(st.episode, st.t - 1) + np.uint64(player)) * _GOLDEN)
        st.touched[:, player, 1:5] &= ~(forget_draws(x) & live[:, None])
        a, m = st.last_action[:, player], moves[:, player]
        tile = st.cells.reshape(-1).take(prev[:, player] + f.offsets.take(m)) & T.TILE_MASK
        lesson = live & (a > 0) & (m == f.perm_flat.take(row * 5 + a)) & (tile != T.WALL)
        b = np.flatnonzero(lesson)
        st.touched[b, player, a[b]] = True

    def scripted(self, grid: np.ndarray, rng: np.random.Generator, previous: np.ndarray) -> np.ndarray:
        """Sees only its window and assumes the identity: walks to the goal in view, else roams on."""
        return greedy_seek(grid, (T.EXIT,), rng, previous)

    def reveal_arrows(self, eng: Engine, level: int) -> tuple[np.ndarray, int]:
        """For ``--reveal`` (games/render.py): the wind tiles of pool level ``level`` and the
        direction (1..4) they blow (in the first episode, on a ``shift`` variant)."""
        return np.argwhere(eng.levels.tiles[level] == T.WIND), int(dynamics_of(eng).wind[level])

    def describe_level(self, level: Level) -> str:
        change, phases = self.phases(_variant_named(level.variant), level.seed)

        def says(perm, slip, wind):
            moves = ", ".join(f"{DIRECTION_NAMES[a]}->{DIRECTION_NAMES[perm[a]]}" for a in range(1, 5))
            return f"moves {moves}; slip {slip:.2f}; wind blows {DIRECTION_NAMES[wind]}"

        text = says(*phases[0])
        if change is not None:
            text += f"; from episode {change + 1} on: " + says(*phases[1])
        return text


GAME = Drift()

#: cell codes (PLAYER bit included) of a wind tile; of a cell a push cannot enter (a wall, a player)
_ON_WIND = np.zeros(256, dtype=bool)
_ON_WIND[[T.WIND, T.WIND | T.PLAYER]] = True
_PUSH_BLOCKED = (np.arange(256) & T.PLAYER) > 0
_PUSH_BLOCKED[T.WALL] = True


def _variant_named(name: str) -> Variant:
    """The variant of levels made under ``name``: the one generate() last saw under it in this
    process (a variant file's levels are named by the file), else the built-in one."""
    seen = GAME._seen.get(name)
    if seen is not None:
        return seen
    from . import registry

    return registry.variant("drift", name)


def dynamics_of(eng: Engine) -> Hidden:
    """The hidden dynamics of the engine's pool levels (computed once per engine, kept on it)."""
    hid = eng.__dict__.get("_drift_hidden")
    if hid is None:
        n = len(eng.levels)
        draws = [GAME.phases(eng.variant, int(s)) for s in eng.levels.seeds]
        shifting = draws and draws[0][0] is not None
        rows = [d[1][0] for d in draws] + ([d[1][1] for d in draws] if shifting else [])
        perm = np.stack([r[0] for r in rows]).astype(np.int64)
        inverse = np.zeros_like(perm)
        np.put_along_axis(inverse, perm, np.arange(5)[None, :].repeat(len(perm), 0), axis=1)
        change = np.array([d[0] for d in draws], dtype=np.int64) if shifting else np.full(n, NEVER)
        hid = Hidden(perm, inverse, np.array([r[1] for r in rows], dtype=np.float64),
                     np.array([r[2] for r in rows], dtype=np.int64), change)
        set_dynamics(eng, hid)
    return hid


def set_dynamics(eng: Engine, hid: Hidden) -> None:
    """Make the engine step with the dynamics ``hid`` (tests change a level's slip or wind so)."""
    eng.__dict__["_drift_hidden"] = hid
    eng.__dict__.pop("_drift_fast", None)


class _Fast:
    """What the engine steps with, derived once from :class:`Hidden` (per engine)."""

    def __init__(self, eng: Engine, hid: Hidden):
        self.n = len(eng.levels)
        self.shifting = len(hid.perm) > self.n
        self.change = hid.change
        self.key = level_key(eng.levels.seeds)  # (N,) uint64
        thr = np.repeat(slip_threshold(hid.slip)[:, None], 5, axis=1)
        thr[:, 0] = 0  # a stay never slips
        self.thr_flat = thr.reshape(-1)  # (R * 5,) uint64: per row and action
        self.perm_flat = np.ascontiguousarray(hid.perm).reshape(-1)  # (R * 5,)
        self.offsets = np.array([0, -eng.wp, eng.wp, -1, 1], dtype=np.int64)
        self.wind_off = self.offsets[hid.wind]  # (R,) flat offset of each row's push
        self.players = (np.arange(eng.players, dtype=np.uint64) * _GOLDEN)[None, :]

    def row(self, st: State) -> np.ndarray:
        """(B,) the row of :class:`Hidden` each slot plays with now."""
        if not self.shifting:
            return st.level
        return st.level + self.n * (st.episode >= self.change.take(st.level))


def _fast(eng: Engine) -> _Fast:
    f = eng.__dict__.get("_drift_fast")
    if f is None:
        f = _Fast(eng, dynamics_of(eng))
        eng.__dict__["_drift_fast"] = f
    return f


def dynamics_row(eng: Engine, st: State) -> np.ndarray:
    """(B,) the row of :func:`dynamics_of` each slot of ``st`` plays with in its current episode."""
    return _fast(eng).row(st)


def goal_maps(levels: LevelBatch, level: np.ndarray | None = None, wind: np.ndarray | None = None) -> np.ndarray:
    """(N, 5, H, W) int16 steps to the goal of every pool level under each wind direction
    (:func:`wind_dist`; index 0: the plain distance, no wind), ``UNREACHABLE`` where it cannot be
    reached. Kept on the batch; a map is computed when first asked for: those of the pairs
    ``(level[i], wind[i])``."""
    cached = levels.__dict__.get("_drift_goal_maps")
    if cached is None:
        maps = np.zeros((len(levels), 5) + levels.shape, dtype=np.int16)
        maps[:, 0] = levels.dist[:, GOAL_ITEM]
        filled = np.zeros((len(levels), 5), dtype=bool)
        filled[:, 0] = True
        cached = levels.__dict__["_drift_goal_maps"] = (maps, filled)
    maps, filled = cached
    if level is not None:
        need = ~filled[level, wind]
        if need.any():
            for key in np.unique(level[need] * 5 + wind[need]).tolist():
                i, d = divmod(key, 5)
                goal = tuple(int(v) for v in levels.item_pos[i, GOAL_ITEM])
                maps[i, d] = wind_dist(levels.tiles[i] == T.WALL, levels.tiles[i] == T.WIND, d, goal)
                filled[i, d] = True
    return maps
