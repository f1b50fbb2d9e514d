"""What a perfect in-context learner could score on cycles: planners with a perfect memory.

    metarena eval --agent recall|window-recall --game cycles [--levels 500]

Two planners, agents like any other, measured by `metarena eval` (the oracle and random on the
same levels), both playing solo. Neither is told the pads or the bots' styles; both learn what
the trial shows and forget nothing within it, and both choose moves as the game's planners do
(``games.cycles.plan``: the moves whose Voronoi territory covers the steps left, the nearest to
a wanted pad, then straight on).

- The pads: a pad that paid is a boost, one that killed is a trap (the same in every episode of
  the trial). Late in an episode (from ``EXPLORE`` of the step limit on), when little survival
  is left to lose, both step on pads they do not know yet, to learn them for the next
  episodes.

``recall`` knows the map and sees the whole state (as the uninformed planner does). It learns
the pads from the state (a pad sprung shows the trap tile; one taken without it was a boost)
and the bots' styles by elimination: it keeps, for every bot, the styles (aggression, turn bias,
depth up to the variant's ``depth_max``) that would have made every move the bot made in the
trial (``games.cycles.bot_moves``), keeps off every cell one of them would take next, and
counts the territory against the next cell of the first of them.

``window-recall`` sees what a learned agent sees: its window, its row and column, the trial
features (the map's size and the step limit are all it reads of the engine). It maps walls and
pads from its windows (kept for the trial) and the trails and cycles it has seen this episode
(kept for the episode); unknown cells count as free. It learns a pad from the reward of the step
that brought it onto it, and keeps off the cells round every cycle head in view (it cannot tell
where they go).
"""

from __future__ import annotations

import numpy as np

from metarena.games import cycles as C
from metarena.games import tiles as T
from metarena.games.engine import SCALAR_NAMES
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_REWARD
from .mapping import FLOOR, UNKNOWN, WALL, MapPlanner, TrialMemory, clear_map, map_window

EXPLORE = 0.6  #: from this share of the step limit on, the planners try pads they do not know
UNKNOWN_PAD, BOOST_PAD, TRAP_PAD = 0, 1, 2
PAD = WALL + 1  #: the window planner's map kind of a pad (walkable)
KIND_OF_TILE = np.full(T.NUM_TILES, FLOOR, dtype=np.int8)
KIND_OF_TILE[T.WALL] = WALL
KIND_OF_TILE[[T.BOOST, T.TRAP]] = PAD


def styles(depth_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every style a bot may have: ``(aggression, bias, depth)``, each (S,)."""
    a, b, d = np.meshgrid(C.AGGRESSION, C.BIAS, np.arange(1, depth_max + 1), indexing="ij")
    return a.ravel(), b.ravel().astype(np.int64), d.ravel().astype(np.int64)


class RecallPlanner(TrialMemory):
    """Knows the map; learns the pads and the bots' styles within a trial, forgets nothing."""

    name = "recall"

    def act(self, obs, memory: dict, ctx):
        eng, st, player = ctx.engine, ctx.state, ctx.player
        n, k, nb = st.batch, eng.num_items, C.bots_of(eng)
        agg, bias, depth = styles(int(eng.variant.depth_max))
        s = len(agg)
        if not memory:
            memory.update(pads=np.zeros((n, k), np.int8), fits=np.ones((n, nb, s), bool),
                          guess=np.zeros((n, nb, s), np.int64), alive=np.zeros((n, nb), bool))
        trial = obs.trial
        start = trial[:, EPISODE_START] > 0
        new = start & (trial[:, EPISODE_INDEX] == 0)
        memory["pads"][new] = UNKNOWN_PAD
        memory["fits"][new] = True
        # the pads sprung this episode
        cells = eng._items0[st.level] + eng._base[:, None]
        shown = st.cells.reshape(-1)[cells] & T.TILE_MASK
        taken = ~st.alive
        memory["pads"][taken & (shown == T.TRAP)] = TRAP_PAD
        memory["pads"][taken & (shown != T.TRAP) & (memory["pads"] == UNKNOWN_PAD)] = BOOST_PAD
        ex = st.extra
        bot_next = None
        if nb:
            # the styles that would have made the bots' last moves
            seen = ~start[:, None, None] & memory["alive"][..., None] & ex["bot_alive"][..., None]
            fits = memory["fits"]
            fits &= ~seen | (memory["guess"] == ex["bot_pos"][..., None])
            lost = ~fits.any(-1)
            fits[lost] = True  # (cannot happen with the game's bots; start again if it does)
            shape = (n, nb, s)
            slot = np.broadcast_to(np.arange(n)[:, None, None], shape).reshape(n, -1)
            pos = np.broadcast_to(ex["bot_pos"][..., None], shape).reshape(n, -1)
            head = np.broadcast_to(ex["bot_heading"][..., None], shape).reshape(n, -1)
            style = tuple(np.broadcast_to(x, shape).reshape(n, -1) for x in (agg, bias, depth))
            guess, _ = C.bot_moves(eng, st, style=style, bot_pos=pos, bot_heading=head, slot=slot)
            guess = guess.reshape(shape)
            memory["guess"], memory["alive"] = guess, ex["bot_alive"].copy()
            first = fits.argmax(-1)
            bot_next = np.take_along_axis(guess, first[..., None], -1)[..., 0]
            bot_next = np.where(ex["bot_alive"], bot_next, ex["bot_pos"])
            # keep off every cell a style that fits would take next
            blocked = np.zeros((n, eng.hp * eng.wp), dtype=bool)
            r, j, c = np.nonzero(fits & ex["bot_alive"][..., None])
            blocked[r, guess[r, j, c] - eng._base[r]] = True
        else:
            blocked = None
        explore = (st.t >= EXPLORE * eng.limit)[:, None] & (memory["pads"] == UNKNOWN_PAD)
        good = (memory["pads"] == BOOST_PAD) | explore
        return C.plan(eng, st, player, enter=good, seek=good, bot_next=bot_next, blocked=blocked), memory


class WindowRecallPlanner(MapPlanner):
    """Sees only its window, its row and column and the trial features; maps and remembers
    everything within a trial. Of the engine it reads the map's size and the step limit.

    Memory (one row per slot, cells in map coordinates padded by the view radius): ``map``
    (UNKNOWN / FLOOR / WALL / PAD, for the trial), ``pads`` (what each pad cell is known to be),
    ``trail`` (cells seen holding a trail or a cycle this episode), ``heading`` (its last
    move) and ``clock`` (steps into the episode)."""

    name = "window-recall"

    def _clear(self, memory: dict, slots) -> None:
        clear_map(memory["map"], slots, memory["radius"])
        memory["pads"][slots] = UNKNOWN_PAD
        memory["trail"][slots] = False
        memory["heading"][slots] = 0
        memory["clock"][slots] = 0

    def _arrays(self, n: int, hp: int, wp: int) -> dict:
        return dict(pads=np.empty((n, hp * wp), np.int8), trail=np.empty((n, hp * wp), bool),
                    heading=np.empty(n, np.int64), clock=np.empty(n, np.int64))

    def act(self, obs, memory: dict, ctx):
        trial = self.begin_step(obs, memory, ctx)
        grid, scalars = obs.grid, obs.scalars
        n, v = grid.shape[0], grid.shape[1]
        eng = ctx.engine
        height, width, limit = eng.height, eng.width, eng.limit  # all it reads of the engine
        known = memory["map"]
        flat = known.reshape(n, -1)
        rows = np.arange(n)
        start = trial[:, EPISODE_START] > 0
        memory["trail"][start] = False
        memory["clock"] = np.where(start, 0, memory["clock"] + 1)
        memory["heading"][start] = 0

        # 1. map the window (a pad stays a pad once seen: a taken boost shows floor)
        r = v // 2
        offsets = (np.arange(-r, r + 1)[:, None] * known.shape[2] + np.arange(-r, r + 1)[None, :]).ravel()
        row, col = SCALAR_NAMES.index("row"), SCALAR_NAMES.index("col")
        here = ((np.rint(scalars[:, row] * max(1, height - 1)).astype(np.int64) + r) * known.shape[2]
                + np.rint(scalars[:, col] * max(1, width - 1)).astype(np.int64) + r)
        before = flat[rows[:, None], here[:, None] + offsets[None, :]]
        window = map_window(known, grid, scalars, height, width, KIND_OF_TILE)
        flat[rows[:, None], window.cells] = np.where(before == PAD, PAD, flat[rows[:, None], window.cells])
        cycle = grid[..., T.NUM_CHANNELS - 1].reshape(n, -1) > 0
        trail = (window.tile == T.TRAIL) | (window.tile == T.TRAP) | cycle
        memory["trail"][rows[:, None], window.cells] |= trail

        # 2. learn the pad it stands on from the reward of the step that brought it there
        reward = trial[:, PREV_REWARD]
        on_pad = ~start & (flat[rows, here] == PAD)
        pads = memory["pads"]
        pads[rows[on_pad & (reward > C.BOOST / 2)], here[on_pad & (reward > C.BOOST / 2)]] = BOOST_PAD
        pads[rows[on_pad & (reward < 0)], here[on_pad & (reward < 0)]] = TRAP_PAD

        # 3. plan on what it knows: unknown cells count as free; keep off the cells by a cycle
        clock = memory["clock"]
        explore = (clock >= EXPLORE * limit)[:, None] & (pads == UNKNOWN_PAD)
        pad = flat == PAD
        good = pad & ((pads == BOOST_PAD) | explore)
        free = ((flat == FLOOR) | (flat == UNKNOWN) | good) & ~memory["trail"]
        near = np.zeros_like(cycle)
        vv = cycle.reshape(n, v, v)
        near_v = vv.copy()
        near_v[:, 1:] |= vv[:, :-1]
        near_v[:, :-1] |= vv[:, 1:]
        near_v[:, :, 1:] |= vv[:, :, :-1]
        near_v[:, :, :-1] |= vv[:, :, 1:]
        near = near_v.reshape(n, -1)
        free[rows[:, None], window.cells] &= ~near
        free[rows, here] = False
        remaining = np.maximum(1, np.rint(scalars[:, SCALAR_NAMES.index("time_left")] * limit)).astype(np.int64)
        action = C.plan_on(eng, free, good & ~memory["trail"], here, memory["heading"], clock, remaining)
        memory["heading"] = np.where(action > 0, action, memory["heading"])
        memory["trail"][rows, here] = True  # it leaves a trail here
        return action, memory


__all__ = ["RecallPlanner", "WindowRecallPlanner", "styles"]
