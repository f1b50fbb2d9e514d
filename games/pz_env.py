"""PettingZoo interface over :class:`~metarena.games.batch.BatchEnv`, written once for every game.

``parallel_env(game, ...)`` returns a :class:`MetarenaParallelEnv`: one level,
``players`` agents ``player_0 .. player_{P-1}`` acting simultaneously, all of
them learners. Every agent sees the same kind of observation as the Gymnasium
env (``{"grid", "scalars"}``) and acts in ``Discrete(5)``. An episode ends for
all agents at once: that step returns the final observations with
``terminations`` (or ``truncations``) True for everyone, and ``agents`` empties.
``env(game, ...)`` is the same game behind PettingZoo's AEC API.

    import metarena.games.pz_env as pz
    par = pz.parallel_env("coinrush", variant="small", players=3, seed=0)
    obs, infos = par.reset()
    while par.agents:
        obs, rewards, terms, truncs, infos = par.step({a: 0 for a in par.agents})
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from .batch import DEFAULT_POOL
from .engine import NUM_ACTIONS
from .gym_env import (RENDER_FPS, RENDER_MODES, Display, action_space, check_render_mode, check_seed,
                      make_batch, observation_space)


class MetarenaParallelEnv(ParallelEnv):
    """All players of one level slot as PettingZoo agents.

    Args:
        game: a registered game name (``metarena.games.names()``).
        variant: a built-in variant name or a TOML path; ``None`` is the game's default.
        players: number of agents (within the game's player range).
        split: ``"train"`` or ``"test"`` level seeds.
        seed: seed of the first ``reset()`` that is given none.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``.
        pool_size: levels in the pool that episodes draw from.
        episodes: episodes per trial (same level). ``reset()`` after an episode ended goes on
            with the trial; ``reset(seed=...)`` or ``options={"new_trial": True}`` starts a new one.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS, "name": "metarena_v0",
                "is_parallelizable": True}

    def __init__(self, game: str = "treasure", variant: str | None = None, players: int = 2,
                 split: str = "train", seed: int | None = None, render_mode: str | None = None,
                 pool_size: int = DEFAULT_POOL, episodes: int = 1):
        check_render_mode(render_mode)
        self._first_seed = check_seed(seed)
        self.benv = make_batch(game, variant, batch=1, players=players, learners=players,
                               split=split, pool_size=pool_size, episodes=episodes)
        self.game = game
        self.render_mode = render_mode
        self.possible_agents = [f"player_{i}" for i in range(players)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        obs_space, act_space = observation_space(self.benv.engine), action_space()
        # one space object per agent, so that seeding an agent's space sticks
        self._obs_spaces = {a: obs_space if i == 0 else observation_space(self.benv.engine)
                            for i, a in enumerate(self.possible_agents)}
        self._act_spaces = {a: act_space if i == 0 else action_space() for i, a in enumerate(self.possible_agents)}
        self.metadata = dict(self.metadata, name=f"metarena_{game}_v0")
        self._display = Display(self.benv, render_mode, f"metarena - {self.benv.spec.title}", RENDER_FPS,
                                keep_final=True)
        self._np_random: np.random.Generator | None = None
        self._started = False

    # -- spaces -----------------------------------------------------------------------------
    def observation_space(self, agent: str):
        return self._obs_spaces[agent]

    def action_space(self, agent: str):
        return self._act_spaces[agent]

    @property
    def np_random(self) -> np.random.Generator:
        if self._np_random is None:
            self._np_random, _ = seeding.np_random()
        return self._np_random

    # -- helpers ----------------------------------------------------------------------------
    def _obs(self, grid: np.ndarray, scalars: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        return {a: {"grid": np.array(grid[i], dtype=np.uint8), "scalars": np.array(scalars[i], dtype=np.float32)}
                for a, i in self._index.items()}

    def _infos(self, level: int, episode: int, **extra) -> dict[str, dict[str, Any]]:
        seed = int(self.benv.levels.seeds[level])
        return {a: {"level_seed": seed, "episode_index": int(episode), **extra} for a in self.possible_agents}

    # -- PettingZoo API ---------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is None and self._first_seed is not None:
            seed = self._first_seed
        self._first_seed = None
        if seed is not None:
            self._np_random, _ = seeding.np_random(check_seed(seed))
        self.benv.rng = self.np_random
        options = dict(options or {})
        new_trial = bool(options.pop("new_trial", False))
        level = options.pop("level", None)
        if level is not None:
            if not 0 <= int(level) < len(self.benv.levels):
                raise ValueError(f"options['level'] must be a pool index in [0, {len(self.benv.levels)})")
            self.benv.reset(levels=np.array([int(level)]))
        elif seed is not None or new_trial or not self._started or self.agents:
            self.benv.reset()
        # else: the previous episode ended and the BatchEnv has already started the next one.
        self._started = True
        self.agents = list(self.possible_agents)
        self._display.clear()
        st = self.benv.state
        grid, scalars = self.benv.engine.observe(st)
        if self.render_mode == "human":
            self.render()
        return self._obs(grid[0], scalars[0]), self._infos(st.level[0], st.episode[0])

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("no agents are playing (the episode ended or never started): call reset()")
        missing = [a for a in self.agents if a not in actions]
        unknown = [a for a in actions if a not in self._index]
        if missing or unknown:
            raise ValueError(f"give one action per playing agent {self.agents}; "
                             f"missing {missing}, unknown {unknown}")
        acts = np.zeros((1, len(self.possible_agents)), dtype=np.int64)
        for a, i in self._index.items():
            v = np.asarray(actions[a])
            if v.size != 1 or v.dtype.kind not in "iu" or not 0 <= int(v.reshape(-1)[0]) < NUM_ACTIONS:
                raise ValueError(f"the action of {a} must be an int in [0, {NUM_ACTIONS}), got {actions[a]!r}")
            acts[0, i] = int(v.reshape(-1)[0])
        self._display.clear()
        grid, scalars, rewards, terminated, truncated, info = self.benv.step(acts)
        final = info.get("final")
        if final is not None:
            obs = self._obs(final["grid"][0], final["scalars"][0])
            infos = self._infos(final["level"][0], final["episode"][0], trial_end=bool(final["trial_end"][0]))
        else:
            st = self.benv.state
            obs = self._obs(grid[0], scalars[0])
            infos = self._infos(st.level[0], st.episode[0])
        term, trunc = bool(terminated[0]), bool(truncated[0])
        rew = {a: float(rewards[0, i]) for a, i in self._index.items()}
        terms = {a: term for a in self.possible_agents}
        truncs = {a: trunc for a in self.possible_agents}
        if final is not None:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return obs, rew, terms, truncs, infos

    def render(self):
        return self._display.render(0)

    def close(self):
        self._display.close()


def parallel_env(game: str = "treasure", variant: str | None = None, players: int = 2, split: str = "train",
                 seed: int | None = None, render_mode: str | None = None, pool_size: int = DEFAULT_POOL,
                 episodes: int = 1) -> MetarenaParallelEnv:
    """A PettingZoo ``ParallelEnv`` of ``game`` with ``players`` agents."""
    return MetarenaParallelEnv(game, variant, players, split, seed, render_mode, pool_size, episodes)


def env(game: str = "treasure", variant: str | None = None, players: int = 2, split: str = "train",
        seed: int | None = None, render_mode: str | None = None, pool_size: int = DEFAULT_POOL,
        episodes: int = 1):
    """The same game behind PettingZoo's AEC (turn-by-turn) API."""
    return parallel_to_aec(parallel_env(game, variant, players, split, seed, render_mode, pool_size, episodes))
