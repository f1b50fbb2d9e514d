"""Map building blocks shared by the games: room mazes and BFS distance maps.

Everything takes an explicit ``np.random.Generator``; nothing here touches
global random state.
"""

from __future__ import annotations

from collections import deque

import numpy as np

UNREACHABLE = np.int16(32000)


def _partition(rng: np.random.Generator, length: int, parts: int, min_part: int) -> list[int]:
    """Split ``length`` cells into ``parts`` segments of at least ``min_part``,
    separated by one-cell walls and framed by walls: sum(sizes) + parts + 1 == length."""
    free = length - (parts + 1) - parts * min_part
    if free < 0:
        raise ValueError(f"a map of {length} cells cannot hold {parts} rooms of {min_part}")
    extra = rng.multinomial(free, np.full(parts, 1.0 / parts))
    return [min_part + int(e) for e in extra]


def room_maze(rng: np.random.Generator, size: int, rooms: int, loops: float, corridors: float = 0.0,
              min_room: int = 2):
    """A square map of ``rooms`` x ``rooms`` rectangular rooms joined by doorways and corridors.

    Steps:
      1. cut the map into room rows and columns of random sizes, walls between;
      2. join the rooms by a random spanning tree (every room reachable), one
         doorway cell per joined pair, at a random place along the shared wall;
      3. add a doorway for each other adjacent pair with probability ``loops``
         (more loops, more open map);
      4. turn each room with two or more doorways into a corridor with probability
         ``corridors``: only one-cell-wide paths between its doorways stay open (at
         most half of the rooms become corridors).

    Returns ``(walls, room_id)``: ``walls`` (size, size) bool; ``room_id`` (size, size)
    int, the room of each floor cell inside a room, -1 on walls, doorways and corridors.
    """
    rows = _partition(rng, size, rooms, min_room)
    cols = _partition(rng, size, rooms, min_room)
    row_start = np.cumsum([1] + [r + 1 for r in rows[:-1]])
    col_start = np.cumsum([1] + [c + 1 for c in cols[:-1]])
    walls = np.ones((size, size), dtype=bool)
    room_id = np.full((size, size), -1, dtype=np.int32)
    for i, (r0, h) in enumerate(zip(row_start, rows)):
        for j, (c0, w) in enumerate(zip(col_start, cols)):
            walls[r0:r0 + h, c0:c0 + w] = False
            room_id[r0:r0 + h, c0:c0 + w] = i * rooms + j

    def door(a: tuple[int, int], b: tuple[int, int]) -> None:
        (i, j), (k, _) = a, b
        if i == k:  # side by side: a doorway in the vertical wall between them
            col = col_start[j] + cols[j]
            row = row_start[i] + int(rng.integers(rows[i]))
        else:  # one above the other
            row = row_start[i] + rows[i]
            col = col_start[j] + int(rng.integers(cols[j]))
        walls[row, col] = False

    edges = [((i, j), (i, j + 1)) for i in range(rooms) for j in range(rooms - 1)]
    edges += [((i, j), (i + 1, j)) for i in range(rooms - 1) for j in range(rooms)]
    order = rng.permutation(len(edges))
    parent = list(range(rooms * rooms))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in order:  # randomised Kruskal: a spanning tree, then optional loops
        a, b = edges[e]
        ra, rb = find(a[0] * rooms + a[1]), find(b[0] * rooms + b[1])
        if ra != rb:
            parent[ra] = rb
            door(a, b)
        elif rng.random() < loops:
            door(a, b)
    if corridors > 0:
        _carve_corridors(rng, walls, room_id, rooms * rooms, corridors)
    return walls, room_id


def _carve_corridors(rng: np.random.Generator, walls: np.ndarray, room_id: np.ndarray, n_rooms: int,
                     chance: float) -> None:
    """Step 4 of :func:`room_maze`, in place: L-shaped paths from one doorway of a room to
    each of its others stay open; the rest of the room becomes wall."""
    doorway = ~walls & (room_id < 0)
    carved = 0
    for room in rng.permutation(n_rooms):
        if rng.random() >= chance or carved + 1 > n_rooms // 2:
            continue
        inside = room_id == room
        near = np.zeros_like(inside)
        near[1:] |= doorway[:-1]
        near[:-1] |= doorway[1:]
        near[:, 1:] |= doorway[:, :-1]
        near[:, :-1] |= doorway[:, 1:]
        ends = np.argwhere(inside & near)
        if len(ends) < 2:
            continue
        keep = np.zeros_like(inside)
        (y0, x0) = ends[0]
        for y1, x1 in ends[1:]:
            if rng.random() < 0.5:  # along the row first, then the column; or the other way
                keep[y0, min(x0, x1):max(x0, x1) + 1] = True
                keep[min(y0, y1):max(y0, y1) + 1, x1] = True
            else:
                keep[min(y0, y1):max(y0, y1) + 1, x0] = True
                keep[y1, min(x0, x1):max(x0, x1) + 1] = True
        walls[inside & ~keep] = True
        room_id[inside] = -1
        carved += 1


def start_cells(rng: np.random.Generator, room_id: np.ndarray, count: int) -> tuple[int, np.ndarray]:
    """A random start room (among those with ``count`` cells or more) and ``count`` distinct
    cells in it: ``(room, cells (count, 2))``."""
    ids, sizes = np.unique(room_id[room_id >= 0], return_counts=True)
    room = int(rng.choice(ids[sizes >= count]))
    cells = np.argwhere(room_id == room)
    return room, cells[rng.choice(len(cells), count, replace=False)]


def bfs(walls: np.ndarray, source: tuple[int, int], blocked: np.ndarray | None = None) -> np.ndarray:
    """Steps from ``source`` to every cell (4-neighbour moves), ``UNREACHABLE`` where
    no path exists. ``blocked`` marks extra cells that paths may not enter (the source may
    be one)."""
    h, w = walls.shape
    dist = np.full(h * w, UNREACHABLE, dtype=np.int16)
    free = ~walls.ravel() if blocked is None else ~(walls | blocked).ravel()
    start = source[0] * w + source[1]
    dist[start] = 0
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        d = dist[cell] + 1
        y, x = divmod(cell, w)
        for nb, ok in ((cell - w, y > 0), (cell + w, y < h - 1), (cell - 1, x > 0), (cell + 1, x < w - 1)):
            if ok and free[nb] and dist[nb] == UNREACHABLE:
                dist[nb] = d
                queue.append(nb)
    return dist.reshape(h, w)


def doorway_neighbours(walls: np.ndarray, room_id: np.ndarray) -> np.ndarray:
    """(H, W) bool: room cells next to a doorway (a floor cell outside every room)."""
    door = ~walls & (room_id < 0)
    near = np.zeros_like(door)
    near[1:] |= door[:-1]
    near[:-1] |= door[1:]
    near[:, 1:] |= door[:, :-1]
    near[:, :-1] |= door[:, 1:]
    return near & (room_id >= 0)
