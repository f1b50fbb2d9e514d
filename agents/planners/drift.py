"""What a perfect in-context learner could score on drift: planners with a perfect memory.

    metarena eval --agent recall|window-recall --game drift [--levels 500]

Two planners, agents like any other, measured by `metarena eval` (the oracle and random on
the same levels), both playing solo. Neither is told the dynamics. Both learn them from their
own moves, from the row and column they see change, and forget nothing within a trial:

- the permutation: a step of action ``a`` from a cell without wind that changed the row or
  column by one cell moved as ``perm[a]`` (or slipped: each action weighs every direction it
  was seen to move, earlier sightings ``DECAY`` (0.7) times less at each new one, and the
  heaviest is believed: one slip does not overturn a belief seen twice, two sightings in a row
  do); a step that did not move, or moved by more or diagonally, teaches nothing of the
  permutation;
- the wind: a move believed to lead onto a wind tile that left the row and column as they
  were was blown back; a step from a cell without wind that changed the row or column by two cells, or
  both by one, was a move onto a wind tile and a push: straight, the push went the same way;
  diagonal, the move is the part that leads onto a wind tile and the push the other (where
  only one of the two does);
- a change (``drift/shift`` redraws the dynamics at an unannounced episode): a settled belief
  overturned, or ``STREAK`` (3) moves in a row that went against settled beliefs (elsewhere,
  or nowhere where a free cell was believed ahead), tell that the dynamics changed: the planner
  forgets the permutation and the wind it believed and learns them again (:func:`learn`).

Both choose an action for the direction they want to go as the game's planners do
(``games.drift.act_for``): a believed action, else a guess among the actions they do not know.

``recall`` knows the map (as the uninformed planner does) and walks the distance map of the wind
it believes once it believes one, the plain one before (``Drift.plan`` with its own beliefs). It is the
adaptation benchmark's ceiling for an agent that forgets nothing.

``window-recall`` sees what a learned agent sees: its window, its row and column and the trial
features (the map's size is all it reads from the engine). It maps every cell its windows have
shown (wall, floor, wind or the goal) and walks the shortest known path to the goal, else to the
nearest frontier, stepping on no wind tile where it can (it does not plan with the wind).
"""

from __future__ import annotations

import numpy as np

from metarena.games import tiles as T
from metarena.games.drift import GOAL_ITEM, act_for
from metarena.games.engine import MOVES
from metarena.games.planning import REVERSE
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_ACTION
from .mapping import FLOOR, WALL, MapPlanner, TrialMemory, clear_map, frontier, map_window, shortest_paths, walkable

WIND = WALL + 1  #: the window planner's map kind of a wind tile (walkable)
GOAL = WALL + 2
KIND_OF_TILE = np.full(T.NUM_TILES, FLOOR, dtype=np.int8)
KIND_OF_TILE[T.WALL] = WALL
KIND_OF_TILE[T.WIND] = WIND
KIND_OF_TILE[T.EXIT] = GOAL
#: what :func:`learn` needs to know of a map tile: FLOOR, WALL (also the goal) or WIND
CELL_OF_TILE = np.full(T.NUM_TILES, FLOOR, dtype=np.int8)
CELL_OF_TILE[[T.WALL, T.EXIT]] = WALL
CELL_OF_TILE[T.WIND] = WIND
#: direction index of a change (dy + 1, dx + 1) of one cell
UNIT = np.zeros((3, 3), dtype=np.int64)
for _a, (_dy, _dx) in enumerate(MOVES[1:], start=1):
    UNIT[_dy + 1, _dx + 1] = _a


#: how much an action's earlier sightings weigh at each new one: a belief survives one sighting
#: that contradicts it (a slip), and gives way to two in a row
DECAY = 0.7
#: a belief that weighed this much before the sighting that overturns it (two sightings, then
#: one that contradicted them: 1.19) was no slip: the dynamics changed
SETTLED = 1.1
#: this many sightings in a row that contradict settled beliefs (of any actions) mean a change
STREAK = 3


def learn(counts: np.ndarray, wind: np.ndarray, action: np.ndarray, dy: np.ndarray, dx: np.ndarray,
          from_wind: np.ndarray, cell_at, valid: np.ndarray, streak: np.ndarray | None = None) -> np.ndarray:
    """In place: slot ``i`` took ``action[i]`` from a cell (a wind tile where ``from_wind``) and its
    row and column changed by ``(dy, dx)``; ``counts`` (n, 5, 5) float weighs each action's seen
    directions (earlier sightings of an action count ``DECAY`` times less at each new one),
    ``wind`` (n,) the wind direction (0 until known). ``cell_at(rows, ddy, ddx)``
    says what the cell ``(ddy, ddx)`` from the previous cell is: FLOOR, WALL or WIND (the
    goal and unknown cells count as WALL: nothing is learned from them).

    A contradiction: a move of an action whose belief is settled (weight >= ``SETTLED``) that
    went elsewhere, or did not move where the believed move leads to a free cell. A settled
    belief that sightings overturn means the dynamics changed (``drift/shift``), and so do
    ``STREAK`` contradictions in a row of any actions (``streak`` (n,), if given, counts them;
    slips that go astray so often in a row are rare): the slot forgets everything it believed
    (every action, the wind) and keeps only the last sighting. Returns (n,) bool: the slots
    that found a change."""
    n = len(action)
    flip = np.zeros(n, dtype=bool)
    run = np.zeros(n, dtype=np.int64) if streak is None else streak
    keep = np.full((n, 2), -1, dtype=np.int64)  # the sighting (action, direction) a change keeps
    ok = valid & ~from_wind & (action > 0)
    unit = ok & (np.abs(dy) + np.abs(dx) == 1)
    r = np.flatnonzero(unit)
    if len(r):
        a, d = action[r], UNIT[dy[r] + 1, dx[r] + 1]
        seen = counts[r, a]  # (m, 5)
        before, weight = seen.argmax(1), seen.max(1)
        seen *= DECAY
        seen[np.arange(len(r)), d] += 1.0
        counts[r, a] = seen
        settled = weight >= SETTLED
        flip[r] = settled & (seen.argmax(1) != before)
        run[r] = np.where(settled & (d != before), run[r] + 1, np.where(d == before, 0, run[r]))
        keep[r, 0], keep[r, 1] = a, d
    # a move and a push: two cells straight, or diagonal
    two = ok & (((np.abs(dy) == 2) & (dx == 0)) | ((np.abs(dx) == 2) & (dy == 0)))
    r = np.flatnonzero(two)
    wind[r] = UNIT[np.sign(dy[r]) + 1, np.sign(dx[r]) + 1]
    # no change after a move believed to lead onto a wind tile: the wind blew it back; believed
    # to lead onto a free cell: the belief is wrong (or the move slipped into a wall), it loses
    # a sighting, and contradicts a settled belief
    still = np.flatnonzero(ok & (dy == 0) & (dx == 0) & (counts[np.arange(n), action].sum(1) > 0))
    if len(still):
        m = counts[still, action[still]].argmax(1)
        kind = cell_at(still, MOVES[m, 0], MOVES[m, 1])
        back = kind == WIND
        wind[still[back]] = REVERSE[m[back]]
        wrong = still[kind == FLOOR]
        mw = m[kind == FLOOR]
        weight = counts[wrong, action[wrong], mw]
        counts[wrong, action[wrong], mw] = np.maximum(weight - 1.0, 0.0)
        run[wrong] += weight >= SETTLED
    diag = np.flatnonzero(ok & (np.abs(dy) == 1) & (np.abs(dx) == 1))
    if len(diag):
        vert = cell_at(diag, dy[diag], np.zeros_like(dx[diag])) == WIND  # moved vertically onto wind
        horiz = cell_at(diag, np.zeros_like(dy[diag]), dx[diag]) == WIND
        one = vert ^ horiz
        d = diag[one]
        wind[d] = np.where(vert[one], UNIT[1, dx[d] + 1], UNIT[dy[d] + 1, 1])
    changed = flip | (run >= STREAK) if streak is not None else flip
    f = np.flatnonzero(changed)
    if len(f):
        counts[f] = 0.0
        wind[f] = 0
        run[f] = 0
        k = f[keep[f, 0] > 0]
        counts[k, keep[k, 0], keep[k, 1]] = 1.0
    return changed


def beliefs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(belief, known)`` (n, 5) from the direction weights of each action."""
    known = counts.sum(2) > 0
    belief = counts.argmax(2)
    return belief, known


class RecallPlanner(TrialMemory):
    """Knows the map; learns the permutation and the wind from its moves, forgets nothing in a trial."""

    name = "recall"

    def act(self, obs, memory: dict, ctx):
        eng, st, player = ctx.engine, ctx.state, ctx.player
        n = st.batch
        row, col = eng.rowcol(st)
        y, x = row[:, player], col[:, player]
        if not memory:
            memory.update(counts=np.zeros((n, 5, 5), np.float64), wind=np.zeros(n, np.int64),
                          streak=np.zeros(n, np.int64),
                          y=y.copy(), x=x.copy(), action=np.zeros(n, np.int64))
        trial = obs.trial
        new = (trial[:, EPISODE_START] > 0) & (trial[:, EPISODE_INDEX] == 0)
        memory["counts"][new], memory["wind"][new], memory["streak"][new] = 0, 0, 0
        valid = trial[:, EPISODE_START] == 0
        tiles = eng.levels.tiles[st.level]
        py, px = memory["y"], memory["x"]
        rows = np.arange(n)
        h, w = eng.height, eng.width

        def cell_at(r, ddy, ddx):
            return CELL_OF_TILE[tiles[r, np.clip(py[r] + ddy, 0, h - 1), np.clip(px[r] + ddx, 0, w - 1)]]

        learn(memory["counts"], memory["wind"], memory["action"], y - py, x - px,
              tiles[rows, py, px] == T.WIND, cell_at, valid, memory["streak"])
        belief, known = beliefs(memory["counts"])
        action = eng.game.plan(eng, st, player, belief, known, memory["wind"])
        memory["y"], memory["x"], memory["action"] = y.copy(), x.copy(), action
        return action, memory


class WindowRecallPlanner(MapPlanner):
    """Sees only its window, its row and column and the trial features; maps and remembers
    everything within a trial. Of the engine it reads the map's height and width.

    Memory (one row per slot, cells in map coordinates padded by the view radius): ``map``
    (UNKNOWN / FLOOR / WALL / WIND / GOAL), ``counts``: the weights of each action's seen
    directions, ``wind`` (0 until known), ``streak`` (contradictions in a row, see :func:`learn`),
    ``last`` (its cell before the previous step) and ``clock``.

    Its previous action it reads from the trial features, not from what it chose itself: it plays
    on from any actions, so it can label another player's steps (``follows``; see
    ``metarena.agents.imitation``)."""

    name = "window-recall"
    follows = True  #: it reads its previous action from the trial features (any player's actions)

    def _clear(self, memory: dict, slots) -> None:
        clear_map(memory["map"], slots, memory["radius"])
        memory["counts"][slots] = 0
        memory["wind"][slots] = 0
        memory["streak"][slots] = 0
        memory["last"][slots] = -1

    def _arrays(self, n: int, hp: int, wp: int) -> dict:
        return dict(counts=np.empty((n, 5, 5), np.float64), wind=np.empty(n, np.int64), streak=np.empty(n, np.int64),
                    last=np.empty(n, np.int64), clock=np.zeros(n, np.int64))

    def act(self, obs, memory: dict, ctx):
        trial = self.begin_step(obs, memory, ctx)
        grid, scalars = obs.grid, obs.scalars
        n = grid.shape[0]
        height, width = ctx.engine.height, ctx.engine.width  # the map's size: all it reads of ctx
        known_map = memory["map"]
        wp = known_map.shape[2]
        flat = known_map.reshape(n, -1)
        rows = np.arange(n)

        # 1. map the window, then learn from the step that brought it here
        window = map_window(known_map, grid, scalars, height, width, KIND_OF_TILE)
        here, last = window.here, memory["last"]
        valid = (trial[:, EPISODE_START] == 0) & (last >= 0)
        prev = np.where(last >= 0, last, here)
        py, px = np.divmod(prev, wp)
        y, x = np.divmod(here, wp)

        def cell_at(r, ddy, ddx):
            kind = flat[r, prev[r] + ddy * wp + ddx]
            return np.where((kind == FLOOR) | (kind == WIND), kind, WALL)

        took = trial[:, PREV_ACTION].argmax(1)  # 0 (stay) at a trial's start, where the features are zero
        learn(memory["counts"], memory["wind"], took, y - py, x - px, flat[rows, prev] == WIND,
              cell_at, valid, memory["streak"])
        memory["clock"] = np.where(trial[:, EPISODE_START] > 0, 0, memory["clock"] + 1)

        # 2. the goal if seen, else the nearest frontier; round wind tiles where it can
        goal = flat == GOAL
        edge = frontier(known_map).reshape(n, -1)
        target = np.full(n, -1, dtype=np.int64)
        direction = np.zeros(n, dtype=np.int64)
        free = walkable(known_map)
        for careful in (True, False):
            ok = free & ~(known_map == WIND) if careful else free
            dist, first = shortest_paths(ok, here)
            for wanted in (goal, edge):
                cost = np.where(wanted, dist, np.iinfo(np.int64).max)
                best = cost.argmin(1)
                pick = np.flatnonzero((target < 0) & (cost[rows, best] < np.iinfo(np.int64).max))
                target[pick] = best[pick]
                direction[pick] = first[pick, best[pick]]
        belief, known = beliefs(memory["counts"])
        action = act_for(direction, belief, known, took, memory["clock"])
        memory["last"] = here
        return action, memory


__all__ = ["RecallPlanner", "WindowRecallPlanner", "GOAL_ITEM"]
