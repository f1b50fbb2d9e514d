"""Play agents on a BatchEnv and collect per-episode statistics."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from metarena.games.batch import BatchEnv

from metarena.games.trial import EPISODE_START, TrialFeatures

from .base import Context, Observation
from .reference import ReferenceAgent


@dataclass
class EpisodeStats:
    """Per slot and episode index: returns (n, K, P) of every player, lengths (n, K); and how
    many env steps (summed over slots, finished ones included) the rollout took."""

    returns: np.ndarray
    lengths: np.ndarray
    steps: int = 0


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch memory means torch is imported already
    return torch is not None and isinstance(x, torch.Tensor)


def reset_memory(agent, memory: Any, slots: np.ndarray, n: int) -> Any:
    """``memory`` of ``n`` slots with the rows of ``slots`` replaced by a fresh
    ``agent.begin_trial(len(slots))``: those slots start over as in a new trial.

    An agent may define ``reset_memory(memory, slots)`` to do this itself. Otherwise the
    memory must be ``None``, a numpy array or torch tensor, or a dict / list / tuple of those
    (nested), each with the slot (batch) axis on **axis 0**, or on **axis 1** where axis 0 is
    something else (the ``(layers, n, hidden)`` layout of torch recurrent states). The batch
    axis is the first of axes 0 and 1 where the fresh memory of ``len(slots)`` slots differs
    in length from the memory of ``n`` slots (when every slot resets, the fresh memory is
    returned as it is). Other leaves (numbers, strings) are kept. The input is not modified.
    """
    slots = np.asarray(slots, dtype=np.int64)
    if len(slots) == 0:
        return memory
    custom = getattr(agent, "reset_memory", None)
    if callable(custom):
        return custom(memory, slots)
    fresh = agent.begin_trial(len(slots))
    if len(np.unique(slots)) == n:
        return fresh
    return _replace_rows(memory, fresh, slots, n)


def _replace_rows(memory: Any, fresh: Any, slots: np.ndarray, n: int) -> Any:
    if memory is None:
        return None
    if isinstance(memory, dict):
        return {k: _replace_rows(v, fresh[k], slots, n) for k, v in memory.items()}
    if isinstance(memory, (list, tuple)):
        out = [_replace_rows(m, f, slots, n) for m, f in zip(memory, fresh, strict=True)]
        return type(memory)(out) if isinstance(memory, list) else tuple(out)
    tensor = _is_tensor(memory)
    if not (tensor or isinstance(memory, np.ndarray)):
        return memory
    axis = next((a for a in (0, 1) if a < memory.ndim and memory.shape[a] == n
                 and fresh.shape[a] == len(slots)), None)
    if axis is None or memory.shape[:axis] + memory.shape[axis + 1:] != fresh.shape[:axis] + fresh.shape[axis + 1:]:
        raise ValueError(f"cannot find the slot axis of a memory of shape {tuple(memory.shape)} "
                         f"(fresh memory of {len(slots)} slots: {tuple(fresh.shape)}); the slots "
                         f"must be on axis 0 or 1, or the agent must define reset_memory(memory, slots)")
    if tensor:
        import torch

        index = torch.as_tensor(slots, device=memory.device)
        return memory.index_copy(axis, index, fresh.to(device=memory.device, dtype=memory.dtype))
    out = memory.copy()
    if axis == 0:
        out[slots] = fresh
    else:
        out[:, slots] = fresh
    return out


def play_episodes(env: BatchEnv, agents: Sequence, episodes: int = 1, levels: np.ndarray | None = None,
                  seed: int | None = None, memory_reset: bool = False,
                  on_episode_end: Callable[[list, np.ndarray, np.ndarray], None] | None = None) -> EpisodeStats:
    """Play ``episodes`` episodes (one trial) in every slot of ``env``; one agent per learner
    (players ``0 .. env.learners-1``; the env moves the others).

    ``env.episodes`` must equal ``episodes`` so that a slot's trial stays on its level. With
    ``memory_reset`` every episode after the first starts from a fresh memory
    (:func:`reset_memory`) instead of ``end_episode``: each episode is played as if it were
    the first of a new trial on that level.

    ``on_episode_end(memories, slots, episode)`` is called when episodes of the trial end,
    before the agents hear of it: the agents' memories, the slots, and which episode of the
    trial (0 .. K-1) each of them finished (e.g. to read what an agent has learned by the
    end of its trial).
    """
    if len(agents) != env.learners:
        raise ValueError(f"give one agent per learning player ({env.learners}), got {len(agents)}")
    if env.episodes != episodes:
        raise ValueError(f"the env plays trials of {env.episodes} episodes, asked for {episodes}")
    n, p, m = env.batch, env.players, env.learners
    grid, scalars = env.reset(seed=seed, levels=levels)
    features = TrialFeatures(n, p, episodes)
    trial = features.reset()
    memory = [a.begin_trial(n) for a in agents]
    returns = np.zeros((n, episodes, p), dtype=np.float32)
    lengths = np.zeros((n, episodes), dtype=np.int32)
    finished = np.zeros((n, episodes), dtype=bool)
    steps = 0
    while not finished.all():
        actions = np.empty((n, m), dtype=np.int64)
        for i, agent in enumerate(agents):
            obs = Observation(grid[:, i], scalars[:, i], trial[:, i])
            actions[:, i], memory[i] = agent.act(obs, memory[i], Context(env.engine, env.state, i))
        grid, scalars, rewards, terminated, truncated, info = env.step(actions)
        steps += n
        final = info.get("final")
        done = terminated | truncated
        trial_end = np.zeros(n, dtype=bool)
        if final is not None:
            trial_end[final["slots"]] = final["trial_end"]
        trial = features.update(actions, rewards, done, trial_end)
        if final is not None:
            slots, ep = final["slots"], final["episode"]
            if memory_reset:  # each episode looks like the first of a new trial
                trial[slots] = 0.0
                trial[slots, :, EPISODE_START] = 1.0
            fresh = ~finished[slots, ep]
            returns[slots[fresh], ep[fresh]] = final["score"][fresh]
            lengths[slots[fresh], ep[fresh]] = final["length"][fresh]
            finished[slots[fresh], ep[fresh]] = True
            if on_episode_end is not None and fresh.any():
                on_episode_end(memory, slots[fresh], ep[fresh])
            for i, agent in enumerate(agents):
                if memory_reset:
                    memory[i] = reset_memory(agent, memory[i], slots, n)
                else:
                    memory[i] = agent.end_episode(memory[i], slots)
    return EpisodeStats(returns, lengths, steps)


def reference_scores(game, variant, split: str = "test", levels: int = 500, seed: int = 0,
                     kinds: Sequence[str] = ("oracle", "uninformed", "scripted", "random")) -> dict:
    """Mean first-episode return of each reference agent (solo) on ``levels`` levels of
    ``split``, and the normalized score ``(R - R_random) / (R_oracle - R_random)`` per level."""
    env = BatchEnv(game, variant, batch=levels, split=split, pool_size=levels, seed=seed)
    order = np.arange(levels)
    raw = {k: play_episodes(env, [ReferenceAgent(k, seed)], levels=order, seed=seed).returns[:, 0, 0]
           for k in kinds}
    from .evaluate import normalized_scores

    out = {}
    for k in kinds:
        norm = normalized_scores(raw[k], raw["oracle"], raw["random"])
        out[k] = {"return": float(raw[k].mean()), "normalized": float(np.nanmean(norm))}
    return out
