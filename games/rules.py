"""rules: learn what each kind of object does, and which one opens the exit.

Description
    A maze of rooms holds objects of three kinds (``object_a``, ``object_b``,
    ``object_c``: an orange triangle, a purple square, a teal diamond), ``objects``
    of each, and one exit in a room other than the start room. A player who steps
    on an object collects it and is paid the kind's value; a collected object is
    gone for the rest of the episode (no respawn). The exit is locked: it opens
    for a player once that player has collected an object of the *key* kind this
    episode. Stepping on the open exit pays the exit bonus and ends the episode;
    stepping on a locked exit does nothing (it stays, and looks the same: a
    locked and an open exit show the same tile).

Hidden factor
    The level's rule table. Every level deals the three kinds three roles, a
    shuffle of: *pays* ``+0.5``, *costs* ``-0.5`` and *trap* ``-1`` (and
    the episode ends); and picks the key kind among the paying and the costly
    kind (never the trap). So the key costs half the time: opening the exit may
    mean taking a loss. Values and key show only in rewards and in whether the
    exit lets a player out, never in the observation; they stay the same for
    every episode of a trial, and every episode starts from the same fully reset
    state (all objects back, the exit locked).

Actions
    ``Discrete(5)``: stay, up, down, left, right.

Rewards
    The kind's value for each object a player collects, to that player; the
    exit bonus ``+3`` to the player who leaves by the open exit. A player's
    score is the sum.

Termination
    Terminated when a player leaves by the open exit or springs a trap;
    truncated at the step limit ``steps_per_cell * size**2``.

Players and collisions
    1-4, a race for the same objects and the exit: all start in the same room;
    the key is per player (each must collect a key object of its own before the
    exit lets it out), and the first player to leave ends the episode for
    everyone, as does a trap sprung by any player (the ``-1`` goes to the player
    who sprang it). No two players share a cell: a move into a wall, into the
    cell another player will occupy (moving there or staying there), or a swap
    of two players is cancelled, and cancellations cascade; a player standing on
    the exit keeps the others off it.

Variants (``games/variants/rules.toml``)
    ``size``, ``rooms``, ``loops`` (chance of an extra doorway), ``objects``
    (per kind), ``steps_per_cell`` (step limit / area).

Every level can be solved: an object of the key kind and the exit are reachable
from every start cell without crossing a costly object or a trap, and the
shortest such way from the first start cell through a key object to the exit
takes at most 70% of the step limit (where the variant leaves so many steps;
else the quickest placement found).
"""

from __future__ import annotations

import numpy as np

from . import tiles as T
from .engine import MAX_PLAYERS, MOVES, Engine, Game, GameSpec, Level, LevelBatch, State
from .maze import UNREACHABLE, bfs, doorway_neighbours, room_maze, start_cells
from .planning import greedy_seek
from .variant import Param, Variant

PARAMS = (
    Param("size", int, 7, 41, "side of the square map, walls included", odd=True),
    Param("rooms", int, 2, 10, "rooms per side of the map"),
    Param("loops", float, 0.0, 1.0, "probability of a doorway beyond the spanning tree"),
    Param("objects", int, 1, 12, "objects of each kind"),
    Param("steps_per_cell", float, 0.05, 4.0, "step limit per map cell"),
)

OBJECTS = (T.OBJECT_A, T.OBJECT_B, T.OBJECT_C)
KINDS = len(OBJECTS)
KIND_NAMES = ("triangle", "square", "diamond")  # how games/render.py draws object_a, _b, _c
#: the kind (0, 1, 2) of an object tile, -1 for any other tile
KIND_OF_TILE = np.full(T.NUM_TILES, -1, dtype=np.int64)
KIND_OF_TILE[list(OBJECTS)] = np.arange(KINDS)
PAYS, COSTS, TRAP = 0.5, -0.5, -1.0  #: the three roles' values; the trap also ends the episode
ROLE_VALUES = np.array([PAYS, COSTS, TRAP], dtype=np.float32)
EXIT_BONUS = 3.0
EXIT_ITEM = 0  #: item 0 of every level is the exit
KEY_ITEM = 1  #: item 1 of every level is an object of the key kind (how the engine side reads the key)
BUDGET = 0.7  #: the safe way through a key object to the exit fits this share of the step limit
FAR = np.iinfo(np.int64).max // 4


class Rules(Game):
    spec = GameSpec(
        name="rules",
        title="Rules",
        summary="Collect objects of three kinds; each level hides what each kind does and which opens the exit.",
        hidden="the value of each object kind (one pays, one costs, one is a trap) and the key kind "
               "that opens the exit",
        adaptation="sample kinds and test the exit, then take the key and the paying objects and leave",
        min_players=1,
        max_players=MAX_PLAYERS,
        default_variant="medium",
        params=PARAMS,
        terminates=True,
    )

    def generate(self, variant: Variant, seed: int) -> Level:
        rng = self.rng(seed)
        # 1. a maze of rooms
        walls, room_id = room_maze(rng, variant.size, variant.rooms, variant.loops)
        # 2. MAX_PLAYERS start cells in one room
        start_room, spawn = start_cells(rng, room_id, MAX_PLAYERS)
        # 3. the hidden factor: a role per kind, and the key among the paying and the costly kind
        value = ROLE_VALUES[rng.permutation(KINDS)]  # (3,) value of each kind
        key = int(rng.choice(np.flatnonzero(value != TRAP)))
        # 4. the exit in another room, the objects on room cells away from doorways, placed again
        #    until the key and the exit can be reached safely and in time
        free = (room_id >= 0) & ~doorway_neighbours(walls, room_id)
        free[spawn[:, 0], spawn[:, 1]] = False
        exits = np.argwhere(free & (room_id != start_room))
        n = KINDS * variant.objects
        kind = np.arange(n) % KINDS
        kind = np.concatenate([kind[kind == key], kind[kind != key]])  # key objects first
        budget = BUDGET * self.step_limit(variant)
        best, best_route = None, UNREACHABLE
        for _ in range(200):
            exit_cell = exits[rng.integers(len(exits))]
            left = free.copy()
            left[exit_cell[0], exit_cell[1]] = False
            cells = np.argwhere(left)
            if n > len(cells):
                raise ValueError(f"rules: {n} objects do not fit a {variant.size} map")
            objects = cells[rng.choice(len(cells), n, replace=False)]
            route = self._route(walls, spawn, exit_cell, objects, value[kind], kind == key)
            if route < best_route:
                best, best_route = (exit_cell, objects), route
            if route <= budget:
                break
        if best is None:
            raise ValueError(f"rules: could not place the objects on level {seed} of variant '{variant.name}'")
        exit_cell, objects = best  # within the budget, or (a variant with too few steps) the quickest found
        items = np.concatenate([exit_cell[None], objects]).astype(np.int64)
        tiles = np.where(walls, T.WALL, T.FLOOR).astype(np.uint8)
        tiles[exit_cell[0], exit_cell[1]] = T.EXIT
        tiles[objects[:, 0], objects[:, 1]] = np.array(OBJECTS, dtype=np.uint8)[kind]
        values = np.concatenate([[EXIT_BONUS], value[kind]]).astype(np.float32)
        return Level(self.spec.name, variant.name, seed, tiles, spawn, items, values)

    @staticmethod
    def _route(walls, spawn, exit_cell, objects, value, is_key) -> int:
        """Steps of the shortest way from the first start cell through a key object to the exit
        that crosses no costly object or trap; ``UNREACHABLE`` if there is none, or if some
        start cell cannot reach the exit so."""
        blocked = np.zeros_like(walls)
        bad = objects[value < 0]
        blocked[bad[:, 0], bad[:, 1]] = True
        from_exit = bfs(walls, tuple(exit_cell), blocked)
        if (from_exit[spawn[:, 0], spawn[:, 1]] >= UNREACHABLE).any():
            return int(UNREACHABLE)
        from_start = bfs(walls, tuple(spawn[0]), blocked)
        best = UNREACHABLE
        for y, x in objects[is_key]:  # a blocked (costly) key object is entered from a neighbour
            if blocked[y, x]:
                a = 1 + min(int(from_start[y + dy, x + dx]) for dy, dx in MOVES[1:])
                b = 1 + min(int(from_exit[y + dy, x + dx]) for dy, dx in MOVES[1:])
            else:
                a, b = int(from_start[y, x]), int(from_exit[y, x])
            best = min(best, a + b)
        return int(best)

    def touch(self, eng: Engine, st: State, player: int, slots: np.ndarray, item: np.ndarray,
              rewards: np.ndarray, terminated: np.ndarray) -> None:
        """The exit lets ``player`` out if it has collected a key object this episode; an object
        pays its value and is gone; a trap ends the episode.

        ``st.touched`` records, per player, the kinds collected this episode, and on the exit's
        tile whether the player has found the exit locked since it last collected a kind new to
        it (what the uninformed planner needs to know whether to try the exit again)."""
        lv = st.level[slots]
        tile = eng.item_tile[lv, item]
        value = eng.levels.item_value[lv, item]
        at_exit = item == EXIT_ITEM
        key = eng.item_tile[lv, KEY_ITEM]
        opened = at_exit & st.touched[slots, player, key]
        rewards[slots[opened], player] += value[opened]
        terminated[slots[opened]] = True
        st.touched[slots[at_exit & ~opened], player, T.EXIT] = True
        take = ~at_exit
        s, k, t = slots[take], item[take], tile[take]
        if len(s):
            new = ~st.touched[s, player, t]
            st.touched[s[new], player, T.EXIT] = False
            st.touched[s, player, t] = True
            rewards[s, player] += value[take]
            terminated[s[value[take] == TRAP]] = True
            st.alive[s, k] = False
            eng.set_tiles(st, eng.item_cell(st, s, k), T.FLOOR)

    # -- reference planners -----------------------------------------------------------------
    def plan(self, eng: Engine, st: State, player: int, value: np.ndarray, known: np.ndarray,
             maybe_key: np.ndarray, maps: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
        """(B,) actions of a player who believes the kinds' values ``value`` where ``known``
        (B, 3) and that the key is one of the kinds ``maybe_key`` (B, 3), walking the pool
        distance maps ``maps``, or ``fallback`` towards a target ``maps`` do not reach (the
        oracle, the uninformed planner and the recall ceiling planner all play this way).

        A kind may be the key unless the player found the exit locked since it last collected
        a new kind (then none of the kinds it has collected is). The exit is surely open once
        every kind that may be the key has been collected: then it collects the nearest paying
        object from which it still reaches the exit in time, else leaves. Otherwise, if a kind
        it has collected may be the key and it has not tried the exit since, it tries the exit.
        Otherwise it collects the nearest object of a kind that may be the key (not yet
        collected) or that pays, among those after which a key object and the exit can still
        be reached in time (else the key object nearest to leaving by it)."""
        b = st.batch
        rows = np.arange(b)[:, None]
        lv = st.level
        kind = KIND_OF_TILE[eng.item_tile[lv]]  # (B, K)
        kc = np.maximum(kind, 0)
        is_obj = (kind >= 0) & st.alive
        sampled = st.touched[:, player][:, list(OBJECTS)]  # (B, 3) collected this episode
        tried = st.touched[:, player, T.EXIT]
        maybe = maybe_key & ~(tried[:, None] & sampled)
        need = maybe & ~sampled
        surely_open = ~need.any(1)
        paying = is_obj & (known & (value > 0))[rows, kc]
        try_exit = ~surely_open & (maybe & sampled).any(1) & ~tried
        key_obj = is_obj & need[rows, kc]

        d_here = self._from_player(eng, st, player, maps)  # (B, K)
        pair = self._pairs(eng, st, maps)  # (B, K, K): pair[:, i, j] steps from item j to item i
        if fallback is not None:
            d_here = np.where(d_here < FAR, d_here, self._from_player(eng, st, player, fallback))
            pair = np.where(pair < FAR, pair, self._pairs(eng, st, fallback))
        d_exit = pair[:, EXIT_ITEM]  # (B, K) from each item to the exit
        left = (eng.limit - st.t - 1)[:, None]
        # open: a paying object from which the exit is still in time, nearest first
        ok = paying & (d_here + d_exit <= left)
        open_target = np.where(ok.any(1), np.where(ok, d_here, FAR).argmin(1), EXIT_ITEM)
        # locked: a key object or a paying one, after which a key object and the exit are in time
        via = np.where(key_obj[:, None, :], pair + d_exit[:, None, :], FAR).min(2)  # (B, K) item->key->exit
        finish = d_here + np.where(key_obj, d_exit, via)
        ok = (key_obj | paying) & (finish <= left)
        quickest = np.where(key_obj, d_here + d_exit, FAR)
        need_target = np.where(ok.any(1), np.where(ok, d_here, FAR).argmin(1),
                               np.where(key_obj.any(1), quickest.argmin(1), EXIT_ITEM))
        target = np.where(surely_open | try_exit, open_target, need_target)
        act = eng.descend(st, player, maps, target)
        if fallback is None:
            return act
        near = self._from_player(eng, st, player, maps)[np.arange(b), target] < FAR
        return np.where(near, act, eng.descend(st, player, fallback, target))

    @staticmethod
    def _entry(maps_at: np.ndarray, around: np.ndarray) -> np.ndarray:
        """Steps from a cell: its map value, or, where the map does not enter it (a blocked
        cell), one more than its nearest neighbour's; FAR where unreachable."""
        d = np.where(maps_at < UNREACHABLE, maps_at.astype(np.int64), around.astype(np.int64) + 1)
        return np.where(d < UNREACHABLE, d, FAR)

    def _from_player(self, eng: Engine, st: State, player: int, maps: np.ndarray) -> np.ndarray:
        row, col = eng.rowcol(st)
        y, x = row[:, player, None], col[:, player, None]
        lv, k = st.level[:, None], np.arange(eng.num_items)[None, :]
        around = np.min([maps[lv, k, y + dy, x + dx] for dy, dx in MOVES[1:]], axis=0)
        return self._entry(maps[lv, k, y, x], around)

    def _pairs(self, eng: Engine, st: State, maps: np.ndarray) -> np.ndarray:
        pos = eng.levels.item_pos[st.level]  # (B, K, 2)
        lv, k = st.level[:, None, None], np.arange(eng.num_items)[None, :, None]
        y, x = pos[:, None, :, 0], pos[:, None, :, 1]
        around = np.min([maps[lv, k, y + dy, x + dx] for dy, dx in MOVES[1:]], axis=0)
        d = self._entry(maps[lv, k, y, x], around)
        d[:, np.arange(eng.num_items), np.arange(eng.num_items)] = 0
        return d

    @staticmethod
    def kind_values(eng: Engine, st: State) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3) value of each kind and (B, 3) one-hot key kind of each slot's level (hidden)."""
        lv = st.level
        kind = KIND_OF_TILE[eng.item_tile[lv]]
        value = np.zeros((st.batch, KINDS), dtype=np.float64)
        rows, cols = np.nonzero(kind >= 0)
        value[rows, kind[rows, cols]] = eng.levels.item_value[lv][rows, cols]
        key = np.zeros((st.batch, KINDS), dtype=bool)
        key[np.arange(st.batch), KIND_OF_TILE[eng.item_tile[lv, KEY_ITEM]]] = True
        return value, key

    def oracle(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Told the values and the key: takes the nearest key object, and the paying objects it
        has time for, never crossing a costly object (but the key's) or a trap, then leaves."""
        value, key = self.kind_values(eng, st)
        return self.plan(eng, st, player, value, np.ones_like(key), key, eng.levels.safe_dist)

    def uninformed(self, eng: Engine, st: State, player: int) -> np.ndarray:
        """Knows the map, not the rules: collects the nearest object of a kind it has not
        collected this episode, and after each new kind the objects of the kinds that paid,
        then tries the exit; it walks round every object it does not mean to take, where it
        can (:func:`careful_dist`)."""
        value, _ = self.kind_values(eng, st)
        sampled = st.touched[:, player][:, list(OBJECTS)]
        maybe = np.ones_like(sampled)
        return self.plan(eng, st, player, np.where(sampled, value, 0.0), sampled, maybe,
                         careful_dist(eng.levels), eng.levels.dist)

    def scripted(self, grid: np.ndarray, rng: np.random.Generator, previous: np.ndarray) -> np.ndarray:
        """Sees only its window (no rules): walks to the nearest object in view; with none in
        view, to the exit in view half the time, else roams on."""
        c = grid.shape[1] // 2
        seen = grid[..., list(OBJECTS)].any(-1)
        seen[:, c, c] = False
        to_object = greedy_seek(grid, OBJECTS, rng, previous)
        to_exit = greedy_seek(grid, (T.EXIT,), rng, previous)
        exit_now = rng.random(grid.shape[0]) < 0.5
        return np.where(seen.any((1, 2)) | ~exit_now, to_object, to_exit)

    def describe_level(self, level: Level) -> str:
        kinds = KIND_OF_TILE[level.tiles[level.item_pos[:, 0], level.item_pos[:, 1]]]
        value = {int(k): float(v) for k, v in zip(kinds, level.item_value) if k >= 0}
        key = int(kinds[KEY_ITEM])
        parts = [f"{KIND_NAMES[k]} " + ("trap (-1, ends the episode)" if value[k] == TRAP else f"{value[k]:+g}")
                 for k in sorted(value)]
        return "object values: " + ", ".join(parts) + f"; the exit (+{EXIT_BONUS:g}) opens after a {KIND_NAMES[key]}"


GAME = Rules()


def careful_dist(levels: LevelBatch) -> np.ndarray:
    """(N, K, H, W) like ``levels.dist``, but paths never cross an object (only the one they lead
    to): the maps of a planner that knows where the objects are but not what they do, and so
    steps on none it does not mean to (computed once per pool, kept on the batch)."""
    cached = levels.__dict__.get("_rules_careful_dist")
    if cached is None:
        n, k = levels.item_pos.shape[:2]
        cached = np.empty((n, k) + levels.shape, dtype=np.int16)
        for i in range(n):
            walls = levels.tiles[i] == T.WALL
            blocked = np.zeros(walls.shape, dtype=bool)
            objects = levels.item_pos[i][KIND_OF_TILE[levels.tiles[i][tuple(levels.item_pos[i].T)]] >= 0]
            blocked[objects[:, 0], objects[:, 1]] = True
            for j, (y, x) in enumerate(levels.item_pos[i]):
                cached[i, j] = bfs(walls, (int(y), int(x)), blocked)
        levels.__dict__["_rules_careful_dist"] = cached
    return cached
