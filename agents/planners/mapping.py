"""A map built from observation windows, and shortest paths over it, for planners that
remember what their windows have shown.

A map holds one *kind* per cell of the map padded by the view radius (as the engine pads
it): ``UNKNOWN``, ``FLOOR``, ``WALL``, or a kind of the caller's own (any value above
``WALL``), which counts as walkable. Cells are addressed by flat index into the padded map,
one row per slot. :func:`clear_map` and :func:`map_window` build it; :func:`shortest_paths`
and :func:`frontier` search it. :class:`MapPlanner` is what every agent that keeps such a map
does alike.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from metarena.games import tiles as T
from metarena.games.engine import MOVES, SCALAR_NAMES
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_ACTION

#: what a map knows of a cell; kinds above WALL are the caller's own and count as walkable
UNKNOWN, FLOOR, WALL = 0, 1, 2


def clear_map(known: np.ndarray, slots, radius: int) -> None:
    """Forget ``slots`` of ``known`` (n, Hp, Wp): the padding of width ``radius`` round the map
    is wall, the map itself unknown."""
    known[slots] = WALL
    known[slots, radius:-radius, radius:-radius] = UNKNOWN


class TrialMemory:
    """A planner whose memory is a dict of per-slot arrays, made at its first step and kept from
    episode to episode of a trial (where a trial starts, ``act`` clears its rows)."""

    def begin_trial(self, n: int) -> dict:
        return {}

    def end_episode(self, memory: dict, slots: np.ndarray) -> dict:
        return memory


class MapPlanner:
    """What every planner that keeps a map of its windows does alike, as an agent (see
    ``metarena.agents.base``): its memory is a dict of arrays with one row per slot, made at its first
    step (which tells the map's size), kept from episode to episode and cleared where a trial
    starts; ``reset_memory`` (the ``--memory-reset`` ablation) forgets the given slots.
    Subclasses define ``_arrays`` (their own arrays beside the map), ``_clear`` and ``act``,
    which begins with :meth:`begin_step`."""

    name = "map-planner"

    def begin_trial(self, n: int) -> dict:
        return {"n": n}

    def end_episode(self, memory: dict, slots: np.ndarray) -> dict:
        return memory

    def reset_memory(self, memory: dict, slots: np.ndarray) -> dict:
        if "map" in memory:
            memory = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in memory.items()}
            self._clear(memory, slots)
        return memory

    def begin_step(self, obs, memory: dict, ctx) -> np.ndarray:
        """The start of every ``act``: make the memory at the first step (``map`` padded by the
        view radius, ``radius`` and the subclass's arrays; of ``ctx`` only the map's size is
        read), clear it where a trial starts, and return the trial features."""
        if "map" not in memory:
            n, r = obs.grid.shape[0], obs.grid.shape[1] // 2
            hp, wp = ctx.engine.height + 2 * r, ctx.engine.width + 2 * r
            memory.update(radius=r, map=np.empty((n, hp, wp), np.int8), **self._arrays(n, hp, wp))
            self._clear(memory, slice(None))
        trial = obs.trial
        self._clear(memory, np.flatnonzero((trial[:, EPISODE_START] > 0) & (trial[:, EPISODE_INDEX] == 0)))
        return trial

    def _arrays(self, n: int, hp: int, wp: int) -> dict:
        raise NotImplementedError

    def _clear(self, memory: dict, slots) -> None:
        raise NotImplementedError


class Window(NamedTuple):
    """Where a window lies on the padded map (see :func:`map_window`)."""

    here: np.ndarray  # (n,) flat padded cell of the agent (the window's centre)
    cells: np.ndarray  # (n, V * V) flat padded cells of the window, row-major
    tile: np.ndarray  # (n, V * V) the tile each of them shows (an index below tiles.NUM_TILES)


def map_window(known: np.ndarray, grid: np.ndarray, scalars: np.ndarray, height: int, width: int,
               kind_of_tile: np.ndarray) -> Window:
    """Write what the windows ``grid`` (n, V, V, C) show into the maps ``known`` (n, Hp, Wp),
    padded by the view radius ``V // 2``: each cell gets ``kind_of_tile[tile]``.

    The agent's cell comes from its ``row`` and ``col`` scalars (``scalars`` (n, S), in [0, 1]
    over a map of ``height`` x ``width``), so this needs nothing but the observation and the
    map's size. Returns the :class:`Window`: the agent's cell, the window's cells and tiles."""
    n, v = grid.shape[0], grid.shape[1]
    r = v // 2
    wp = known.shape[2]
    row, col = SCALAR_NAMES.index("row"), SCALAR_NAMES.index("col")
    y = np.rint(scalars[:, row] * max(1, height - 1)).astype(np.int64) + r
    x = np.rint(scalars[:, col] * max(1, width - 1)).astype(np.int64) + r
    offsets = (np.arange(-r, r + 1)[:, None] * wp + np.arange(-r, r + 1)[None, :]).ravel()
    here = y * wp + x
    cells = here[:, None] + offsets[None, :]
    tile = grid[..., : T.NUM_TILES].reshape(n, v * v, -1).argmax(-1)
    known.reshape(n, -1)[np.arange(n)[:, None], cells] = kind_of_tile[tile]
    return Window(here, cells, tile)


def entered(known: np.ndarray, here: np.ndarray, trial: np.ndarray) -> np.ndarray:
    """(n,) the flat padded cell of ``known`` (n, Hp, Wp) the previous step entered: from ``here``
    (n,), where it stood then (-1: no previous step in this trial), by the previous action of the
    ``trial`` features (n, E) -- whoever chose it -- a move into a wall known on the map being
    cancelled; -1 where ``here`` is. Reading the action from the features, not from its own
    choice, a planner plays on from any actions (``follows``: it can label another player's steps,
    see ``metarena.agents.imitation``)."""
    n, wp = known.shape[0], known.shape[2]
    moved = here >= 0
    action = trial[:, PREV_ACTION].argmax(1)
    enter = np.where(moved, here + MOVES[action, 0] * wp + MOVES[action, 1], 0)
    enter = np.where(known.reshape(n, -1)[np.arange(n), enter] == WALL, here, enter)
    return np.where(moved, enter, -1)


def walkable(known: np.ndarray) -> np.ndarray:
    """Cells of ``known`` that are known and not wall."""
    return (known != UNKNOWN) & (known != WALL)


def frontier(known: np.ndarray) -> np.ndarray:
    """(n, Hp, Wp) bool: known walkable cells with an unknown neighbour (up, down, left, right)."""
    unknown = known == UNKNOWN
    beside = np.zeros_like(unknown)
    beside[:, 1:] |= unknown[:, :-1]
    beside[:, :-1] |= unknown[:, 1:]
    beside[:, :, 1:] |= unknown[:, :, :-1]
    beside[:, :, :-1] |= unknown[:, :, 1:]
    return beside & walkable(known)


def shortest_paths(free: np.ndarray, here: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first search from the flat cells ``here`` (n,) over the cells ``free`` (n, H, W)
    bool, all slots at once (four-neighbour moves, ``MOVES``).

    Returns ``(dist, first)``, both (n, H * W) int64: the steps of a shortest path from ``here``
    to every cell (int64 max where unreached: cells not free, or cut off; 0 at ``here``, which
    need not be free), and the first move (an action index into ``MOVES``) of such a path (0 at
    ``here`` and where unreached). Where shortest paths tie, the tie is broken from the end of
    the path: a cell takes the first move of the neighbour one step nearer that enters it by the
    earliest action in ``MOVES`` order (a cell beside ``here`` takes the move that enters it).
    ``free`` must be False on its border (a map padded with wall is), so that no path leaves it."""
    n, hp, wp = free.shape
    far = np.iinfo(np.int64).max
    dist = np.full((n, hp, wp), -1, dtype=np.int32)  # -1: unreached (far in the result)
    first = np.zeros((n, hp, wp), dtype=np.int8)
    rows = np.arange(n)
    y, x = np.divmod(here, wp)
    dist[rows, y, x] = 0
    layer = np.zeros((n, hp, wp), dtype=bool)
    for a in range(len(MOVES) - 1, 0, -1):  # the earliest action is written last
        ny, nx = y + MOVES[a, 0], x + MOVES[a, 1]
        ok = free[rows, ny, nx] & (dist[rows, ny, nx] != 0)
        first[rows[ok], ny[ok], nx[ok]] = a
        layer[rows[ok], ny[ok], nx[ok]] = True
    open_ = free.copy()  # free cells not reached yet
    open_[rows, y, x] = False
    open_ ^= layer  # the first layer is free and not here
    nxt = np.empty_like(layer)
    src = np.empty_like(first)  # read only where written in the same layer (at the cells of nxt)
    d = 1
    while layer.any():
        np.copyto(dist, d, where=layer)
        nxt[:] = False
        # a cell of the next layer takes the first move of a neighbour in this layer
        for a in range(len(MOVES) - 1, 0, -1):
            dy, dx = int(MOVES[a, 0]), int(MOVES[a, 1])
            # the neighbour of cell c in direction -move(a) is c - move(a): c is entered by move a
            to = (slice(None), slice(max(dy, 0), hp + min(dy, 0)), slice(max(dx, 0), wp + min(dx, 0)))
            fr = (slice(None), slice(max(-dy, 0), hp + min(-dy, 0)), slice(max(-dx, 0), wp + min(-dx, 0)))
            np.copyto(src[to], first[fr], where=layer[fr])
            nxt[to] |= layer[fr]
        nxt &= open_
        open_ ^= nxt  # nxt is a part of open_: reached now
        np.copyto(first, src, where=nxt)
        layer, nxt = nxt, layer
        d += 1
    out = dist.astype(np.int64)
    out[dist < 0] = far
    return out.reshape(n, -1), first.astype(np.int64).reshape(n, -1)


def shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by (dy, dx) on its last two axes: out[..., i, j] = a[..., i - dy, j - dx], zero
    where that falls outside."""
    out = np.zeros_like(a)
    h, w = a.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        a[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out
