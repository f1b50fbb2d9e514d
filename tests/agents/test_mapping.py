"""metarena.agents.planners.mapping: the map built from observation windows and the search over it."""

from __future__ import annotations

import numpy as np

from metarena.games import tiles as T
from metarena.games.engine import MOVES, SCALAR_NAMES
from metarena.agents.planners.mapping import (FLOOR, UNKNOWN, WALL, clear_map, entered, frontier, map_window, shortest_paths,
                                             walkable)
from metarena.games.trial import PREV_ACTION, TRIAL_FEATURES

FAR = np.iinfo(np.int64).max
STAY, UP, DOWN, LEFT, RIGHT = range(5)


def _known(rows: list[str]) -> np.ndarray:
    """A map from text: '#' wall, '.' floor, '?' unknown."""
    code = {"#": WALL, ".": FLOOR, "?": UNKNOWN}
    return np.array([[code[c] for c in row] for row in rows], dtype=np.int8)


def test_shortest_paths_go_round_walls_and_unknown_cells():
    known = _known([
        "#######",
        "#..?..#",
        "#.#.#.#",
        "#.....#",
        "#######",
    ])
    w = known.shape[1]
    dist, first = shortest_paths(walkable(known)[None], np.array([1 * w + 1]))
    dist, first = dist[0].reshape(known.shape), first[0].reshape(known.shape)
    assert dist[1, 1] == 0 and first[1, 1] == STAY
    assert dist[1, 2] == 1 and first[1, 2] == RIGHT
    # the unknown cell (1, 3) is not crossed: (1, 4) is reached the long way round
    assert dist[1, 3] == FAR and dist[2, 3] == 5 and dist[1, 4] == 9
    assert first[1, 4] == DOWN and first[3, 5] == DOWN
    assert (dist[known == WALL] == FAR).all()
    # every reached cell is one step further than a reached neighbour
    for y, x in zip(*np.nonzero((dist < FAR) & (dist > 0))):
        near = [dist[y + dy, x + dx] for dy, dx in MOVES[1:]]
        assert min(near) == dist[y, x] - 1


def test_shortest_paths_are_batched_and_break_ties_in_move_order():
    known = _known([
        "#####",
        "#...#",
        "#...#",
        "#.#.#",
        "#####",
    ])
    w = known.shape[1]
    both = np.stack([known, known])
    dist, first = shortest_paths(walkable(both), np.array([1 * w + 1, 3 * w + 3]))
    # slot 0 from (1, 1): (2, 2) is entered by down from (1, 2) or by right from (2, 1); down
    # comes first in MOVES, so it takes the path through (1, 2), whose first move is right
    assert dist[0, 2 * w + 2] == 2 and first[0, 2 * w + 2] == RIGHT
    assert dist[0, 2 * w + 1] == 1 and first[0, 2 * w + 1] == DOWN
    assert dist[0, 3 * w + 3] == 4 and first[0, 3 * w + 3] == RIGHT
    assert dist[0, 3 * w + 1] == 2 and first[0, 3 * w + 1] == DOWN
    # slot 1 from (3, 3): its own distances
    assert dist[1, 3 * w + 3] == 0 and dist[1, 1 * w + 1] == 4 and first[1, 1 * w + 1] == UP
    assert dist[1, 3 * w + 1] == 4 and first[1, 3 * w + 2] == STAY and dist[1, 3 * w + 2] == FAR


def test_frontier_is_known_walkable_cells_beside_unknown_ones():
    known = _known([
        "#####",
        "#..?#",
        "#.#?#",
        "#####",
    ])
    edge = frontier(known[None])[0]
    assert np.argwhere(edge).tolist() == [[1, 2]]


def test_map_window_writes_the_window_where_the_agent_stands():
    height, width, v = 6, 8, 3
    r = v // 2
    known = np.empty((1, height + 2 * r, width + 2 * r), dtype=np.int8)
    clear_map(known, slice(None), r)
    assert (known[0, 0] == WALL).all() and (known[0, r:-r, r:-r] == UNKNOWN).all()
    grid = np.zeros((1, v, v, T.NUM_CHANNELS), dtype=np.uint8)
    grid[..., T.FLOOR] = 1
    grid[0, 0, :, T.FLOOR], grid[0, 0, :, T.WALL] = 0, 1  # the row above is wall
    scalars = np.zeros((1, len(SCALAR_NAMES)), dtype=np.float32)
    scalars[0, SCALAR_NAMES.index("row")] = 2 / (height - 1)
    scalars[0, SCALAR_NAMES.index("col")] = 5 / (width - 1)
    kind = np.full(T.NUM_TILES, FLOOR, dtype=np.int8)
    kind[T.WALL] = WALL
    window = map_window(known, grid, scalars, height, width, kind)
    wp = width + 2 * r
    assert window.here.tolist() == [(2 + r) * wp + 5 + r]
    assert window.cells[0, 4] == window.here[0] and window.tile[0, 0] == T.WALL
    assert (known[0, 1 + r, 4 + r:7 + r] == WALL).all() and (known[0, 2 + r:4 + r, 4 + r:7 + r] == FLOOR).all()
    assert (known == UNKNOWN).sum() == height * width - v * v


def test_entered_moves_by_the_previous_action_unless_a_wall_stops_it():
    """The cell the previous step entered: by the trial features' previous action from where the
    player stood, a move into a known wall cancelled, -1 where there was no previous step."""
    known = np.full((4, 5, 5), FLOOR, dtype=np.int8)
    known[:, 1, 2] = WALL  # above the centre
    centre = 2 * 5 + 2
    trial = np.zeros((4, TRIAL_FEATURES), np.float32)
    for slot, action in enumerate((1, 2, 4, 0)):  # up (into the wall), down, right, none at a trial start
        trial[slot, PREV_ACTION.start + action] = 1.0 if slot < 3 else 0.0
    here = np.array([centre, centre, centre, -1])
    np.testing.assert_array_equal(entered(known, here, trial), [centre, centre + 5, centre + 1, -1])
