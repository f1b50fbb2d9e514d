"""The agent protocol shared by every agent.

An agent acts for a batch of ``n`` slots (levels played side by side). Its memory is
explicit and returned, never hidden in the object::

    memory = agent.begin_trial(n)                 # a new level in every slot
    action, memory = agent.act(obs, memory, ctx)  # (n,) ints in [0, 5)
    memory = agent.end_episode(memory, slots)     # those slots start their next episode

``ctx`` tells the agent where it plays: the engine, its state and the player index.
Learned agents ignore it; the oracle, the uninformed planner and the ``recall`` ceiling
planner read the level from it (that is what makes them references, not players).

Optional, and declared here rather than looked up by name:

- ``reset_memory(memory, slots)``: the rows of ``slots`` start over as in a new trial (the
  ``--memory-reset`` ablation). Without it :func:`metarena.agents.rollout.reset_memory`
  replaces those rows with a fresh ``begin_trial`` (slot axis 0, or 1 for torch
  recurrent states). See :class:`ResetsMemory`.
- An agent that is not batched and learns each level by itself (``ppo-scratch``) plays
  whole levels instead of steps: :class:`LevelLearner`.

The one loop that drives agents through trials is :func:`metarena.agents.rollout.play`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from metarena.games.engine import Engine, State


@dataclass
class Observation:
    """What one player sees in each of n slots."""

    grid: np.ndarray  #: (n, V, V, C) uint8 one-hot tile channels
    scalars: np.ndarray  #: (n, S) float32
    #: (n, E) float32 trial features: previous action and reward, episode start, episode index
    #: (see :mod:`metarena.games.trial`); the trial loop always passes them.
    trial: np.ndarray


@dataclass
class Context:
    """Where an agent plays: privileged information for reference agents only."""

    engine: Engine
    state: State
    player: int


@dataclass
class EpisodeStats:
    """What a trial loop returns, per slot and episode index: returns (n, K, P) of every
    player, lengths (n, K), which episodes were played to their end (n, K; all of them unless
    the trial was stopped early); and how many env steps (summed over slots, finished ones
    included) the rollout took."""

    returns: np.ndarray
    lengths: np.ndarray
    finished: np.ndarray
    steps: int = 0


@runtime_checkable
class Agent(Protocol):
    """Every agent: a name and the three calls of the module docstring."""

    name: str

    def begin_trial(self, n: int) -> Any:
        """The memory of ``n`` slots at the start of a trial (a new level in each)."""

    def act(self, obs: Observation, memory: Any, ctx: Context) -> tuple[np.ndarray, Any]:
        """``(n,)`` int actions in ``[0, 5)`` and the memory after this step."""

    def end_episode(self, memory: Any, slots: np.ndarray) -> Any:
        """``slots`` start their next episode of the trial (the same level); the new memory."""


@runtime_checkable
class ResetsMemory(Protocol):
    """An agent whose memory the generic row replacement cannot reset."""

    def reset_memory(self, memory: Any, slots: np.ndarray) -> Any:
        """The memory with the rows of ``slots`` as at a trial's start."""


@runtime_checkable
class LevelLearner(Protocol):
    """An agent that is not batched and learns each level by itself in its K episodes; the
    benchmark hands it whole levels (``metarena eval`` only)."""

    name: str

    def play(self, game: str, variant: str | None, split: str, levels: int, episodes: int,
             seed: int) -> EpisodeStats:
        """One trial of ``episodes`` episodes on each of the first ``levels`` levels of ``split``."""
