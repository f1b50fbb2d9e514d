"""What a perfect in-context learner could score on rules: planners with a perfect memory.

    metarena eval --agent recall|window-recall --game rules [--levels 500]

Two planners, agents like any other, measured by `metarena eval` (the oracle and random on
the same levels), both playing solo. Neither is told the rules. Each learns a kind's value
from the reward of the step that collected an object of that kind, and which kinds may be the
key from the exit: a step onto the exit that paid nothing says the key is none of the kinds
collected so far this episode; one that paid says it is one of them. Both use the rules every
level follows: the values are a shuffle of +0.5, -0.5 and -1 (the trap), so two known values
tell the third; and the key is never the trap. What they learn lasts the whole trial.

``recall`` knows the map and where every object is (as the uninformed planner does). It plays
as the uninformed planner (``games/rules.py``: the nearest object of a kind that may be the key
and is not collected yet, or of a kind that pays; after each new kind that may be the key,
the paying objects it has time for, then a try of the exit), walking round every object it
does not mean to take; but what it knows narrows the kinds it samples. Once it knows every
value it walks the oracle's paths (which never cross a costly object or a trap), and once it
also knows the key it plays as the oracle, so an episode after the one that taught it them
scores the oracle's return. It is the
adaptation benchmark's ceiling for an agent that explores as well as a map-knowing planner
and forgets nothing.

``window-recall`` sees what a learned agent sees: its observation window, its row and column,
its time left and the trial features (the map's size is all it reads from the engine). It
forgets nothing within a trial: it maps every cell its windows have shown (wall or floor),
the exit, every object cell with its kind (and whether this episode has seen it taken), the
values and the key as it learns them, and the step limit (from its time left). It plays the
same rules as ``recall`` over what it has mapped: shortest known paths that step on no object
it does not mean to take (where it can); when the exit is surely open, or it tries it, the
nearest paying object from which the exit is still in time, else the exit, else the nearest
frontier (a known free cell beside an unknown one); else the nearest object of a kind it
samples or that pays, else the nearest frontier. It is the ceiling for an agent that sees
only its window and forgets nothing, as far as this plain play goes (nearest first).
"""

from __future__ import annotations

import numpy as np

from metarena.games import tiles as T
from metarena.games.engine import MOVES
from metarena.games.rules import KIND_OF_TILE, KINDS, OBJECTS, ROLE_VALUES, TRAP, careful_dist
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_REWARD
from .mapping import (FLOOR, WALL, MapPlanner, TrialMemory, clear_map, entered, frontier, map_window, shortest_paths,
                      walkable)

AT_EXIT = KINDS  #: what a step entered: a kind 0..2, the exit (3) or nothing (-1)
FAR = np.iinfo(np.int64).max


def learn_rules(value: np.ndarray, known: np.ndarray, maybe: np.ndarray, took: np.ndarray, had: np.ndarray,
                reward: np.ndarray) -> None:
    """In place: slot ``i``'s previous step entered ``took[i]`` (a kind, ``AT_EXIT`` or -1),
    having collected the kinds ``had[i]`` (3,) so far that episode, and was paid ``reward[i]``.
    ``value``/``known`` (n, 3) are the kinds' values each slot knows, ``maybe`` (n, 3) the kinds
    that may still be the key."""
    obj = np.flatnonzero((took >= 0) & (took < KINDS) & (reward != 0))
    value[obj, took[obj]] = reward[obj]
    known[obj, took[obj]] = True
    at_exit = took == AT_EXIT
    opened, locked = at_exit & (reward > 0), at_exit & (reward == 0)
    maybe[opened] &= had[opened]
    maybe[locked] &= ~had[locked]
    # the values are a shuffle of ROLE_VALUES: two tell the third
    tell = np.flatnonzero(known.sum(1) == KINDS - 1)
    missing = (~known[tell]).argmax(1)
    value[tell, missing] = ROLE_VALUES.sum() - np.where(known[tell], value[tell], 0.0).sum(1)
    known[tell, missing] = True
    maybe &= ~(known & (value == TRAP))  # the key is never the trap


class RecallPlanner(TrialMemory):
    """The uninformed planner with a memory of the trial: the values and the key, learned."""

    name = "recall"

    def act(self, obs, memory: dict, ctx):
        eng, st, player = ctx.engine, ctx.state, ctx.player
        n, rows = st.batch, np.arange(st.batch)
        if not memory:
            memory.update(value=np.zeros((n, KINDS)), known=np.zeros((n, KINDS), bool),
                          maybe=np.ones((n, KINDS), bool), took=np.full(n, -1, np.int64),
                          had=np.zeros((n, KINDS), bool))
        trial = obs.trial
        new = (trial[:, EPISODE_START] > 0) & (trial[:, EPISODE_INDEX] == 0)
        memory["value"][new], memory["known"][new], memory["maybe"][new] = 0.0, False, True
        memory["took"][new] = -1
        value, known, maybe = memory["value"], memory["known"], memory["maybe"]
        learn_rules(value, known, maybe, memory["took"], memory["had"], trial[:, PREV_REWARD])

        game = eng.game
        careful = careful_dist(eng.levels)
        action = game.plan(eng, st, player, value, known, maybe, careful, eng.levels.dist)
        told = known.all(1)
        if told.any():  # knowing every value, it walks the oracle's maps (round every costly object)
            safe = game.plan(eng, st, player, value, known, maybe, eng.levels.safe_dist, careful)
            action = np.where(told, safe, action)

        # what this step enters (a move into a wall is cancelled): an alive item's kind, or the exit
        row, col = eng.rowcol(st)
        y, x = row[:, player] + MOVES[action, 0], col[:, player] + MOVES[action, 1]
        wall = eng.levels.tiles[st.level, y, x] == T.WALL
        y, x = np.where(wall, row[:, player], y), np.where(wall, col[:, player], x)
        pos = eng.levels.item_pos[st.level]  # (n, K, 2)
        on = (pos[..., 0] == y[:, None]) & (pos[..., 1] == x[:, None]) & st.alive
        kind = KIND_OF_TILE[eng.item_tile[st.level]]
        kind = np.where(kind >= 0, kind, AT_EXIT)
        memory["took"] = np.where(on.any(1), kind[rows, on.argmax(1)], -1)
        memory["had"] = st.touched[:, player][:, list(OBJECTS)].copy()
        return action, memory


KIND_OF_MAP_TILE = np.full(T.NUM_TILES, FLOOR, dtype=np.int8)  # objects and the exit are walkable
KIND_OF_MAP_TILE[T.WALL] = WALL


class WindowRecallPlanner(MapPlanner):
    """Sees only its window, its row, column and time left and the trial features; maps and
    remembers everything within a trial. Of the engine it reads the map's height and width.

    Memory (one row per slot, cells in map coordinates padded by the view radius): ``map``
    (UNKNOWN / FLOOR / WALL), ``obj`` (the kind of the object of each cell, -1 for none),
    ``gone`` (object cells seen taken this episode), ``exit`` (its cell, -1 until seen), the
    rules as learned (``value``, ``known``, ``maybe``), this episode's ``sampled`` kinds and
    ``tried`` (found the exit locked since the last new kind), ``here`` (its cell at the previous
    step, -1 at a trial's start), ``clock`` (steps this episode) and ``limit`` (the step limit, 0
    until known).

    What the previous step entered it reads from the trial features' previous action, not from
    what it chose itself: it plays on from any actions, so it can label the steps of another
    player's trial with what it would do there (``follows``; see ``metarena.agents.imitation``)."""

    name = "window-recall"
    follows = True  #: it reads its previous action from the trial features (any player's actions)

    def _clear(self, memory: dict, slots) -> None:
        clear_map(memory["map"], slots, memory["radius"])
        memory["obj"][slots] = -1
        memory["gone"][slots] = False
        memory["exit"][slots] = -1
        memory["value"][slots] = 0.0
        memory["known"][slots] = False
        memory["maybe"][slots] = True
        memory["sampled"][slots] = False
        memory["tried"][slots] = False
        memory["here"][slots] = -1
        memory["clock"][slots] = 0
        memory["limit"][slots] = 0

    def _arrays(self, n: int, hp: int, wp: int) -> dict:
        return dict(obj=np.empty((n, hp * wp), np.int64), gone=np.empty((n, hp * wp), bool),
                    exit=np.empty(n, np.int64), value=np.empty((n, KINDS)), known=np.empty((n, KINDS), bool),
                    maybe=np.empty((n, KINDS), bool), sampled=np.empty((n, KINDS), bool),
                    tried=np.empty(n, bool), here=np.empty(n, np.int64), clock=np.empty(n, np.int64),
                    limit=np.empty(n, np.int64))

    def act(self, obs, memory: dict, ctx):
        trial = self.begin_step(obs, memory, ctx)
        grid, scalars = obs.grid, obs.scalars
        n = grid.shape[0]
        height, width = ctx.engine.height, ctx.engine.width  # the map's size: all it reads of ctx
        known_map, obj, gone = memory["map"], memory["obj"], memory["gone"]
        value, known, maybe = memory["value"], memory["known"], memory["maybe"]
        sampled, tried, clock = memory["sampled"], memory["tried"], memory["clock"]
        rows = np.arange(n)

        # 1. what the previous step entered (from where it stood, by the action taken: a move into
        # a wall is cancelled) and what it paid; then this episode's progress
        enter = entered(known_map, memory["here"], trial)
        moved = np.flatnonzero(enter >= 0)
        enter = enter[moved]
        took = np.full(n, -1, np.int64)
        took[moved] = np.where((obj[moved, enter] >= 0) & ~gone[moved, enter], obj[moved, enter],
                               np.where(enter == memory["exit"][moved], AT_EXIT, -1))
        reward = trial[:, PREV_REWARD]
        learn_rules(value, known, maybe, took, sampled, reward)
        took_obj = np.flatnonzero((took >= 0) & (took < KINDS))
        fresh = took_obj[~sampled[took_obj, took[took_obj]]]
        tried[fresh] = False
        sampled[took_obj, took[took_obj]] = True
        into = (took[moved] >= 0) & (took[moved] < KINDS)
        gone[moved[into], enter[into]] = True
        tried[(took == AT_EXIT) & (reward == 0)] = True
        start = np.flatnonzero(trial[:, EPISODE_START] > 0)  # every episode starts afresh
        sampled[start], tried[start], gone[start], clock[start] = False, False, False, 0
        time_left = scalars[:, 0]
        tell = (clock > 0) & (time_left < 1)
        memory["limit"][tell] = np.rint(clock[tell] / (1.0 - time_left[tell])).astype(np.int64)

        # 2. map the window: walls and floor, the exit, the objects and whether they are there
        window = map_window(known_map, grid, scalars, height, width, KIND_OF_MAP_TILE)
        cells, kind = window.cells, KIND_OF_TILE[window.tile]
        shown = kind >= 0
        obj[rows[:, None], cells] = np.where(shown, kind, obj[rows[:, None], cells])
        gone[rows[:, None], cells] = np.where(shown, False, gone[rows[:, None], cells] |
                                              (obj[rows[:, None], cells] >= 0))
        is_exit = window.tile == T.EXIT
        seen = is_exit.any(1)
        memory["exit"][seen] = cells[rows[seen], is_exit[seen].argmax(1)]
        exit_cell = memory["exit"]

        # 3. the rules of play (as games.rules.Rules.plan), over the mapped cells
        cand = maybe & ~(tried[:, None] & sampled)
        need = cand & ~sampled
        leave = ~need.any(1) | ((cand & sampled).any(1) & ~tried)  # the exit is open, or worth a try
        there = (obj >= 0) & ~gone
        k = np.maximum(obj, 0)
        paying = there & (known & (value > 0))[rows[:, None], k]
        keyobj = there & need[rows[:, None], k]
        trap = there & (known & (value == TRAP))[rows[:, None], k]
        free = walkable(known_map)
        edge = frontier(known_map).reshape(n, -1)
        here = window.here
        has_exit = exit_cell >= 0
        exit_mask = np.zeros_like(there)
        exit_mask[rows[has_exit], exit_cell[has_exit]] = True
        remaining = np.where(memory["limit"] > 0, memory["limit"] - clock - 1, FAR)
        target = np.full(n, -1, dtype=np.int64)
        action = np.zeros(n, dtype=np.int64)
        for careful in (True, False):  # step on no object it does not mean to take, if it can
            wanted = np.where(leave[:, None], paying, paying | keyobj)
            blocked = there & ~wanted if careful else trap
            ok = free & ~blocked.reshape(free.shape)
            dist, first = shortest_paths(ok, here)
            to_exit, _ = shortest_paths(ok, np.where(has_exit, exit_cell, here))
            in_time = np.where(has_exit[:, None], dist.clip(0, FAR // 4) + to_exit.clip(0, FAR // 4)
                               <= remaining[:, None], True)
            leaving = leave[:, None]
            for mask in (np.where(leaving, paying & in_time, paying | keyobj),  # objects first,
                         np.where(leaving, exit_mask, edge),  # then the exit or the frontier
                         np.where(leaving, edge, exit_mask)):
                cost = np.where(mask, dist, FAR)
                best = cost.argmin(1)  # ties: the first cell in row-major order
                pick = np.flatnonzero((target < 0) & (cost[rows, best] < FAR))
                target[pick] = best[pick]
                action[pick] = first[pick, best[pick]]
        memory["here"] = here
        clock += 1
        return action, memory
