"""RL²: a recurrent policy whose memory spans the episodes of a trial.

The network reads, at every step, what the player sees (the one-hot window
and the scalars) plus the trial features of :mod:`metarena.games.trial` (previous
action and reward, episode-start flag, episode index). A GRU carries what the
trial has shown so far; the policy and value heads read its state. The
hidden state is cleared only where a trial starts, never at an episode
boundary inside a trial: adapting to a level *is* remembering it.

With ``map > 0`` (:class:`RL2NetSpec`) the network also keeps an explicit spatial memory
(:class:`MapMemory`): what the player has seen, where it has been and where it was paid, written
at its own row and column, and read back around it at every step. It has no weights of its
own; the policy learns to read it.

Memory (``RL2Agent``): ``{"h": (n, H) float32 state}`` (the GRU state, then the map's), the slot
axis first, so that the generic helpers of :mod:`metarena.agents.rollout` can slice it. The agent reads the
trial features the trial loop passes (``Observation.trial``) and clears its hidden state
where they mark a trial start (episode-start flag 1 at episode index 0).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from metarena.games.engine import NUM_ACTIONS, SCALAR_NAMES, VIEW
from metarena.games import tiles as T
from metarena.games.tiles import NUM_CHANNELS
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, TRIAL_FEATURES

from .base import Context, Observation


@dataclass(frozen=True)
class RL2NetSpec:
    """The shape of an :class:`RL2Net`; saved beside its weights."""

    view: int = VIEW  #: side of the observation window
    channels: int = NUM_CHANNELS  #: one-hot tile channels per cell
    scalars: int = len(SCALAR_NAMES)  #: scalars per observation
    trial: int = TRIAL_FEATURES  #: trial features per observation
    hidden: tuple[int, ...] = (64,)  #: sizes of the encoder's layers (MLP, ReLU)
    memory: int = 64  #: size of the GRU state
    actions: int = NUM_ACTIONS  #: number of actions
    episodes: int = 4  #: episodes per trial the network was trained for (the index feature is k / K)
    map: int = 0  #: side of the spatial memory in cells (0: none); larger maps are clipped to it
    route: bool = False  #: the map's targets are found, and read, by route (see :class:`MapMemory`)
    controls: bool = False  #: the map also reads what each action did (see :class:`MapMemory`)
    controls_decay: float = 1.0  #: what the controls' counts keep of the past at each use (1: all)
    items: bool = False  #: the map also points at the nearest item seen (see :class:`MapMemory`)
    steer: bool = False  #: each route's first move is also read as the action that makes it (see :class:`MapMemory`)
    give_way: bool = False  #: a target only players in view cut off reads the route through them (:class:`MapMemory`)
    route_moves: bool = True  #: each routed target reads its first move in the world's directions (:class:`MapMemory`)
    sample: bool = False  #: targets for the kinds not tried and the cheapest cost; routes round costs (:class:`MapMemory`)
    tally: bool = False  #: the map also reads how many kinds have paid and cost (:class:`MapMemory`)
    per_kind: bool = False  #: a target per kind of item, the nearest of it seen (:class:`MapMemory`)
    careful: bool = False  #: routes also walk round the kinds not tried yet (:class:`MapMemory`)
    avoid_wind: bool = False  #: routes cross wind only where no way round it is known (:class:`MapMemory`)
    keys: bool = False  #: the map also reads what opens the exit: kinds taken, ruled out, tried (:class:`MapMemory`)
    fallback: bool = False  #: a target no careful route reaches reads the route over untried kinds (:class:`MapMemory`)
    spare: bool = False  #: each routed target reads the steps it leaves to spare (:class:`MapMemory`)
    #: the side, in cells, the map's target offsets are measured in (0: ``map``): a map widened
    #: after training (``scripts/widen_map.py``) keeps the side it was trained with here
    map_unit: int = 0

    @property
    def inputs(self) -> int:
        extra = (MapMemory(self.map, self.view, self.channels, self.route, self.controls, items=self.items,
                           steer=self.steer, give_way=self.give_way, moves=self.route_moves,
                           sample=self.sample, tally=self.tally, per_kind=self.per_kind,
                           careful=self.careful, avoid_wind=self.avoid_wind, keys=self.keys,
                           fallback=self.fallback, spare=self.spare).features
                 if self.map else 0)
        return self.view * self.view * self.channels + self.scalars + self.trial + extra


class MapMemory:
    """An explicit spatial memory: a grid of ``side x side`` cells per slot, written at the
    player's own row and column, read back around it. No weights: what it holds is a function
    of what the player observed, and it is cleared only where a trial starts.

    Each cell holds the tile last seen there (a tile code, or "unseen"), the episode in which
    the player last stood there, and the last non-zero reward paid there. Every step writes
    the whole observation window around the player. Beside the cells it holds, per tile
    code, the last non-zero reward paid on an item of that code ("what a kind pays").

    The player's cell comes from its row and column scalars, which are ``r / (H - 1)``: the
    scale ``H - 1`` is learnt from the player's own moves (a one-cell move changes a scalar by
    ``1 / (H - 1)``; a push on top of a move can only make it look smaller, so the largest
    estimate of the trial is kept). Until the first move nothing is written.

    Read (``features`` values, all zero until the scale is known):

    - the cells of the observation window at full resolution, each: stood there in this
      trial, the pay remembered there, and what the kind of the tile seen there pays (their
      tiles are in the observation itself);
    - a ``blocks x blocks`` grid of ``BLOCK``-square blocks centred on the player, at most
      ``MAX_BLOCKS`` wide (each block: the share of its cells in each of the ``SORTS`` (floor
      or wind, wall or trail or trap, an item, a spent item such as an open chest, unseen), the share stood on, the sum
      of positive and of negative pay);
    - three targets on the whole map, each the nearest cell of its ``TARGETS`` kind: a cell
      that paid and where the player has not stood in this episode (in a game whose level
      resets every episode, what paid is there again); an item last seen there of a kind that
      paid; a cell never seen. Each target reads as (row offset, column offset, distance,
      found), offsets and distance in map sides (in ``unit`` cells, where given: a map widened
      after training reads on the levels it was trained on exactly as the narrower one did).
      "Nearest" is by Manhattan distance, or, with ``route``, by the length of the shortest
      walk over cells not known to block (unseen cells count as open; the walls, trails and
      traps seen do not, nor the cells where another player stands in view), and the target
      then also reads the first move of that walk (one-hot: up, down, left, right) -- a route planned on
      what the player has seen, nothing more;
    - with ``items``, a fourth target read the same way: the nearest item seen and not spent,
      of any kind (a chest still closed, a coin, an object, drift's goal) -- where a kind has
      not paid yet, the way round the walls to what is in view;
    - with ``controls``, what each action did: per move action, the share of its steps inside
      an episode that moved the player up, down, left, right or not at all (a hidden
      permutation of the controls, slips and walls show there); with ``decay`` < 1 each use of
      an action first multiplies that action's counts by ``decay``, so the shares follow its
      recent uses (about the last ``1 / (1 - decay)``) and a change of the controls inside a
      trial (``drift/shift``) shows after a few moves instead of being outvoted by the old ones;
    - with ``steer`` (and ``route`` and ``controls``), each target's first move is also read as
      the action to press for it (one-hot: the move actions up, down, left, right): the action
      whose share of that move is the largest so far, the action named for the move where none
      is larger than its own. Where the controls are as named it is the first move itself; on
      drift it is the route translated through what the actions were seen to do;
    - with ``give_way`` (and ``route``), one more value per target: 1 where the players in view
      cut off every route to the target kind, and the target then reads the nearest one by the
      routes through them (offsets, distance, first move), so the policy sees where it would go
      and that another player stands in the way (in a corridor one wide, someone must back off);
    - with ``sample`` (and ``route``), what the kinds do, for games whose kinds of item pay, cost
      or end the episode unannounced (rules, coinrush): two more targets, the nearest item seen
      and not spent of a kind that has paid nothing yet in the trial ("untried") and the nearest
      of the kind that cost least so far ("cost"); each target also reads what its kind pays (the
      "paid" target: what its cell paid); and no route walks over an item of a kind that has
      cost (such a cell can end one);
    - with ``per_kind`` (and ``sample``), one more target per kind of item (each tile code of
      an item: the chest, each coin colour, the exit, each object kind, the boost), the nearest
      item seen and not spent of that kind, read as the others (with what the kind pays), in
      the order of the codes: which kind a target is follows from where it is read;
    - with ``careful`` (and ``sample``), no route walks over an item of a kind that has paid
      nothing yet either (such a cell, too, can only end one): the way to the exit or to the
      unseen goes round the objects nobody has tried, where a way round is known, instead of
      trying them on the way (rules: after a kind that may be the key, try the exit first);
    - with ``fallback`` (and ``careful``), a target that no careful route reaches (the exit behind
      an object nobody has tried, and no way round it seen) reads the route that only ``sample``
      walks round (over the kinds not tried yet, never over one that has cost), and one more value
      per target, 1 where it does: the ``window-recall`` planner's way, which walks over an
      object where it must;
    - with ``spare`` (and ``route``), one more value per target: the steps it leaves to spare, the
      steps left in the episode less its route and, where an exit is known, less the route on from
      it to the nearest exit (in ``2 * unit`` cells, as the distances; 0 until the step limit is
      known). The step limit is learnt as the scale is: time left falls by ``1 / limit`` at each
      step. The ``window-recall`` planner takes a paying object only where the exit is still in
      time from it; the policy reads that comparison made instead of making it from time left
      (a share of the episode) and distances (in map sides);
    - with ``avoid_wind`` (and ``route``), no route crosses a wind tile while a way round is
      known: the search first reaches every cell it can without, then goes on through the wind
      tiles it met (drift's wind pushes a player on it, back the way it came if it walks into
      the wind);
    - with ``tally``, two counts: the kinds of item that have paid so far in the trial, and the
      kinds that have cost (rules: one that pays and one that costs tell the third is the trap);
    - with ``keys``, what opens the exit (rules), for each kind of item (each tile code of an item,
      in the order of the codes): 1 where the player has taken one this episode, 1 where the
      exit has ruled it out as the key in this trial (the exit was found locked after taking it
      in an episode, or opened in one where it was not taken), and what it pays; then one flag:
      the exit was found locked in this episode since the last kind taken for the first time in
      it. The planners' reasoning (``agents/planners/rules.py``), kept for the policy: the key
      is a kind not ruled out, the exit is open once it is taken, and after a new kind the
      exit is worth a try;
    - one flag, "the scale is known".

    Cells beyond the memory, and beyond the map once its scale is known, read as walls, as the
    world beyond the map does.

    State per slot (a flat float32 vector of ``size`` values): tile codes, stood-in-episode
    stamps (1 + the episode-index feature; 0: never) and pay (``cells + 1`` each: the last
    cell takes the writes of slots that cannot write yet), what each kind pays (``kinds + 1``,
    the last for rewards paid on no item), then the player's last cell (row, col), the scale,
    and its last row and column scalars; with ``controls``, the counts of each (action, move);
    with ``keys``, by tile code the kinds taken this episode and those ruled out as the key, the
    flag "tried", and the tile code of the cell each action led to in the last window (what the
    last step entered: read from the window, it holds before the scale is known); with ``spare``,
    the last time left and the step limit (0: not known yet).
    """

    SORTS = ("floor", "wall", "item", "spent", "unseen")  #: what a coarse block counts
    TARGETS = ("paid", "kind", "unseen")  #: what the three targets point at
    BLOCK = 5  #: side of a coarse block, in cells
    MAX_BLOCKS = 5  #: the coarse grid is at most this many blocks wide (it covers -12 .. 12)
    AUX = 5  #: row, col, scale, last row scalar, last column scalar
    WALL = 1  #: tile code of a wall (games/tiles.py)
    SLOTS_PER_THREAD = 64  #: a batch is split over threads (set_map_threads) only where each gets this many slots

    def __init__(self, side: int, view: int = VIEW, channels: int = NUM_CHANNELS, route: bool = False,
                 controls: bool = False, decay: float = 1.0, items: bool = False, steer: bool = False,
                 give_way: bool = False, moves: bool = True, sample: bool = False, tally: bool = False,
                 per_kind: bool = False, careful: bool = False, avoid_wind: bool = False, keys: bool = False,
                 unit: int = 0, fallback: bool = False, spare: bool = False):
        if side < 1:
            raise ValueError(f"the map memory needs a side >= 1, got {side}")
        if not 0 <= unit <= side:
            raise ValueError(f"the map's unit is a side in cells from 1 to its own side {side} (0: that side), "
                             f"got {unit}")
        if steer and not (route and controls):
            raise ValueError("steer reads the routes' first moves through the controls' counts: it needs route "
                             "and controls")
        if give_way and not route:
            raise ValueError("give_way reads the routes that other players cut off: it needs route")
        if sample and not route:
            raise ValueError("sample's targets are read, and its costs walked round, by route: it needs route")
        if per_kind and not sample:
            raise ValueError("per_kind's targets are read as sample's: it needs sample")
        if careful and not sample:
            raise ValueError("careful walks round the kinds sample has not tried: it needs sample")
        if fallback and not careful:
            raise ValueError("fallback reads the routes careful finds none for: it needs careful")
        if avoid_wind and not route:
            raise ValueError("avoid_wind is a way of finding routes: it needs route")
        if spare and not route:
            raise ValueError("spare reads the steps left less the routes' lengths: it needs route")
        if not moves and not steer:
            raise ValueError("a route read without its first move needs the action to press: moves=False needs steer")
        if not 0 < decay <= 1:
            raise ValueError(f"the controls' decay must be in (0, 1], got {decay}")
        self.decay = np.float32(decay)
        self.side, self.radius, self.route, self.controls = side, view // 2, bool(route), bool(controls)
        self.items, self.steer, self.give_way, self.moves = bool(items), bool(steer), bool(give_way), bool(moves)
        self.sample, self.tally, self.per_kind, self.careful = bool(sample), bool(tally), bool(per_kind), bool(careful)
        self.avoid_wind, self.keys, self.fallback = bool(avoid_wind), bool(keys), bool(fallback)
        self.spare = bool(spare)
        self.unit = int(unit) or side
        self.tiles = channels - 1  # every channel but "player"
        self.unseen = self.tiles  # the code of a cell never seen
        self.kinds = self.tiles + 1
        self.blocks = min(-(-(2 * side - 1) // self.BLOCK) | 1, self.MAX_BLOCKS)  # odd, to centre on the player
        self.reach = self.blocks * self.BLOCK // 2  # the read covers cells -reach .. reach
        self.margin = max(self.reach, self.radius)  # walls round the map: no read or write leaves the grid
        self.pad = side + 2 * self.margin
        self.cells = self.pad * self.pad
        per_target = ((4 + 4 * self.moves + 4 * self.steer + self.sample + self.give_way + self.fallback + self.spare)
                      if route else 4)
        sort = np.full(self.kinds, self.SORTS.index("item"), dtype=np.int64)
        sort[[T.FLOOR, T.WIND]] = self.SORTS.index("floor")
        sort[[T.WALL, T.TRAIL, T.TRAP]] = self.SORTS.index("wall")  # what blocks or kills
        sort[T.CHEST_OPEN], sort[self.unseen] = self.SORTS.index("spent"), self.SORTS.index("unseen")
        self._sort = sort
        self._item = np.append(sort == self.SORTS.index("item"), False)  # by code; + "no item"
        #: by tile code, the index of its own target (per_kind), -1 for none
        self._kind_target = np.full(self.kinds + 1, -1, dtype=np.int64)
        targets = len(self.TARGETS) + self.items + 2 * self.sample
        if self.per_kind:
            codes = np.flatnonzero(self._item)
            self._kind_target[codes] = targets + np.arange(len(codes))
            targets += len(codes)
        self.features = (view * view * 3 + self.blocks ** 2 * (len(self.SORTS) + 3) + per_target * targets
                         + (NUM_ACTIONS - 1) * NUM_ACTIONS * controls + 2 * self.tally
                         + (3 * int(self._item.sum()) + 1) * self.keys + 1)
        self.size = (3 * (self.cells + 1) + self.kinds + 1 + self.AUX + NUM_ACTIONS * NUM_ACTIONS * controls
                     + (2 * (self.kinds + 1) + 1 + NUM_ACTIONS) * self.keys + 2 * self.spare)
        self._dims = np.array([side, self.margin, self.pad, self.radius, self.reach, self.blocks, self.BLOCK,
                               self.tiles, int(route), int(controls), int(self.items), int(self.steer),
                               int(self.give_way), int(self.moves), int(self.sample), int(self.tally),
                               int(self.careful), int(self.avoid_wind), int(self.keys), self.unit,
                               int(self.fallback), int(self.spare)],
                              dtype=np.int64)
        self._moves = np.array([0.0, -self.pad, self.pad, -1.0, 1.0], dtype=np.float32)  # stay, up, down, left, right

    def _parts(self, state: torch.Tensor):
        """Views of ``state``: tile codes, stood stamps, pay, what each kind pays, aux (the
        controls' counts follow, where there are)."""
        n, k = self.cells + 1, self.kinds + 1
        return (state[:, :n], state[:, n:2 * n], state[:, 2 * n:3 * n], state[:, 3 * n:3 * n + k],
                state[:, 3 * n + k:3 * n + k + self.AUX])

    def initial_state(self, n: int, device=None) -> torch.Tensor:
        """Every cell of the map unseen, walls round it; nothing paid; the last position and
        scalars unknown (-1), the scale unknown (0); no control tried."""
        state = torch.zeros(n, self.size, device=device)
        code, _, _, _, aux = self._parts(state)
        m, side = self.margin, self.side
        grid = torch.full((self.pad, self.pad), float(self.WALL), device=device)
        grid[m:m + side, m:m + side] = self.unseen
        code[:, : self.cells] = grid.reshape(-1)
        aux.fill_(-1.0)
        aux[:, 2] = 0.0
        return state

    def step(self, grid: torch.Tensor, scalars: torch.Tensor, trial: torch.Tensor,
             state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write one observation of B slots into ``state`` (B, size), **in place**, and read it
        back: returns ``(features (B, features), state)``. The work is one compiled loop over
        the slots on the CPU (``agents/_map_kernels.py``), split over :func:`set_map_threads`
        threads; a state on another device is copied there and back."""
        on_cpu = state.device.type == "cpu"
        st = state.detach() if on_cpu else state.detach().cpu()
        b = st.shape[0]
        out = np.empty((b, self.features), dtype=np.float32)
        args = (st.numpy(), _array(grid, np.uint8).reshape(b, -1, grid.shape[-1]), _array(scalars, np.float32),
                _array(trial, np.float32), out)
        fixed = (self._dims, self._sort, self._item, self._kind_target, self._moves, self.decay)
        step = _kernels().map_step
        parts = min(_threads[0], b // self.SLOTS_PER_THREAD)
        if parts > 1:  # the slots are independent: split them over threads (the kernel releases the GIL)
            cuts = np.linspace(0, b, parts + 1).astype(np.int64)
            done = [_pool().submit(step, *(x[lo:hi] for x in args), *fixed) for lo, hi in zip(cuts[1:-1], cuts[2:])]
            step(*(x[: cuts[1]] for x in args), *fixed)  # the first part here, the others beside it
            for d in done:
                d.result()
        else:
            step(*args, *fixed)
        if not on_cpu:
            state.copy_(st)
        return torch.from_numpy(out).to(state.device), state


def _array(x: torch.Tensor, dtype) -> np.ndarray:
    """``x`` as a C-ordered numpy array of ``dtype`` on the CPU (no copy where it already is one)."""
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=dtype)


_threads = [1]  # set_map_threads


def set_map_threads(n: int) -> None:
    """Step the maps of a batch on ``n`` threads from now on (in this process; 1, the default:
    on the calling thread alone). The slots are independent, so what the maps hold and read is
    the same on any number; :func:`metarena.agents.ppo.setup_torch` sets it for a run. It pays
    only where the cores are free while the map steps: torch's own threads, after an operation,
    keep spinning on theirs for a while (the trainer collects with one torch thread for that)."""
    if n < 1:
        raise ValueError(f"the map steps on at least one thread, got {n}")
    _threads[0] = int(n)


def map_threads() -> int:
    """The threads the maps of a batch step on (:func:`set_map_threads`)."""
    return _threads[0]


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """The threads beside the caller's that step a batch's maps (:meth:`MapMemory.step`)."""
    return ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1), thread_name_prefix="metarena-map")


os.register_at_fork(after_in_child=_pool.cache_clear)  # a forked child has none of the parent's threads


@functools.cache
def _kernels():
    """The compiled map step, imported (and compiled or loaded from its cache) on first use."""
    from . import _map_kernels

    return _map_kernels


def mlp(inputs: int, hidden: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    """The encoder: Linear + ReLU per width in ``hidden``; returns it and its output size."""
    layers: list[nn.Module] = []
    size = inputs
    for width in hidden:
        layers += [nn.Linear(size, width), nn.ReLU()]
        size = width
    return nn.Sequential(*layers), size


def heads(size: int, actions: int) -> tuple[nn.Linear, nn.Linear]:
    """Policy and value heads; the policy starts near uniform (orthogonal, gain 0.01)."""
    policy, value = nn.Linear(size, actions), nn.Linear(size, 1)
    nn.init.orthogonal_(policy.weight, 0.01)
    nn.init.zeros_(policy.bias)
    nn.init.orthogonal_(value.weight, 1.0)
    nn.init.zeros_(value.bias)
    return policy, value


class RL2Net(nn.Module):
    """Encoder MLP -> GRU cell -> policy logits and value; with ``spec.map``, the encoder also
    reads a :class:`MapMemory`, whose state follows the GRU's in the state vector."""

    def __init__(self, spec: RL2NetSpec = RL2NetSpec()):
        super().__init__()
        self.spec = spec
        self.map = (MapMemory(spec.map, spec.view, spec.channels, spec.route, spec.controls, spec.controls_decay,
                              spec.items, spec.steer, spec.give_way, spec.route_moves, spec.sample, spec.tally,
                              spec.per_kind, spec.careful, spec.avoid_wind, spec.keys, spec.map_unit,
                              spec.fallback, spec.spare)
                    if spec.map else None)
        self.encoder, size = mlp(spec.inputs, spec.hidden)
        self.gru = nn.GRUCell(size, spec.memory)
        self.policy, self.value = heads(spec.memory, spec.actions)

    @property
    def state_size(self) -> int:
        """Values of memory per slot: the GRU state, then the map's."""
        return self.spec.memory + (self.map.size if self.map else 0)

    def initial_state(self, n: int, device=None) -> torch.Tensor:
        """The memory of ``n`` slots at a trial's start, shape (n, state_size)."""
        h = torch.zeros(n, self.spec.memory, device=device)
        return torch.cat([h, self.map.initial_state(n, device)], 1) if self.map else h

    def features(self, grid: torch.Tensor, scalars: torch.Tensor, trial: torch.Tensor,
                 extra: torch.Tensor | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """What the encoder reads: (..., V, V, C) uint8, (..., S), (..., E) and the map's reading
        (..., M), side by side, as (..., F) in ``dtype``. A rollout keeps them (``Chunk.features``),
        so that the PPO epochs neither rebuild nor recast them (bfloat16 under ``bf16``: half the
        bytes to gather per minibatch, and products that read them as they are)."""
        parts = [grid.flatten(-3), scalars, trial] + ([extra] if extra is not None else [])
        return torch.cat([p.to(dtype) for p in parts], dim=-1)

    @torch.no_grad()
    def memory_inputs(self, grid, scalars, trial, first: torch.Tensor, h: torch.Tensor, inplace: bool = False):
        """What the map reads at each of T steps of B slots (inputs (T, B, ...), state ``h`` (B,
        state_size) before the first): ``(extra (T, B, features), map state after)``, or
        ``(None, None)`` without a map. The map has no weights: this is computed once per
        rollout, and the PPO epochs reuse it (in ``Chunk.features``). ``inplace``: write the
        map's part of ``h`` itself (the state returned is a view of it) instead of a copy."""
        if self.map is None:
            return None, None
        m = h[:, self.spec.memory:]
        if not inplace:
            m = m.clone()
        blank = self.map.initial_state(1, h.device)
        out = []
        for t in range(grid.shape[0]):
            new = torch.nonzero(first[t] > 0.5).squeeze(1)
            if len(new):
                m[new] = blank  # a new trial: an empty map
            out.append(self.map.step(grid[t], scalars[t], trial[t], m)[0])
        return torch.stack(out), m

    def step(self, grid, scalars, trial, h: torch.Tensor, inplace: bool = False):
        """One step for a batch: returns ``(logits (B, A), value (B,), h (B, state_size))``. ``h``
        is used as given: clear it at a trial's start before calling (see :meth:`unroll`).
        ``inplace`` (no gradient): the new state is written into ``h`` itself, which is
        returned, instead of a copy (the state of a map is large)."""
        if not inplace:
            h = h.clone()
        extra = None
        if self.map is not None:
            extra = self.memory_inputs(grid[None], scalars[None], trial[None],
                                       torch.zeros(1, grid.shape[0], device=h.device), h, inplace=True)[0][0]
        return self.advance(self.features(grid, scalars, trial, extra), h)

    def advance(self, x: torch.Tensor, h: torch.Tensor):
        """One step from the features ``x`` (B, F) (:meth:`features`, the map's reading included,
        its part of ``h`` already written by :meth:`memory_inputs`): the GRU part of ``h`` (B,
        state_size) is written in place. Returns ``(logits, value, h)`` as :meth:`step`."""
        n = self.spec.memory
        g = self._recur(F.linear(self.encoder(x), self.gru.weight_ih, self.gru.bias_ih)[None], None, h)[0]
        h[:, :n] = g
        return self.policy(g).float(), self.value(g).squeeze(-1).float(), h

    def unroll(self, grid, scalars, trial, first: torch.Tensor, h: torch.Tensor):
        """T steps of B slots (inputs shaped (T, B, ...)); ``first`` (T, B) marks the steps whose
        observation is the first of a trial, where the memory is cleared. Returns ``(logits (T,
        B, A), values (T, B), h)``, the map stepped along (:meth:`memory_inputs`)."""
        extra, mem = self.memory_inputs(grid, scalars, trial, first, h)
        logits, values, g = self.unroll_features(self.features(grid, scalars, trial, extra), first, h)
        return logits, values, (g if mem is None else torch.cat([g, mem], 1))

    def unroll_features(self, x: torch.Tensor, first: torch.Tensor, h: torch.Tensor):
        """T steps of B slots from their features ``x`` (T, B, F) (:meth:`features`) and the state
        ``h`` (B, state_size) before the first, of which only the GRU's part is read (the map's
        reading is in ``x``): ``(logits (T, B, A), values (T, B), GRU state after (B,
        memory))``. What the PPO epochs run.

        The same GRU as ``nn.GRUCell`` (its equations and weights), with the input half of its
        gates computed for all T steps in one matrix product."""
        hs = self._recur(F.linear(self.encoder(x), self.gru.weight_ih, self.gru.bias_ih), first, h)
        return self.policy(hs).float(), self.value(hs).squeeze(-1).float(), hs[-1]

    def _recur(self, gates_x: torch.Tensor, first: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
        """The GRU's states (T, B, memory) after each of T steps, from the input half of its gates
        (T, B, 3 memory) and the state ``h`` (B, state_size) before the first (its GRU part),
        cleared where ``first`` (T, B) marks a trial's start (None: nowhere). The same code in
        rollouts (:meth:`advance`) and epochs; the state stays float32 under any autocast."""
        h, out = h[:, :self.spec.memory].float(), []
        keep = None if first is None else (1.0 - first.float()).unsqueeze(-1)
        for t, gx in enumerate(gates_x.float().unbind(0)):  # unbind: one backward op, not T zero-filled copies
            if keep is not None:
                h = h * keep[t]  # a new trial: forget the last level (only here, never per episode)
            xr, xz, xn = gx.chunk(3, -1)
            hr, hz, hn = F.linear(h, self.gru.weight_hh, self.gru.bias_hh).chunk(3, -1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = n + z * (h - n)  # = (1 - z) * n + z * h
            out.append(h)
        return torch.stack(out)


def trial_starts(trial: np.ndarray) -> np.ndarray:
    """(n,) bool: the trial features (n, E) mark the first observation of a trial."""
    return (trial[:, EPISODE_START] > 0.5) & (trial[:, EPISODE_INDEX] == 0.0)


class RL2Agent:
    """An :class:`RL2Net` behind the agent protocol (batched; see the module docstring for the
    memory layout and where the trial features come from).

    ``greedy``: take the most likely action instead of sampling.
    """

    follows = True  #: it reads its previous action and reward from the trial features (any player's steps)

    def __init__(self, net: RL2Net, greedy: bool = False, seed: int | None = None, name: str = "rl2",
                 device: str | torch.device = "cpu"):
        self.net = net.to(device).eval()
        self.greedy, self.name, self.device = greedy, name, torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(0 if seed is None else int(seed))

    def begin_trial(self, n: int) -> dict[str, np.ndarray]:
        return {"h": self.net.initial_state(n).numpy()}

    @torch.no_grad()
    def act(self, obs: Observation, memory: dict, ctx: Context | None = None) -> tuple[np.ndarray, dict]:
        trial = obs.trial
        h = np.array(memory["h"], dtype=np.float32)  # this call's own copy: the step writes it in place
        new = trial_starts(trial)
        if new.any():
            h[new] = self.net.initial_state(1).numpy()  # a new level: forget
        dev = self.device
        logits, _, h_new = self.net.step(torch.as_tensor(obs.grid, device=dev),
                                         torch.as_tensor(obs.scalars, device=dev),
                                         torch.as_tensor(trial, device=dev), torch.as_tensor(h, device=dev),
                                         inplace=True)  # h is this call's own copy
        if self.greedy:
            action = logits.argmax(-1)
        else:
            action = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator).squeeze(-1)
        return action.cpu().numpy().astype(np.int64), {"h": h_new.cpu().numpy()}

    def end_episode(self, memory: dict, slots: np.ndarray) -> dict:
        """The hidden state is kept: it spans the trial."""
        return memory
