"""TrialEnv: a BatchEnv seen as one long task per trial, with what meta-learners need.

A trial is ``K`` consecutive episodes on one level (``BatchEnv(episodes=K)``).
An in-context learner (RL²) adapts by remembering what earlier steps and
episodes of the trial showed, so every observation gains a ``trial`` array
of ``E = TRIAL_FEATURES`` float32 features per player, in this order:

=========  ==================================================================
index      feature
=========  ==================================================================
0..4       previous action, one-hot over ``stay, up, down, left, right``
5          previous reward
6          episode-start flag: 1 on the first observation of every episode
7          episode index within the trial, ``k / K`` (0 in the first episode)
=========  ==================================================================

What "previous" means at the edges:

- **Trial start** (after ``reset`` and after the last episode of a trial): the
  previous action and reward are zero, the flag is 1, the index is 0. Nothing
  of the old level leaks into the new trial.
- **Episode start inside a trial**: the flag is 1, the index is ``k / K`` of
  the new episode, and the previous action and reward are those of the last
  step of the episode that just ended. In ``treasure`` that last reward is the
  only reward an episode pays, so this is how the outcome reaches the memory.

Players the env moves by its reference policy (``learners..P-1``) get a
zero previous action (their actions stay inside the env); their reward is
filled in as for the learners.

The same features are computed by :class:`TrialFeatures` for callers that
drive a BatchEnv themselves (match runners, evaluation loops).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .engine import NUM_ACTIONS

#: number of trial features per player, and the index of each group
TRIAL_FEATURES = NUM_ACTIONS + 3
PREV_ACTION = slice(0, NUM_ACTIONS)
PREV_REWARD = NUM_ACTIONS
EPISODE_START = NUM_ACTIONS + 1
EPISODE_INDEX = NUM_ACTIONS + 2
TRIAL_FEATURE_NAMES = tuple(f"prev_action_{i}" for i in range(NUM_ACTIONS)) + (
    "prev_reward", "episode_start", "episode_index")


class TrialFeatures:
    """The ``(B, P, E)`` trial features of a batch, updated after every step.

    ``reset()`` starts a trial in every slot; ``update(actions, rewards, done,
    trial_end)`` applies one step's results. ``values`` is overwritten in place.
    """

    def __init__(self, batch: int, players: int, episodes: int):
        if episodes < 1:
            raise ValueError(f"episodes per trial must be >= 1, got {episodes}")
        self.batch, self.players, self.episodes = batch, players, episodes
        self.values = np.zeros((batch, players, TRIAL_FEATURES), dtype=np.float32)
        self.episode = np.zeros(batch, dtype=np.int64)  # episode index within the trial
        self._eye = np.eye(NUM_ACTIONS, dtype=np.float32)

    def reset(self) -> np.ndarray:
        return self.new_trials(slice(None))

    def new_trials(self, slots: np.ndarray | slice) -> np.ndarray:
        """Start a trial in ``slots`` (``reset``: in all)."""
        self.values[slots] = 0.0
        self.values[slots, :, EPISODE_START] = 1.0
        self.episode[slots] = 0
        return self.values

    def update(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray,
               trial_end: np.ndarray) -> np.ndarray:
        """``actions`` (B, L) of the first L players, ``rewards`` (B, P), ``done`` (B,) episode
        ended, ``trial_end`` (B,) that episode was the trial's last."""
        v = self.values
        actions = np.asarray(actions, dtype=np.int64).reshape(self.batch, -1)
        learners = actions.shape[1]
        v[:, :learners, PREV_ACTION] = self._eye[actions]
        v[:, learners:, PREV_ACTION] = 0.0
        v[..., PREV_REWARD] = rewards
        v[..., EPISODE_START] = done[:, None]
        self.episode += done
        self.episode[trial_end] = 0
        v[..., EPISODE_INDEX] = (self.episode / self.episodes)[:, None]
        v[trial_end, :, : EPISODE_START] = 0.0  # a new trial: no previous action or reward
        return v


class TrialStep(NamedTuple):
    """What :meth:`TrialEnv.step` returns. Arrays may be buffers overwritten by the next step."""

    grid: np.ndarray  # (B, P, V, V, C) uint8
    scalars: np.ndarray  # (B, P, 4) float32
    trial: np.ndarray  # (B, P, E) float32 trial features
    rewards: np.ndarray  # (B, P) float32
    terminated: np.ndarray  # (B,) bool
    truncated: np.ndarray  # (B,) bool
    episode_done: np.ndarray  # (B,) bool: an episode ended (the observation is the next one's first)
    trial_done: np.ndarray  # (B,) bool: a trial ended: a new level follows and memory must be cleared
    info: dict  # the wrapped env's info (``info["final"]`` as in BatchEnv)


class TrialEnv:
    """Trials of ``episodes`` episodes over a :class:`~metarena.games.batch.BatchEnv` or
    :class:`~metarena.games.shards.ShardedBatchEnv`, with trial features beside grid and scalars.

    ``env`` must have been built with the same ``episodes=K`` (a BatchEnv carries it; for a
    ShardedBatchEnv pass it here too).
    """

    def __init__(self, env, episodes: int | None = None):
        own = getattr(env, "episodes", None)
        if episodes is None:
            if own is None:
                raise ValueError("pass episodes=K: the wrapped env does not say how many episodes "
                                 "its trials have (build it with the same episodes=K)")
            episodes = own
        if own is not None and own != episodes:
            raise ValueError(f"the wrapped env plays trials of {own} episodes, asked for {episodes}")
        self.env, self.episodes = env, int(episodes)
        self.batch, self.players, self.learners = env.batch, env.players, env.learners
        self.features = TrialFeatures(self.batch, self.players, self.episodes)
        self._trial_done = np.zeros(self.batch, dtype=bool)

    def reset(self, seed: int | None = None, **kwargs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start a trial in every slot; returns ``(grid, scalars, trial)``."""
        grid, scalars = self.env.reset(seed=seed, **kwargs)
        return grid, scalars, self.features.reset()

    def new_trials(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cut short the trials of ``slots`` and start new ones there; returns ``(grid, scalars,
        trial)`` of all slots."""
        slots = np.asarray(slots, dtype=np.int64)
        grid, scalars = self.env.new_trials(slots)
        return grid, scalars, self.features.new_trials(slots)

    def step(self, actions: np.ndarray) -> TrialStep:
        grid, scalars, rewards, terminated, truncated, info = self.env.step(actions)
        episode_done = terminated | truncated
        trial_done = self._trial_done
        trial_done[:] = False
        final = info.get("final")
        if final is not None:
            trial_done[final["slots"]] = final["trial_end"]
        trial = self.features.update(actions, rewards, episode_done, trial_done)
        return TrialStep(grid, scalars, trial, rewards, terminated, truncated, episode_done, trial_done, info)

    def close(self) -> None:
        close = getattr(self.env, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "TrialEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_trial_env(game: str, variant: str | None = None, *, batch: int, episodes: int = 4,
                   shards: int = 1, **kwargs) -> TrialEnv:
    """A :class:`TrialEnv` by game and variant name; ``shards > 1`` steps it in that many processes."""
    from .registry import get, variant as load

    v = load(game, variant)
    if shards > 1:
        from .shards import ShardedBatchEnv

        return TrialEnv(ShardedBatchEnv(game, v, batch=batch, shards=shards, episodes=episodes, **kwargs),
                        episodes)
    from .batch import BatchEnv

    return TrialEnv(BatchEnv(get(game), v, batch=batch, episodes=episodes, **kwargs))
