"""Play agents on a BatchEnv and collect per-episode statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from games.batch import BatchEnv

from .base import Context, Observation
from .reference import ReferenceAgent


@dataclass
class EpisodeStats:
    """Per slot and episode index: returns (n, K, P), lengths (n, K)."""

    returns: np.ndarray
    lengths: np.ndarray


def play_episodes(env: BatchEnv, agents: Sequence, episodes: int = 1, levels: np.ndarray | None = None,
                  seed: int | None = None) -> EpisodeStats:
    """Play ``episodes`` episodes (one trial) in every slot of ``env``; one agent per player.

    ``env.episodes`` must equal ``episodes`` so that a slot's trial stays on its level.
    """
    if len(agents) != env.players or env.learners != env.players:
        raise ValueError(f"give one agent per player ({env.players}) on an env where all players learn")
    if env.episodes != episodes:
        raise ValueError(f"the env plays trials of {env.episodes} episodes, asked for {episodes}")
    n, p = env.batch, env.players
    grid, scalars = env.reset(seed=seed, levels=levels)
    memory = [a.begin_trial(n) for a in agents]
    returns = np.zeros((n, episodes, p), dtype=np.float32)
    lengths = np.zeros((n, episodes), dtype=np.int32)
    finished = np.zeros((n, episodes), dtype=bool)
    while not finished.all():
        actions = np.empty((n, p), dtype=np.int64)
        for i, agent in enumerate(agents):
            obs = Observation(grid[:, i], scalars[:, i])
            actions[:, i], memory[i] = agent.act(obs, memory[i], Context(env.engine, env.state, i))
        grid, scalars, _, _, _, info = env.step(actions)
        final = info.get("final")
        if final is not None:
            slots, ep = final["slots"], final["episode"]
            fresh = ~finished[slots, ep]
            returns[slots[fresh], ep[fresh]] = final["score"][fresh]
            lengths[slots[fresh], ep[fresh]] = final["length"][fresh]
            finished[slots[fresh], ep[fresh]] = True
            for i, agent in enumerate(agents):
                memory[i] = agent.end_episode(memory[i], slots)
    return EpisodeStats(returns, lengths)


def reference_scores(game, variant, split: str = "test", levels: int = 500, seed: int = 0,
                     kinds: Sequence[str] = ("oracle", "uninformed", "scripted", "random")) -> dict:
    """Mean first-episode return of each reference agent (solo) on ``levels`` levels of
    ``split``, and the normalized score ``(R - R_random) / (R_oracle - R_random)`` per level."""
    env = BatchEnv(game, variant, batch=levels, split=split, pool_size=levels, seed=seed)
    order = np.arange(levels)
    raw = {k: play_episodes(env, [ReferenceAgent(k, seed)], levels=order, seed=seed).returns[:, 0, 0]
           for k in kinds}
    lo, hi = raw["random"], raw["oracle"]
    span = np.where(hi - lo > 1e-6, hi - lo, np.nan)
    out = {}
    for k in kinds:
        norm = (raw[k] - lo) / span
        out[k] = {"return": float(raw[k].mean()), "normalized": float(np.nanmean(norm))}
    return out
