"""RL²: a recurrent policy whose memory spans the episodes of a trial.

The network reads, at every step, what the player sees (the one-hot window
and the scalars) plus the trial features of :mod:`metarena.games.trial` (previous
action and reward, episode-start flag, episode index). A GRU carries what the
trial has shown so far; the policy and value heads read its state. The
hidden state is cleared only where a trial starts, never at an episode
boundary inside a trial: adapting to a level *is* remembering it.

Memory (``RL2Agent``): ``{"h": (n, H) float32 GRU state}``, the slot axis first, so that
the generic helpers of :mod:`metarena.agents.rollout` can slice it. The agent reads the
trial features the trial loop passes (``Observation.trial``) and clears its hidden state
where they mark a trial start (episode-start flag 1 at episode index 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from metarena.games.engine import NUM_ACTIONS, SCALAR_NAMES, VIEW
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

    @property
    def inputs(self) -> int:
        return self.view * self.view * self.channels + self.scalars + self.trial


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
    """Encoder MLP -> GRU cell -> policy logits and value."""

    def __init__(self, spec: RL2NetSpec = RL2NetSpec()):
        super().__init__()
        self.spec = spec
        self.encoder, size = mlp(spec.inputs, spec.hidden)
        self.gru = nn.GRUCell(size, spec.memory)
        self.policy, self.value = heads(spec.memory, spec.actions)

    def initial_state(self, n: int, device=None) -> torch.Tensor:
        """The memory of ``n`` slots at a trial's start: zeros, shape (n, H)."""
        return torch.zeros(n, self.spec.memory, device=device)

    def encode(self, grid: torch.Tensor, scalars: torch.Tensor, trial: torch.Tensor) -> torch.Tensor:
        """(..., V, V, C) uint8, (..., S), (..., E) -> (..., F) features."""
        flat = grid.flatten(-3).float()
        return self.encoder(torch.cat([flat, scalars.float(), trial.float()], dim=-1))

    def step(self, grid, scalars, trial, h: torch.Tensor):
        """One step for a batch: returns ``(logits (B, A), value (B,), h (B, H))``. ``h`` is used
        as given: clear it at a trial's start before calling (see :meth:`unroll`)."""
        h = self.gru(self.encode(grid, scalars, trial), h)
        return self.policy(h), self.value(h).squeeze(-1), h

    def unroll(self, grid, scalars, trial, first: torch.Tensor, h: torch.Tensor):
        """T steps of B slots (inputs shaped (T, B, ...)); ``first`` (T, B) marks the steps whose
        observation is the first of a trial. Returns ``(logits (T, B, A), values (T, B), h)``.

        The same GRU as :meth:`step` (``nn.GRUCell``'s equations and weights), with the input
        half of its gates computed for all T steps in one matrix product."""
        gates_x = F.linear(self.encode(grid, scalars, trial), self.gru.weight_ih, self.gru.bias_ih)
        keep = (1.0 - first.float()).unsqueeze(-1)
        out = []
        for t, gx in enumerate(gates_x.unbind(0)):  # unbind: one backward op, not T zero-filled copies
            h = h * keep[t]  # a new trial: forget the last level (only here, never per episode)
            xr, xz, xn = gx.chunk(3, -1)
            hr, hz, hn = F.linear(h, self.gru.weight_hh, self.gru.bias_hh).chunk(3, -1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = n + z * (h - n)  # = (1 - z) * n + z * h
            out.append(h)
        hs = torch.stack(out)
        return self.policy(hs), self.value(hs).squeeze(-1), h


def trial_starts(trial: np.ndarray) -> np.ndarray:
    """(n,) bool: the trial features (n, E) mark the first observation of a trial."""
    return (trial[:, EPISODE_START] > 0.5) & (trial[:, EPISODE_INDEX] == 0.0)


class RL2Agent:
    """An :class:`RL2Net` behind the agent protocol (batched; see the module docstring for the
    memory layout and where the trial features come from).

    ``greedy``: take the most likely action instead of sampling.
    """

    def __init__(self, net: RL2Net, greedy: bool = False, seed: int | None = None, name: str = "rl2",
                 device: str | torch.device = "cpu"):
        self.net = net.to(device).eval()
        self.greedy, self.name, self.device = greedy, name, torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(0 if seed is None else int(seed))

    def begin_trial(self, n: int) -> dict[str, np.ndarray]:
        return {"h": np.zeros((n, self.net.spec.memory), dtype=np.float32)}

    @torch.no_grad()
    def act(self, obs: Observation, memory: dict, ctx: Context | None = None) -> tuple[np.ndarray, dict]:
        trial = obs.trial
        h = np.where(trial_starts(trial)[:, None], 0.0, memory["h"]).astype(np.float32)  # a new level: forget
        dev = self.device
        logits, _, h_new = self.net.step(torch.as_tensor(obs.grid, device=dev),
                                         torch.as_tensor(obs.scalars, device=dev),
                                         torch.as_tensor(trial, device=dev), torch.as_tensor(h, device=dev))
        if self.greedy:
            action = logits.argmax(-1)
        else:
            action = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator).squeeze(-1)
        return action.cpu().numpy().astype(np.int64), {"h": h_new.cpu().numpy()}

    def end_episode(self, memory: dict, slots: np.ndarray) -> dict:
        """The hidden state is kept: it spans the trial."""
        return memory
