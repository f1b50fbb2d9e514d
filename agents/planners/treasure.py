"""What a perfect in-context learner could score on treasure: planners with a perfect memory.

    metarena eval --agent recall|window-recall --game treasure [--levels 500]

Two planners, agents like any other, measured by `metarena eval` (the oracle and random on
the same levels):

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

import numpy as np

from metarena.games import tiles as T
from .mapping import (FLOOR, WALL, MapPlanner, clear_map, entered, frontier, map_window, shortest_paths,
                      walkable)
from metarena.games.trial import EPISODE_START, PREV_REWARD


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


# what the window planner knows of a cell: the map kinds of games.planning, and a chest
CHEST = WALL + 1
KIND_OF_TILE = np.full(T.NUM_TILES, FLOOR, dtype=np.int8)  # anything else is walkable
KIND_OF_TILE[T.WALL] = WALL
KIND_OF_TILE[[T.CHEST, T.CHEST_OPEN]] = CHEST  # a chest is a chest, open or not: all close again


class WindowRecallPlanner(MapPlanner):
    """Sees only its window, its row and column and the trial features; maps and remembers
    everything within a trial. Of the engine it reads the map's height and width, nothing else.

    Memory (one row per slot, cells in map coordinates padded by the view radius): ``map``
    (UNKNOWN / FLOOR / WALL / CHEST), ``empty`` chests, ``treasure`` cell (-1 until an episode
    pays) and ``here``, its cell at the previous step (-1 at a trial's start). The cell the previous
    step entered it finds by the previous action of the trial features: it follows any actions."""

    name = "window-recall"
    follows = True  #: it reads its previous action from the trial features (any player's actions)

    def _clear(self, memory: dict, slots) -> None:
        clear_map(memory["map"], slots, memory["radius"])
        memory["empty"][slots] = False
        memory["treasure"][slots] = -1
        memory["here"][slots] = -1

    def _arrays(self, n: int, hp: int, wp: int) -> dict:
        return dict(empty=np.empty((n, hp, wp), bool), treasure=np.empty(n, np.int64), here=np.empty(n, np.int64))

    def act(self, obs, memory: dict, ctx):
        trial = self.begin_step(obs, memory, ctx)
        grid, scalars = obs.grid, obs.scalars
        n = grid.shape[0]
        height, width = ctx.engine.height, ctx.engine.width  # the map's size: all it reads of ctx
        known, empty = memory["map"], memory["empty"]
        flat_known, flat_empty = known.reshape(n, -1), empty.reshape(n, -1)
        rows = np.arange(n)

        # 1. episode boundaries: what the episode that just ended found
        start = trial[:, EPISODE_START] > 0
        paid = trial[:, PREV_REWARD] > 0
        last = entered(known, memory["here"], trial)  # the cell the previous step entered
        ended = start & (last >= 0)
        found = ended & paid
        memory["treasure"][found] = last[found]
        lost = np.flatnonzero(ended & ~paid)
        on_chest = flat_known[lost, last[lost]] == CHEST  # its last step opened an empty chest
        flat_empty[lost[on_chest], last[lost[on_chest]]] = True

        # 2. map the window; a chest seen open is empty (only a chest without the treasure stays open)
        window = map_window(known, grid, scalars, height, width, KIND_OF_TILE)
        flat_empty[rows[:, None], window.cells] |= window.tile == T.CHEST_OPEN

        # 3. breadth-first search over known walkable cells: distance and first move to each
        here = window.here
        dist, first = shortest_paths(walkable(known), here)
        treasure = memory["treasure"]
        chest = (flat_known == CHEST) & ~flat_empty
        edge = frontier(known).reshape(n, -1)
        far = np.iinfo(np.int64).max
        target = np.full(n, -1, dtype=np.int64)
        for wanted in (chest, edge):  # the nearest known closed chest, else the nearest frontier
            cost = np.where(wanted, dist, far)
            best = cost.argmin(1)  # ties: the first cell in row-major order
            pick = (target < 0) & (cost[rows, best] < far)
            target[pick] = best[pick]
        target = np.where(treasure >= 0, treasure, target)
        reach = (target >= 0) & (dist[rows, np.maximum(target, 0)] < far)
        action = np.where(reach, first[rows, np.maximum(target, 0)], 0).astype(np.int64)
        memory["here"] = here
        return action, memory


