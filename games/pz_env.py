"""PettingZoo interface over :class:`~metarena.games.batch.BatchEnv`, written once for every game.

``parallel_env(game, ...)`` returns a :class:`MetarenaParallelEnv`: one level,
``players`` agents ``player_0 .. player_{P-1}`` acting simultaneously, all of
them learners. Every agent sees the same kind of observation as the Gymnasium
env (``{"grid", "scalars"}``, or one float32 Box with ``flatten=True``) and acts
in ``Discrete(5)``. An episode ends for all agents at once: that step returns the
final observations with ``terminations`` (or ``truncations``) True for everyone,
and ``agents`` empties. ``env(game, ...)`` is the same game behind PettingZoo's AEC API.

    import metarena.games.pz_env as pz
    par = pz.parallel_env("coinrush", variant="small", players=3, seed=0)
    obs, infos = par.reset()
    while par.agents:
        obs, rewards, terms, truncs, infos = par.step({a: 0 for a in par.agents})

``max_cycles`` cuts episodes short (truncation) after that many steps; ``state()`` is a
fixed-shape global view of the map for centralised critics (see ``state_space``). Every
info (of ``reset`` and of every step) has the keys ``level_seed``, ``episode_index`` and
``trial_end``, as in :mod:`metarena.games.gym_env`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from . import engine as E
from . import tiles as T
from .batch import DEFAULT_POOL
from .engine import NUM_ACTIONS
from .gym_env import (RENDER_FPS, RENDER_MODES, Display, action_space, check_flag, check_render_mode, check_seed,
                      cut_episode, flat_space, flatten_obs, make_batch, observation_space)

#: what ``state()`` holds after the map's planes, in this order
STATE_SCALARS = ("time_left", "episode_index")


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
        episodes: episodes per trial (same level). ``reset()`` moves on to what follows the current
            episode: the trial's next episode, or a new trial after its last one, however the
            episode ended (inside the engine, by ``max_cycles``, or cut short by ``reset()``
            mid-episode); ``reset(seed=...)`` or ``options={"new_trial": True}`` starts a new trial.
        max_cycles: steps per episode (PettingZoo's name for it), at most the variant's step limit
            (the default, ``None``): an episode still running after ``max_cycles`` steps is
            truncated for every agent. Only the length changes: the game (its ``time_left``
            scalar, treasure's reward schedule) is still the variant's; for a shorter game, use a
            variant with a smaller ``steps_per_cell``.
        flatten: if True, each agent's observation is one float32 ``Box`` (the grid flattened,
            then the scalars), as in :class:`~metarena.games.gym_env.MetarenaEnv`; for SuperSuit
            and MLP policies.

    ``state()`` is a float32 vector in ``state_space`` (values in [0, 1]): the whole map as
    ``(H, W, NUM_TILES + P)`` planes, one-hot tiles (:mod:`metarena.games.tiles`, what the
    players could see, nothing hidden revealed) then one plane per player marking its cell,
    flattened, followed by ``time_left`` and the episode's index in its trial ``k / K``. After
    the step that ends an episode it shows how the episode ended, like the observations.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS, "name": "metarena_v0",
                "is_parallelizable": True}

    def __init__(self, game: str = "treasure", variant: str | None = None, players: int = 2,
                 split: str = "train", seed: int | None = None, render_mode: str | None = None,
                 pool_size: int = DEFAULT_POOL, episodes: int = 1, *, max_cycles: int | None = None,
                 flatten: bool = False):
        check_render_mode(render_mode)
        self._first_seed = check_seed(seed)
        self.benv = make_batch(game, variant, batch=1, players=players, learners=players,
                               split=split, pool_size=pool_size, episodes=episodes)
        limit = self.benv.engine.limit
        if max_cycles is None:
            max_cycles = limit
        if isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer)) or not (
                1 <= max_cycles <= limit):
            raise ValueError(f"max_cycles must be an integer in [1, {limit}] (the step limit of variant "
                             f"'{self.benv.variant.name}'), or None for that limit; got {max_cycles!r}")
        self.max_cycles = int(max_cycles)
        self.flatten = check_flag("flatten", flatten)
        self.game = game
        self.render_mode = render_mode
        self.possible_agents = [f"player_{i}" for i in range(players)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}

        def obs_space():
            space = observation_space(self.benv.engine)
            return flat_space(space) if self.flatten else space

        # one space object per agent, so that seeding an agent's space sticks
        self._obs_spaces = {a: obs_space() for a in self.possible_agents}
        self._act_spaces = {a: action_space() for a in self.possible_agents}
        eng = self.benv.engine
        self.state_space = spaces.Box(0.0, 1.0, (eng.height * eng.width * (T.NUM_TILES + players)
                                                 + len(STATE_SCALARS),), np.float32)
        self.metadata = dict(self.metadata, name=f"metarena_{game}_v0")
        self._display = Display(self.benv, render_mode, f"metarena - {self.benv.spec.title}", RENDER_FPS,
                                keep_final=True)
        self._show_final = self.benv.on_final  # the display's hook, if it keeps final frames
        self.benv.on_final = self._keep_final
        self._np_random: np.random.Generator | None = None
        self._started = False
        self._running = False  # the BatchEnv holds an episode that the engine has not ended
        self._final_state: np.ndarray | None = None

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

    # -- global state -----------------------------------------------------------------------
    def state(self) -> np.ndarray:
        """The global state (see the class docstring): a new float32 array in ``state_space``."""
        if self.benv.state is None:
            raise RuntimeError("call reset() before state()")
        if self._final_state is not None:
            return self._final_state.copy()
        return self._state_of(self.benv.state)

    def _state_of(self, st: E.State) -> np.ndarray:
        eng, r = self.benv.engine, self.benv.engine.radius
        codes = st.cells[0, r:r + eng.height, r:r + eng.width] & T.TILE_MASK
        tiles = T.CHANNELS_OF_CODE.take(codes, axis=0)[..., :T.NUM_TILES]
        players = np.zeros((eng.height, eng.width, self.benv.players), dtype=np.uint8)
        row, col = eng.rowcol(st)
        players[row[0], col[0], np.arange(self.benv.players)] = 1
        time_left = eng.scalars(st, np.array([0]))[0, 0, 0]
        extra = np.array([time_left, st.episode[0] / self.benv.episodes], dtype=np.float32)
        return flatten_obs(np.concatenate([tiles, players], axis=-1), extra)

    def _keep_final(self, st: E.State, slots: np.ndarray) -> None:
        """The BatchEnv's ``on_final``: keep the state of the episode that just ended (the
        BatchEnv restarts the slot in the same step), and its last frame for the display."""
        self._final_state = self._state_of(st)
        if self._show_final is not None:
            self._show_final(st, slots)

    # -- helpers ----------------------------------------------------------------------------
    def _obs(self, grid: np.ndarray, scalars: np.ndarray) -> dict[str, Any]:
        if self.flatten:
            flat = flatten_obs(grid, scalars, batch=1)
            return {a: flat[i] for a, i in self._index.items()}
        return {a: {"grid": np.array(grid[i], dtype=np.uint8), "scalars": np.array(scalars[i], dtype=np.float32)}
                for a, i in self._index.items()}

    def _infos(self, level: int, episode: int, trial_end: bool = False) -> dict[str, dict[str, Any]]:
        seed = int(self.benv.levels.seeds[level])
        return {a: {"level_seed": seed, "episode_index": int(episode), "trial_end": bool(trial_end)}
                for a in self.possible_agents}

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
        elif seed is not None or new_trial or not self._started:
            self.benv.reset()
        elif self._running:  # cut short by max_cycles or by this reset()
            cut_episode(self.benv)
        # else: the engine ended the previous episode and the BatchEnv has already started the next one.
        self._started = self._running = True
        self._final_state = None
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
        self._final_state = None
        grid, scalars, rewards, terminated, truncated, info = self.benv.step(acts)
        final = info.get("final")
        term, trunc = bool(terminated[0]), bool(truncated[0])
        st = self.benv.state
        if final is not None:
            self._running = False
            obs = self._obs(final["grid"][0], final["scalars"][0])
            infos = self._infos(final["level"][0], final["episode"][0], final["trial_end"][0])
        else:
            obs = self._obs(grid[0], scalars[0])
            trunc = int(st.t[0]) >= self.max_cycles  # reset() then moves on, as after any episode
            infos = self._infos(st.level[0], st.episode[0], trunc and st.episode[0] + 1 >= self.benv.episodes)
        rew = {a: float(rewards[0, i]) for a, i in self._index.items()}
        terms = {a: term for a in self.possible_agents}
        truncs = {a: trunc for a in self.possible_agents}
        if term or trunc:
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
                 episodes: int = 1, *, max_cycles: int | None = None, flatten: bool = False) -> MetarenaParallelEnv:
    """A PettingZoo ``ParallelEnv`` of ``game`` with ``players`` agents."""
    return MetarenaParallelEnv(game, variant, players, split, seed, render_mode, pool_size, episodes,
                               max_cycles=max_cycles, flatten=flatten)


def env(game: str = "treasure", variant: str | None = None, players: int = 2, split: str = "train",
        seed: int | None = None, render_mode: str | None = None, pool_size: int = DEFAULT_POOL,
        episodes: int = 1, *, max_cycles: int | None = None, flatten: bool = False):
    """The same game behind PettingZoo's AEC (turn-by-turn) API."""
    return parallel_to_aec(parallel_env(game, variant, players, split, seed, render_mode, pool_size, episodes,
                                        max_cycles=max_cycles, flatten=flatten))
