"""A small league: earlier snapshots of the network in training play the other players.

With ``--set players=2 --set others=scripted,self``, the slots whose company is ``self`` race
the agent against frozen copies of itself. The league keeps the last ``size`` snapshots (the
first is the network as the run starts; :meth:`League.add` puts in a new one every
``league_every`` updates, the oldest going out), and each trial of a slot draws one of them
for each other player, uniformly, with the league's own generator. A snapshot plays as the
shipped agent would: the sampled policy, its memory (GRU and map) cleared only where a new
trial starts. Where a snapshot is replaced in the middle of a trial, the new one goes on from
the memory the old one left (the two have the same shape), until that trial ends.

The league is not saved with the checkpoints: a resumed run starts it again from the network
it resumes.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from .rl2 import RL2Net

#: the name, in ``others``, of the company the league provides
SELF = "self"


class League:
    """Up to ``size`` frozen snapshots of a network, and the generators that draw and sample them."""

    def __init__(self, net: RL2Net, size: int, seed: int):
        if size < 1:
            raise ValueError(f"a league keeps at least one snapshot, got size {size}")
        self.size = size
        self.nets: list[RL2Net] = []
        self.added = 0
        self.rng = np.random.default_rng([seed, 7])
        self.sampler = torch.Generator(device=next(net.parameters()).device)
        self.sampler.manual_seed(seed + 7)
        self.add(net)

    def add(self, net: RL2Net) -> None:
        """Put in a frozen copy of ``net``, in place of the oldest once the league is full."""
        snap = copy.deepcopy(net).eval().requires_grad_(False)
        if len(self.nets) < self.size:
            self.nets.append(snap)
        else:
            self.nets[self.added % self.size] = snap
        self.added += 1

    def seats(self, slots: int, players: int) -> "Seats":
        """The other ``players`` of ``slots`` slots, each moved by a snapshot."""
        return Seats(self, slots, players)


class Seats:
    """The other players of a batch of slots: which snapshot moves each, and its memory."""

    def __init__(self, league: League, slots: int, players: int):
        self.league, self.players = league, players
        net = league.nets[0]
        self.device = next(net.parameters()).device
        self.h = net.initial_state(slots * players, self.device)
        self.pick = np.zeros(slots * players, dtype=np.int64)
        #: what the seated players see next, ``(grid, scalars, trial)`` (slots, players, ...), and
        #: which slots start a new trial there (see :meth:`see` and :meth:`play`)
        self.seen: tuple[np.ndarray, ...] | None = None
        self.first = np.ones(slots, dtype=bool)

    def see(self, grid: np.ndarray, scalars: np.ndarray, trial: np.ndarray, first: np.ndarray | None = None) -> None:
        """Keep the observations of every player of the slots (player 0, the learner, is left
        out; copies: the env reuses its buffers); ``first`` (slots,) marks new trials, added to
        those marked since the last :meth:`play`."""
        self.seen = tuple(np.array(x[:, 1:]) for x in (grid, scalars, trial))
        if first is not None:
            self.first |= first

    def play(self) -> np.ndarray:
        """(slots, players) actions for what the seated players saw last (:meth:`act`)."""
        actions = self.act(*self.seen, self.first)
        self.first[:] = False
        return actions

    @torch.no_grad()
    def act(self, grid: np.ndarray, scalars: np.ndarray, trial: np.ndarray, first: np.ndarray) -> np.ndarray:
        """(n, players) actions of the other players from their observations (n, players, ...);
        ``first`` (n,) marks the slots whose observation is the first of a new trial (there the
        memory is cleared and the snapshots drawn again)."""
        n, m = grid.shape[:2]
        league = self.league
        rows = np.repeat(np.asarray(first, dtype=bool), m)
        if rows.any():
            new = np.flatnonzero(rows)
            self.h[torch.as_tensor(new, device=self.device)] = league.nets[0].initial_state(len(new), self.device)
            self.pick[new] = league.rng.integers(0, len(league.nets), size=len(new))
        g, s, t = (torch.as_tensor(x.reshape((n * m,) + x.shape[2:]), device=self.device)
                   for x in (grid, scalars, trial))
        actions = torch.zeros(n * m, dtype=torch.int64, device=self.device)
        for k, net in enumerate(league.nets):
            idx = np.flatnonzero(self.pick == k)
            if not len(idx):
                continue
            ix = torch.as_tensor(idx, device=self.device)
            h = self.h[ix]
            logits, _, h = net.step(g[ix], s[ix], t[ix], h, inplace=True)
            self.h[ix] = h
            actions[ix] = torch.multinomial(torch.softmax(logits, -1), 1, generator=league.sampler).squeeze(-1)
        return actions.cpu().numpy().reshape(n, m)
