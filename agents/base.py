"""The agent protocol shared by every agent.

An agent acts for a batch of ``n`` slots (levels played side by side). Its
memory is explicit and returned, never hidden in the object::

    memory = agent.begin_trial(n)                 # a new level in every slot
    action, memory = agent.act(obs, memory, ctx)  # (n,) ints in [0, 5)
    memory = agent.end_episode(memory, slots)     # those slots start their next episode

``ctx`` tells the agent where it plays: the engine, its state and the player
index. Learned agents ignore it; the oracle and the uninformed planner read
the level from it (that is what makes them references, not players).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from metarena.games.engine import Engine, State


@dataclass
class Observation:
    """What one player sees in each of n slots."""

    grid: np.ndarray  # (n, V, V, C) uint8 one-hot tile channels
    scalars: np.ndarray  # (n, S) float32
    #: (n, E) float32 trial features (previous action and reward, episode start, episode index;
    #: see games.trial) where the caller tracks them, e.g. a TrialEnv; None elsewhere. Agents
    #: that need them and get None rebuild them from their own memory.
    trial: np.ndarray | None = None


@dataclass
class Context:
    """Where an agent plays: privileged information for reference agents only."""

    engine: Engine
    state: State
    player: int


@runtime_checkable
class Agent(Protocol):
    name: str

    def begin_trial(self, n: int) -> Any: ...

    def act(self, obs: Observation, memory: Any, ctx: Context) -> tuple[np.ndarray, Any]: ...

    def end_episode(self, memory: Any, slots: np.ndarray) -> Any: ...
