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


@numba.njit(inline="always")
def _slot_players(actions, heading, alive, t, reverse, update, out, s):
    """:func:`player_moves` of slot ``s``."""
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


@numba.njit(cache=True)
def player_moves(actions, heading, alive, t, reverse, update, out):
    """Write the players' moves (B, P) into ``out``: ``stay`` keeps the ``heading``, a reverse
    (``reverse`` (5,) of each heading) is ignored after an episode's first step (``t`` (B,)
    steps taken), crashed players do not move (0); with ``update`` the living players'
    ``heading`` follows."""
    for s in range(actions.shape[0]):
        _slot_players(actions, heading, alive, t, reverse, update, out, s)


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
def _pick(flat, moves, dirs, turns, me, near, sy, sx, aggression, bias, depth, pos, heading, straight_bonus,
          bias_bonus):
    """``(target, heading)`` of one living bot at flat cell ``pos`` with ``heading``: the best of
    straight on, left and right (see cycles' module docstring). ``me``: a cell that is not free
    although its code says so (the lone player's, which carries no PLAYER bit; -1: none);
    ``near``: whether a living player is in play, (``sy``, ``sx``) the signs of its row and
    column differences from the bot."""
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


@numba.njit(inline="always")
def _choose(flat, moves, dirs, turns, rows, cols, ppos, palive, lone, aggression, bias, depth, pos, heading,
            slot, block, straight_bonus, bias_bonus):
    """``(target, heading)`` of one living bot at flat cell ``pos`` (in the cells of slot
    ``block``) with ``heading``, playing against the players of slot ``slot`` (:func:`_pick`).
    Alone, the player's cell carries no PLAYER bit: it counts as not free here. ``rows``,
    ``cols`` (Hp * Wp,): the row and column of each cell of a slot."""
    cells, hp = rows.shape[0], rows[-1] + 1
    me = ppos[block, 0] if lone else -1  # the lone player's cell in the bot's slot
    # rows count on through the slots (slot k's rows are k * Hp ...), so that rows of different
    # slots differ by whole maps
    here = pos - block * cells
    by, bx = block * hp + rows[here], cols[here]
    # the nearest living player (Manhattan; the first of the nearest); without aggression it
    # counts for nothing
    near, ty, tx, best = False, 0, 0, FAR
    for q in range(ppos.shape[1]):
        if palive[slot, q]:
            there = ppos[slot, q] - slot * cells
            qy, qx = slot * hp + rows[there], cols[there]
            d = abs(qy - by) + abs(qx - bx)
            if d < best:
                near, ty, tx, best = True, qy, qx, d
    return _pick(flat, moves, dirs, turns, me, near, np.sign(ty - by), np.sign(tx - bx), aggression, bias, depth,
                 pos, heading, straight_bonus, bias_bonus)


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


@numba.njit(inline="always")
def _slot_bots(flat, moves, dirs, turns, rows, cols, ppos, palive, lone, level, aggression, bias, depth, bot_pos,
               bot_heading, bot_alive, straight_bonus, bias_bonus, target_out, heading_out, s):
    """:func:`bot_moves` of slot ``s``."""
    lv = level[s]
    for j in range(bot_pos.shape[1]):
        if bot_alive[s, j]:
            target_out[s, j], heading_out[s, j] = _choose(
                flat, moves, dirs, turns, rows, cols, ppos, palive, lone, aggression[lv, j], float(bias[lv, j]),
                depth[lv, j], bot_pos[s, j], bot_heading[s, j], s, s, straight_bonus, bias_bonus)
        else:
            target_out[s, j], heading_out[s, j] = bot_pos[s, j], bot_heading[s, j]


@numba.njit(cache=True)
def bot_moves(flat, moves, dirs, turns, rows, cols, ppos, palive, lone, level, aggression, bias, depth, bot_pos,
              bot_heading, bot_alive, straight_bonus, bias_bonus, target_out, heading_out):
    """Write every bot's target and heading, (B, bots), into ``target_out`` and ``heading_out``:
    a living bot's choice, a crashed bot's own cell and heading. The styles ``aggression``,
    ``bias``, ``depth`` are (N, MAX_BOTS) over the pool levels, ``level`` (B,) each slot's."""
    for s in range(bot_pos.shape[0]):
        _slot_bots(flat, moves, dirs, turns, rows, cols, ppos, palive, lone, level, aggression, bias, depth, bot_pos,
                   bot_heading, bot_alive, straight_bonus, bias_bonus, target_out, heading_out, s)


@numba.njit(cache=True)
def start(slots, level, heading0, spawn, first, base, players, flat, pos, owner, heading, alive, prev, bot_pos,
          bot_heading, bot_alive, bot_target, bot_owner):
    """An episode's start in ``slots`` (cycles' ``Cycles.start``, after the engine has reset its
    own state there): the players' headings (``heading0`` (N, first + bots) of the pool levels'
    start cells, the players' first), alive, no trail owned (``owner`` (B, Hp * Wp)); the bots
    on their start cells (``spawn`` (N, first + bots) flat cells of a slot, from ``base`` (B,)
    the first cell of each slot), alive, each on a cell of its own trail."""
    bots = bot_pos.shape[1]
    for i in range(slots.shape[0]):
        s, lv = slots[i], level[slots[i]]
        for p in range(players):
            heading[s, p] = heading0[lv, p]
            alive[s, p] = True
            prev[s, p] = pos[s, p]
        owner[s, :] = -1
        for j in range(bots):
            cell = spawn[lv, first + j]
            bot_pos[s, j] = bot_target[s, j] = base[s] + cell
            bot_heading[s, j] = heading0[lv, first + j]
            bot_alive[s, j] = True
            flat[base[s] + cell] = TRAIL | PLAYER
            owner[s, cell] = bot_owner + j


@numba.njit(cache=True)
def step_moves(actions, pos, prev, heading, alive, t, reverse, flat, moves, dirs, turns, rows, cols, lone, level,
               aggression, bias, depth, bot_pos, bot_heading, bot_alive, straight_bonus, bias_bonus, bot_target,
               out):
    """The start of a step (cycles' ``Cycles.dynamics``), one pass over the slots: keep the
    players' cells in ``prev``, write every bot's choice into ``bot_target`` and ``bot_heading``
    (:func:`bot_moves`, from the state before anyone moves) and the players' moves into ``out``
    (:func:`player_moves`, their ``heading`` following)."""
    for s in range(pos.shape[0]):
        for i in range(pos.shape[1]):
            prev[s, i] = pos[s, i]
        _slot_bots(flat, moves, dirs, turns, rows, cols, pos, alive, lone, level, aggression, bias, depth, bot_pos,
                   bot_heading, bot_alive, straight_bonus, bias_bonus, bot_target, bot_heading, s)
        _slot_players(actions, heading, alive, t, reverse, True, out, s)


@numba.njit(cache=True)
def tick(flat, owner, pos, prev, alive, mark, bot_pos, bot_target, bot_alive, bot_owner):
    """Crashes, trails and the bots' moves of every slot, in place (cycles' ``Cycles.tick``):
    the players have moved (``pos``; from ``prev``), the bots drive into ``bot_target``; bot
    ``j``'s trails are marked ``bot_owner + j`` in ``owner``. A slot where every cycle has
    crashed is left as it is; so are crashed bots (their wrecks are written where they crash)."""
    players, bots = pos.shape[1], bot_pos.shape[1]
    moved = np.empty(players, np.bool_)
    crashed = np.empty(players, np.bool_)
    b_crash = np.empty(bots, np.bool_)
    for s in range(pos.shape[0]):
        anyone = False
        for i in range(players):
            moved[i] = alive[s, i] and pos[s, i] != prev[s, i]
            crashed[i] = alive[s, i] and not moved[i]  # the engine cancelled the move
            anyone |= alive[s, i]
        for j in range(bots):
            anyone |= bot_alive[s, j]
        if not anyone:
            continue
        if players > 1:  # into the cell another player just left: a trail now
            for i in range(players):
                for j in range(players):
                    if i != j and moved[i] and moved[j] and pos[s, i] == prev[s, j]:
                        crashed[i] = True
        for j in range(bots):  # a crashed bot's target is its own cell
            b_crash[j] = bot_alive[s, j] and bot_target[s, j] == bot_pos[s, j]
        for j in range(bots):  # head-on: a player and a bot drive into the same cell
            if bot_alive[s, j]:
                for i in range(players):
                    if moved[i] and not crashed[i] and pos[s, i] == bot_target[s, j]:
                        crashed[i] = True
                        b_crash[j] = True
        # crashed players go back to their cell, which becomes their wreck (every player's
        # way back first: one may go back to the cell another crashed into)
        for i in range(players):
            if crashed[i] and moved[i]:
                if mark:
                    flat[pos[s, i]] &= TILE_MASK
                pos[s, i] = prev[s, i]
        for i in range(players):
            if moved[i] and not crashed[i]:  # the cell it left (the engine moved the PLAYER bits)
                flat[prev[s, i]] = TRAIL
                owner[prev[s, i]] = i
            elif crashed[i]:
                flat[pos[s, i]] = (TRAIL | PLAYER) if mark else TRAIL
                owner[pos[s, i]] = i
                alive[s, i] = False
        for j in range(bots):
            if bot_alive[s, j]:
                target = bot_target[s, j]
                # into a trail, a wreck or a player's cell (a lone player's cell has no PLAYER bit)
                if flat[target] != FLOOR or (not mark and alive[s, 0] and target == pos[s, 0]):
                    b_crash[j] = True
                for k in range(j + 1, bots):  # two bots into the same cell
                    if bot_alive[s, k] and target == bot_target[s, k]:
                        b_crash[j] = True
                        b_crash[k] = True
        # a bot leaves a trail, a crashed one a wreck (every bot's cell is its own), the ones
        # that moved stand on their target
        for j in range(bots):
            if bot_alive[s, j]:
                flat[bot_pos[s, j]] = TRAIL
        for j in range(bots):
            if bot_alive[s, j]:
                ok = not b_crash[j]
                if ok:
                    bot_pos[s, j] = bot_target[s, j]
                flat[bot_pos[s, j]] = (TRAIL | PLAYER) if ok else TRAIL
                owner[bot_pos[s, j]] = bot_owner + j
                bot_alive[s, j] = ok
