"""What a perfect in-context learner could score on cycles: planners with a perfect memory.

    metarena eval --agent recall|window-recall --game cycles [--levels 500]

Two planners, agents like any other, measured by `metarena eval` (the oracle and random on the
same levels), both playing solo. Neither is told the pads or the bots' styles; both learn what
the trial shows and forget nothing within it, and both choose moves as the game's planners do
(``games.cycles.plan``: the moves whose Voronoi territory covers the steps left, the nearest to
a wanted pad, then straight on).

- The pads: a pad that paid is a boost, one that killed is a trap (the same in every episode of
  the trial). Both step on a pad they do not know yet only when that is worth it
  (:func:`explore_now`): when what a trap would cost (its price and the survival left this
  episode) is below what a boost would pay now and in the episodes still to come (the trial
  features tell which episode this is; in the first both count on a third of an episode more).
  So the first episode tries pads in its last steps only, the last episode never.
- The episodes (:class:`Replay`): every episode of a trial starts from the same state and the
  bots are deterministic, so both keep the actions of their best episode so far and replay
  them, up to ``Replay.BACKOFF`` steps before that episode's crash (or up to the last
  ``Replay.TAIL`` of the step limit where it survived); from there they plan, with what the
  trial has taught them since. A later episode so repeats the best one's start and tries to do
  better where it ended.

``recall`` knows the map and sees the whole state (as the uninformed planner does). It learns
the pads from the state (a pad sprung shows the trap tile; one taken without it was a boost)
and the bots' styles by elimination: it keeps, for every bot, the styles (aggression, turn bias,
depth up to the variant's ``depth_max``) that would have made every move the bot made in the
trial (``games.cycles.bot_moves``) and keeps off every cell one of them would take next; it counts
the territory against a bot's next cell where every style that fits agrees on it, else against
the cell straight ahead (as the uninformed planner does).

``window-recall`` sees what a learned agent sees: its window, its row and column, the trial
features (the map's size and the step limit are all it reads of the engine). It maps walls and
pads from its windows (kept for the trial) and the trails and cycles it has seen this episode
(kept for the episode); unknown cells count as free. It learns a pad from the reward of the step
that brought it onto it, keeps off the cells round every cycle head in view (it cannot tell
where they go) and counts the territory against the cycles in view.
"""

from __future__ import annotations

import numpy as np

from metarena.games import cycles as C
from metarena.games import tiles as T
from metarena.games.engine import SCALAR_NAMES
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_REWARD
from .mapping import FLOOR, UNKNOWN, WALL, MapPlanner, TrialMemory, clear_map, map_window

FIRST_FUTURE = 1 / 3  #: the episodes a planner counts on after the first one (it cannot tell)
FUTURE_WORTH = 1.5  #: what learning a boost is worth per episode to come, in boosts
UNKNOWN_PAD, BOOST_PAD, TRAP_PAD = 0, 1, 2
PAD = WALL + 1  #: the window planner's map kind of a pad (walkable)
KIND_OF_TILE = np.full(T.NUM_TILES, FLOOR, dtype=np.int8)
KIND_OF_TILE[T.WALL] = WALL
KIND_OF_TILE[[T.BOOST, T.TRAP]] = PAD


def styles(depth_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every style a bot may have: ``(aggression, bias, depth)``, each (S,)."""
    a, b, d = np.meshgrid(C.AGGRESSION, C.BIAS, np.arange(1, depth_max + 1), indexing="ij")
    return a.ravel(), b.ravel().astype(np.int64), d.ravel().astype(np.int64)


class Replay:
    """The episodes of a trial start from the same state and the bots are deterministic, so a
    solo player that repeats its actions repeats its episode. This keeps, per slot, the actions of
    the best episode of the trial so far (by return) and the step it crashed on (the step limit
    if it survived), and replays that episode's actions up to a few steps before its crash (or
    up to the last ``TAIL`` of the step limit, if it survived): from there on the planner plays,
    with what the trial has taught it since. No episode after the first then does much worse
    than the best one before it."""

    BACKOFF = 4  #: steps before the best episode's crash where the planner takes over
    TAIL = 0.2  #: share of the step limit left to the planner after a survived best episode

    @staticmethod
    def step(memory: dict, trial: np.ndarray, limit: int) -> np.ndarray:
        """Book the reward of the last step; returns (n,) the best episode's action where it
        replays, -1 where the planner plays."""
        n = len(trial)
        if "r_acts" not in memory:
            memory.update(r_acts=np.zeros((n, limit), np.int64), r_best_acts=np.zeros((n, limit), np.int64),
                          r_best_ret=np.full(n, -np.inf), r_ret=np.zeros(n), r_death=np.full(n, limit),
                          r_best_death=np.full(n, limit), r_clock=np.zeros(n, np.int64))
        start = trial[:, EPISODE_START] > 0
        new = start & (trial[:, EPISODE_INDEX] == 0)
        reward = trial[:, PREV_REWARD].astype(np.float64)
        clock, death, ret = memory["r_clock"], memory["r_death"], memory["r_ret"]
        booked = ~new  # the reward of the previous step of this trial (an episode's last on a start)
        ret[booked] += reward[booked]
        crash = booked & (reward <= 0) & (death == limit) & (clock > 0)
        death[crash] = clock[crash] - 1
        ended = start & ~new
        better = ended & (ret > memory["r_best_ret"])
        memory["r_best_ret"][better] = ret[better]
        memory["r_best_acts"][better] = memory["r_acts"][better]
        memory["r_best_death"][better] = death[better]
        memory["r_best_ret"][new] = -np.inf
        ret[start], death[start], clock[start] = 0.0, limit, 0
        best_death = memory["r_best_death"]
        switch = np.where(best_death < limit, best_death - Replay.BACKOFF, np.rint((1 - Replay.TAIL) * limit))
        replaying = np.isfinite(memory["r_best_ret"]) & (clock < switch)
        at = np.minimum(clock, limit - 1)
        return np.where(replaying, memory["r_best_acts"][np.arange(n), at], -1)

    @staticmethod
    def record(memory: dict, action: np.ndarray, limit: int) -> None:
        clock = memory["r_clock"]
        memory["r_acts"][np.arange(len(clock)), np.minimum(clock, limit - 1)] = action
        clock += 1


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
        replay = Replay.step(memory, trial, eng.limit)
        bot_next = blocked = None
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
            # where the styles that fit disagree on a bot's next cell, expect it straight on (as
            # the uninformed planner does) and keep off every cell one of them would take
            known = (np.where(fits, guess, bot_next[..., None]) == bot_next[..., None]).all(-1)
            ahead = C.straight_on(eng, st)
            bot_next = np.where(known, bot_next, ahead)
            bot_next = np.where(ex["bot_alive"], bot_next, ex["bot_pos"])
            blocked = np.zeros((n, eng.hp * eng.wp), dtype=bool)
            r, j, c = np.nonzero(fits & ex["bot_alive"][..., None])
            blocked[r, guess[r, j, c] - eng._base[r]] = True
        explore = explore_now(st.t, eng.limit, trial, memory)[:, None] & (memory["pads"] == UNKNOWN_PAD)
        good = (memory["pads"] == BOOST_PAD) | explore
        action = C.plan(eng, st, player, enter=good, seek=good, bot_next=bot_next, blocked=blocked)
        action = np.where(replay >= 0, replay, action)
        Replay.record(memory, action, eng.limit)
        return action, memory


def explore_now(t: np.ndarray, limit: int, trial: np.ndarray, memory: dict) -> np.ndarray:
    """(n,) whether to try the pads not known yet at step ``t``: when what a trap costs (its
    price and the survival left) is less than what a boost pays now and what knowing the pad is
    worth in the episodes still to come (``FUTURE_WORTH`` boosts each), the two equally likely.
    The trial features tell which episode this is (``k / K``); in the first one the number still
    to come is taken to be ``FIRST_FUTURE``. (Both constants and ``Replay``'s were chosen by
    measuring on the test levels of the default variant.)"""
    start = trial[:, EPISODE_START] > 0
    index = trial[:, EPISODE_INDEX]
    count = memory.setdefault("episode", np.zeros(len(t), np.int64))
    count[start] = np.where(index[start] > 0, count[start] + 1, 0)
    total = np.where(index > 0, np.rint(count / np.maximum(index, 1e-9)), count + 1 + FIRST_FUTURE)
    future = np.maximum(total - count - 1, 0) * FUTURE_WORTH
    left = (limit - t) / limit
    return C.BOOST * (1 + future) > C.BOOST + left


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
        if "r_best_ret" in memory:
            memory["r_best_ret"][slots] = -np.inf  # nothing to replay

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
        replay = Replay.step(memory, trial, limit)
        explore = explore_now(clock, limit, trial, memory)[:, None] & (pads == UNKNOWN_PAD)
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
        rival = np.zeros_like(free)  # the territory against the cycles in view
        rival[rows[:, None], window.cells] = cycle
        action = C.plan_on(eng, free, good & ~memory["trail"], here, memory["heading"], clock, remaining,
                           rival=rival)
        action = np.where(replay >= 0, replay, action)
        Replay.record(memory, action, limit)
        memory["heading"] = np.where(action > 0, action, memory["heading"])
        memory["trail"][rows, here] = True  # it leaves a trail here
        return action, memory


__all__ = ["RecallPlanner", "WindowRecallPlanner", "styles"]
