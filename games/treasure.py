"""treasure: find the one chest that holds the treasure.

Description
    A maze of rooms, doorways and corridors holds several identical-looking closed
    chests, at most one per room where the rooms allow. Exactly one chest holds
    the treasure. Stepping on a chest opens it: an empty chest stays open (and
    shows as ``chest_open``) for the rest of the episode; the treasure chest
    pays and ends the episode.

Hidden factor
    Which chest holds the treasure. It stays in the same chest for every
    episode of a trial, and every episode starts from the same fully reset
    state (all chests closed, same start cell), so only memory carries what an
    earlier episode found.

Actions
    ``Discrete(5)``: stay, up, down, left, right.

Rewards
    ``1 - 0.9 * t / limit`` to the player who steps on the treasure chest at
    step ``t`` (1-based); 0 otherwise. The step limit is
    ``steps_per_cell * size**2``, tight enough that wandering costs.

Termination
    Terminated when a player finds the treasure; truncated at the step limit.

Players
    1-4, a race: all start in the same room; the first to find the treasure
    ends the episode for everyone. Movement follows the engine's collision
    rule (no two players share a cell).

Variants (``games/variants/treasure.toml``)
    ``size`` (odd map side), ``rooms`` (rooms per side), ``chests``, ``loops``
    (chance of an extra doorway), ``corridors`` (chance that a room becomes a
    corridor), ``steps_per_cell`` (step limit / area).
"""

from __future__ import annotations

import numpy as np

from . import tiles as T
from .engine import MAX_PLAYERS, Engine, Game, GameSpec, Level, State
from .maze import room_maze, start_cells
from .planning import greedy_seek
from .variant import Param, Variant

PARAMS = (
    Param("size", int, 7, 41, "side of the square map, walls included", odd=True),
    Param("rooms", int, 1, 10, "rooms per side of the map"),
    Param("chests", int, 1, 32, "number of chests, one of which holds the treasure"),
    Param("loops", float, 0.0, 1.0, "probability of a doorway beyond the spanning tree"),
    Param("corridors", float, 0.0, 1.0, "probability that a room becomes a corridor (at most half do)"),
    Param("steps_per_cell", float, 0.05, 4.0, "step limit per map cell"),
)


class Treasure(Game):
    spec = GameSpec(
        name="treasure",
        title="Treasure",
        summary="Open identical chests in a maze of rooms; one holds the treasure.",
        hidden="which chest holds the treasure",
        adaptation="explore once, then go straight there",
        min_players=1,
        max_players=MAX_PLAYERS,
        default_variant="medium",
        params=PARAMS,
        terminates=True,
    )

    def generate(self, variant: Variant, seed: int) -> Level:
        rng = self.rng(seed)
        # 1. the maze
        walls, room_id = room_maze(rng, variant.size, variant.rooms, variant.loops, variant.corridors)
        rooms = [r for r in np.unique(room_id) if r >= 0]
        # 2. a start room and MAX_PLAYERS distinct start cells in it
        start_room, spawn = start_cells(rng, room_id, MAX_PLAYERS)
        # 3. chests: one per other room while rooms last, then anywhere free
        taken = np.zeros_like(walls)
        taken[spawn[:, 0], spawn[:, 1]] = True
        chests = []
        for room in rng.permutation([r for r in rooms if r != start_room])[: variant.chests]:
            cells = np.argwhere(room_id == room)
            chests.append(cells[rng.integers(len(cells))])
        for y, x in chests:
            taken[y, x] = True
        while len(chests) < variant.chests:
            free = np.argwhere((room_id >= 0) & ~taken)
            if len(free) == 0:
                raise ValueError(f"treasure: {variant.chests} chests do not fit a {variant.size} map")
            cell = free[rng.integers(len(free))]
            taken[cell[0], cell[1]] = True
            chests.append(cell)
        chests = np.array(chests, dtype=np.int64)
        # 4. the hidden factor: which chest holds the treasure
        value = np.zeros(len(chests), dtype=np.float32)
        value[rng.integers(len(chests))] = 1.0
        tiles = np.where(walls, T.WALL, T.FLOOR).astype(np.uint8)
        tiles[chests[:, 0], chests[:, 1]] = T.CHEST
        return Level(self.spec.name, variant.name, seed, tiles, spawn, chests, value)

    def touch(self, eng: Engine, st: State, player: int, slots: np.ndarray, item: np.ndarray,
              rewards: np.ndarray, terminated: np.ndarray) -> None:
        found = eng.levels.item_value[st.level[slots], item] > 0
        if found.any():
            winners = slots[found]
            rewards[winners, player] = 1.0 - 0.9 * st.t[winners] / eng.limit
            terminated[winners] = True
        st.alive[slots, item] = False
        eng.set_tiles(st, eng.item_cell(st, slots, item), T.CHEST_OPEN)

    # -- reference planners -----------------------------------------------------------------
    def oracle(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Told the treasure chest: the shortest path to it."""
        target = eng.levels.item_value[st.level].argmax(1)
        return eng.descend(st, player, eng.levels.dist, target)

    def uninformed(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Knows the map, not the treasure: opens the nearest closed chest, again and again."""
        dist = np.where(st.alive, eng.item_distance(st, player, eng.levels.dist), np.iinfo(np.int16).max)
        return eng.descend(st, player, eng.levels.dist, dist.argmin(1))

    def scripted(self, grid: np.ndarray, rng: np.random.Generator, previous: np.ndarray) -> np.ndarray:
        """Sees only its window: walks to the nearest closed chest in view, else roams on, keeping
        its direction and turning back only at dead ends."""
        return greedy_seek(grid, (T.CHEST,), rng, previous)

    def describe_level(self, level: Level) -> str:
        k = int(np.argmax(level.item_value))
        y, x = level.item_pos[k]
        return f"treasure in chest {k + 1} of {len(level.item_value)}, at row {y}, column {x}"


GAME = Treasure()
