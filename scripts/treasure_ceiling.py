"""What a perfect in-context learner could score on treasure: planners with a perfect memory.

    python scripts/treasure_ceiling.py [--planner recall|window-recall|both] [--variant medium]
        [--levels 500] [--episodes 4] [--json]

Two planners, each measured by the same `evaluate` as `metarena eval` (same levels, oracle and
random):

``recall`` knows the map but not where the treasure is. In the first episode it plays as the
uninformed planner (the nearest closed chest, again and again). In every later episode of the
trial it walks straight to the treasure if an earlier episode found it; otherwise it opens the
nearest chest that no earlier episode found empty. It is the adaptation benchmark's ceiling for
an agent that explores as well as a map-knowing planner and forgets nothing.

``window-recall`` sees what a learned agent sees: its observation window, its row and column
and the trial features (the map's size is all it reads from the engine). It forgets nothing
within a trial: it maps every cell its windows have shown (wall, floor or chest), remembers the
chests found empty and, once an episode has paid, the cell its last step entered: the treasure.
It walks the shortest known path to the treasure if found; else to the nearest known chest not
found empty; else to the nearest frontier (a known free cell beside an unknown one). It is the
ceiling for an agent that sees only its window and forgets nothing, as far as this plain
exploration goes (nearest first, not an optimal search).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from agents.evaluate import evaluate, format_table
from games import tiles as T
from games.engine import MOVES, SCALAR_NAMES
from games.trial import EPISODE_INDEX, EPISODE_START, PREV_REWARD


class RecallPlanner:
    """Uninformed planner + a memory of the trial: chests found empty, and the treasure once found."""

    name = "recall"

    def begin_trial(self, n: int) -> dict:
        return {}

    def act(self, obs, memory: dict, ctx):
        eng, st = ctx.engine, ctx.state
        value = eng.levels.item_value[st.level]  # (B, chests): 1 for the treasure
        if not memory:
            memory.update(empty=np.zeros(value.shape, bool), found=np.zeros(st.batch, bool),
                          episode=st.episode.copy(), t=st.t.copy())
        # one player, so an episode that ended before the step limit ended on the treasure
        ended = st.episode != memory["episode"]
        memory["found"] |= ended & (memory["t"] + 1 < eng.limit)
        memory["episode"], memory["t"] = st.episode.copy(), st.t.copy()
        memory["empty"] |= ~st.alive & (value == 0)
        dist = eng.item_distance(st, ctx.player, eng.levels.dist).astype(np.int64)
        dist = np.where(st.alive & ~memory["empty"], dist, np.iinfo(np.int64).max)
        target = np.where(memory["found"], value.argmax(1), dist.argmin(1))
        return eng.descend(st, ctx.player, eng.levels.dist, target), memory

    def end_episode(self, memory: dict, slots: np.ndarray) -> dict:
        return memory


# what the window planner knows of a cell
UNKNOWN, FLOOR, WALL, CHEST = range(4)
KIND_OF_TILE = np.full(T.NUM_TILES, FLOOR, dtype=np.int8)  # anything else is walkable
KIND_OF_TILE[T.WALL] = WALL
KIND_OF_TILE[[T.CHEST, T.CHEST_OPEN]] = CHEST  # a chest is a chest, open or not: all close again
ROW, COL = SCALAR_NAMES.index("row"), SCALAR_NAMES.index("col")


class WindowRecallPlanner:
    """Sees only its window, its row and column and the trial features; maps and remembers
    everything within a trial. Of the engine it reads the map's height and width, nothing else.

    Memory (one row per slot, cells in map coordinates padded by the view radius): ``map``
    (UNKNOWN / FLOOR / WALL / CHEST), ``empty`` chests, ``treasure`` cell (-1 until an episode
    pays) and ``last``, the cell the previous step entered."""

    name = "window-recall"

    def begin_trial(self, n: int) -> dict:
        return {"n": n}  # the arrays come with the first step, which tells the map's size

    def reset_memory(self, memory: dict, slots: np.ndarray) -> dict:
        if "map" in memory:
            memory = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in memory.items()}
            self._clear(memory, slots)
        return memory

    def end_episode(self, memory: dict, slots: np.ndarray) -> dict:
        return memory

    def _clear(self, memory: dict, slots) -> None:
        r = memory["radius"]
        memory["map"][slots] = WALL  # the padding round the map is wall
        memory["map"][slots, r:-r, r:-r] = UNKNOWN
        memory["empty"][slots] = False
        memory["treasure"][slots] = -1
        memory["last"][slots] = -1

    def act(self, obs, memory: dict, ctx):
        grid, scalars = obs.grid, obs.scalars
        n, v = grid.shape[0], grid.shape[1]
        r = v // 2
        height, width = ctx.engine.height, ctx.engine.width  # the map's size: all it reads of ctx
        if "map" not in memory:
            hp, wp = height + 2 * r, width + 2 * r
            memory.update(radius=r, map=np.empty((n, hp, wp), np.int8), empty=np.empty((n, hp, wp), bool),
                          treasure=np.empty(n, np.int64), last=np.empty(n, np.int64))
            self._clear(memory, slice(None))
        known, empty = memory["map"], memory["empty"]
        hp, wp = known.shape[1:]
        flat_known, flat_empty = known.reshape(n, -1), empty.reshape(n, -1)
        rows = np.arange(n)

        # 1. episode boundaries: what the episode that just ended found
        trial = obs.trial
        if trial is None:
            raise ValueError("window-recall needs the trial features (previous reward, episode start)")
        start = trial[:, EPISODE_START] > 0
        new_trial = start & (trial[:, EPISODE_INDEX] == 0)  # also a trial after the last one
        self._clear(memory, np.flatnonzero(new_trial & (memory["last"] >= 0)))
        paid = trial[:, PREV_REWARD] > 0
        ended = start & (memory["last"] >= 0)
        found = ended & paid
        memory["treasure"][found] = memory["last"][found]
        lost = np.flatnonzero(ended & ~paid)
        on_chest = flat_known[lost, memory["last"][lost]] == CHEST  # its last step opened an empty chest
        flat_empty[lost[on_chest], memory["last"][lost[on_chest]]] = True

        # 2. map the window; a chest seen open is empty (only a chest without the treasure stays open)
        y = np.rint(scalars[:, ROW] * max(1, height - 1)).astype(np.int64) + r
        x = np.rint(scalars[:, COL] * max(1, width - 1)).astype(np.int64) + r
        wy = y[:, None, None] + np.arange(-r, r + 1)[None, :, None]
        wx = x[:, None, None] + np.arange(-r, r + 1)[None, None, :]
        tile = grid[..., : T.NUM_TILES].argmax(-1)
        known[rows[:, None, None], wy, wx] = KIND_OF_TILE[tile]
        empty[rows[:, None, None], wy, wx] |= tile == T.CHEST_OPEN

        # 3. breadth-first search over known walkable cells: distance and first move to each
        here = y * wp + x
        dist, first = _search(known, here)
        treasure = memory["treasure"]
        chest = (flat_known == CHEST) & ~flat_empty
        frontier = _frontier(known).reshape(n, -1)
        far = np.iinfo(np.int64).max
        target = np.full(n, -1, dtype=np.int64)
        for wanted in (chest, frontier):  # the nearest known closed chest, else the nearest frontier
            cost = np.where(wanted, dist, far)
            best = cost.argmin(1)  # ties: the first cell in row-major order
            pick = (target < 0) & (cost[rows, best] < far)
            target[pick] = best[pick]
        target = np.where(treasure >= 0, treasure, target)
        reach = (target >= 0) & (dist[rows, np.maximum(target, 0)] < far)
        action = np.where(reach, first[rows, np.maximum(target, 0)], 0).astype(np.int64)

        # 4. the cell this step enters (a move into a wall is cancelled): the treasure if it pays
        step = MOVES[action, 0] * wp + MOVES[action, 1]
        enter = here + step
        enter = np.where(flat_known[rows, enter] == WALL, here, enter)
        memory["last"] = enter
        return action, memory


def _frontier(known: np.ndarray) -> np.ndarray:
    """(n, Hp, Wp) bool: known walkable cells with an unknown neighbour (up, down, left, right)."""
    unknown = known == UNKNOWN
    beside = np.zeros_like(unknown)
    beside[:, 1:] |= unknown[:, :-1]
    beside[:, :-1] |= unknown[:, 1:]
    beside[:, :, 1:] |= unknown[:, :, :-1]
    beside[:, :, :-1] |= unknown[:, :, 1:]
    return beside & (known != UNKNOWN) & (known != WALL)


def _search(known: np.ndarray, here: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first search from flat cells ``here`` (n,) over known walkable cells of ``known``
    (n, Hp, Wp), all slots at once. Returns (n, Hp * Wp) distances (int64 max where unreached) and
    the first move (an action) of a shortest path to each cell; where paths tie, the first move
    of the earliest action in ``MOVES`` order wins."""
    n, hp, wp = known.shape
    free = (known != UNKNOWN) & (known != WALL)
    far = np.iinfo(np.int64).max
    dist = np.full((n, hp, wp), far, dtype=np.int64)
    first = np.zeros((n, hp, wp), dtype=np.int64)
    rows = np.arange(n)
    y, x = np.divmod(here, wp)
    dist[rows, y, x] = 0
    layer = np.zeros((n, hp, wp), dtype=bool)
    for a in range(len(MOVES) - 1, 0, -1):  # the earliest action is written last
        ny, nx = y + MOVES[a, 0], x + MOVES[a, 1]
        ok = free[rows, ny, nx] & (dist[rows, ny, nx] != 0)
        first[rows[ok], ny[ok], nx[ok]] = a
        layer[rows[ok], ny[ok], nx[ok]] = True
    d = 1
    while layer.any():
        dist[layer] = d
        reached = dist < far
        nxt = np.zeros_like(layer)
        src = np.zeros_like(first)
        # a cell of the next layer takes the first move of a neighbour in this layer
        for a in range(len(MOVES) - 1, 0, -1):
            dy, dx = MOVES[a]
            # the neighbour of cell c in direction -move(a) is c - move(a): c is entered by move a
            shifted, moved = _shift(layer, dy, dx), _shift(first, dy, dx)
            src = np.where(shifted, moved, src)
            nxt |= shifted
        nxt &= free & ~reached
        first = np.where(nxt, src, first)
        layer = nxt
        d += 1
    return dist.reshape(n, -1), first.reshape(n, -1)


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by (dy, dx) on its last two axes: out[..., i, j] = a[..., i - dy, j - dx], zero
    where that falls outside."""
    out = np.zeros_like(a)
    h, w = a.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        a[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


PLANNERS = {"recall": RecallPlanner, "window-recall": WindowRecallPlanner}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--planner", choices=[*PLANNERS, "both"], default="both",
                    help="which planner to measure (default: both, one table each)")
    ap.add_argument("--variant", default=None, help="treasure variant (default: the game's default)")
    ap.add_argument("--levels", type=int, default=500)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true",
                    help="print the result in metarena eval's JSON schema (both: a list of two)")
    args = ap.parse_args()
    names = list(PLANNERS) if args.planner == "both" else [args.planner]
    results = [evaluate(PLANNERS[k](), "treasure", args.variant, levels=args.levels, episodes=args.episodes,
                        seed=args.seed) for k in names]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    else:
        print("\n\n".join(format_table(r) for r in results))


if __name__ == "__main__":
    main()
