"""coinrush: collect the coins that pay, leave the ones that cost.

Description
    Players roam a maze of rooms with many doorways, scattered with coins of
    three colours (red, green, blue). A player who steps on a coin collects it
    and is paid the colour's value; the coin comes back on the same cell
    ``respawn`` steps later (once the cell is free).

Hidden factor
    The value of each colour. Every level draws them as a shuffle of
    ``+1``, ``-1`` and one of ``+0.5`` / ``-0.5``: one colour always pays, one
    always costs. A collected coin's value shows only in the reward, never in
    the observation.

Actions
    ``Discrete(5)``: stay, up, down, left, right.

Rewards
    The value of each coin a player collects, to that player. A player's score
    is the sum.

Termination
    None: an episode lasts exactly ``steps_per_cell * size**2`` steps (truncated).

Players and collisions
    1-4. No two players share a cell: a move into a wall, into the cell another
    player will occupy (moving there or staying there), or a swap of two
    players is cancelled, and cancellations cascade. So two players never take
    the same coin; a coin does not come back while a player stands on its cell.

Variants (``games/variants/coinrush.toml``)
    ``size``, ``rooms``, ``loops`` (chance of an extra doorway), ``coins``
    (per colour), ``respawn`` (steps), ``steps_per_cell`` (episode length / area).
"""

from __future__ import annotations

import numpy as np

from . import tiles as T
from .engine import MAX_PLAYERS, Engine, Game, GameSpec, Level, State
from .maze import UNREACHABLE, bfs, doorway_neighbours, room_maze, start_cells
from .planning import greedy_seek
from .variant import Param, Variant

PARAMS = (
    Param("size", int, 7, 41, "side of the square map, walls included", odd=True),
    Param("rooms", int, 1, 10, "rooms per side of the map"),
    Param("loops", float, 0.0, 1.0, "probability of a doorway beyond the spanning tree"),
    Param("coins", int, 1, 16, "coins of each colour"),
    Param("respawn", int, 1, 1000, "steps before a collected coin comes back"),
    Param("steps_per_cell", float, 0.05, 4.0, "episode length per map cell"),
)

NEVER = np.int16(32000)


class Coinrush(Game):
    spec = GameSpec(
        name="coinrush",
        title="Coinrush",
        summary="Collect coins of three colours; each level hides which colours pay.",
        hidden="the value of each coin colour (some negative)",
        adaptation="sample each colour, then collect only what pays",
        min_players=1,
        max_players=MAX_PLAYERS,
        default_variant="medium",
        params=PARAMS,
        terminates=False,
    )

    def generate(self, variant: Variant, seed: int) -> Level:
        rng = self.rng(seed)
        # 1. an open maze
        walls, room_id = room_maze(rng, variant.size, variant.rooms, variant.loops)
        # 2. MAX_PLAYERS start cells in one room
        _, spawn = start_cells(rng, room_id, MAX_PLAYERS)
        # 3. the hidden factor: what each colour is worth
        values = rng.permutation(np.array([1.0, -1.0, rng.choice([0.5, -0.5])], dtype=np.float32))
        # 4. coins on room cells away from doorways, the colours interleaved, placed again
        #    until every paying coin can be reached without crossing a costly one
        free = (room_id >= 0) & ~doorway_neighbours(walls, room_id)
        free[spawn[:, 0], spawn[:, 1]] = False
        cells = np.argwhere(free)
        n = 3 * variant.coins
        if n > len(cells):
            raise ValueError(f"coinrush: {n} coins do not fit a {variant.size} map")
        colour = np.arange(n) % 3
        for _ in range(100):
            coins = cells[rng.choice(len(cells), n, replace=False)]
            costly = np.zeros_like(walls)
            bad = coins[values[colour] < 0]
            costly[bad[:, 0], bad[:, 1]] = True
            reach = bfs(walls, tuple(spawn[0]), blocked=costly)
            good = coins[values[colour] > 0]
            if (reach[good[:, 0], good[:, 1]] < UNREACHABLE).all():
                break
        else:
            raise ValueError(f"coinrush: could not place coins on level {seed} of variant '{variant.name}'")
        tiles = np.where(walls, T.WALL, T.FLOOR).astype(np.uint8)
        tiles[coins[:, 0], coins[:, 1]] = np.array(T.COINS, dtype=np.uint8)[colour]
        return Level(self.spec.name, variant.name, seed, tiles, spawn, coins, values[colour])

    def touch(self, eng: Engine, st: State, player: int, slots: np.ndarray, item: np.ndarray,
              rewards: np.ndarray, terminated: np.ndarray) -> None:
        rewards[slots, player] += eng.levels.item_value[st.level[slots], item]
        st.alive[slots, item] = False
        st.timer[slots, item] = eng.variant.respawn
        eng.set_tiles(st, eng.item_cell(st, slots, item), T.FLOOR)
        eng.mark_touched(st, player, slots, item)

    def tick(self, eng: Engine, st: State) -> None:
        """Count down taken coins; a coin whose count is out comes back once its cell is free."""
        np.subtract(st.timer, 1, out=st.timer, where=st.timer > 0)
        b, k = np.nonzero((st.timer == 0) & ~st.alive)
        if len(b):
            at = eng.item_cell(st, b, k)
            free = ~eng.occupied(st, b, at)
            b, k, at = b[free], k[free], at[free]
            st.alive[b, k] = True
            eng.set_tiles(st, at, eng.item_tile[st.level[b], k])

    # -- reference planners -----------------------------------------------------------------
    def seek(self, eng: Engine, st: State, player: int, wanted: np.ndarray, maps: np.ndarray) -> np.ndarray:
        """(B,) actions heading for the ``wanted`` (B, K) coin that can be taken soonest over the
        pool distance maps ``maps``, waiting out respawns (the oracle, the uninformed planner and
        the recall ceiling planner all walk this way)."""
        dist = eng.item_distance(st, player, maps).astype(np.int32)
        ready_in = np.maximum(dist, np.where(st.alive, 0, st.timer))
        cost = np.where(wanted, ready_in, np.iinfo(np.int32).max)
        target = cost.argmin(1)
        # standing on a taken coin keeps it away: step off while it comes back
        rows = np.arange(st.batch)
        leave = ~st.alive[rows, target] & (dist[rows, target] == 0)
        act = eng.descend(st, player, maps, target, leave)
        return np.where(wanted.any(1), act, 0)

    def oracle(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Told the colour values: collects the nearest paying coin, never crossing a costly one."""
        value = eng.levels.item_value[st.level]
        return self.seek(eng, st, player, value > 0, eng.levels.safe_dist)

    def uninformed(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Knows the map, not the values: samples each colour once, then collects the paying ones."""
        value = eng.levels.item_value[st.level]
        known = st.touched[:, player][np.arange(st.batch)[:, None], eng.item_tile[st.level]]
        wanted = ~known | (value > 0)
        return self.seek(eng, st, player, wanted, eng.levels.dist)

    def scripted(self, grid: np.ndarray, rng: np.random.Generator, previous: np.ndarray) -> np.ndarray:
        """Sees only its window (no values): walks to the nearest coin in view, else roams on."""
        return greedy_seek(grid, T.COINS, rng, previous)

    def describe_level(self, level: Level) -> str:
        names = ("red", "green", "blue")
        vals = {}
        for tile, v in zip(level.tiles[level.item_pos[:, 0], level.item_pos[:, 1]], level.item_value):
            vals[names[T.COINS.index(int(tile))]] = float(v)
        return "coin values: " + ", ".join(f"{k} {v:+g}" for k, v in sorted(vals.items()))


GAME = Coinrush()
