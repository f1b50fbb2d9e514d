"""The compiled loops of the cycles step: the bots' choices, and the crashes and trails.

The rules are those of ``games/cycles.py`` (its module docstring); these are the same rules
written as one loop over bots or slots, compiled with numba (``cache=True``: compiled once,
then loaded from ``__pycache__``). They take and change plain arrays:

- ``flat`` (B * Hp * Wp,) uint8 the cell codes of every slot, ``owner`` the same shape int8;
- ``ppos``, ``prev`` (B, P) int64 flat cells of the players, ``palive`` (B, P) bool;
- bots' cells and targets (B, bots) int64 or (n,) int64, in the same flat cells.

A slot's cells lie together and every map is framed by walls, so a look-ahead counts no
cell past a wall, and never a cell of another slot (it reads on to its depth, the cells
clipped to the array, and drops what lies past the first cell that is not free).
"""

from __future__ import annotations

import numba
import numpy as np

from . import tiles as T

FLOOR, TRAIL, PLAYER, TILE_MASK = T.FLOOR, T.TRAIL, T.PLAYER, T.TILE_MASK
FAR = 1 << 30


@numba.njit(cache=True)
def player_moves(actions, heading, alive, t, reverse, update, out):
    """Write the players' moves (B, P) into ``out``: ``stay`` keeps the ``heading``, a reverse
    (``reverse`` (5,) of each heading) is ignored after an episode's first step (``t`` (B,)
    steps taken), crashed players do not move (0); with ``update`` the living players'
    ``heading`` follows."""
    for s in range(actions.shape[0]):
        late = t[s] > 0
        for i in range(actions.shape[1]):
            keep = heading[s, i]
            want = keep if actions[s, i] == 0 else actions[s, i]
            if late and want == reverse[keep]:
                want = keep
            if alive[s, i]:
                if update:
                    heading[s, i] = want
                out[s, i] = want
            else:
                out[s, i] = 0


@numba.njit(inline="always")
def _run(flat, pos, step, me, depth):
    """``(free, run)`` of one way from flat cell ``pos``, ``step`` a cell: whether the first cell
    that way is free (bare floor, and not ``me``), and the free run of cells that way counted up
    to ``depth``."""
    last = flat.shape[0] - 1
    cell = pos + step
    free = (flat[min(max(cell, 0), last)] == FLOOR) & (cell != me)
    ok = free & (depth >= 1)
    run = np.int64(ok)
    for _ in range(2, depth + 1):  # on to the depth without a branch: faster than stopping
        cell += step
        ok &= (flat[min(max(cell, 0), last)] == FLOOR) & (cell != me)
        run += ok
    return free, run


@numba.njit(inline="always")
def _closer(dirs, way, near, sy, sx):
    """How much closer (Manhattan) a step ``way`` (a heading; ``dirs`` (5, 2) the (dy, dx) of
    each) takes a cycle to the player it is nearest to (``near``), in the direction (``sy``,
    ``sx``) (signs of the differences of rows and columns): 1 where the step goes the player's
    way, else -1; 0 for no step or no player."""
    toward = dirs[way, 0] * sy + dirs[way, 1] * sx == 1
    closer = 1 if toward else -1
    return closer if near & (way != 0) else 0


@numba.njit(inline="always")
def _choose(flat, moves, dirs, turns, rows, cols, ppos, palive, lone, aggression, bias, depth, pos, heading,
            slot, block, straight_bonus, bias_bonus):
    """``(target, heading)`` of one living bot at flat cell ``pos`` (in the cells of slot
    ``block``) with ``heading``, playing against the players of slot ``slot``: the best of
    straight on, left and right (see cycles' module docstring). Alone, the player's cell carries
    no PLAYER bit: it counts as not free here. ``rows``, ``cols`` (Hp * Wp,): the row and column
    of each cell of a slot."""
    cells, hp = rows.shape[0], rows[-1] + 1
    me = ppos[block, 0] if lone else -1  # the lone player's cell in the bot's slot
    # rows count on through the slots (slot k's rows are k * Hp ...), so that rows of different
    # slots differ by whole maps
    here = pos - block * cells
    by, bx = block * hp + rows[here], cols[here]
    # the nearest living player (Manhattan; the first of the nearest)
    near, ty, tx, best = False, 0, 0, FAR
    for q in range(ppos.shape[1]):
        if palive[slot, q]:
            there = ppos[slot, q] - slot * cells
            qy, qx = slot * hp + rows[there], cols[there]
            d = abs(qy - by) + abs(qx - bx)
            if d < best:
                near, ty, tx, best = True, qy, qx, d
    sy, sx = np.sign(ty - by), np.sign(tx - bx)
    # straight on, left, right: the free run, how much closer to the player, the bonuses
    w0, w1, w2 = turns[heading, 0], turns[heading, 1], turns[heading, 2]
    f0, run = _run(flat, pos, moves[w0], me, depth)
    s0 = aggression * _closer(dirs, w0, near, sy, sx)
    s0 += run
    s0 += straight_bonus
    f1, run = _run(flat, pos, moves[w1], me, depth)
    tilt = bias_bonus * bias
    s1 = aggression * _closer(dirs, w1, near, sy, sx)
    s1 += run
    s1 += tilt
    f2, run = _run(flat, pos, moves[w2], me, depth)
    s2 = aggression * _closer(dirs, w2, near, sy, sx)
    s2 += run
    s2 += -tilt
    # the best of the moves into free cells: straight, then left, then right on exact ties; all
    # blocked: straight
    left = f1 & (~f0 | (s1 > s0))
    top = s1 if left else s0
    right = (f2 & ~(f0 | f1)) | (f2 & (s2 > top))
    chosen = w2 if right else (w1 if left else w0)
    return pos + moves[chosen], chosen


@numba.njit(cache=True)
def bot_choice(flat, moves, dirs, turns, rows, cols, ppos, palive, lone, aggression, bias, depth, pos, heading, slot,
               straight_bonus, bias_bonus, target_out, heading_out):
    """Write the target and heading of n living bots (rows of ``pos``, ``heading``, ``slot`` and
    their styles ``aggression``, ``bias``, ``depth``, all (n,)) into ``target_out`` and
    ``heading_out``."""
    cells = rows.shape[0]
    for i in range(pos.shape[0]):
        target_out[i], heading_out[i] = _choose(
            flat, moves, dirs, turns, rows, cols, ppos, palive, lone, aggression[i], float(bias[i]), depth[i], pos[i],
            heading[i], slot[i], pos[i] // cells, straight_bonus, bias_bonus)


@numba.njit(cache=True)
def bot_moves(flat, moves, dirs, turns, rows, cols, ppos, palive, lone, level, aggression, bias, depth, bot_pos,
              bot_heading, bot_alive, straight_bonus, bias_bonus, target_out, heading_out):
    """Write every bot's target and heading, (B, bots), into ``target_out`` and ``heading_out``:
    a living bot's choice, a crashed bot's own cell and heading. The styles ``aggression``,
    ``bias``, ``depth`` are (N, MAX_BOTS) over the pool levels, ``level`` (B,) each slot's."""
    for s in range(bot_pos.shape[0]):
        lv = level[s]
        for j in range(bot_pos.shape[1]):
            if bot_alive[s, j]:
                target_out[s, j], heading_out[s, j] = _choose(
                    flat, moves, dirs, turns, rows, cols, ppos, palive, lone, aggression[lv, j], float(bias[lv, j]),
                    depth[lv, j], bot_pos[s, j], bot_heading[s, j], s, s, straight_bonus, bias_bonus)
            else:
                target_out[s, j], heading_out[s, j] = bot_pos[s, j], bot_heading[s, j]


@numba.njit(cache=True)
def tick(flat, owner, pos, prev, alive, mark, bot_pos, bot_target, bot_alive, bot_owner):
    """Crashes, trails and the bots' moves of every slot, in place (cycles' ``Cycles.tick``):
    the players have moved (``pos``; from ``prev``), the bots drive into ``bot_target``; bot
    ``j``'s trails are marked ``bot_owner + j`` in ``owner``."""
    players, bots = pos.shape[1], bot_pos.shape[1]
    moved = np.empty(players, np.bool_)
    crashed = np.empty(players, np.bool_)
    b_crash = np.empty(bots, np.bool_)
    ok = np.empty(bots, np.bool_)
    for s in range(pos.shape[0]):
        for i in range(players):
            moved[i] = alive[s, i] and pos[s, i] != prev[s, i]
            crashed[i] = alive[s, i] and not moved[i]  # the engine cancelled the move
        for i in range(players):  # into the cell another player just left: a trail now
            for j in range(players):
                if i != j and moved[i] and moved[j] and pos[s, i] == prev[s, j]:
                    crashed[i] = True
        for j in range(bots):
            b_crash[j] = bot_alive[s, j] and bot_target[s, j] == bot_pos[s, j]
        for j in range(bots):  # head-on: a player and a bot drive into the same cell
            for i in range(players):
                if moved[i] and not crashed[i] and bot_alive[s, j] and pos[s, i] == bot_target[s, j]:
                    crashed[i] = True
                    b_crash[j] = True
        # crashed players go back to their cell, which becomes their wreck
        for i in range(players):
            if crashed[i] and moved[i]:
                if mark:
                    flat[pos[s, i]] &= TILE_MASK
                pos[s, i] = prev[s, i]
        for i in range(players):  # the cells the players left (the engine moved the PLAYER bits)
            if moved[i] and not crashed[i]:
                flat[prev[s, i]] = TRAIL
                owner[prev[s, i]] = i
        for i in range(players):
            if crashed[i]:
                flat[pos[s, i]] = (TRAIL | PLAYER) if mark else TRAIL
                owner[pos[s, i]] = i
                alive[s, i] = False
        if bots == 0:
            continue
        for j in range(bots):
            if bot_alive[s, j]:
                # into a trail, a wreck or a player's cell (a lone player's cell has no PLAYER bit)
                if flat[bot_target[s, j]] != FLOOR:
                    b_crash[j] = True
                if not mark and alive[s, 0] and bot_target[s, j] == pos[s, 0]:
                    b_crash[j] = True
        for j in range(bots):
            for k in range(j + 1, bots):  # two bots into the same cell
                if bot_alive[s, j] and bot_alive[s, k] and bot_target[s, j] == bot_target[s, k]:
                    b_crash[j] = True
                    b_crash[k] = True
        # a bot leaves a trail, a crashed one a wreck (a wreck's cell is a trail already, and
        # every bot's cell is its own), the ones that moved stand on their target
        for j in range(bots):
            ok[j] = bot_alive[s, j] and not b_crash[j]
            flat[bot_pos[s, j]] = TRAIL
        for j in range(bots):
            if ok[j]:
                bot_pos[s, j] = bot_target[s, j]
            flat[bot_pos[s, j]] = (TRAIL | PLAYER) if ok[j] else TRAIL
            owner[bot_pos[s, j]] = bot_owner + j
            bot_alive[s, j] = ok[j]
