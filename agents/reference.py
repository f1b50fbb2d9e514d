"""The four reference agents every game has, plus "stay".

- ``oracle``: told the hidden factors, plans with BFS; defines the best return.
- ``uninformed``: knows the map but not the hidden factors; what a perfect
  explorer reaches in a first episode.
- ``scripted``: a heuristic that sees only what the agent sees.
- ``random``: uniform actions; with the oracle it defines the normalized score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metarena.games.engine import REFERENCE_POLICIES

from .base import Context, Observation

REFERENCE_AGENTS = REFERENCE_POLICIES


class ReferenceAgent:
    """A game's reference policy behind the agent protocol. Memory-less."""

    def __init__(self, kind: str, seed: int | None = None):
        if kind not in REFERENCE_AGENTS:
            raise ValueError(f"unknown agent '{kind}'; choose from {', '.join(REFERENCE_AGENTS)}")
        self.name = kind
        self.rng = np.random.default_rng(seed)

    def begin_trial(self, n: int) -> Any:
        return None

    def act(self, obs: Observation, memory: Any, ctx: Context) -> tuple[np.ndarray, Any]:
        game = ctx.engine.game
        return game.policy(self.name, ctx.engine, ctx.state, ctx.player, obs.grid, self.rng), memory

    def end_episode(self, memory: Any, slots: np.ndarray) -> Any:
        return memory
