"""The four reference agents every game has, plus "stay".

- ``oracle``: told the hidden factors, plans with BFS; defines the best return.
- ``uninformed``: knows the map but not the hidden factors; what a perfect
  explorer reaches in a first episode.
- ``scripted``: a heuristic that sees only what the agent sees.
- ``random``: uniform actions; with the oracle it defines the normalized score.
"""

from __future__ import annotations

from pathlib import Path
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


ZOO = Path(__file__).parent / "zoo"
#: agents shipped with the package, one per game: ``agents/zoo/<name>-<game>/`` (a checkpoint)
SHIPPED = ("rl2",)
#: baselines that only the adaptation benchmark plays (they learn inside ``metarena eval``)
EVAL_ONLY = ("ppo-scratch",)


def shipped_path(name: str, game: str | None) -> Path:
    """The folder of the shipped agent ``name`` for ``game``."""
    if game is None:
        raise ValueError(f"the shipped agent '{name}' exists once per game: say which game")
    path = ZOO / f"{name}-{game}"
    if not (path / "meta.json").exists():
        have = sorted(p.name for p in ZOO.glob(f"{name}-*")) if ZOO.exists() else []
        raise ValueError(f"no shipped '{name}' agent for {game} (shipped: {', '.join(have) or 'none'}); "
                         "train one with `metarena train` and pass its run directory")
    return path


def make_agent(name: str, seed: int | None = None, game: str | None = None, strategy: str | None = None,
               adapt_lr: float | None = None):
    """An agent by name: a reference agent; ``rl2``, the agent shipped for ``game``; or the
    path of a trained checkpoint (a run directory, a checkpoint directory or its weights
    file), which must have been trained on ``game`` when it is given. ``strategy`` and
    ``adapt_lr`` pick the fine-tuning strategy and learning rate of a finetune or reptile
    checkpoint."""
    if name == "ppo-scratch":
        from .evaluate import ScratchPPO

        return ScratchPPO()
    if name in REFERENCE_AGENTS:
        if strategy is not None or adapt_lr is not None:
            raise ValueError(f"'{name}' does not fine-tune; --strategy and --adapt-lr apply to finetune and "
                             "reptile checkpoints")
        return ReferenceAgent(name, seed)
    if name in SHIPPED:
        from .train import load_agent

        agent = load_agent(shipped_path(name, game), game=game, seed=seed, strategy=strategy, adapt_lr=adapt_lr)
        agent.name = name
        return agent
    if Path(name).exists():
        from .train import load_agent

        return load_agent(name, game=game, seed=seed, strategy=strategy, adapt_lr=adapt_lr)
    raise ValueError(f"unknown agent '{name}'; choose from {', '.join(REFERENCE_AGENTS + SHIPPED + EVAL_ONLY)}, "
                     "or give the path of a trained checkpoint")
