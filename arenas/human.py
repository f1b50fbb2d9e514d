"""A person at the keyboard, behind the agent protocol."""

from __future__ import annotations

from typing import Any

import numpy as np

from metarena.agents.base import Context, Observation

from .viewer import Viewer


class HumanAgent:
    """Plays one slot with the keys of a :class:`~metarena.arenas.viewer.Viewer`.

    With ``block=True`` (play mode) every step waits for a key, so the game is
    turn-based for the person; with ``block=False`` it takes the last key
    pressed since the previous step, or stays. Closing the window or Esc raises
    :class:`~metarena.arenas.viewer.ViewerClosed`.
    """

    name = "human"

    def __init__(self, viewer: Viewer, block: bool = True):
        self.viewer, self.block = viewer, block

    def begin_trial(self, n: int) -> Any:
        if n != 1:
            raise ValueError(f"a person plays one slot at a time, not {n}")
        return None

    def act(self, obs: Observation, memory: Any, ctx: Context) -> tuple[np.ndarray, Any]:
        if self.block:
            action = self.viewer.wait_action()
        else:
            action = self.viewer.latest_action()
            action = 0 if action is None else action
        return np.array([action], dtype=np.int64), memory

    def end_episode(self, memory: Any, slots: np.ndarray) -> Any:
        return memory
