"""The compiled step of the map memory (:class:`metarena.agents.rl2.MapMemory`): write one
observation per slot, read the features back.

What it writes and what it reads is documented on ``MapMemory``; this is the same thing written
as one loop over slots, compiled with numba (``cache=True``: compiled once, then loaded from
``__pycache__``). It takes and changes plain float32 arrays:

- ``state`` (B, size): per slot the tile codes, stood stamps and pay of the padded cells (each
  ``cells + 1`` long: the last is a scratch cell for slots that cannot write yet), what each
  kind pays (``kinds + 1``), and five values (last row and column, scale, last row and column
  scalars);
- ``grid`` (B, V * V, C) uint8 one-hot windows, ``scalars`` (B, S) and ``trial`` (B, E);
- ``out`` (B, features): the reading, zero where the scale is not known yet.

``dims`` holds the memory's shape: side, margin, padded side, window radius, reach of the
coarse read, blocks across, block side, tile channels, whether targets are found by
route (1) or by Manhattan distance (0), whether the state ends with the controls' counts
(1: ``ACTIONS x ACTIONS`` values, how often each action was followed by each one-cell move),
whether a fourth target points at the nearest item seen (1), whether each target's first
move is also read as the action that makes it, by the controls' counts (1), whether a
target that only players in view cut off is read by the route through them, flagged (1), and
whether a routed target reads its first move in the world's directions (1), and whether the
routes sample the kinds (1: two more targets, the nearest item of a kind that has paid nothing
yet and the nearest of the kind that cost least; each target reads what its kind pays; routes
step on no item of a kind that has cost but where they end), whether the reading ends
with two counts (1): the kinds of item that have paid, and that have cost, so far, and
whether the routes are careful (1, with sample: they step on no item of a kind that has paid
nothing yet either, but where they end), and whether they hold back at wind (1: they cross a wind tile
only where no way round it is known), whether it reads what opens the exit (1: per kind of item,
taken this episode, ruled out as the exit's key, what it pays; then whether the exit was found
locked since the last kind first taken this episode; the state then ends with those: taken and
ruled out by tile code, the flag, and the tile each action led to in the last window), the unit, in cells, of the targets' offsets and
distances (the side, or the side of a narrower map the policy was trained with), whether a target that no
careful route reaches reads the route over the kinds not tried yet, flagged (1, with careful), and last
whether each routed target reads the steps it leaves to spare (1: the steps left in the episode less
its route and the route on from it to the exit, where one is known; the state then ends with the
last time left and the step limit learnt from it).
``kind_target`` (by tile code) gives a kind of item a target of its own, read after the
others, at that index (-1: none).
"""

from __future__ import annotations

import numba
import numpy as np

from metarena.games.engine import NUM_ACTIONS
from metarena.games.tiles import EXIT, WALL, WIND
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_ACTION, PREV_REWARD

A0 = PREV_ACTION.start  # the trial features' previous-action one-hot starts here
ACTIONS = NUM_ACTIONS
SORT_WALL, SORTS = 1, 5  # MapMemory.SORTS: floor, wall, item, spent, unseen
TARGETS = 3  # MapMemory.TARGETS: paid, kind, unseen (then, with dims[10], the nearest item; with dims[14], untried, cost)
F32 = np.float32


@numba.njit(cache=True)
def _bound(st, side, margin, pad, unseen, old, new):
    """The scale grew from ``old`` to ``new`` (0: unknown): the memory's own cells beyond the
    map are walls, those between the two bounds (written under a wrong scale) unseen again."""
    for i in range(side):
        for j in range(side):
            lim = max(i, j)
            cell = (i + margin) * pad + j + margin
            if lim > new:
                st[cell] = WALL
            elif lim > old:
                st[cell] = unseen


@numba.njit(inline="always")
def _tile(grid, b, i, tiles):
    """The tile code slot ``b``'s window shows at cell ``i`` (its one-hot channels, decoded)."""
    seen = F32(0)
    for ch in range(tiles):
        seen += F32(grid[b, i, ch]) * F32(ch)
    return seen


@numba.njit(inline="always")
def _move_of(dr, dc):
    """The move (0 none, 1 up, 2 down, 3 left, 4 right) of a change of cell; -1 for any other."""
    if dr == 0 and dc == 0:
        return 0
    if dc == 0 and (dr == -1 or dr == 1):
        return 1 if dr == -1 else 2
    if dr == 0 and (dc == -1 or dc == 1):
        return 3 if dc == -1 else 4
    return -1


@numba.njit(cache=True)
def _routes(st, pad, sort, start, busy, dist, first, queue, avoid, item, o_kind, hold_wind):
    """Breadth-first search from padded cell ``start`` over the cells not known to block
    (unseen cells count as open; the walls round the map stop it) and not ``busy`` (another
    player stands there, in view): ``dist`` (pad * pad, all -1 on entry) steps to each cell
    (-1: no route), ``first`` the first move of a shortest route (1 up, 2 down, 3 left, 4
    right; 0 at the start). With ``avoid`` (1) a cell holding an item of a kind that has cost
    (``item`` by tile code, what it pays at ``o_kind``) ends a walk and never lies on one; with
    ``avoid`` 2 so does one of a kind that has paid nothing yet (careful: untried kinds too).
    With ``hold_wind`` the walks cross no wind tile while another cell can be reached without: the
    search first reaches every cell it can so, then goes on through the wind tiles it met
    (``queue`` is twice the cells long; they wait in its second half). Returns how many cells it
    reached: ``queue[:n]``, whose ``dist`` the caller sets back to -1."""
    dist[start] = 0
    first[start] = 0
    queue[0] = start
    head, tail = 0, 1
    spare = queue.shape[0] // 2  # with hold_wind, the wind tiles reached wait here (queue: 2 * pad * pad)
    held = out = 0  # wind tiles waiting, and let through
    crossing = False  # every cell reachable without crossing wind is reached
    while head < tail or (hold_wind and out < held):
        if head == tail:
            crossing = True
        if crossing and out < held and (head == tail or dist[queue[spare + out]] <= dist[queue[head]]):
            cur = queue[spare + out]  # the waiting wind tiles, merged in the order of their steps
            out += 1
        else:
            cur = queue[head]
            head += 1
            code = int(st[cur])
            if cur != start and avoid:
                pay = st[o_kind + code]
                if item[code] and (pay < 0 or (avoid == 2 and pay == 0)):
                    continue  # reached, not walked through
            if cur != start and hold_wind and code == WIND and not crossing:
                queue[spare + held] = cur  # walked through only where no way round it is known
                held += 1
                continue
        for move in range(1, 5):  # up, down, left, right: the actions' order
            nxt = cur - pad if move == 1 else (cur + pad if move == 2 else (cur - 1 if move == 3 else cur + 1))
            if dist[nxt] >= 0 or busy[nxt] or sort[int(st[nxt])] == SORT_WALL:
                continue
            dist[nxt] = dist[cur] + 1
            first[nxt] = move if cur == start else first[cur]
            queue[tail] = nxt
            tail += 1
    return tail


@numba.njit(inline="always")
def _press(st, o_ctl, move):
    """The move action (1-4) that makes ``move`` (1-4) by the controls' counts: the one whose
    share of its uses followed by that move is the largest, the action named for the move where
    none is larger than its own (so, before any evidence, the controls are taken as named)."""
    best, top = move, F32(-1.0)
    for a in range(1, ACTIONS):
        total = F32(0)
        for went in range(ACTIONS):
            total += st[o_ctl + a * ACTIONS + went]
        share = st[o_ctl + a * ACTIONS + move] / total if total > 0 else F32(0)
        if share > top or (share == top and a == move):
            best, top = a, share
    return best


@numba.njit(inline="always")
def _nearest(st, side, margin, pad, r, c, route, dist, far, items, sample, o_paid, o_stood, o_kind, stamp, unseen,
             item, kinds, kind_target, best, at):
    """The nearest cell of each target on the map's own cells, by Manhattan distance from the
    player's padded cell (``r``, ``c``) or, with ``route``, by ``dist`` (-1: no route), written
    into ``best`` (the distance, ``far``: none) and ``at`` (the cell), target by target: paid,
    kind, unseen, (with ``items``) item, (with ``sample``) untried and cheapest cost, then one
    per kind of item where ``kind_target`` (by tile code) gives it an index (-1: none)."""
    count = best.shape[0]
    for t in range(count):
        best[t], at[t] = far, 0
    u = TARGETS + items  # the untried target's index; the cheapest cost follows it
    cheap = F32(-np.inf)  # what the kind that cost least has cost (-inf: none has)
    for cd in range(kinds):
        p = st[o_kind + cd]
        if item[cd] and p < 0 and p > cheap:
            cheap = p
    for i in range(side):
        base = (i + margin) * pad + margin
        for j in range(side):
            cell = base + j
            if route:
                d = dist[cell]
                if d < 0:
                    continue
            else:
                d = abs(i + margin - r) + abs(j + margin - c)
            worse = True
            for t in range(count):
                worse &= d >= best[t]
            if worse:
                continue
            cd = int(st[cell])
            pay = st[o_kind + cd]
            if d < best[0] and st[o_paid + cell] > 0 and abs(st[o_stood + cell] - stamp) > F32(1e-4):
                best[0], at[0] = d, cell
            if d < best[1] and pay > 0:
                best[1], at[1] = d, cell
            if d < best[2] and cd == unseen:
                best[2], at[2] = d, cell
            if items and d < best[3] and item[cd]:
                best[3], at[3] = d, cell
            if sample and item[cd]:
                if d < best[u] and pay == 0:
                    best[u], at[u] = d, cell
                if d < best[u + 1] and pay == cheap:
                    best[u + 1], at[u + 1] = d, cell
            t = kind_target[cd]
            if t >= 0 and d < best[t]:
                best[t], at[t] = d, cell


@numba.njit(cache=True, nogil=True)
def map_step(state, grid, scalars, trial, out, dims, sort, item, kind_target, moves, decay):
    """Write one observation per slot into ``state`` (in place) and read ``out`` back; ``decay``
    (float32): what an action's controls counts keep at each of its uses."""
    side, margin, pad, radius, reach, blocks, block, tiles, route, controls, items, steer, give_way, world = (
        dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7], dims[8], dims[9], dims[10], dims[11],
        dims[12], dims[13])
    sample, tally, careful, hold_wind, keys, unit, fallback, spare = (dims[14], dims[15], dims[16], dims[17],
                                                                    dims[18], dims[19], dims[20], dims[21])
    avoid = sample + careful  # what a walk steps round (_routes; careful comes with sample)
    unseen, kinds = tiles, tiles + 1
    n = pad * pad + 1  # cells + the scratch cell
    trash = n - 1
    o_stood, o_paid, o_kind = n, 2 * n, 3 * n
    o_aux = 3 * n + kinds + 1
    o_ctl = o_aux + 5  # the controls' counts (action, move), where the state has them
    o_taken = o_ctl + ACTIONS * ACTIONS * controls  # with keys: by code, taken this episode (1), ...
    o_ruled = o_taken + kinds + 1  # ... ruled out as the exit's key (1) ...
    o_tried = o_ruled + kinds + 1  # ... the exit found locked since the last kind first taken (1) ...
    o_ahead = o_tried + 1  # ... and the tile code each action led to in the window before (ACTIONS)
    o_clock = o_taken + (2 * (kinds + 1) + 1 + ACTIONS) * keys  # with spare: the last time left, the step limit
    view, nb = 2 * radius + 1, blocks * blocks
    window = np.empty(view * view, np.int64)  # cell offsets of the window, row by row
    for i in range(view * view):
        window[i] = (i // view - radius) * pad + i % view - radius
    centre = radius * view + radius
    near = np.array([centre, centre - view, centre + view, centre - 1, centre + 1])  # the window cell of each action
    dist = np.full(pad * pad, -1, np.int64)  # set back to -1 after each search: only the cells reached
    first = np.zeros(pad * pad, np.int64)
    queue = np.empty(2 * pad * pad, np.int64)  # with hold_wind, the wind tiles wait in its second half
    busy = np.zeros(pad * pad, np.bool_)
    dist2, first2, queue2 = dist.copy(), first.copy(), queue.copy()  # the routes through the players (give_way)
    dist3, first3, queue3 = dist.copy(), first.copy(), queue.copy()  # the routes over untried kinds (fallback)
    dist4, first4, queue4 = dist.copy(), first.copy(), queue.copy()  # the routes from the exit (spare)
    o_cut = 4 + 4 * world + 4 * steer + sample  # per target, the flags after the first move and the pay: cut off,
    o_over = o_cut + give_way  # ... over an untried kind, ...
    o_spare = o_over + fallback  # ... then the steps to spare
    per_target = (o_spare + spare) if route else 4
    count = TARGETS + items + 2 * sample + np.sum(kind_target >= 0)  # targets read
    best, to, cut = np.empty(count, np.int64), np.empty(count, np.int64), np.empty(count, np.bool_)  # per target
    best2, to2 = best.copy(), to.copy()
    best3, to3, over = best.copy(), to.copy(), cut.copy()
    far = 4 * side
    per, fside = F32(block * block), F32(unit)  # offsets and distances in units of `unit` cells
    for b in range(state.shape[0]):
        st = state[b]
        row, col = scalars[b, 2], scalars[b, 3]
        moved = max(abs(row - st[o_aux + 3]), abs(col - st[o_aux + 4]))
        inside = trial[b, EPISODE_START] < F32(0.5)
        old = st[o_aux + 2]
        scale = old
        if st[o_aux + 3] >= 0 and inside and moved > F32(1e-6):
            scale = max(old, np.rint(F32(1.0) / max(moved, F32(1e-6))))
        known = scale > 0
        if scale > old:
            _bound(st, side, margin, pad, unseen, old, scale)
        r = int(min(max(np.rint(row * scale), F32(0)), F32(side - 1))) + margin
        c = int(min(max(np.rint(col * scale), F32(0)), F32(side - 1))) + margin
        here = r * pad + c if known else trash
        # the reward of the last step was paid where the player stood after it: here, or, at an
        # episode's start, where the last move of the episode before led (unless into a known wall)
        reward = trial[b, PREV_REWARD]
        last = int(st[o_aux]) * pad + int(st[o_aux + 1])
        step = F32(0)
        for a in range(ACTIONS):
            step += trial[b, A0 + a] * moves[a]
        led = last + int(step)
        if st[min(max(led, 0), trash)] == WALL:
            led = last
        at = trash
        if reward != 0:
            if inside:
                at = here
            elif st[o_aux] >= 0:
                at = led
        code_at = int(st[at])
        if at == trash or not item[code_at]:
            code_at = kinds
        st[o_kind + code_at] = reward
        st[o_paid + at] = reward
        act = -1  # the last action (-1: none, at a trial's start)
        for a in range(ACTIONS):
            if trial[b, A0 + a] > 0:
                act = a
        if keys:  # what opens the exit: taking an item pays (or costs); the exit pays only when open
            went = int(st[o_ahead + max(act, 0)])  # the cell it led to, as the window before it showed it
            if reward != 0 and item[went] and went != EXIT:
                if st[o_taken + went] == 0:
                    st[o_tried] = F32(0.0)  # a kind new this episode: the exit is worth another try
                st[o_taken + went] = F32(1.0)
            elif reward > 0 and went == EXIT:  # it opened: the key is among the kinds taken
                for cd in range(kinds):
                    if item[cd] and cd != EXIT and st[o_taken + cd] == 0:
                        st[o_ruled + cd] = F32(1.0)
            elif inside and reward == 0 and went == EXIT and (act == 0 or moved > F32(1e-6)):  # on it, locked
                for cd in range(kinds):
                    if st[o_taken + cd] > 0:
                        st[o_ruled + cd] = F32(1.0)  # none of the kinds taken is the key
                st[o_tried] = F32(1.0)
            if not inside:  # a new episode: nothing taken, the exit locked again
                for cd in range(kinds + 1):
                    st[o_taken + cd] = F32(0.0)
                st[o_tried] = F32(0.0)
            for a in range(ACTIONS):  # the cells the actions lead to, for the next step
                st[o_ahead + a] = _tile(grid, b, near[a], tiles)
        for i in range(view * view):  # the window, written at the player's cell
            st[here + window[i] if known else trash] = _tile(grid, b, i, tiles)
        stamp = F32(1.0) + trial[b, EPISODE_INDEX]
        st[o_stood + here] = stamp
        if controls and known and inside and st[o_aux] >= 0:  # what the last action did
            dr, dc = r - int(st[o_aux]), c - int(st[o_aux + 1])
            went = _move_of(dr, dc)
            if act >= 0 and went >= 0:
                for w in range(ACTIONS):
                    st[o_ctl + act * ACTIONS + w] *= decay
                st[o_ctl + act * ACTIONS + went] += F32(1.0)
        if known:
            st[o_aux], st[o_aux + 1] = F32(r), F32(c)
        st[o_aux + 2] = scale
        st[o_aux + 3], st[o_aux + 4] = row, col
        if spare:  # the step limit: time left falls by 1 / limit at each step inside an episode
            time_left = scalars[b, 0]
            if inside and st[o_clock] - time_left > F32(1e-6):
                st[o_clock + 1] = np.rint(F32(1.0) / (st[o_clock] - time_left))
            st[o_clock] = time_left
        res = out[b]
        res[:] = 0
        if not known:
            continue
        # the window, cell by cell: stood, paid, what the kind of its tile paid
        k = 0
        for i in range(view * view):
            cell = here + window[i]
            res[k] = F32(1.0) if st[o_stood + cell] > 0 else F32(0.0)
            res[k + 1] = st[o_paid + cell]
            res[k + 2] = st[o_kind + int(st[cell])]
            k += 3
        # the coarse grid of blocks
        for blk in range(nb):  # block by block, row by row inside (the order of the sums is fixed)
            base = here + (blk // blocks * block - reach) * pad + blk % blocks * block - reach
            floor = wall = thing = spent = blank = stood = 0
            pos = neg = F32(0)
            for y in range(block):
                for cell in range(base + y * pad, base + y * pad + block):
                    s = sort[int(st[cell])]
                    floor += s == 0
                    wall += s == 1
                    thing += s == 2
                    spent += s == 3
                    blank += s == 4
                    stood += st[o_stood + cell] > 0
                    p = st[o_paid + cell]
                    pos += max(p, F32(0))
                    neg += min(p, F32(0))
            res[k], res[k + 1], res[k + 2] = F32(floor) / per, F32(wall) / per, F32(thing) / per
            res[k + 3], res[k + 4], res[k + 5] = F32(spent) / per, F32(blank) / per, F32(stood) / per
            res[k + 6], res[k + 7] = pos, neg
            k += SORTS + 3
        # the targets on the map's own cells: nearest by Manhattan distance, or by route
        crowded = False
        if route:  # the other players in view block the way (the map itself does not hold them)
            for i in range(view * view):
                busy[here + window[i]] = grid[b, i, tiles] > 0 and window[i] != 0
                crowded |= busy[here + window[i]]
            reached = _routes(st, pad, sort, here, busy, dist, first, queue, avoid, item, o_kind, hold_wind)
        exit_at = -1  # spare: the nearest exit by route, and the routes from it
        left = np.rint(st[o_clock] * st[o_clock + 1]) if spare else F32(0)  # steps left (the limit known)
        timed = spare and st[o_clock + 1] > 0
        if spare:
            for q in range(reached):
                if st[queue[q]] == EXIT and (exit_at < 0 or dist[queue[q]] < dist[exit_at]):
                    exit_at = queue[q]
            if exit_at >= 0:
                reached4 = _routes(st, pad, sort, exit_at, busy, dist4, first4, queue4, avoid, item, o_kind,
                                   hold_wind)
        _nearest(st, side, margin, pad, r, c, route, dist, far, items, sample, o_paid, o_stood, o_kind, stamp, unseen,
                 item, kinds, kind_target, best, to)
        # fallback: a target no careful route reaches reads the route over the kinds not tried yet
        bold = missing = False
        for t in range(count):
            over[t] = False
            missing |= best[t] == far
        if fallback and missing:  # ... a target missed, where the careful walks stopped at an untried item
            for q in range(1, reached):
                code = int(st[queue[q]])
                bold |= item[code] and st[o_kind + code] == 0
        if bold:  # ... and where the map holds a cell of a target they missed (not: a kind never seen)
            _nearest(st, side, margin, pad, r, c, 0, dist3, far, items, sample, o_paid, o_stood, o_kind, stamp,
                     unseen, item, kinds, kind_target, best3, to3)
            bold = False
            for t in range(count):
                bold |= best[t] == far and best3[t] < far
        if bold:
            reached3 = _routes(st, pad, sort, here, busy, dist3, first3, queue3, 1, item, o_kind, hold_wind)
            _nearest(st, side, margin, pad, r, c, route, dist3, far, items, sample, o_paid, o_stood, o_kind, stamp,
                     unseen, item, kinds, kind_target, best3, to3)
            for t in range(count):
                if best[t] == far and best3[t] < far:
                    best[t], to[t], over[t] = best3[t], to3[t], True
        if route:
            for i in range(view * view):
                busy[here + window[i]] = False
        # give way: a target that only the players in view cut off reads the route through them
        through = False
        for t in range(count):
            cut[t] = False
            through |= give_way and crowded and best[t] == far
        if through:
            reached2 = _routes(st, pad, sort, here, busy, dist2, first2, queue2, avoid, item, o_kind, hold_wind)
            _nearest(st, side, margin, pad, r, c, route, dist2, far, items, sample, o_paid, o_stood, o_kind, stamp,
                     unseen, item, kinds, kind_target, best2, to2)
            for t in range(count):
                if best[t] == far and best2[t] < far:
                    best[t], to[t], cut[t] = best2[t], to2[t], True
        for t in range(count):
            if best[t] < far:
                cell = to[t]
                res[k] = F32(cell // pad - r) / fside
                res[k + 1] = F32(cell % pad - c) / fside
                res[k + 2] = F32(best[t]) / (F32(2.0) * fside)
                res[k + 3] = F32(1.0)
                move = first2[cell] if cut[t] else (first3[cell] if over[t] else (first[cell] if route else 0))
                if move > 0:
                    if world:
                        res[k + 3 + move] = F32(1.0)
                    if steer:
                        res[k + 3 + 4 * world + _press(st, o_ctl, move)] = F32(1.0)
                if sample:  # what the target's kind pays (the paid target: what its cell paid)
                    res[k + 4 + 4 * world + 4 * steer] = st[o_paid + cell] if t == 0 else st[o_kind + int(st[cell])]
                if cut[t]:
                    res[k + o_cut] = F32(1.0)
                if over[t]:
                    res[k + o_over] = F32(1.0)
                if timed:  # steps left, less the route there and (an exit known) on to the exit
                    on = (dist4[cell] if dist4[cell] >= 0 else far) if exit_at >= 0 else 0
                    res[k + o_spare] = (left - F32(best[t] + on)) / (F32(2.0) * fside)
            k += per_target
        if tally:  # how many kinds have paid, how many have cost
            for cd in range(kinds):
                if item[cd] and st[o_kind + cd] > 0:
                    res[k] += F32(1.0)
                elif item[cd] and st[o_kind + cd] < 0:
                    res[k + 1] += F32(1.0)
            k += 2
        if keys:  # per kind of item: taken this episode, ruled out as the key, what it pays; then tried
            for cd in range(kinds):
                if item[cd]:
                    res[k], res[k + 1], res[k + 2] = st[o_taken + cd], st[o_ruled + cd], st[o_kind + cd]
                    k += 3
            res[k] = st[o_tried]
            k += 1
        if route:
            for q in range(reached):
                dist[queue[q]] = -1
        if through:
            for q in range(reached2):
                dist2[queue2[q]] = -1
        if bold:
            for q in range(reached3):
                dist3[queue3[q]] = -1
        if exit_at >= 0:
            for q in range(reached4):
                dist4[queue4[q]] = -1
        if controls:  # per move action, the share of each move it was followed by
            for a in range(1, ACTIONS):
                total = F32(0)
                for went in range(ACTIONS):
                    total += st[o_ctl + a * ACTIONS + went]
                for went in range(ACTIONS):
                    res[k + went] = st[o_ctl + a * ACTIONS + went] / total if total > 0 else F32(0)
                k += ACTIONS
        res[k] = F32(1.0)  # the scale is known
