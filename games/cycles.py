"""cycles: light cycles against hidden opponents; survive, and take the boosts.

Description
    An arena framed by walls, with generated wall blocks inside, holds the players'
    cycles, ``bots`` opponent cycles (scripted, living inside the game) and ``pads``
    pads (the ``boost`` tile; they all look alike). A cycle always moves: each step
    every living cycle advances one cell, and the cell it left becomes a light trail
    (the ``trail`` tile), a wall for everyone until the episode ends. All cycles move
    at once. A cycle crashes, and is out for the rest of the episode, when it drives
    into a wall, a trail, a cycle (living or wrecked), or the cell another cycle
    drives into in the same step (head-on: both crash), or swaps cells with one. A
    crashed cycle stays where it was, its cell a trail (a wreck). A player who
    drives onto a pad springs it: a *boost* pays and the pad is gone (bare floor); a
    *trap* costs, kills the player and shows as a ``trap`` tile from then on.

Hidden factor
    Which pads are boosts and which are traps (each pad is a trap with probability
    1/2, at least one of each where there are two pads or more), and the opponents'
    styles: each bot has an *aggression* (how much it steers towards the nearest
    player's cycle: 0, 0.6 or 1.5), a *turn bias* (whether it prefers left or right
    turns where its options tie) and a *look-ahead depth* (how many cells straight
    ahead it checks for free space: 1 to ``depth_max``). They are drawn from
    ``Game.rng(seed)`` before the map (:meth:`Cycles.hidden`) and stay the same for
    every episode of a trial; every episode starts from the same state, and the bots
    are deterministic, so what a player learns in one episode holds in the next.

A bot's move (:func:`bot_moves`)
    A bot never reverses. From the state at the start of the step it scores going
    straight, turning left and turning right: -inf into a cell that is not bare floor
    or holds a player (bots never drive onto pads); else the free run of cells
    straight ahead that way, counted up to its depth, plus ``aggression`` times how
    much closer (Manhattan) the move takes it to the nearest living player's cycle,
    plus 0.3 for going straight, plus 0.1 for a turn the way of its bias. It takes
    the best (straight, then left, then right on an exact tie); with all three
    blocked it drives straight on and crashes.

Actions
    ``Discrete(5)``: ``stay`` keeps the cycle's heading, a direction turns that way;
    a reverse is ignored (the cycle keeps its heading), except on the first step of
    an episode, when nothing is behind a cycle yet and every direction goes (``stay``
    then goes the start cell's heading: the way with the longest free run). A crashed
    player's actions do nothing. ``st.last_action`` keeps the chosen actions.

Rewards
    ``1 / limit`` for every step a player ends alive (surviving the whole episode
    sums to 1); ``+0.25`` for a boost; ``-0.25`` for a trap (which also ends that
    player's run).

Termination
    None: every episode runs to the step limit ``steps_per_cell * size**2``
    (truncated); a crashed player waits out the rest of the episode, scoring nothing.

Players and collisions
    1-4 players, each against the same bots and each other: every player is paid for
    its own survival. Solo means surviving as long as possible. Players move first in
    the engine (its collision rule cancels a move into another player's cell, and a
    player whose move is cancelled has crashed); then a player that drove into the
    cell another player left (now a trail) crashes, and the bots move, each into the
    cell it chose at the start of the step: a bot and a player that drive into the
    same cell both crash, as do two bots; a bot that drives into the cell a player
    just left crashes.

State of the game's own (``st.extra``, set up by :meth:`Cycles.start`)
    ``heading``, ``alive``, ``prev`` (B, P); ``bot_pos``, ``bot_heading``,
    ``bot_alive``, ``bot_target`` (B, bots); ``owner`` (B, Hp * Wp) int8: who left
    each trail (player ``p``, bot ``4 + j``; -1 none), for the renderer.

Variants (``games/variants/cycles.toml``)
    ``size``, ``blocks`` (wall blocks inside the arena), ``pads``, ``bots``,
    ``depth_max`` (the deepest bot look-ahead), ``steps_per_cell``.

Every level can be played: the floor is connected (cells walled off by the blocks
are filled in), every pad is reachable from every start cell, start cells (four for
the players, one per bot) are spread out (at least three steps apart) on cells whose four
neighbours are floor, no pad lies in the 5 x 5 square round a start cell, and the oracle
stays alive on at least its first step (the solvability check: a positive return; on the
default variant it is alive at the step limit on about seven levels in ten: the arena
is shared, and the bots take space).

Level layout: ``spawn`` rows 0-3 are the players' start cells, rows 4.. the bots'; the items
are the pads, ``item_value`` their hidden value (``+0.25`` a boost, ``-0.25`` a trap).

Reference planners: all use :func:`plan`: among the moves into free cells, the ones
whose reachable area (a flood fill, :func:`flood`, with the bots' next cells blocked)
covers the steps left (else the largest), the nearest to a wanted pad, then straight
on. The oracle knows the bots' styles (it computes their next cells with
:func:`bot_moves`) and the pads (it seeks the boosts and never enters a trap). The
uninformed planner knows the map but neither: it assumes every bot drives straight
on and enters no pad (any may be a trap). The scripted planner is a flood-fill
survivor inside its window (pads count as walls). The ceiling planners
(``agents/planners/cycles.py``) learn the pads and the bots within a trial.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from . import tiles as T
from .engine import MAX_PLAYERS, MOVES, Engine, Game, GameSpec, Level, State
from .variant import Param, Variant

PARAMS = (
    Param("size", int, 11, 41, "side of the square arena, walls included"),
    Param("blocks", int, 0, 60, "wall blocks (1 to 3 cells) inside the arena"),
    Param("pads", int, 1, 24, "pads (each a hidden boost or trap)"),
    Param("bots", int, 1, 3, "opponent cycles"),
    Param("depth_max", int, 1, 12, "deepest look-ahead of a bot (each draws one in [1, depth_max])"),
    Param("steps_per_cell", float, 0.05, 4.0, "step limit per map cell"),
)

MAX_BOTS = 3
BOOST, TRAP_COST = 0.25, -0.25  #: what a boost pays, what a trap costs
AGGRESSION = np.array([0.0, 0.6, 1.5])  #: the bots' aggression levels
BIAS = np.array([-1, 1], dtype=np.int64)  #: -1 prefers right turns, +1 left turns
STRAIGHT_BONUS, BIAS_BONUS = 0.3, 0.1
DEPTH_LIMIT = 12  #: the deepest look-ahead any variant allows
OFFSETS = MOVES  #: (dy, dx) of stay, up, down, left, right
REVERSE = np.array([0, 2, 1, 4, 3], dtype=np.int64)
LEFT = np.array([0, 3, 4, 2, 1], dtype=np.int64)  #: the heading after a left turn
RIGHT = np.array([0, 4, 3, 1, 2], dtype=np.int64)
DIRECTION_NAMES = ("stay", "up", "down", "left", "right")
BOT_OWNER = 4  #: owner index of bot 0's trails (players are 0..3)
FAR = 1 << 30


class Hidden(NamedTuple):
    """The hidden styles of the bots of pool levels, and the start headings."""

    aggression: np.ndarray  # (N, MAX_BOTS) float64
    bias: np.ndarray  # (N, MAX_BOTS) int64, -1 or +1
    depth: np.ndarray  # (N, MAX_BOTS) int64, 1..depth_max
    heading: np.ndarray  # (N, MAX_PLAYERS + bots) int64: the start heading of every start cell


# ---------------------------------------------------------------------------------------------
# the game


class Cycles(Game):
    spec = GameSpec(
        name="cycles",
        title="Cycles",
        summary="Light cycles: survive the opponents' trails; each level hides which pads are boosts "
                "or traps and how the opponents drive.",
        hidden="which pads are boosts and which are traps, and each opponent's aggression, turn bias "
               "and look-ahead",
        adaptation="read the opponents and the pads, then cut the opponents off, take the boosts "
                   "and avoid the traps",
        min_players=1,
        max_players=MAX_PLAYERS,
        default_variant="medium",
        params=PARAMS,
        terminates=False,
    )

    @staticmethod
    def _draw_hidden(rng: np.random.Generator, variant: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        aggression = AGGRESSION[rng.integers(len(AGGRESSION), size=MAX_BOTS)]
        bias = BIAS[rng.integers(2, size=MAX_BOTS)]
        depth = rng.integers(1, int(variant.depth_max) + 1, size=MAX_BOTS).astype(np.int64)
        return aggression, bias, depth

    def hidden(self, variant: Variant, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(aggression, bias, depth)``, each (MAX_BOTS,), of level ``seed``'s bots (the first
        ``bots`` are used): the first draws of ``self.rng(seed)``."""
        return self._draw_hidden(self.rng(seed), variant)

    def generate(self, variant: Variant, seed: int) -> Level:
        rng = self.rng(seed)
        self._draw_hidden(rng, variant)  # 1. the bots' styles
        n, bots = int(variant.pads), int(variant.bots)
        trap = rng.random(n) < 0.5  # 2. the pads' kinds
        if n >= 2 and trap.all() or n >= 2 and not trap.any():
            trap[rng.integers(n)] = not trap[0]
        size = int(variant.size)
        for _ in range(100):  # 3. the map, start cells and pads, drawn again until they fit
            walls = arena(rng, size, int(variant.blocks))
            starts = spread_cells(rng, walls, MAX_PLAYERS + bots)
            if starts is None:
                continue
            near = np.zeros_like(walls)
            for y, x in starts:
                near[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = True
            cells = np.argwhere(~walls & ~near)
            if len(cells) < n:
                continue
            pads = cells[rng.choice(len(cells), n, replace=False)]
            break
        else:
            raise ValueError(f"cycles: could not place {MAX_PLAYERS + bots} start cells and {n} pads on a "
                             f"{size} map with {variant.blocks} blocks")
        tiles = np.where(walls, T.WALL, T.FLOOR).astype(np.uint8)
        tiles[pads[:, 0], pads[:, 1]] = T.BOOST
        value = np.where(trap, TRAP_COST, BOOST).astype(np.float32)
        return Level(self.spec.name, variant.name, seed, tiles, starts.astype(np.int64), pads.astype(np.int64), value)

    # -- the game's own state ----------------------------------------------------------------
    def start(self, eng: Engine, st: State, slots: np.ndarray) -> None:
        ex = st.extra
        b, p, nb = st.batch, st.players, bots_of(eng)
        if "heading" not in ex:
            ex.update(heading=np.zeros((b, p), np.int64), alive=np.zeros((b, p), bool),
                      prev=np.zeros((b, p), np.int64), bot_pos=np.zeros((b, nb), np.int64),
                      bot_heading=np.zeros((b, nb), np.int64), bot_alive=np.zeros((b, nb), bool),
                      bot_target=np.zeros((b, nb), np.int64),
                      owner=np.full((b, eng.hp * eng.wp), -1, np.int8))
        # one compiled loop over the slots (``_cycles_kernels.start``)
        _kernels().start(np.asarray(slots, np.int64), st.level, hidden_of(eng).heading, eng._spawn0, MAX_PLAYERS,
                         eng._base, p, st.cells.reshape(-1), st.pos, ex["owner"], ex["heading"], ex["alive"],
                         ex["prev"], ex["bot_pos"], ex["bot_heading"], ex["bot_alive"], ex["bot_target"], BOT_OWNER)

    # -- dynamics ---------------------------------------------------------------------------
    def dynamics(self, eng: Engine, st: State, actions: np.ndarray) -> np.ndarray:
        """The bots choose their cells (from the state before anyone moves); the players' actions
        become moves: ``stay`` keeps the heading, a reverse is ignored after the first step,
        crashed players stay."""
        ex = st.extra
        moves = np.empty(st.pos.shape, np.int64)
        actions = np.asarray(actions).astype(np.int64, casting="same_kind", copy=False)
        rows, cols, hid = _rowcol(eng) + (hidden_of(eng),)
        # one compiled pass (a crashed bot's target is its cell, its heading stays)
        _kernels().step_moves(actions, st.pos, ex["prev"], ex["heading"], ex["alive"], st.t, REVERSE,
                              st.cells.reshape(-1), eng._moves, MOVES, TURNS, rows, cols, not eng._mark_players,
                              st.level, hid.aggression, hid.bias, hid.depth, ex["bot_pos"], ex["bot_heading"],
                              ex["bot_alive"], STRAIGHT_BONUS, BIAS_BONUS, ex["bot_target"], moves)
        return moves

    def tick(self, eng: Engine, st: State) -> None:
        """Crashes, trails and the bots' moves (see the module docstring), one compiled loop over
        the slots (``_cycles_kernels.tick``)."""
        ex = st.extra
        _kernels().tick(st.cells.reshape(-1), ex["owner"].reshape(-1), st.pos, ex["prev"], ex["alive"],
                        eng._mark_players, ex["bot_pos"], ex["bot_target"], ex["bot_alive"], BOT_OWNER)

    def touch(self, eng: Engine, st: State, player: int, slots: np.ndarray, item: np.ndarray,
              rewards: np.ndarray, terminated: np.ndarray) -> None:
        """A boost pays and is gone; a trap costs, kills and shows."""
        alive = st.extra["alive"]
        slots, item = slots[alive[slots, player]], item[alive[slots, player]]
        value = eng.levels.item_value[st.level[slots], item]
        rewards[slots, player] += value
        st.alive[slots, item] = False
        eng.mark_touched(st, player, slots, item)
        trap = value < 0
        at = eng.item_cell(st, slots, item)
        eng.set_tiles(st, at, np.where(trap, T.TRAP, T.FLOOR).astype(np.uint8))
        alive[slots[trap], player] = False

    def settle(self, eng: Engine, st: State, rewards: np.ndarray, terminated: np.ndarray) -> None:
        rewards += st.extra["alive"] * np.float32(1.0 / eng.limit)

    # -- reference planners -----------------------------------------------------------------
    def oracle(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Knows the bots' styles and the pads: blocks the bots' next cells, seeks the boosts."""
        value = eng.levels.item_value[st.level]
        good = value > 0
        target = bot_moves(eng, st, hidden_of(eng))[0] if bots_of(eng) else None
        return plan(eng, st, player, enter=good, seek=good, bot_next=target)

    def uninformed(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Knows the map: assumes the bots drive straight on; enters no pad."""
        no = np.zeros((st.batch, eng.num_items), dtype=bool)
        return plan(eng, st, player, enter=no, seek=no, bot_next=straight_on(eng, st))

    def scripted(self, grid: np.ndarray, rng: np.random.Generator, previous: np.ndarray) -> np.ndarray:
        """A flood-fill survivor in its window: the move (never a reverse of its last one) into
        the most floor reachable inside the window; pads count as walls. Ties: straight on, then
        at random."""
        return window_survivor(grid, rng, previous)

    def describe_level(self, level: Level) -> str:
        traps = int((level.item_value < 0).sum())
        pads = f"pads: {len(level.item_value) - traps} boosts, {traps} traps"
        try:
            v = _variant_of(level)
        except (KeyError, ValueError):  # a variant file's name: the bots' styles need its values
            return pads
        aggression, bias, depth = self.hidden(v, level.seed)
        bots = "; ".join(f"bot {j + 1}: aggression {aggression[j]:g}, prefers {'left' if bias[j] > 0 else 'right'}"
                         f" turns, looks {depth[j]} ahead" for j in range(int(v.bots)))
        return f"{bots}; {pads}"

    def decorations(self, eng: Engine, st: State, slot: int) -> dict:
        """What games/render.py draws over the tiles: who left each trail ((H, W) int, -1 none;
        player p, bot BOT_OWNER + j), the bots' cells and whether each is alive, and which
        players have crashed."""
        r = eng.radius
        ex = st.extra
        owner = ex["owner"][slot].reshape(eng.hp, eng.wp)[r:r + eng.height, r:r + eng.width]
        bots = []
        if "bot_pos" in ex:
            y, x = eng.rowcol(st, ex["bot_pos"][slot:slot + 1], np.array([slot]))
            bots = [(int(a), int(c), bool(al)) for a, c, al in zip(y[0], x[0], ex["bot_alive"][slot])]
        dead = [int(p) for p in np.flatnonzero(~ex["alive"][slot])] if "alive" in ex else []
        return {"owner": owner, "bots": bots, "dead": dead}


GAME = Cycles()


def _variant_of(level: Level) -> Variant:
    from . import registry

    return registry.variant("cycles", level.variant)


# ---------------------------------------------------------------------------------------------
# maps


def arena(rng: np.random.Generator, size: int, blocks: int) -> np.ndarray:
    """(size, size) bool walls: a frame, ``blocks`` wall blocks of 1 to 3 cells in a row or a
    column inside (none touching the frame), and every floor cell cut off from the largest
    floor region filled in."""
    walls = np.zeros((size, size), dtype=bool)
    walls[0], walls[-1], walls[:, 0], walls[:, -1] = True, True, True, True
    for _ in range(blocks):
        length = int(rng.integers(1, 4))
        vertical = bool(rng.integers(2))
        h, w = (length, 1) if vertical else (1, length)
        y = int(rng.integers(2, max(3, size - 2 - h + 1)))
        x = int(rng.integers(2, max(3, size - 2 - w + 1)))
        walls[y:y + h, x:x + w] = True
    walls[0], walls[-1], walls[:, 0], walls[:, -1] = True, True, True, True
    # keep the largest floor region
    left = ~walls
    best, best_size = None, 0
    while left.sum() > best_size:
        y, x = np.argwhere(left)[0]
        region = np.zeros_like(left)
        region[y, x] = True
        while True:
            grown = region.copy()
            grown[1:] |= region[:-1]
            grown[:-1] |= region[1:]
            grown[:, 1:] |= region[:, :-1]
            grown[:, :-1] |= region[:, 1:]
            grown &= left
            if grown.sum() == region.sum():
                break
            region = grown
        if region.sum() > best_size:
            best, best_size = region, int(region.sum())
        left &= ~region
    return ~best


def spread_cells(rng: np.random.Generator, walls: np.ndarray, count: int) -> np.ndarray | None:
    """``count`` floor cells whose four neighbours are floor, spread out: the first at random,
    each next one the farthest (Manhattan) from those taken, ties at random; None if there are
    too few such cells or two would be neighbours."""
    open_ = ~walls.copy()
    open_[1:-1, 1:-1] &= ~walls[:-2, 1:-1] & ~walls[2:, 1:-1] & ~walls[1:-1, :-2] & ~walls[1:-1, 2:]
    cells = np.argwhere(open_ & ~walls)
    if len(cells) < count:
        return None
    taken = [int(rng.integers(len(cells)))]
    dist = np.abs(cells - cells[taken[0]]).sum(1)
    for _ in range(count - 1):
        best = np.flatnonzero(dist == dist.max())
        pick = int(best[rng.integers(len(best))])
        taken.append(pick)
        dist = np.minimum(dist, np.abs(cells - cells[pick]).sum(1))
    out = cells[taken]
    gaps = np.abs(out[:, None] - out[None]).sum(-1) + np.eye(count, dtype=np.int64) * 99
    return out if gaps.min() >= 3 else None


def start_headings(tiles: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """(N, S) the heading (1..4) of each start cell ``cells`` (N, S, 2) of maps ``tiles``
    (N, H, W): the way with the longest run of cells that are not walls (ties: up, down, left,
    right in that order). Maps are framed by walls."""
    free = tiles != T.WALL
    n, h, w = tiles.shape
    rows = np.arange(n)[:, None]
    runs = np.zeros(cells.shape[:2] + (4,), dtype=np.int64)
    for a, (dy, dx) in enumerate(MOVES[1:]):
        y, x = cells[..., 0].copy(), cells[..., 1].copy()
        going = np.ones(cells.shape[:2], dtype=bool)
        for _ in range(max(h, w)):
            y, x = np.clip(y + dy, 0, h - 1), np.clip(x + dx, 0, w - 1)
            going &= free[rows, y, x]
            if not going.any():
                break
            runs[..., a] += going
    return runs.argmax(-1) + 1


def bots_of(eng: Engine) -> int:
    """How many bots the engine's levels have."""
    return int(eng.variant.bots)


def hidden_of(eng: Engine) -> Hidden:
    """The bots' styles and the start headings of the engine's pool levels (computed once per
    pool and variant, kept on the pool, and looked up once per engine)."""
    hid = eng.__dict__.get("_cycles_hidden")
    if hid is not None:
        return hid
    key = ("_cycles_hidden", tuple(sorted(eng.variant.params.items())))
    hid = eng.levels.__dict__.get(key)
    if hid is None:
        rows = [GAME.hidden(eng.variant, int(s)) for s in eng.levels.seeds]
        heading = start_headings(eng.levels.tiles, eng.levels.spawn)
        hid = Hidden(np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]).astype(np.int64),
                     np.stack([r[2] for r in rows]).astype(np.int64), heading)
        eng.levels.__dict__[key] = hid
    eng.__dict__["_cycles_hidden"] = hid
    return hid


# ---------------------------------------------------------------------------------------------
# moves


def player_moves(st: State, actions: np.ndarray, update: bool = False) -> np.ndarray:
    """(B, P) the moves of the players' ``actions``: ``stay`` keeps the heading, a reverse is
    ignored after an episode's first step, crashed players do not move. With ``update`` the
    headings in ``st.extra`` follow."""
    ex = st.extra
    moves = np.empty(st.pos.shape, np.int64)
    actions = np.asarray(actions).astype(np.int64, casting="same_kind", copy=False)
    _kernels().player_moves(actions, ex["heading"], ex["alive"], st.t, REVERSE, update, moves)
    return moves


def bot_moves(eng: Engine, st: State, hid: Hidden | None = None, style: tuple | None = None,
              bot_pos: np.ndarray | None = None, bot_heading: np.ndarray | None = None,
              slot: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(target, heading)``, each (B, bots): the cell each bot drives into this step and its
    heading there, from the state at the start of the step (see the module docstring); a
    crashed bot's target is its own cell.

    By default the bots of ``st`` with their styles ``hid``; a planner that guesses styles
    passes ``style = (aggression, bias, depth)`` and the bots' ``bot_pos``, ``bot_heading``
    and ``slot`` (the slot of each row), all of one shape, for any rows it likes (each row is
    taken for a living bot)."""
    if style is not None:
        shape = bot_pos.shape
        target, heading = _bot_choice(eng, st, *(np.ravel(x) for x in style), np.ravel(bot_pos),
                                      np.ravel(bot_heading), np.ravel(slot))
        return target.reshape(shape), heading.reshape(shape)
    ex = st.extra
    target, heading = np.empty_like(ex["bot_pos"]), np.empty_like(ex["bot_heading"])
    _move_bots(eng, st, hid, target, heading)
    return target, heading


def _move_bots(eng: Engine, st: State, hid: Hidden, target: np.ndarray, heading: np.ndarray) -> None:
    """Write :func:`bot_moves` of the bots of ``st`` into ``target`` and ``heading`` (B, bots),
    which may be the state's own ``bot_target`` and ``bot_heading``: one compiled loop over the
    bots (``_cycles_kernels.bot_moves``)."""
    ex = st.extra
    _kernels().bot_moves(st.cells.reshape(-1), eng._moves, MOVES, TURNS, *_rowcol(eng), st.pos, ex["alive"],
                         not eng._mark_players, st.level, hid.aggression, hid.bias, hid.depth, ex["bot_pos"],
                         ex["bot_heading"], ex["bot_alive"], STRAIGHT_BONUS, BIAS_BONUS, target, heading)


#: (5, 3) the heading after going straight, turning left, turning right from each heading
TURNS = np.stack([np.arange(5), LEFT, RIGHT], axis=1)


def _bot_choice(eng: Engine, st: State, aggression: np.ndarray, bias: np.ndarray, depth: np.ndarray,
                pos: np.ndarray, heading: np.ndarray, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(target, heading)`` (n,) of n living bots at flat cells ``pos`` with ``heading`` in
    slots ``slot`` and the given styles (see the module docstring), one compiled loop over the
    bots (``_cycles_kernels.bot_choice``)."""
    n = len(pos)
    target, chosen = np.empty(n, np.int64), np.empty(n, np.int64)
    _kernels().bot_choice(st.cells.reshape(-1), eng._moves, MOVES, TURNS, *_rowcol(eng), st.pos, st.extra["alive"],
                          not eng._mark_players, np.asarray(aggression, np.float64),
                          np.asarray(bias, np.float64), np.asarray(depth, np.int64), np.asarray(pos, np.int64),
                          np.asarray(heading, np.int64), np.asarray(slot, np.int64), STRAIGHT_BONUS, BIAS_BONUS,
                          target, chosen)
    return target, chosen


def _rowcol(eng: Engine) -> tuple[np.ndarray, np.ndarray]:
    """(Hp * Wp,) the padded row and column of each cell of a slot (kept on the engine)."""
    rowcol = eng.__dict__.get("_cycles_rowcol")
    if rowcol is None:
        rowcol = eng.__dict__["_cycles_rowcol"] = np.divmod(np.arange(eng.hp * eng.wp, dtype=np.int64), eng.wp)
    return rowcol


@functools.cache
def _kernels():
    """The compiled loops of the step (imported on first use, so that importing the games does
    not wait for numba)."""
    from . import _cycles_kernels

    return _cycles_kernels


def straight_on(eng: Engine, st: State) -> np.ndarray | None:
    """(B, bots) the cell ahead of every living bot (what a planner that does not know the bots'
    styles expects), its own cell for a crashed one; None without bots."""
    if not bots_of(eng):
        return None
    ex = st.extra
    ahead = ex["bot_pos"] + eng._moves.take(ex["bot_heading"])
    return np.where(ex["bot_alive"], ahead, ex["bot_pos"])


# ---------------------------------------------------------------------------------------------
# planning: flood fills over bit rows


def pack_rows(free: np.ndarray) -> np.ndarray:
    """(..., H, W) bool -> (..., H) uint64, bit ``x`` of row ``y`` set where ``free[y, x]``
    (W <= 64)."""
    w = free.shape[-1]
    if w > 64:
        raise ValueError(f"a map row of {w} cells does not fit 64 bits")
    packed = np.packbits(free, axis=-1, bitorder="little")  # (..., H, ceil(W / 8)) uint8
    out = np.zeros(free.shape[:-1] + (8,), dtype=np.uint8)
    out[..., : packed.shape[-1]] = packed
    return out.view("<u8")[..., 0].astype(np.uint64)


def _grow(front: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` = the four neighbours of the cells of ``front`` (bit rows on the last axis)."""
    one = np.uint64(1)
    np.left_shift(front, one, out=out)
    out |= front >> one
    out[..., 1:] |= front[..., :-1]
    out[..., :-1] |= front[..., 1:]
    return out


def flood(free: np.ndarray, start: np.ndarray, wanted: np.ndarray | None = None,
          limit: int | None = None, rival: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flood fills over bit rows. ``free`` (B, H) uint64 (as :func:`pack_rows`), ``start``
    (B, M, H) uint64 the start cells of M fills per slot (empty where a fill does not start),
    ``wanted`` (B, H) uint64 cells to find. Returns ``(area, dist)``, each (B, M) int64: the
    cells reachable from the start through free cells (start included; at most ``limit``
    steps away, if given), and the fewest steps to a wanted cell (``FAR`` where none is
    reached). With ``rival`` (B, H) uint64, the cells rivals start from, a fill enters only
    the cells it reaches before every rival (a Voronoi territory; rivals win ties). The map
    must be framed by cells that are not free (no fill leaves it)."""
    b, m, h = start.shape
    everything = start.reshape(b * m, h).copy()  # what each fill reached (rows written back)
    dist = np.full(b * m, FAR, dtype=np.int64)
    rows = np.arange(b * m)
    slot = rows // m
    reached = everything.copy()  # the fills still growing, one row each
    front = everything.copy()
    fr = free[slot]
    wb = wanted[slot] if wanted is not None else None
    if wb is not None:
        dist[((front & wb) != 0).any(-1)] = 0
    if rival is not None:
        theirs = rival.copy()
        rival_front = rival.copy()
        rival_grown = np.empty_like(rival)
    step = 0
    grown = np.empty_like(front)
    while len(rows) and (limit is None or step < limit):
        step += 1
        _grow(front, grown)
        grown &= fr
        grown &= ~reached
        if rival is not None:
            _grow(rival_front, rival_grown)
            rival_grown &= free
            rival_grown &= ~theirs
            rival_front, rival_grown = rival_grown, rival_front
            theirs |= rival_front
            grown &= ~theirs[slot]
        front, grown = grown, front
        reached |= front
        growing = front.any(-1)
        if wb is not None:
            hit = growing & ((front & wb) != 0).any(-1)
            first = rows[hit][dist[rows[hit]] == FAR]
            dist[first] = step
        kept = int(growing.sum())
        if kept < 0.75 * len(rows):  # leave the fills that stopped growing behind
            everything[rows] = reached
            rows, slot, reached, front, fr = rows[growing], slot[growing], reached[growing], front[growing], fr[growing]
            grown = np.empty_like(front)
            if wb is not None:
                wb = wb[growing]
    everything[rows] = reached
    area = np.bitwise_count(everything).sum(-1).astype(np.int64).reshape(b, m)
    return area, dist.reshape(b, m)


def choose(area: np.ndarray, dist: np.ndarray, valid: np.ndarray, heading: np.ndarray,
           remaining: np.ndarray) -> np.ndarray:
    """(B,) the direction (1..4) among the ``valid`` ones (B, 4; columns are directions 1..4)
    whose ``area`` covers the ``remaining`` steps (else those of the largest area), the nearest
    to a wanted cell (``dist``), then straight on (``heading``), then the largest area, then
    the first; ``heading`` where none is valid (a crash)."""
    best = np.where(valid, area, -1).max(1)
    need = np.minimum(remaining, best)[:, None]
    enough = valid & (area >= need)
    straight = np.arange(1, 5)[None, :] == heading[:, None]
    d = np.minimum(dist, FAR)
    key = np.where(enough, (FAR - d) * 4096 * 2 + straight * 4096 + np.minimum(area, 4095), -1)
    pick = key.argmax(1) + 1
    return np.where(valid.any(1), pick, heading)


def plan(eng: Engine, st: State, player: int, enter: np.ndarray, seek: np.ndarray,
         bot_next: np.ndarray | None, blocked: np.ndarray | None = None) -> np.ndarray:
    """(B,) actions of ``player``: :func:`choose` over the four directions, with the free
    cells those of bare floor and of the pads it may ``enter`` (B, K), the cells of every
    player and the bots' next cells ``bot_next`` (B, bots) not free, and the alive pads it
    ``seek``s (B, K) wanted. ``blocked`` (B, Hp * Wp) bool: more cells that are not free."""
    b = st.batch
    flat = st.cells.reshape(b, -1)
    base = eng._base
    tile = flat & T.TILE_MASK
    free = ((tile == T.FLOOR) | (tile == T.BOOST)) & (flat & T.PLAYER == 0)
    rows = np.arange(b)
    cells = eng._items0[st.level]  # (B, K) local padded cells of the pads
    pads = st.alive
    no = pads & ~enter
    r, k = np.nonzero(no)
    free[r, cells[r, k]] = False
    free[rows[:, None], st.pos - base[:, None]] = False
    if bot_next is not None:
        free[rows[:, None], bot_next - base[:, None]] = False
    if blocked is not None:
        free &= ~blocked
    wanted = np.zeros_like(free)
    r, k = np.nonzero(pads & seek)
    wanted[r, cells[r, k]] = True
    rival = None
    if bot_next is not None:
        rival = np.zeros_like(free)
        live = st.extra["bot_alive"]
        r, j = np.nonzero(live)
        rival[r, bot_next[r, j] - base[r]] = True
    return plan_on(eng, free, wanted, st.pos[:, player] - base, st.extra["heading"][:, player],
                   st.t, eng.limit - st.t, st.extra["alive"][:, player], rival)


def plan_on(eng: Engine, free: np.ndarray, wanted: np.ndarray, here: np.ndarray, heading: np.ndarray,
            t: np.ndarray, remaining: np.ndarray, alive: np.ndarray | None = None,
            rival: np.ndarray | None = None) -> np.ndarray:
    """:func:`choose` for a player at local padded cell ``here`` (B,) with ``heading`` at step
    ``t`` on the cells ``free`` (B, Hp * Wp) bool, seeking ``wanted`` (B, Hp * Wp) bool; with
    ``rival`` (B, Hp * Wp) bool (the cells rivals start from), areas are Voronoi territories."""
    b = len(here)
    rows = np.arange(b)
    hp, wp = eng.hp, eng.wp
    moves = eng._moves[1:]
    nxt = here[:, None] + moves[None, :]  # (B, 4)
    valid = free[rows[:, None], nxt]
    valid &= ~((t > 0)[:, None] & (np.arange(1, 5)[None, :] == REVERSE.take(heading)[:, None]))
    free_rows = pack_rows(free.reshape(b, hp, wp))
    start = np.zeros((b, 4, hp), dtype=np.uint64)
    y, x = np.divmod(nxt, wp)
    start[rows[:, None], np.arange(4)[None, :], y] = np.where(
        valid, np.left_shift(np.uint64(1), x.astype(np.uint64)), np.uint64(0))
    want_rows = pack_rows(wanted.reshape(b, hp, wp)) if wanted.any() else None
    rival_rows = pack_rows(rival.reshape(b, hp, wp)) if rival is not None else None
    area, dist = flood(free_rows, start, want_rows, limit=int(np.max(remaining)) if len(remaining) else 0,
                       rival=rival_rows)
    act = choose(area, dist, valid, heading, remaining)
    if alive is not None:
        act = np.where(alive, act, 0)
    return act


def window_survivor(grid: np.ndarray, rng: np.random.Generator, previous: np.ndarray) -> np.ndarray:
    """(B,) the scripted flood-fill survivor's moves (see :meth:`Cycles.scripted`)."""
    b, v = grid.shape[0], grid.shape[1]
    c = v // 2
    free = (grid[..., T.FLOOR] > 0) & (grid[..., T.NUM_CHANNELS - 1] == 0)
    free[:, c, c] = False
    padded = np.zeros((b, v + 2, v + 2), dtype=bool)
    padded[:, 1:-1, 1:-1] = free
    area = np.zeros((b, 4), dtype=np.int64)
    for a, (dy, dx) in enumerate(MOVES[1:]):
        reach = np.zeros_like(padded)
        y, x = c + 1 + dy, c + 1 + dx
        reach[:, y, x] = padded[:, y, x]
        for _ in range(v * v):
            grown = reach.copy()
            grown[:, 1:] |= reach[:, :-1]
            grown[:, :-1] |= reach[:, 1:]
            grown[:, :, 1:] |= reach[:, :, :-1]
            grown[:, :, :-1] |= reach[:, :, 1:]
            grown &= padded
            if np.array_equal(grown, reach):
                break
            reach = grown
        area[:, a] = reach.sum((1, 2))
    allowed = np.ones((b, 4), dtype=bool)
    moving = previous > 0
    allowed[np.flatnonzero(moving), REVERSE[previous[moving]] - 1] = False
    straight = np.arange(1, 5)[None, :] == previous[:, None]
    key = np.where(allowed & (area > 0), area * 4 + straight * 2 + rng.random((b, 4)), -1.0)
    return np.where(key.max(1) >= 0, key.argmax(1) + 1, np.where(moving, previous, 1 + rng.integers(0, 4, b)))
