"""BatchEnv: the engine plus a pool of levels, trials and same-step autoreset.

Every interface (Gymnasium, PettingZoo, the trial env, the arena, the
benchmark) drives a :class:`BatchEnv`; none of them re-implements resets.

- **Pool.** Levels are generated once per ``(game, variant, split, count)``
  and cached in the process; a new trial draws a pool level with the env's
  own generator.
- **Trials.** ``episodes`` consecutive episodes are played on the same level;
  the next trial gets a new level. ``episodes=1`` gives a new level every
  episode (the plain Gymnasium env).
- **Same-step autoreset.** When a slot's episode ends, ``step`` returns the
  first observation of the next episode in that slot and puts the final
  observation in ``info["final"]``.
- **Other players.** Players ``learners..P-1`` are moved by a reference
  policy (``others``); callers give actions for the first ``learners`` only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from . import engine as E
from .variant import SPLITS, Variant

DEFAULT_POOL = 512


@lru_cache(maxsize=32)
def _pool(game_name: str, variant: Variant, seeds: tuple[int, ...]) -> E.LevelBatch:
    from .registry import get

    return E.make_levels(get(game_name), variant, seeds)


def level_pool(game: E.Game, variant: Variant, split: str = "train", count: int = DEFAULT_POOL,
               seeds: Sequence[int] | None = None) -> E.LevelBatch:
    """The first ``count`` levels of ``split`` (or exactly ``seeds``), cached per process."""
    if seeds is None:
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}'; choose from {', '.join(SPLITS)}")
        seeds = E.split_seeds(split, count)
    return _pool(game.spec.name, variant, tuple(int(s) for s in seeds))


class BatchEnv:
    """``batch`` slots of ``players`` players over a level pool, with trials and autoreset."""

    def __init__(self, game: E.Game, variant: Variant, *, batch: int = 1, players: int = 1,
                 learners: int | None = None, others: str = "random", split: str = "train",
                 pool_size: int = DEFAULT_POOL, seeds: Sequence[int] | None = None, episodes: int = 1,
                 seed: int | None = None, view: int = E.VIEW, out: dict[str, np.ndarray] | None = None):
        learners = players if learners is None else learners
        if not 1 <= learners <= players:
            raise ValueError(f"learners must be in [1, players={players}], got {learners}")
        if others not in E.REFERENCE_POLICIES:
            raise ValueError(f"unknown policy '{others}' for the other players; "
                             f"choose from {', '.join(E.REFERENCE_POLICIES)}")
        if episodes < 1:
            raise ValueError(f"episodes per trial must be >= 1, got {episodes}")
        self.game, self.variant, self.split = game, variant, split
        self.levels = level_pool(game, variant, split, pool_size, seeds)
        self.engine = E.Engine(game, variant, self.levels, batch, players, view, out)
        self.batch, self.players, self.learners, self.others = batch, players, learners, others
        self.episodes = episodes
        self.rng = np.random.default_rng(seed)
        self.state: E.State | None = None
        self._obs: tuple[np.ndarray, np.ndarray] | None = None
        #: called as ``on_final(state, slots)`` after a step that ended episodes in ``slots``,
        #: before those slots restart (e.g. to draw the last frame of an episode)
        self.on_final = None

    @property
    def spec(self) -> E.GameSpec:
        return self.game.spec

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def _draw(self, n: int) -> np.ndarray:
        return self.rng.integers(0, len(self.levels), size=n)

    def reset(self, seed: int | None = None, levels: np.ndarray | None = None):
        """Start a new trial in every slot; returns ``(grid, scalars)`` of all players."""
        if seed is not None:
            self.seed(seed)
        levels = self._draw(self.batch) if levels is None else np.asarray(levels, dtype=np.int64)
        self.state = self.engine.new_state(levels)
        self._obs = self.engine.observe(self.state)
        return self._obs

    def new_trials(self, slots: np.ndarray):
        """Cut short the trials of ``slots`` and start a new one there (a newly drawn level,
        episode 0); returns ``(grid, scalars)`` of all slots, as after a step."""
        if self.state is None:
            raise RuntimeError("call reset() before new_trials()")
        slots = np.asarray(slots, dtype=np.int64)
        if len(slots):
            eng, (grid, scalars) = self.engine, self._obs
            eng.reset(self.state, slots, self._draw(len(slots)))
            grid[slots], scalars[slots] = eng.first_observation(self.state.level[slots])
        return self._obs

    def step(self, actions: np.ndarray):
        """Step with the learners' actions (B, learners); others act by their policy.

        Returns ``(grid, scalars, rewards, terminated, truncated, info)``: observations and
        rewards of all players; ``info["final"]`` holds, for the slots whose episode ended,
        their indices, final observations, episode returns and lengths, and which of them
        also ended their trial.
        """
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        st, eng = self.state, self.engine
        actions = np.asarray(actions, dtype=np.int64).reshape(self.batch, -1)
        if actions.shape[1] != self.learners:
            raise ValueError(f"expected actions for {self.learners} learner(s) per slot, got {actions.shape}")
        if self.learners < self.players:
            grid = self._obs[0]
            extra = [self.game.policy(self.others, eng, st, p, grid[:, p], self.rng)
                     for p in range(self.learners, self.players)]
            actions = np.concatenate([actions, np.stack(extra, axis=1)], axis=1)
        rewards, terminated, truncated = eng.step(st, actions)
        self._obs = grid, scalars = eng.observe(st)
        done = terminated | truncated
        info: dict = {}
        if done.any():
            slots = np.flatnonzero(done)
            trial_end = st.episode[slots] + 1 >= self.episodes
            info["final"] = {
                "slots": slots, "grid": grid[slots], "scalars": scalars[slots],
                "score": st.score[slots], "length": st.t[slots], "trial_end": trial_end,
                "level": st.level[slots], "episode": st.episode[slots],
            }
            if self.on_final is not None:
                self.on_final(st, slots)
            new = slots[trial_end]
            if len(new):
                eng.reset(st, new, self._draw(len(new)))
            again = slots[~trial_end]
            if len(again):
                eng.restart(st, again)
            grid[slots], scalars[slots] = eng.first_observation(st.level[slots])
        return self._obs[0], self._obs[1], rewards, terminated, truncated, info


def make_batch_env(game: str, variant: str | None = None, **kwargs) -> BatchEnv:
    """A :class:`BatchEnv` by game name and variant name or TOML path."""
    from .registry import get, variant as load

    return BatchEnv(get(game), load(game, variant), **kwargs)
