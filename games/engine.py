"""The batched engine core: levels, state, movement, observation, autoreset.

One :class:`Engine` runs B level slots x P players at once, in numpy, with no
Python loop over levels in ``step`` or ``observe`` (a loop over at most four
players is allowed). A game (``games/treasure.py``, ``games/coinrush.py``)
contributes only what is its own: how a level is generated, what touching an
item does, and its reference planners. Everything else lives here, once.

Positions are stored as flat indices into ``State.cells`` (B x Hp x Wp, the map
padded with walls by the view radius), so a move is one addition and the
observation window is a read of cell codes at fixed offsets, each turned into its
one-hot channels by a 256-row table (one compiled loop, ``games/_observe_kernel.py``,
or two numpy ``take``s).
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from . import tiles as T
from .maze import UNREACHABLE, bfs
from .variant import Param, Variant, split_seed

#: version of the observation and action spec (tiles, view, scalars, actions); checkpoints record it
SPEC_VERSION = 1
VIEW = 5  #: side of the egocentric observation window (odd): the player sees two cells around it
MAX_PLAYERS = 4
NUM_ACTIONS = 5
ACTION_NAMES = ("stay", "up", "down", "left", "right")
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)
BLOCKS = np.zeros(256, dtype=bool)  #: cell codes that a move cannot enter
BLOCKS[[T.WALL, T.WALL | T.PLAYER, T.TRAIL, T.TRAIL | T.PLAYER]] = True  # a light trail (cycles) is a wall
SCALAR_NAMES = ("time_left", "score", "row", "col")
REFERENCE_POLICIES = ("oracle", "uninformed", "scripted", "random", "stay")


# ---------------------------------------------------------------------------------------------
# levels


@dataclass
class Level:
    """One concrete level: a pure function of ``(game, variant, seed)``."""

    game: str
    variant: str
    seed: int
    tiles: np.ndarray  # (H, W) uint8 tile codes at episode start (walls, floor, items)
    spawn: np.ndarray  # (MAX_PLAYERS, 2) int: start cell of each player
    item_pos: np.ndarray  # (K, 2) int: cell of each item (chest, coin, ...)
    item_value: np.ndarray  # (K,) float32: hidden: what touching the item pays

    @property
    def walls(self) -> np.ndarray:
        return self.tiles == T.WALL


@dataclass
class LevelBatch:
    """Levels of one game and variant stacked on axis 0, plus what the engine derives."""

    game: str
    variant: str
    seeds: np.ndarray  # (N,) int64
    tiles: np.ndarray  # (N, H, W) uint8
    spawn: np.ndarray  # (N, MAX_PLAYERS, 2)
    item_pos: np.ndarray  # (N, K, 2)
    item_value: np.ndarray  # (N, K) float32
    _dist: np.ndarray | None = field(default=None, repr=False)
    _safe_dist: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def stack(cls, levels: Sequence[Level]) -> "LevelBatch":
        if not levels:
            raise ValueError("a LevelBatch needs at least one level")
        return cls(
            game=levels[0].game,
            variant=levels[0].variant,
            seeds=np.array([lv.seed for lv in levels], dtype=np.int64),
            tiles=np.stack([lv.tiles for lv in levels]),
            spawn=np.stack([lv.spawn for lv in levels]).astype(np.int64),
            item_pos=np.stack([lv.item_pos for lv in levels]).astype(np.int64),
            item_value=np.stack([lv.item_value for lv in levels]).astype(np.float32),
        )

    def __len__(self) -> int:
        return len(self.seeds)

    @property
    def shape(self) -> tuple[int, int]:
        return self.tiles.shape[1], self.tiles.shape[2]

    def level(self, i: int) -> Level:
        return Level(self.game, self.variant, int(self.seeds[i]), self.tiles[i], self.spawn[i],
                     self.item_pos[i], self.item_value[i])

    def _maps(self, safe: bool) -> np.ndarray:
        n, k = self.item_pos.shape[:2]
        h, w = self.shape
        walls = self.tiles == T.WALL
        blocked = None
        if safe and (self.item_value < 0).any():
            blocked = np.zeros((n, h, w), dtype=bool)
            rows, items = np.nonzero(self.item_value < 0)
            blocked[rows, self.item_pos[rows, items, 0], self.item_pos[rows, items, 1]] = True
        if k >= 6:  # many items: every level's maps at once in numpy (the same distances)
            out = np.empty((n, k, h, w), dtype=np.int16)
            for start in range(0, n, 256):
                part = slice(start, start + 256)
                out[part] = _bfs_many(walls[part], self.item_pos[part], None if blocked is None else blocked[part])
            return out
        out = np.empty((n, k, h, w), dtype=np.int16)
        for i in range(n):
            block = None if blocked is None or not blocked[i].any() else blocked[i]
            for j, (y, x) in enumerate(self.item_pos[i]):
                out[i, j] = bfs(walls[i], (int(y), int(x)), block)
        return out

    @property
    def dist(self) -> np.ndarray:
        """(N, K, H, W) int16: steps from every cell to each item (computed on first use)."""
        if self._dist is None:
            self._dist = self._maps(safe=False)
        return self._dist

    @property
    def safe_dist(self) -> np.ndarray:
        """Like :attr:`dist`, but paths never cross an item of negative value (the oracle's maps)."""
        if self._safe_dist is None:
            self._safe_dist = self._maps(safe=True) if (self.item_value < 0).any() else self.dist
        return self._safe_dist


def _bfs_many(walls: np.ndarray, sources: np.ndarray, blocked: np.ndarray | None) -> np.ndarray:
    """(N, K, H, W) int16: ``maze.bfs`` on each of N maps ``walls`` (N, H, W) from each of its
    ``sources`` (N, K, 2), all at once, layer by layer in numpy (the same distances: steps from
    the source through cells neither wall nor ``blocked`` (N, H, W), 0 at the source even where
    it is blocked, ``UNREACHABLE`` where no path is)."""
    n, h, w = walls.shape
    k = sources.shape[1]
    free = ~walls if blocked is None else ~(walls | blocked)
    free = free[:, None]
    dist = np.full((n, k, h, w), UNREACHABLE, dtype=np.int16)
    front = np.zeros((n, k, h, w), dtype=bool)
    front[np.arange(n)[:, None], np.arange(k)[None, :], sources[..., 0], sources[..., 1]] = True
    dist[front] = 0
    seen = front.copy()
    grown = np.empty_like(front)
    d = 0
    while front.any():
        d += 1
        grown[:] = False
        grown[..., 1:, :] |= front[..., :-1, :]
        grown[..., :-1, :] |= front[..., 1:, :]
        grown[..., 1:] |= front[..., :-1]
        grown[..., :-1] |= front[..., 1:]
        grown &= free
        grown &= ~seen
        dist[grown] = d
        seen |= grown
        front, grown = grown, front
    return dist


# ---------------------------------------------------------------------------------------------
# games


@dataclass(frozen=True)
class GameSpec:
    """What a game declares up front; the arena and the interfaces read this, never isinstance."""

    name: str
    title: str
    summary: str
    hidden: str  # what each level hides
    adaptation: str  # what adapting means
    min_players: int
    max_players: int
    default_variant: str
    params: tuple[Param, ...]
    terminates: bool  # True if an episode can end before the step limit


class Game:
    """Base class of a game: generation, item rules and reference planners.

    A subclass sets ``spec`` and implements ``generate`` and ``touch``; it may
    override ``start`` (at every episode start), ``dynamics`` (once per step, before the
    moves), ``tick`` (once per step, after the moves, before touches), ``settle`` (once per
    step, after the touches) and the planners.

    ``start`` is the hook for state of a game's own: arrays it keeps in ``st.extra`` (one
    row per slot), set up again at every episode start (trial reset and restart) so that
    nothing of an earlier episode survives (``cycles``: headings, opponents).

    ``dynamics`` is the hook for hidden per-level dynamics (``drift``): it turns the
    actions the players chose into the moves the engine applies (both (B, P) ints in
    [0, 5)); the default applies the chosen actions unchanged. ``st.last_action`` always
    keeps the chosen actions (what the players see of their own play).
    """

    spec: GameSpec

    def rng(self, seed: int) -> np.random.Generator:
        """The one generator a level is made from: a function of game and seed only."""
        return np.random.default_rng([int(seed), zlib.crc32(self.spec.name.encode())])

    def generate(self, variant: Variant, seed: int) -> Level:  # pragma: no cover - abstract
        raise NotImplementedError

    def step_limit(self, variant: Variant) -> int:
        """Steps per episode: proportional to the map's area."""
        return max(1, int(round(variant.steps_per_cell * variant.size * variant.size)))

    def touch(self, eng: "Engine", st: "State", player: int, slots: np.ndarray, item: np.ndarray,
              rewards: np.ndarray, terminated: np.ndarray) -> None:  # pragma: no cover - abstract
        """Player ``player`` has stepped onto alive item ``item[i]`` in slot ``slots[i]`` (one
        item per player and step): pay ``rewards[slots, player]``, set ``terminated[slots]``,
        update ``st`` (tiles through ``eng.set_tiles``, ``alive``, ``touched`` if used).

        An item is alive exactly while its cell shows the item's tile: taking an item must
        change the tile (an open chest, bare floor) and bringing it back must restore it."""
        raise NotImplementedError

    def start(self, eng: "Engine", st: "State", slots: np.ndarray) -> None:
        """Called at the end of every episode start in ``slots`` (after the engine reset its own
        state there): (re)initialise the game's own arrays in ``st.extra`` for those slots, and
        any cells that differ from the level's tiles at the start. Must leave the same state
        for the same level every time (the first observation is a function of the level).
        Default: nothing."""

    def settle(self, eng: "Engine", st: "State", rewards: np.ndarray, terminated: np.ndarray) -> None:
        """Called once per step after the touches, before truncation is decided: rewards and
        terminations that are no item's (``cycles``' reward for staying alive) go into
        ``rewards`` (B, P) and ``terminated`` (B,). Default: nothing."""

    def dynamics(self, eng: "Engine", st: "State", actions: np.ndarray) -> np.ndarray:
        """(B, P) the moves the engine applies for the chosen ``actions`` (B, P), called at the
        start of every step (``st.t`` still counts the steps before it). Default: the actions."""
        return actions

    def tick(self, eng: "Engine", st: "State") -> None:
        """Called once per step after the players moved, before they touch items (respawns).
        A tick may move players further (``drift``'s wind): it sets ``st.pos`` and, with
        several players, moves the PLAYER bits with them; touches are read at ``st.pos``."""

    def change_episode(self, levels: LevelBatch) -> np.ndarray | None:
        """(N,) int: for each level, the episode index (0-based) of the trial from which its hidden
        factor is redrawn without notice (``drift/shift``), or None where nothing ever changes
        (the default). ``metarena eval`` reports the episodes after the change from this."""
        return None

    # reference planners: (B,) actions for one player ------------------------------------------
    def oracle(self, eng: "Engine", st: "State", player: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def uninformed(self, eng: "Engine", st: "State", player: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def scripted(self, grid: np.ndarray, rng: np.random.Generator,
                 previous: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def policy(self, kind: str, eng: "Engine", st: "State", player: int, grid: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        """(B,) actions of a reference policy for ``player``: one of ``REFERENCE_POLICIES``.
        ``grid`` is that player's observation window (B, V, V, C)."""
        if kind == "random":
            return rng.integers(0, NUM_ACTIONS, size=st.batch)
        if kind == "stay":
            return np.zeros(st.batch, dtype=np.int64)
        if kind == "scripted":
            return self.scripted(grid, rng, st.last_action[:, player])
        if kind == "oracle":
            return self.oracle(eng, st, player)
        if kind == "uninformed":
            return self.uninformed(eng, st, player)
        raise ValueError(f"unknown reference policy '{kind}'; choose from {', '.join(REFERENCE_POLICIES)}")

    def describe_level(self, level: Level) -> str:
        """One line naming what the level hides (for `levels show` and the viewer)."""
        return ""


# ---------------------------------------------------------------------------------------------
# state and engine


class Extra(dict):
    """A game's own per-slot arrays (name -> (B, ...) array), kept on :attr:`State.extra`.

    A plain dict by name that also indexes like the arrays it holds, so that a State is copied
    and put back field by field (``getattr(st, f)[rows].copy()``, ``getattr(st, f)[rows] =
    kept``): with any key but a name (a slice, an index array, a mask), ``extra[rows]`` is an
    Extra of every array's ``rows``, ``extra[rows] = other`` writes ``other``'s arrays into those
    rows, and ``extra.copy()`` copies every array."""

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(key)
        return Extra({k: v[key] for k, v in self.items()})

    def __setitem__(self, key, value):
        if isinstance(key, str):
            super().__setitem__(key, value)
            return
        for k, v in value.items():
            super().__getitem__(k)[key] = v

    def copy(self) -> "Extra":
        return Extra({k: np.array(v, copy=True) for k, v in self.items()})


@dataclass
class State:
    """Everything that changes during play, for B slots. Mutated in place by the engine."""

    level: np.ndarray  # (B,) index into the engine's LevelBatch
    cells: np.ndarray  # (B, Hp, Wp) uint8 tile codes; with several players, PLAYER bit where one stands
    pos: np.ndarray  # (B, P) int64 flat index into cells
    alive: np.ndarray  # (B, K) bool: the item is on the map
    timer: np.ndarray  # (B, K) int32: steps until a taken item comes back
    t: np.ndarray  # (B,) int32 steps taken this episode
    score: np.ndarray  # (B, P) float32 return so far this episode
    episode: np.ndarray  # (B,) int32 episode index within the trial
    touched: np.ndarray  # (B, P, NUM_TILES) bool: tile kinds each player has touched this episode
    level_offset: np.ndarray  # (B,) int64: maps a position to its cell in the pool's per-level arrays
    last_action: np.ndarray  # (B, P) int64: each player's previous action (0 at an episode's start)
    #: arrays of the game's own, one row per slot (name -> (B, ...) array), set up by ``Game.start``
    extra: Extra = field(default_factory=Extra)

    @property
    def batch(self) -> int:
        return self.pos.shape[0]

    @property
    def players(self) -> int:
        return self.pos.shape[1]


class Engine:
    """Runs ``batch`` slots of a game's levels with ``players`` players each.

    ``reset(st, slots, level)`` starts a new trial on the given pool levels;
    ``restart(st, slots)`` starts the next episode on the same level. Both
    leave everything as at the level's first step: nothing of an earlier
    episode survives.
    """

    def __init__(self, game: Game, variant: Variant, levels: LevelBatch, batch: int, players: int = 1,
                 view: int = VIEW, out: dict[str, np.ndarray] | None = None):
        spec = game.spec
        if not spec.min_players <= players <= spec.max_players:
            raise ValueError(
                f"{spec.name} takes {spec.min_players}-{spec.max_players} players, got {players}"
            )
        if view % 2 == 0 or view < 3:
            raise ValueError(f"the view must be an odd size >= 3, got {view}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.game, self.variant, self.levels = game, variant, levels
        self.batch, self.players, self.view = batch, players, view
        self.radius = r = view // 2
        self.height, self.width = levels.shape
        self.hp, self.wp = self.height + 2 * r, self.width + 2 * r
        self.limit = game.step_limit(variant)
        self.num_items = levels.item_pos.shape[1]
        # static, per pool level, in padded coordinates
        padded = np.full((len(levels), self.hp, self.wp), T.WALL, dtype=np.uint8)
        padded[:, r:r + self.height, r:r + self.width] = levels.tiles
        self._cells0 = padded
        self._spawn0 = (levels.spawn[..., 0] + r) * self.wp + levels.spawn[..., 1] + r  # (N, 4)
        self._items0 = (levels.item_pos[..., 0] + r) * self.wp + levels.item_pos[..., 1] + r  # (N, K)
        n, k = self._items0.shape
        self._cell_count = self.hp * self.wp
        # (N * Hp * Wp,) int16: index of the item on each cell of each pool level, -1 for none
        self._item_map = np.full((n, self._cell_count), -1, dtype=np.int16)
        self._item_map[np.arange(n)[:, None], self._items0] = np.arange(k)
        self._item_map = self._item_map.reshape(-1)
        #: (N, K) tile code of each item of each pool level
        self.item_tile = levels.tiles[np.arange(len(levels))[:, None], levels.item_pos[..., 0],
                                        levels.item_pos[..., 1]]  # (N, K)
        # (256,) bool: cell codes that show an alive item (an item shows its tile while alive)
        self._live_item = np.zeros(256, dtype=bool)
        kinds = np.unique(self.item_tile)
        self._live_item[kinds] = self._live_item[kinds | T.PLAYER] = True
        self._base = (np.arange(batch, dtype=np.int64) * self.hp * self.wp)
        self._time_left = (1.0 - np.arange(self.limit + 1) / self.limit).astype(np.float32)
        # (Hp * Wp, 4) float32: row and column of each padded cell, scaled to [0, 1] on the map
        rows, cols = np.divmod(np.arange(self.hp * self.wp), self.wp)
        # (columns 0 and 1 are placeholders for time left and score, filled per call)
        self._coords = np.stack([np.zeros(len(rows)), np.zeros(len(rows)), (rows - r) / max(1, self.height - 1),
                                 (cols - r) / max(1, self.width - 1)], axis=1).astype(np.float32)
        self._moves = np.array([0, -self.wp, self.wp, -1, 1], dtype=np.int64)
        # the PLAYER bit shows players to each other: alone, a player never sees one
        self._mark_players = players > 1
        self._pairs = list(itertools.combinations(range(players), 2))
        dy, dx = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
        self._window = (dy * self.wp + dx).ravel().astype(np.int64)
        # observation buffers, overwritten by every observe() of all slots
        cells = view * view
        self._idx = np.empty((batch, players, cells), dtype=np.int64)
        # ``out`` may hand in where observations go (e.g. shared memory): "grid", "scalars"
        out = out or {}
        grid_shape = (batch, players, view, view, T.NUM_CHANNELS)
        self._grid = out.get("grid", np.empty(grid_shape, dtype=np.uint8))
        self._scalars = out.get("scalars", np.empty((batch, players, len(SCALAR_NAMES)), dtype=np.float32))
        if self._grid.shape != grid_shape or self._scalars.shape != (batch, players, len(SCALAR_NAMES)):
            raise ValueError("observation buffers have the wrong shape")
        self._grid = self._grid.reshape(batch, players, cells, T.NUM_CHANNELS)
        self._codes = np.empty((batch, players, cells), dtype=np.uint8)
        self._center = cells // 2
        # the compiled path of observe() (games/_observe_kernel.py) stores 8-byte words
        self._words = None
        if T.NUM_CHANNELS == 16 and self._grid.ctypes.data % 8 == 0 and self._grid.flags.c_contiguous:
            self._words = self._grid.view(np.uint64)
        self._first: tuple[np.ndarray, np.ndarray] | None = None

    # -- state ------------------------------------------------------------------------------
    def new_state(self, level: np.ndarray) -> State:
        b, p, k = self.batch, self.players, self.num_items
        st = State(
            level=np.zeros(b, dtype=np.int64),
            cells=np.empty((b, self.hp, self.wp), dtype=np.uint8),
            pos=np.zeros((b, p), dtype=np.int64),
            alive=np.zeros((b, k), dtype=bool),
            timer=np.zeros((b, k), dtype=np.int32),
            t=np.zeros(b, dtype=np.int32),
            score=np.zeros((b, p), dtype=np.float32),
            episode=np.zeros(b, dtype=np.int32),
            touched=np.zeros((b, p, T.NUM_TILES), dtype=bool),
            level_offset=np.zeros(b, dtype=np.int64),
            last_action=np.zeros((b, p), dtype=np.int64),
        )
        self.reset(st, np.arange(b), np.asarray(level, dtype=np.int64))
        return st

    def reset(self, st: State, slots: np.ndarray, level: np.ndarray) -> None:
        """Start a new trial in ``slots`` on pool levels ``level``."""
        st.level[slots] = level
        st.episode[slots] = 0
        self._start(st, slots)

    def restart(self, st: State, slots: np.ndarray) -> None:
        """Start the next episode of the trial in ``slots`` (same level, fully reset)."""
        st.episode[slots] += 1
        self._start(st, slots)

    def _start(self, st: State, slots: np.ndarray) -> None:
        lv = st.level[slots]
        base = self._base[slots]
        st.cells[slots] = self._cells0[lv]
        st.pos[slots] = base[:, None] + self._spawn0[lv, : self.players]
        if self._mark_players:
            st.cells.reshape(-1)[st.pos[slots]] |= T.PLAYER
        st.level_offset[slots] = lv * self._cell_count - base
        st.alive[slots] = True
        st.timer[slots] = 0
        st.t[slots] = 0
        st.last_action[slots] = 0
        st.score[slots] = 0.0
        st.touched[slots] = False
        self.game.start(self, st, slots)

    # -- dynamics ---------------------------------------------------------------------------
    def step(self, st: State, actions: np.ndarray):
        """Advance every slot by one step. ``actions`` (B, P) ints in [0, 5).

        Returns ``(rewards (B, P) float32, terminated (B,) bool, truncated (B,) bool)``.
        Movement rule: a move into a wall is cancelled; with several players, a
        move into a cell another player will occupy (moving there or staying
        there) or a swap of two players is cancelled too, and cancellations
        cascade, so no two players ever share a cell and no player has priority.
        """
        actions = np.asarray(actions)
        if actions.shape != (self.batch, self.players):
            raise ValueError(f"actions must have shape {(self.batch, self.players)}, got {actions.shape}")
        if actions.min() < 0 or actions.max() >= NUM_ACTIONS:
            raise ValueError(f"actions must be integers in [0, {NUM_ACTIONS}): {', '.join(ACTION_NAMES)}")
        flat = st.cells.reshape(-1)
        old = st.pos
        target = old + self._moves.take(self.game.dynamics(self, st, actions))
        np.copyto(target, old, where=BLOCKS.take(flat.take(target)))
        if self._mark_players:
            target = self._resolve_collisions(old, target)
            flat[old] &= T.TILE_MASK
            flat[target] |= T.PLAYER
        st.pos = target
        st.last_action[:] = actions
        st.t += 1
        rewards = np.zeros((self.batch, self.players), dtype=np.float32)
        terminated = np.zeros(self.batch, dtype=bool)
        self.game.tick(self, st)
        target = st.pos  # where the players stand now (a tick may have moved them)
        here = self._live_item.take(flat.take(target))  # (B, P): a player arrived on an alive item
        if here.any():
            for p in range(self.players):
                slots = np.flatnonzero(here[:, p])
                if len(slots):
                    item = self._item_map.take(st.level_offset[slots] + target[slots, p]).astype(np.int64)
                    self.game.touch(self, st, p, slots, item, rewards, terminated)
        self.game.settle(self, st, rewards, terminated)
        truncated = (st.t >= self.limit) & ~terminated
        st.score += rewards
        return rewards, terminated, truncated

    def _resolve_collisions(self, old: np.ndarray, target: np.ndarray) -> np.ndarray:
        o, t = np.ascontiguousarray(old.T), target.T.copy()  # (P, B): one row per player
        for _ in range(self.players):  # each round can only cancel more moves
            cancel = np.zeros(t.shape, dtype=bool)
            for i, j in self._pairs:
                clash = (t[i] == t[j]) | ((t[i] == o[j]) & (t[j] == o[i]))  # same cell, or a swap
                cancel[i] |= clash
                cancel[j] |= clash
            cancel &= t != o
            if not cancel.any():
                break
            np.copyto(t, o, where=cancel)
        return np.ascontiguousarray(t.T)

    def item_cell(self, st: State, slots: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Flat cell index of ``item[i]`` in slot ``slots[i]``."""
        return self._items0[st.level[slots], item] + self._base[slots]

    def occupied(self, st: State, slots: np.ndarray, at: np.ndarray) -> np.ndarray:
        """(n,) bool: whether a player stands on flat cell ``at[i]`` of slot ``slots[i]``."""
        return (st.pos[slots] == at[:, None]).any(1)

    def set_tiles(self, st: State, at: np.ndarray, tile) -> None:
        """Put ``tile`` (a tile code, or one per cell) on flat cells ``at``; players stay."""
        flat = st.cells.reshape(-1)
        flat[at] = (flat[at] & T.PLAYER) | tile if self._mark_players else tile

    def mark_touched(self, st: State, player: int, slots: np.ndarray, item: np.ndarray) -> None:
        """Record that ``player`` touched the kind of ``item`` in ``slots`` (for the planners)."""
        kinds = self.item_tile[st.level[slots], item]
        st.touched[slots, player, kinds] = True

    # -- observation ------------------------------------------------------------------------
    def observe(self, st: State, slots: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(grid, scalars)`` of every slot, or of ``slots`` only.

        For every slot the grid is a buffer owned by the engine, overwritten by the next call:
        copy it to keep it. For ``slots`` the arrays are new.

        grid (B, P, V, V, C) uint8: one-hot tile channels centred on each player (the player
        itself is not marked). scalars (B, P, 4) float32: time left (1 at the start, 0 at the
        limit), own score this episode, row and column in [0, 1].
        """
        if slots is None and self._words is not None:
            _observe_kernel().window_grid(st.cells.reshape(-1), st.pos, self._window, self._center,
                                          T.TILE_MASK if self._mark_players else 0xFF, _CODE_WORDS, self._words)
            shape = st.pos.shape + (self.view, self.view, T.NUM_CHANNELS)
            return self._grid.reshape(shape), self.scalars(st, out=self._scalars)
        if slots is None:
            np.add(st.pos[..., None], self._window, out=self._idx)
            codes = st.cells.reshape(-1).take(self._idx, out=self._codes, mode="clip")
            out, scalars, shape = self._grid, self.scalars(st, out=self._scalars), st.pos.shape
        else:
            codes = st.cells.reshape(-1).take(st.pos[slots][..., None] + self._window)
            out, scalars, shape = None, self.scalars(st, slots), (len(slots), self.players)
        if self._mark_players:
            codes[..., self._center] &= T.TILE_MASK  # the observer is not marked
        grid = T.CHANNELS_OF_CODE.take(codes, axis=0, out=out, mode="clip")
        grid = grid.reshape(shape + (self.view, self.view, T.NUM_CHANNELS))
        return grid, scalars

    def first_observation(self, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(grid, scalars)`` at the start of an episode on pool levels ``level``: a function of
        the level alone, computed once for the whole pool on first use."""
        if self._first is None:
            n = len(self.levels)
            pool = Engine(self.game, self.variant, self.levels, n, self.players, self.view)
            grid, scalars = pool.observe(pool.new_state(np.arange(n)))
            self._first = grid.copy(), scalars.copy()
        return self._first[0][level], self._first[1][level]

    def scalars(self, st: State, slots: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        sel = slice(None) if slots is None else slots
        local = st.pos[sel] - self._base[sel, None]
        out = self._coords.take(local, axis=0, out=out, mode="clip")
        out[..., 0] = self._time_left.take(st.t[sel])[:, None]
        out[..., 1] = st.score[sel]
        return out

    def rowcol(self, st: State, flat: np.ndarray | None = None,
               slots: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Map (row, col) of flat positions (default: the players') of all slots or ``slots``."""
        flat = st.pos if flat is None else flat
        base = self._base if slots is None else self._base[slots]
        local = flat - base.reshape((-1,) + (1,) * (flat.ndim - 1))
        row, col = np.divmod(local, self.wp)
        return row - self.radius, col - self.radius

    # -- planning helpers shared by the reference agents -------------------------------------
    def descend(self, st: State, player: int, maps: np.ndarray, item: np.ndarray,
                leave: np.ndarray | None = None) -> np.ndarray:
        """(B,) actions stepping down pool distance maps ``maps`` (N, K, H, W) towards ``item``
        (B,) of each slot; "stay" on the item itself, except where ``leave`` (B,) is True: there
        the player steps to its nearest neighbour cell instead. Maps are framed by walls, so the
        four neighbours of a player's cell are always inside them."""
        row, col = self.rowcol(st)
        row, col = row[:, player], col[:, player]
        lv = st.level
        options = np.stack([maps[lv, item, row + dy, col + dx] for dy, dx in MOVES], axis=1)
        if self._mark_players:  # go round a player in the way where a path about as short exists
            ahead = st.cells.reshape(-1)[st.pos[:, player, None] + self._moves[1:]]
            options[:, 1:] += np.where(ahead & T.PLAYER, 3, 0).astype(options.dtype)
        act = np.where(options[:, 0] == 0, 0, options.argmin(1))
        if leave is not None:
            act = np.where(leave & (act == 0), options[:, 1:].argmin(1) + 1, act)
        return act

    def item_distance(self, st: State, player: int, maps: np.ndarray) -> np.ndarray:
        """(B, K) steps from the player to each item, read from pool maps (N, K, H, W)."""
        row, col = self.rowcol(st)
        k = np.arange(self.num_items)[None, :]
        return maps[st.level[:, None], k, row[:, player, None], col[:, player, None]]


#: (256, 2) uint64: the one-hot channels of each cell code as two 8-byte words (the compiled
#: path of :meth:`Engine.observe`)
_CODE_WORDS = np.ascontiguousarray(T.CHANNELS_OF_CODE).view(np.uint64) if T.NUM_CHANNELS == 16 else None


def _observe_kernel():
    """The compiled loop of :meth:`Engine.observe` (imported on first use, so that importing the
    games does not wait for numba)."""
    from . import _observe_kernel

    return _observe_kernel


def make_levels(game: Game, variant: Variant, seeds: Sequence[int] | np.ndarray,
                progress: Callable[[int], None] | None = None) -> LevelBatch:
    """Generate the levels of ``seeds`` (sequential code; levels are made once per pool)."""
    out = []
    for s in seeds:
        out.append(game.generate(variant, int(s)))
        if progress is not None:
            progress(1)
    return LevelBatch.stack(out)


def split_seeds(split: str, count: int, start: int = 0) -> np.ndarray:
    """Seeds of levels ``start .. start+count-1`` of a split."""
    return np.array([split_seed(split, i) for i in range(start, start + count)], dtype=np.int64)
