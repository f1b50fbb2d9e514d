"""What a perfect in-context learner could score on coinrush: planners with a perfect memory.

    metarena eval --agent recall|window-recall --game coinrush [--levels 500]

Two planners, agents like any other, measured by `metarena eval` (the oracle and random on
the same levels), both playing solo. Neither is told the colours' values: each learns
a colour's value from the reward of the step that took a coin of that colour, and keeps it for
the rest of the trial. Both also use the rule every level follows (one colour pays +1, one costs -1, the third
+0.5 or -0.5): two known values other than +1 and -1 tell the third.

``recall`` knows the map and where every coin is, taken or not (as the uninformed planner
does). It plays as the uninformed planner (the coin of a wanted colour that can be taken
soonest, a wanted colour being one that pays or one not yet sampled), but what it learns lasts
the whole trial; once it knows all three values it plays as the oracle (whose paths never
cross a costly coin), so an episode after the one that taught it them scores the oracle's
return. It is the adaptation benchmark's ceiling for an agent that samples as well as a
map-knowing planner and forgets nothing.

``window-recall`` sees what a learned agent sees: its observation window, its row and column
and the trial features (the map's size is all it reads from the engine). It forgets nothing
within a trial: it maps every cell its windows have shown (wall or floor), remembers every coin
cell with its colour (coins come back on the cell they were taken from, so a cell shown bare is
still a coin cell) and the colours' values as it learns them. Its rule for where a coin is: a
coin is on its cell unless the cell was shown bare since the episode began and has not been
shown with its coin since (every episode starts with all coins in place; a coin out of sight
may have come back, but it does not count on that). It walks the shortest known path, never
crossing a coin of a known costly colour while some target can be reached without, to the
nearest wanted coin (a colour that pays or is not yet known) on its cell; else to the nearest
frontier (a known free cell beside an unknown one); else to the wanted coin cell that was shown
bare longest ago (the likeliest to be back), where it waits beside the cell (a coin does not
come back under a player). It is the ceiling for an agent that sees only its window and
forgets nothing, as far as this plain play goes (nearest first, no planning of a route).
"""

from __future__ import annotations

import numpy as np

from metarena.games import tiles as T
from metarena.games.engine import MOVES
from .mapping import (FLOOR, WALL, MapPlanner, TrialMemory, clear_map, entered, frontier, map_window,
                      shortest_paths, walkable)
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_REWARD

COLOURS = len(T.COINS)
COLOUR_OF_TILE = np.full(T.NUM_TILES, -1, dtype=np.int64)  # the colour (0, 1, 2) of a coin tile, else -1
COLOUR_OF_TILE[list(T.COINS)] = np.arange(COLOURS)
FAR = np.iinfo(np.int64).max


def learn_values(value: np.ndarray, known: np.ndarray, colour: np.ndarray, reward: np.ndarray,
                 deduce: bool = True) -> None:
    """In place: slot ``i``'s previous step took a coin of colour ``colour[i]`` (-1: none) and
    was paid ``reward[i]``; ``value`` (n, 3) and ``known`` (n, 3) are what each slot knows of the
    colours. With ``deduce``, two known values other than +1 and -1 tell the third (a level's
    values are +1, -1 and one of +-0.5)."""
    took = np.flatnonzero((colour >= 0) & (reward != 0))
    value[took, colour[took]] = reward[took]
    known[took, colour[took]] = True
    if deduce:
        plus, minus = (known & (value == 1)).any(1), (known & (value == -1)).any(1)
        tell = np.flatnonzero((known.sum(1) == 2) & ~(plus & minus))
        missing = (~known[tell]).argmax(1)
        value[tell, missing] = np.where(plus[tell], -1.0, 1.0)
        known[tell, missing] = True


class RecallPlanner(TrialMemory):
    """The uninformed planner with a memory of the trial: the colours' values, learned from rewards."""

    name = "recall"
    deduce = True  # tell the third value from two (see learn_values)

    def act(self, obs, memory: dict, ctx):
        eng, st, player = ctx.engine, ctx.state, ctx.player
        n, rows = st.batch, np.arange(st.batch)
        if not memory:
            memory.update(value=np.zeros((n, COLOURS)), known=np.zeros((n, COLOURS), bool),
                          took=np.full(n, -1, dtype=np.int64))
        trial = obs.trial
        new_trial = (trial[:, EPISODE_START] > 0) & (trial[:, EPISODE_INDEX] == 0)
        memory["value"][new_trial], memory["known"][new_trial], memory["took"][new_trial] = 0.0, False, -1
        value, known = memory["value"], memory["known"]
        learn_values(value, known, memory["took"], trial[:, PREV_REWARD], self.deduce)

        colour = COLOUR_OF_TILE[eng.item_tile[st.level]]  # (n, K) colour of each coin
        wanted = ~known[rows[:, None], colour] | (value[rows[:, None], colour] > 0)
        # knowing every value, it knows which coins cost: the oracle's maps go round them
        plain = eng.game.seek(eng, st, player, wanted, eng.levels.dist)
        safe = eng.game.seek(eng, st, player, wanted, eng.levels.safe_dist)
        action = np.where(known.all(1), safe, plain)

        # the coin this step takes: one on the cell it enters (a move into a wall is cancelled).
        # Only a coin on its cell now can be: a taken one does not come back under a player
        row, col = eng.rowcol(st)
        y, x = row[:, player] + MOVES[action, 0], col[:, player] + MOVES[action, 1]
        wall = eng.levels.tiles[st.level, y, x] == T.WALL
        y, x = np.where(wall, row[:, player], y), np.where(wall, col[:, player], x)
        pos = eng.levels.item_pos[st.level]  # (n, K, 2)
        on = (pos[..., 0] == y[:, None]) & (pos[..., 1] == x[:, None]) & st.alive
        memory["took"] = np.where(on.any(1), colour[rows, on.argmax(1)], -1)
        return action, memory


# what the window planner knows of a cell: the map kinds of games.planning (a coin is floor;
# where the coins are is kept apart, since a taken coin leaves bare floor on its cell)
KIND_OF_TILE = np.full(T.NUM_TILES, FLOOR, dtype=np.int8)  # anything else is walkable
KIND_OF_TILE[T.WALL] = WALL


class WindowRecallPlanner(MapPlanner):
    """Sees only its window, its row and column and the trial features; maps and remembers
    everything within a trial. Of the engine it reads the map's height and width, nothing else.

    Memory (one row per slot, cells in map coordinates padded by the view radius): ``map``
    (UNKNOWN / FLOOR / WALL), ``coin`` (the colour of the coin of each cell, -1 for none),
    ``bare`` (the step of the trial when a coin cell was last shown bare, -1 while its coin
    counts as there), ``value`` and ``known`` (n, 3) per colour, ``here`` (its cell at the previous
    step, -1 at a trial's start) and ``clock`` (steps of the trial so far). The cell the previous
    step entered it finds by the previous action of the trial features: it follows any actions."""

    name = "window-recall"
    follows = True  #: it reads its previous action from the trial features (any player's actions)
    deduce = True  # tell the third value from two (see learn_values)

    def _clear(self, memory: dict, slots) -> None:
        clear_map(memory["map"], slots, memory["radius"])
        memory["coin"][slots] = -1
        memory["bare"][slots] = -1
        memory["value"][slots] = 0.0
        memory["known"][slots] = False
        memory["here"][slots] = -1
        memory["clock"][slots] = 0

    def _arrays(self, n: int, hp: int, wp: int) -> dict:
        return dict(coin=np.empty((n, hp * wp), np.int64), bare=np.empty((n, hp * wp), np.int64),
                    value=np.empty((n, COLOURS)), known=np.empty((n, COLOURS), bool), here=np.empty(n, np.int64),
                    clock=np.empty(n, np.int64))

    def act(self, obs, memory: dict, ctx):
        trial = self.begin_step(obs, memory, ctx)
        grid, scalars = obs.grid, obs.scalars
        n = grid.shape[0]
        height, width = ctx.engine.height, ctx.engine.width  # the map's size: all it reads of ctx
        known, coin, bare = memory["map"], memory["coin"], memory["bare"]
        value, told = memory["value"], memory["known"]
        wp = known.shape[2]
        rows = np.arange(n)

        # 1. what the previous step paid: the value of the colour of the coin cell it entered
        start = trial[:, EPISODE_START] > 0
        last = entered(known, memory["here"], trial)
        learn_values(value, told, np.where(last >= 0, coin[rows, np.maximum(last, 0)], -1), trial[:, PREV_REWARD],
                     self.deduce)
        bare[start] = -1  # every episode starts with all coins in place

        # 2. map the window: walls and floor, the coin cells and whether their coins are there
        clock = memory["clock"]
        window = map_window(known, grid, scalars, height, width, KIND_OF_TILE)
        cells, colour = window.cells, COLOUR_OF_TILE[window.tile]
        shown = colour >= 0
        coin[rows[:, None], cells] = np.where(shown, colour, coin[rows[:, None], cells])
        was_coin = coin[rows[:, None], cells] >= 0
        bare[rows[:, None], cells] = np.where(shown, -1, np.where(was_coin, clock[:, None],
                                                                  bare[rows[:, None], cells]))

        # 3. where to go: shortest known paths, round the coins of known costly colours if it can
        here = window.here
        has_coin = coin >= 0
        c = np.maximum(coin, 0)
        colour_known, colour_value = told[rows[:, None], c], value[rows[:, None], c]
        wanted = has_coin & (~colour_known | (colour_value > 0))
        costly = (has_coin & colour_known & (colour_value < 0)).reshape(known.shape)
        free = walkable(known)
        edge = frontier(known).reshape(n, -1)
        there, gone = wanted & (bare < 0), wanted & (bare >= 0)
        target = np.full(n, -1, dtype=np.int64)
        steps = np.zeros(n, dtype=np.int64)
        waiting = np.zeros(n, dtype=bool)  # heading for a bare coin cell
        action = np.zeros(n, dtype=np.int64)
        for dist, first in (shortest_paths(free & ~costly, here), shortest_paths(free, here)):
            size = dist.shape[1]
            for cost in (np.where(there, dist, FAR),  # the nearest wanted coin on its cell
                         np.where(edge, dist, FAR),  # the nearest frontier
                         # the wanted coin cell shown bare longest ago (then the nearest)
                         np.where(gone & (dist < FAR), bare * (size + 1) + np.minimum(dist, size), FAR)):
                best = cost.argmin(1)  # ties: the first cell in row-major order
                pick = np.flatnonzero((target < 0) & (cost[rows, best] < FAR))
                target[pick], steps[pick] = best[pick], dist[pick, best[pick]]
                action[pick] = first[pick, best[pick]]
                waiting[pick] = gone[pick, best[pick]]
        # a bare coin cell it heads for: wait beside it, step off it (a coin does not come back
        # under a player)
        action[waiting & (steps == 1)] = 0
        off = np.flatnonzero(waiting & (steps == 0))
        if len(off):
            beside = here[off, None] + MOVES[1:, 0] * wp + MOVES[1:, 1]  # (m, 4)
            ok = (free & ~costly).reshape(n, -1)[off[:, None], beside]
            action[off] = np.where(ok.any(1), ok.argmax(1) + 1, 0)

        memory["here"] = here
        clock += 1
        return action, memory


