"""beacons: the template of a game. Copy this file to start your own.

Description
    Players roam a maze of rooms that holds several identical beacons. One of them is
    lit from the inside: reaching it pays. The others go dark when touched.

Hidden factor
    Which beacon is the lit one. An agent that remembers which beacons it already tried,
    and which one paid in an earlier episode of the trial, does better in each episode.

Actions
    ``Discrete(5)``: stay, up, down, left, right (the engine moves the players).

Rewards
    ``+1`` for reaching the lit beacon, less for reaching it late:
    ``1 - 0.9 * t / limit``. Nothing for a dark one.

Termination
    The episode ends when a player reaches the lit beacon (terminated), or at the step
    limit ``steps_per_cell * size**2`` (truncated).

Players and collisions
    1-4, racing for the same beacon. The engine keeps players on distinct cells.

Variants (``template.toml`` beside this file)
    ``size``, ``rooms``, ``beacons``, ``steps_per_cell``.

How to make your own game from this file (the README's "Your own game" walks the whole path):

1. Copy this file and ``template.toml`` to ``my_game.py`` and ``my_game.toml`` (same folder),
   and rename ``beacons`` in ``GameSpec(name=...)``.
2. Change ``PARAMS``, ``generate``, ``touch`` and the three planners. Items are the cells
   a game reacts to; each has a tile from the shared vocabulary (``games/tiles.py``) and a
   hidden value.
3. Load it: ``METARENA_GAMES=path/to/my_game.py`` (or a module name, or an entry point in the
   group ``metarena.games`` of your package), then run
   ``python -c "from metarena.games.testing import check_game; check_game('my_game')"``.

Rules for every game (``check_game`` tests them): a level is a pure function of its seed (draw
only from ``self.rng(seed)``); ``touch`` and ``tick`` work on whole arrays of slots, never on
one level at a time; the oracle solves every level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metarena.games import tiles as T
from metarena.games.engine import MAX_PLAYERS, Engine, Game, GameSpec, Level, State
from metarena.games.maze import room_maze, start_cells
from metarena.games.planning import greedy_seek
from metarena.games.variant import Param, Variant

#: the generator's parameters: every variant sets each of them, within these ranges
PARAMS = (
    Param("size", int, 7, 41, "side of the square map, walls included", odd=True),
    Param("rooms", int, 1, 10, "rooms per side of the map"),
    Param("beacons", int, 2, 16, "beacons on the map, one of them lit"),
    Param("steps_per_cell", float, 0.05, 4.0, "episode length per map cell"),
)


class Beacons(Game):
    spec = GameSpec(
        name="beacons",
        title="Beacons",
        summary="Find the lit beacon among identical ones.",
        hidden="which beacon is lit",
        adaptation="remember which beacons were dark, and which one was lit",
        min_players=1,
        max_players=MAX_PLAYERS,
        default_variant="medium",
        params=PARAMS,
        terminates=True,
    )
    #: the variants file: ``small``, ``medium``, ``large`` tables of PARAMS
    variant_file = Path(__file__).with_suffix(".toml")

    def generate(self, variant: Variant, seed: int) -> Level:
        rng = self.rng(seed)  # the only randomness a level may use
        walls, room_id = room_maze(rng, variant.size, variant.rooms, 0.3)
        _, spawn = start_cells(rng, room_id, MAX_PLAYERS)  # MAX_PLAYERS start cells in one room
        free = np.argwhere(room_id >= 0)
        free = free[~(free[:, None] == spawn[None]).all(-1).any(1)]  # not on a start cell
        if len(free) < variant.beacons:
            raise ValueError(f"beacons: {variant.beacons} beacons do not fit a {variant.size} map")
        beacons = free[rng.choice(len(free), variant.beacons, replace=False)]
        value = np.zeros(variant.beacons, dtype=np.float32)
        value[rng.integers(variant.beacons)] = 1.0  # the hidden factor
        tiles = np.where(walls, T.WALL, T.FLOOR).astype(np.uint8)
        tiles[beacons[:, 0], beacons[:, 1]] = T.OBJECT_A
        return Level(self.spec.name, variant.name, seed, tiles, spawn, beacons, value)

    def touch(self, eng: Engine, st: State, player: int, slots: np.ndarray, item: np.ndarray,
              rewards: np.ndarray, terminated: np.ndarray) -> None:
        """``player`` reached beacon ``item[i]`` in slot ``slots[i]``: arrays, no loop."""
        lit = eng.levels.item_value[st.level[slots], item] > 0
        winners = slots[lit]
        rewards[winners, player] = 1.0 - 0.9 * st.t[winners] / eng.limit
        terminated[winners] = True
        st.alive[slots, item] = False  # a touched beacon is gone: its tile must change too
        eng.set_tiles(st, eng.item_cell(st, slots, item), T.FLOOR)

    # -- reference planners: (B,) actions of one player ---------------------------------------
    def oracle(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Knows the lit beacon: the shortest path to it."""
        target = eng.levels.item_value[st.level].argmax(1)
        return eng.descend(st, player, eng.levels.dist, target)

    def uninformed(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Knows the map, not which beacon is lit: the nearest beacon not yet tried."""
        dist = np.where(st.alive, eng.item_distance(st, player, eng.levels.dist), np.iinfo(np.int16).max)
        return eng.descend(st, player, eng.levels.dist, dist.argmin(1))

    def scripted(self, grid: np.ndarray, rng: np.random.Generator, previous: np.ndarray) -> np.ndarray:
        """Sees only its window: the nearest beacon in view, else roams on."""
        return greedy_seek(grid, (T.OBJECT_A,), rng, previous)

    def describe_level(self, level: Level) -> str:
        k = int(np.argmax(level.item_value))
        y, x = level.item_pos[k]
        return f"beacon {k + 1} of {len(level.item_value)} is lit, at row {y}, column {x}"


#: the game object; METARENA_GAMES (or your entry point) registers it
GAME = Beacons()
