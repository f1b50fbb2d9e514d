"""The one trial loop: agents play one trial (K episodes on one level) in every slot.

Evaluation, matches, the viewer, Reptile's meta-iterations and the scripts all play with
:func:`play`; what each of them needs beyond the returns it gets through :class:`Hooks`
(a frame after every step, an episode's last frame, the agents' memories at an episode's
end). Agents always get the trial features of :mod:`metarena.games.trial` in
``Observation.trial``.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import numpy as np

from metarena.games.batch import BatchEnv
from metarena.games.trial import EPISODE_START, TrialEnv, TrialStep

from .base import Agent, Context, EpisodeStats, Observation, ResetsMemory


class Hooks:
    """What a caller of :func:`play` watches. Every method does nothing unless overridden,
    and any of them may return False to stop the trial after the current step."""

    def on_start(self, env: BatchEnv) -> bool | None:
        """After the reset, before the first step (``env.state`` is every slot's first state)."""

    def on_step(self, env: BatchEnv, actions: np.ndarray, step: TrialStep) -> bool | None:
        """After every step: the learners' ``actions`` (n, L) and what the step returned
        (rewards, which episodes and trials ended, the next observations)."""

    def on_final(self, env: BatchEnv, slots: np.ndarray) -> bool | None:
        """Inside the step that ended the episodes of ``slots``, before those slots start their
        next one: ``env.state`` still shows how the episodes ended (an episode's last frame)."""

    def on_episode_end(self, memories: list, slots: np.ndarray, episodes: np.ndarray) -> bool | None:
        """``slots`` finished episode ``episodes`` (0 .. K-1) of their trial; called before the
        agents hear of it, with every agent's memory (e.g. to read what a slot has learned)."""


def play(env: BatchEnv, agents: Sequence[Agent], *, levels: np.ndarray | None = None, seed: int | None = None,
         memory_reset: bool = False, hooks: Hooks | None = None) -> EpisodeStats:
    """Play one trial of ``env.episodes`` episodes in every slot of ``env``, one agent per
    learner (players ``0 .. env.learners-1``; the env moves the others). ``levels`` (n,) picks
    each slot's pool level (default: drawn with ``seed``).

    With ``memory_reset`` every episode after the first starts from a fresh memory
    (:func:`reset_memory`) instead of ``end_episode``, and its trial features are those of a
    trial's first observation: each episode is played as if it were the first of a new trial
    on that level (the ablation that shows what adaptation adds).
    """
    if len(agents) != env.learners:
        raise ValueError(f"give one agent per learning player ({env.learners}), got {len(agents)}")
    hooks = hooks if hooks is not None else Hooks()
    trials = TrialEnv(env)
    n, k, m = env.batch, env.episodes, env.learners
    grid, scalars, trial = trials.reset(seed=seed, levels=levels)
    memory = [a.begin_trial(n) for a in agents]
    stats = EpisodeStats(np.zeros((n, k, env.players), dtype=np.float32), np.zeros((n, k), dtype=np.int32),
                         np.zeros((n, k), dtype=bool))
    stop = hooks.on_start(env) is False

    def on_final(state, slots: np.ndarray) -> None:
        nonlocal stop
        stop |= hooks.on_final(env, slots) is False

    before, env.on_final = env.on_final, on_final
    try:
        while not stop and not stats.finished.all():
            actions = np.empty((n, m), dtype=np.int64)
            for i, agent in enumerate(agents):
                obs = Observation(grid[:, i], scalars[:, i], trial[:, i])
                action, memory[i] = agent.act(obs, memory[i], Context(env.engine, env.state, i))
                actions[:, i] = np.asarray(action, dtype=np.int64).reshape(n)
            step = trials.step(actions)
            stats.steps += n
            grid, scalars, trial = step.grid, step.scalars, step.trial
            final = step.info.get("final")
            if final is not None:
                slots, ep = final["slots"], final["episode"]
                if memory_reset:  # each episode looks like the first of a new trial
                    trial[slots] = 0.0
                    trial[slots, :, EPISODE_START] = 1.0
                fresh = ~stats.finished[slots, ep]
                stats.returns[slots[fresh], ep[fresh]] = final["score"][fresh]
                stats.lengths[slots[fresh], ep[fresh]] = final["length"][fresh]
                stats.finished[slots[fresh], ep[fresh]] = True
                if fresh.any():
                    stop |= hooks.on_episode_end(memory, slots[fresh], ep[fresh]) is False
                for i, agent in enumerate(agents):
                    if memory_reset:
                        memory[i] = reset_memory(agent, memory[i], slots, n)
                    else:
                        memory[i] = agent.end_episode(memory[i], slots)
            stop |= hooks.on_step(env, actions, step) is False
    finally:
        env.on_final = before
    return stats


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch memory means torch is imported already
    return torch is not None and isinstance(x, torch.Tensor)


def reset_memory(agent, memory: Any, slots: np.ndarray, n: int) -> Any:
    """``memory`` of ``n`` slots with the rows of ``slots`` replaced by a fresh
    ``agent.begin_trial(len(slots))``: those slots start over as in a new trial.

    An agent may define ``reset_memory(memory, slots)`` to do this itself (see
    :class:`~metarena.agents.base.ResetsMemory`). Otherwise the
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
    if isinstance(agent, ResetsMemory):
        return agent.reset_memory(memory, slots)
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
