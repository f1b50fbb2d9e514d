"""Gymnasium interfaces over :class:`~metarena.games.batch.BatchEnv`, written once for every game.

- :class:`MetarenaEnv` - one level slot, one learner; the other players (if any)
  are moved by a reference policy. Standard single-env semantics: the step
  that ends an episode returns that episode's final observation, and the next
  episode starts on ``reset()``.
- :class:`MetarenaVectorEnv` - ``num_envs`` slots in ONE batched engine (no
  Python loop over slots), with same-step autoreset: the step that ends an
  episode returns the next episode's first observation and puts the final one
  in ``infos["final_obs"]`` (Gymnasium's ``AutoresetMode.SAME_STEP``).

Every registered game gets the id ``metarena/<Name>-v0``::

    import gymnasium, metarena.games
    env = gymnasium.make("metarena/Treasure-v0", variant="small", seed=0)
    envs = gymnasium.make_vec("metarena/Coinrush-v0", num_envs=64)

(``gymnasium.make("metarena.games:metarena/Treasure-v0")`` imports ``metarena.games`` itself.)

Observations are ``{"grid": (V, V, C) uint8 one-hot tiles, "scalars": (S,) float32}``
(see :mod:`metarena.games.tiles` and :data:`metarena.games.engine.SCALAR_NAMES`); actions are
``Discrete(5)``: stay, up, down, left, right. Infos carry ``level_seed`` (the
level's seed) and ``episode_index`` (the episode's index within its trial);
the info of an episode's last step also has ``trial_end``.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import engine as E
from . import registry
from . import tiles as T
from .batch import DEFAULT_POOL, BatchEnv
from .trial import EPISODE_INDEX, PREV_REWARD, TRIAL_FEATURES, TrialFeatures

NAMESPACE = "metarena"
RENDER_FPS = 8
RENDER_MODES = ("human", "rgb_array")
INFO_KEYS = ("level_seed", "episode_index")


# ---------------------------------------------------------------------------------------------
# shared pieces (also used by games.pz_env)


def env_id(game: str) -> str:
    """The Gymnasium id of a game: ``metarena/<Name>-v0``."""
    return f"{NAMESPACE}/{''.join(part.capitalize() for part in game.split('_'))}-v0"


def make_batch(game: str, variant: str | None = None, *, batch: int = 1, players: int = 1,
               learners: int | None = None, others: str = "random", split: str = "train",
               pool_size: int = DEFAULT_POOL, episodes: int = 1) -> BatchEnv:
    """A BatchEnv from user-facing arguments, with errors that say what is allowed."""
    if not isinstance(game, str) or game not in registry.names():
        raise ValueError(f"unknown game {game!r}; registered games: {', '.join(registry.names())}")
    spec = registry.get(game).spec
    if isinstance(players, bool) or not isinstance(players, (int, np.integer)) or not (
            spec.min_players <= players <= spec.max_players):
        raise ValueError(f"{game} takes {spec.min_players}-{spec.max_players} players, got {players!r}")
    if not isinstance(pool_size, (int, np.integer)) or pool_size < 1:
        raise ValueError(f"pool_size must be a positive integer, got {pool_size!r}")
    if not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes (per trial) must be a positive integer, got {episodes!r}")
    return BatchEnv(registry.get(game), registry.variant(game, variant), batch=batch, players=int(players),
                    learners=learners, others=others, split=split, pool_size=int(pool_size),
                    episodes=int(episodes))


def observation_space(engine: E.Engine) -> spaces.Dict:
    """The observation space of one player: ``{"grid", "scalars"}``."""
    v = engine.view
    return spaces.Dict({
        "grid": spaces.Box(0, 1, (v, v, T.NUM_CHANNELS), np.uint8),
        "scalars": spaces.Box(-np.inf, np.inf, (len(E.SCALAR_NAMES),), np.float32),
    })


def action_space() -> spaces.Discrete:
    return spaces.Discrete(E.NUM_ACTIONS)


def check_render_mode(render_mode: str | None) -> None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"unknown render_mode {render_mode!r}; choose from {', '.join(RENDER_MODES)} or None")


def check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


class Display:
    """Draws a BatchEnv's slots for ``render()``: frames, and a window in human mode.

    With ``keep_final`` (single-episode interfaces), the last frame of an episode is drawn
    as it ends, before the BatchEnv restarts the slot, so that ``render()`` after the step
    that ended an episode shows how it ended, like the observation returned with it.
    """

    def __init__(self, benv: BatchEnv, render_mode: str | None, title: str, fps: int = RENDER_FPS,
                 keep_final: bool = False):
        self.benv, self.render_mode, self.title, self.fps = benv, render_mode, title, fps
        self._renderer = None
        self._window = False
        self._final: dict[int, np.ndarray] = {}
        if render_mode is not None and keep_final:
            benv.on_final = self._keep_final

    def _keep_final(self, state: E.State, slots: np.ndarray) -> None:
        for s in slots.tolist():
            self._final[s] = self._draw(state, s)

    def clear(self) -> None:
        """Forget the kept final frames (a new episode is shown from now on)."""
        self._final.clear()

    def _draw(self, state: E.State, slot: int) -> np.ndarray:
        if self._renderer is None:
            from .render import Renderer

            self._renderer = Renderer(self.benv.engine)
        from .render import hud_text

        hud = hud_text(self.benv.engine, state, slot, self.benv.episodes)
        return self._renderer.frame(state, slot=slot, hud=hud)

    def frame(self, slot: int = 0) -> np.ndarray:
        """The slot's frame: the kept final one if its episode just ended, else the current one."""
        if slot in self._final:
            return self._final[slot]
        return self._draw(self.benv.state, slot)

    def render(self, slot: int = 0) -> np.ndarray | None:
        """What ``render()`` of an interface returns: the frame in ``rgb_array`` mode; in
        ``human`` mode the frame goes to the window and the result is None."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' "
                                  "or 'human' when making the env")
            return None
        if self.benv.state is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "rgb_array":
            return self.frame(slot)
        self.show(slot)
        return None

    def show(self, slot: int = 0) -> None:
        from .render import show_human

        self._window = True
        show_human(self.frame(slot), self.fps, self.title)

    def close(self) -> None:
        if self._window:
            from .render import close_human

            close_human()
            self._window = False


# ---------------------------------------------------------------------------------------------
# single env


class MetarenaEnv(gymnasium.Env):
    """One level slot of a game for one learner (player 0).

    Args:
        game: a registered game name (``metarena.games.names()``).
        variant: a built-in variant name or a TOML path; ``None`` is the game's default.
        split: ``"train"`` or ``"test"`` level seeds.
        seed: seed of the first ``reset()`` that is given none (a later ``reset(seed=...)`` wins).
        players: players on the map; players 1.. are moved by ``others``.
        others: the other players' policy: oracle, uninformed, scripted, random or stay.
        pool_size: levels in the pool that episodes draw from.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``.
        episodes: episodes per trial (on the same level). ``reset()`` after an episode ended
            goes on with the trial; ``reset(seed=...)`` or ``options={"new_trial": True}``
            starts a new one. ``options={"level": i}`` starts a trial on pool level ``i``.
        trial_features: opt-in (default False: the behaviour described above, unchanged). A
            Gymnasium *episode* becomes a whole trial of ``episodes`` episodes, for recurrent
            learners (e.g. sb3-contrib's RecurrentPPO) whose memory must span the trial:

            - the observation gains ``"trial"``: the ``(8,)`` float32 trial features of
              :class:`metarena.games.trial.TrialFeatures` (previous action one-hot, previous reward,
              episode-start flag, episode index ``k / K``);
            - when an episode ends inside the trial, ``step`` returns the first observation of
              the trial's next episode (same level) with ``terminated = truncated = False``;
            - ``terminated`` is True only on the step that ends the trial's last episode (even
              when that episode ran out of steps: after K episodes the trial is over and a new
              level follows, as in RL² training), with that episode's final observation;
              ``truncated`` stays False; every ``reset()`` starts a new trial;
            - the info of every step that ends an episode has ``"episode_end": {"index": k,
              "return": float, "length": int, "terminated": bool}`` (that episode's index in the
              trial, return, length and whether it terminated rather than ran out of steps) and
              ``"trial_end"``; ``episode_index`` and ``level_seed`` describe the returned
              observation.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS}

    def __init__(self, game: str = "treasure", variant: str | None = None, split: str = "train",
                 seed: int | None = None, players: int = 1, others: str = "random",
                 pool_size: int = DEFAULT_POOL, render_mode: str | None = None, episodes: int = 1,
                 trial_features: bool = False):
        check_render_mode(render_mode)
        self._first_seed = check_seed(seed)
        self.benv = make_batch(game, variant, batch=1, players=players, learners=1, others=others,
                               split=split, pool_size=pool_size, episodes=episodes)
        self.game = game
        self.render_mode = render_mode
        self.observation_space = observation_space(self.benv.engine)
        self.action_space = action_space()
        self._display = Display(self.benv, render_mode, f"metarena - {self.benv.spec.title}",
                                self.metadata["render_fps"], keep_final=True)
        self._ended = True  # no episode running: step() needs a reset() first
        self._started = False
        self.trial_features = bool(trial_features)
        if self.trial_features:
            self.observation_space = spaces.Dict({
                **self.observation_space.spaces,
                "trial": spaces.Box(-np.inf, np.inf, (TRIAL_FEATURES,), np.float32),
            })
            self._features = TrialFeatures(1, self.benv.players, self.benv.episodes)

    # -- helpers ----------------------------------------------------------------------------
    def _obs(self, grid: np.ndarray, scalars: np.ndarray) -> dict[str, np.ndarray]:
        return {"grid": np.array(grid, dtype=np.uint8), "scalars": np.array(scalars, dtype=np.float32)}

    def _info(self, level: int, episode: int) -> dict[str, Any]:
        return {"level_seed": int(self.benv.levels.seeds[level]), "episode_index": int(episode)}

    @property
    def level_seed(self) -> int:
        """Seed of the level being played."""
        return int(self.benv.levels.seeds[self.benv.state.level[0]])

    # -- gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._first_seed is not None:
            seed = self._first_seed
        self._first_seed = None
        super().reset(seed=seed)
        self.benv.rng = self.np_random  # every draw (levels, other players) comes from it
        options = dict(options or {})
        level = options.pop("level", None)
        new_trial = bool(options.pop("new_trial", False))
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; known: level, new_trial")
        if level is not None:
            if not 0 <= int(level) < len(self.benv.levels):
                raise ValueError(f"options['level'] must be a pool index in [0, {len(self.benv.levels)})")
            self.benv.reset(levels=np.array([int(level)]))
        elif seed is not None or new_trial or not self._started or not self._ended:
            self.benv.reset()
        # else: the previous episode ended and the BatchEnv has already started the next one
        # (the trial's next episode on the same level, or a new trial's first episode).
        self._started, self._ended = True, False
        self._display.clear()
        st = self.benv.state
        grid, scalars = self.benv.engine.observe(st)
        if self.render_mode == "human":
            self.render()
        if self.trial_features:  # every reset() starts a trial
            obs = self._obs(grid[0, 0], scalars[0, 0])
            obs["trial"] = self._features.reset()[0, 0].copy()
            return obs, self._info(st.level[0], st.episode[0])
        return self._obs(grid[0, 0], scalars[0, 0]), self._info(st.level[0], st.episode[0])

    def step(self, action):
        if self._ended:
            raise RuntimeError("the episode has ended (or never started): call reset() before step()")
        a = np.asarray(action)
        if a.size != 1 or a.dtype.kind not in "iu" or not 0 <= int(a.reshape(-1)[0]) < E.NUM_ACTIONS:
            raise ValueError(f"action must be an int in [0, {E.NUM_ACTIONS}), got {action!r}")
        self._display.clear()
        grid, scalars, rewards, terminated, truncated, info = self.benv.step(a.reshape(1, 1).astype(np.int64))
        if self.trial_features:
            return self._trial_step(a.reshape(1, 1).astype(np.int64), grid, scalars, rewards, terminated,
                                    truncated, info)
        term, trunc = bool(terminated[0]), bool(truncated[0])
        final = info.get("final")
        if final is not None:
            self._ended = True
            obs = self._obs(final["grid"][0, 0], final["scalars"][0, 0])
            out_info = self._info(final["level"][0], final["episode"][0])
            out_info["trial_end"] = bool(final["trial_end"][0])
        else:
            st = self.benv.state
            obs = self._obs(grid[0, 0], scalars[0, 0])
            out_info = self._info(st.level[0], st.episode[0])
        if self.render_mode == "human":
            self.render()
        return obs, float(rewards[0, 0]), term, trunc, out_info

    def _trial_step(self, actions, grid, scalars, rewards, terminated, truncated, info):
        """``step`` with ``trial_features``: episodes end inside the trial, the trial ends the
        Gymnasium episode (see the class docstring)."""
        final = info.get("final")
        trial_end = np.zeros(1, dtype=bool)
        if final is not None:
            trial_end[:] = final["trial_end"]
        feats = self._features.update(actions, rewards, terminated | truncated, trial_end)
        out_info: dict[str, Any]
        if final is not None and trial_end[0]:
            self._ended = True
            obs = self._obs(final["grid"][0, 0], final["scalars"][0, 0])
            last = np.zeros(feats.shape[-1], dtype=np.float32)  # the features that would follow it
            last[int(actions[0, 0])] = 1.0
            last[PREV_REWARD] = rewards[0, 0]
            last[EPISODE_INDEX] = final["episode"][0] / self.benv.episodes
            obs["trial"] = last
            out_info = self._info(final["level"][0], final["episode"][0])
        else:
            st = self.benv.state
            obs = self._obs(grid[0, 0], scalars[0, 0])
            obs["trial"] = feats[0, 0].copy()
            out_info = self._info(st.level[0], st.episode[0])
            if final is not None:
                self._display.clear()  # the next episode of the trial is what is shown now
        if final is not None:
            out_info["episode_end"] = {"index": int(final["episode"][0]), "return": float(final["score"][0, 0]),
                                       "length": int(final["length"][0]), "terminated": bool(terminated[0])}
            out_info["trial_end"] = bool(trial_end[0])
        if self.render_mode == "human":
            self.render()
        return obs, float(rewards[0, 0]), bool(trial_end[0]), False, out_info

    def render(self):
        return self._display.render(0)

    def close(self):
        self._display.close()
        super().close()


# ---------------------------------------------------------------------------------------------
# vector env


class MetarenaVectorEnv(VectorEnv):
    """``num_envs`` slots of a game in one batched engine, one learner per slot.

    Same arguments as :class:`MetarenaEnv`, plus ``num_envs``. Same-step autoreset:
    for the slots whose episode ended in a step, the returned observation is the next
    episode's first one, ``infos["final_obs"][i]`` the final one and
    ``infos["final_info"]`` the final infos (masked by ``infos["_final_obs"]``).
    ``render()`` returns a tuple of frames (one per slot) in ``rgb_array`` mode and shows
    slot 0 in ``human`` mode. ``reset(options={"levels": [...]})`` starts trials on the given
    pool levels.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS,
                "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, game: str = "treasure", variant: str | None = None,
                 split: str = "train", seed: int | None = None, players: int = 1, others: str = "random",
                 pool_size: int = DEFAULT_POOL, render_mode: str | None = None, episodes: int = 1):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        check_render_mode(render_mode)
        self._first_seed = check_seed(seed)
        self.num_envs = int(num_envs)
        self.benv = make_batch(game, variant, batch=self.num_envs, players=players, learners=1,
                               others=others, split=split, pool_size=pool_size, episodes=episodes)
        self.game = game
        self.render_mode = render_mode
        self.single_observation_space = observation_space(self.benv.engine)
        self.single_action_space = action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._display = Display(self.benv, render_mode, f"metarena - {self.benv.spec.title}",
                                self.metadata["render_fps"])

    def _infos(self, level: np.ndarray, episode: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        n = self.num_envs
        seeds = np.zeros(n, dtype=np.int64)
        index = np.zeros(n, dtype=np.int64)
        seeds[mask] = self.benv.levels.seeds[level]
        index[mask] = episode
        return {"level_seed": seeds, "_level_seed": mask.copy(), "episode_index": index,
                "_episode_index": mask.copy()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._first_seed is not None:
            seed = self._first_seed
        self._first_seed = None
        if seed is not None:
            if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
                raise ValueError(f"seed must be one integer for all {self.num_envs} slots, got {seed!r}")
        super().reset(seed=seed)
        self.benv.rng = self.np_random
        options = dict(options or {})
        levels = options.pop("levels", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; known: levels")
        if levels is not None:
            levels = np.asarray(levels, dtype=np.int64).reshape(-1)
            if levels.shape != (self.num_envs,) or (levels < 0).any() or (levels >= len(self.benv.levels)).any():
                raise ValueError(f"options['levels'] must be {self.num_envs} pool indices in "
                                 f"[0, {len(self.benv.levels)})")
        grid, scalars = self.benv.reset(levels=levels)
        st = self.benv.state
        obs = {"grid": grid[:, 0].copy(), "scalars": scalars[:, 0].copy()}
        if self.render_mode == "human":
            self.render()
        return obs, self._infos(st.level, st.episode, np.ones(self.num_envs, dtype=bool))

    def step(self, actions):
        if self.benv.state is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu" or (
                (actions < 0) | (actions >= E.NUM_ACTIONS)).any():
            raise ValueError(f"actions must be {self.num_envs} ints in [0, {E.NUM_ACTIONS}), got {actions!r}")
        grid, scalars, rewards, terminated, truncated, info = self.benv.step(
            actions.astype(np.int64).reshape(self.num_envs, 1))
        st = self.benv.state
        obs = {"grid": grid[:, 0].copy(), "scalars": scalars[:, 0].copy()}
        infos = self._infos(st.level, st.episode, np.ones(self.num_envs, dtype=bool))
        final = info.get("final")
        if final is not None:
            slots = final["slots"]
            done = np.zeros(self.num_envs, dtype=bool)
            done[slots] = True
            final_obs = np.full(self.num_envs, None, dtype=object)
            for j, s in enumerate(slots):
                final_obs[s] = {"grid": final["grid"][j, 0].copy(), "scalars": final["scalars"][j, 0].copy()}
            final_info = self._infos(final["level"], final["episode"], done)
            trial_end = np.zeros(self.num_envs, dtype=bool)
            trial_end[slots] = final["trial_end"]
            final_info["trial_end"], final_info["_trial_end"] = trial_end, done.copy()
            infos.update({"final_obs": final_obs, "_final_obs": done,
                          "final_info": final_info, "_final_info": done.copy()})
        if self.render_mode == "human":
            self.render()
        return obs, rewards[:, 0].copy(), terminated.copy(), truncated.copy(), infos

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode")
            return None
        if self.benv.state is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "rgb_array":
            return tuple(self._display.frame(i) for i in range(self.num_envs))
        self._display.show(0)
        return None

    def close_extras(self, **kwargs):
        self._display.close()


# ---------------------------------------------------------------------------------------------
# registration


def register_envs(names: Sequence[str] | None = None) -> list[str]:
    """Register ``metarena/<Name>-v0`` for the given games (default: all); idempotent.
    Returns the ids registered by this call."""
    added = []
    for name in (registry.names() if names is None else names):
        gid = env_id(name)
        if gid in gymnasium.registry:
            continue
        gymnasium.register(
            id=gid,
            entry_point="metarena.games.gym_env:MetarenaEnv",
            vector_entry_point="metarena.games.gym_env:MetarenaVectorEnv",
            kwargs={"game": name},
            max_episode_steps=None,  # the engine truncates at the game's step limit itself
            nondeterministic=False,
        )
        added.append(gid)
    return added


# importing this adapter registers the ids of every game, and of every game registered later
register_envs()
registry.on_register(lambda name: register_envs([name]))
