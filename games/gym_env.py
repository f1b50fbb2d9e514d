"""Gymnasium interfaces over :class:`~metarena.games.batch.BatchEnv`, written once for every game.

- :class:`MetarenaEnv` - one level slot, one learner; the other players (if any)
  are moved by a reference policy. Standard single-env semantics: the step
  that ends an episode returns that episode's final observation, and the next
  episode starts on ``reset()``.
- :class:`MetarenaVectorEnv` - ``num_envs`` slots in ONE batched engine (no
  Python loop over slots). Same-step autoreset by default: the step that ends an
  episode returns the next episode's first observation and puts the final one in
  ``infos["final_obs"]`` (Gymnasium's ``AutoresetMode.SAME_STEP``, which TorchRL
  needs); ``autoreset_mode="next_step"`` gives ``AutoresetMode.NEXT_STEP`` (which
  Gymnasium's vector observation wrappers need).

Every registered game gets the id ``metarena/<Name>-v0``::

    import gymnasium, metarena.games
    env = gymnasium.make("metarena/Treasure-v0", variant="small", seed=0)
    envs = gymnasium.make_vec("metarena/Coinrush-v0", num_envs=64)

(``gymnasium.make("metarena.games:metarena/Treasure-v0")`` imports ``metarena.games`` itself.)

Observations are ``{"grid": (V, V, C) uint8 one-hot tiles, "scalars": (S,) float32}``
(see :mod:`metarena.games.tiles` and :data:`metarena.games.engine.SCALAR_NAMES`), or with
``flatten=True`` one float32 ``Box`` of ``V*V*C + S`` numbers: the grid flattened, then the
scalars (then the trial features, with ``trial_features=True``), exactly what
``gymnasium.spaces.flatten`` makes of the Dict. Actions are ``Discrete(5)``: stay, up, down,
left, right. Every info (of ``reset`` and of every step) has the same keys: ``level_seed``
(the level's seed) and ``episode_index`` (the episode's index within its trial), which
describe the returned observation, and ``trial_end``: True on the step that ends an
episode when that episode also ends its trial. docs/INTERFACES.md shows the clients
(SuperSuit + SB3, Gymnasium's vector wrappers, TorchRL, RecordVideo) at work.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec
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
#: the keys of every info dict (reset and step) of every interface
INFO_KEYS = ("level_seed", "episode_index", "trial_end")
#: the autoreset modes the vector env offers, by name
AUTORESET_MODES = {"same_step": AutoresetMode.SAME_STEP, "next_step": AutoresetMode.NEXT_STEP}


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


def flat_space(space: spaces.Dict) -> spaces.Box:
    """The ``flatten=True`` form of a Dict observation space: one float32 Box of its parts
    flattened one after the other in the Dict's (alphabetical) order, ``grid``, ``scalars``
    then ``trial`` if present, with their bounds: ``gymnasium.spaces.flatten_space`` of the Dict."""
    parts = list(space.spaces.values())
    low = np.concatenate([np.asarray(p.low, dtype=np.float32).reshape(-1) for p in parts])
    high = np.concatenate([np.asarray(p.high, dtype=np.float32).reshape(-1) for p in parts])
    return spaces.Box(low, high, dtype=np.float32)


def flatten_obs(*parts: np.ndarray, batch: int = 0) -> np.ndarray:
    """Observation parts (grid, scalars, trial features...) as one float32 array: each part
    flattened past its first ``batch`` axes, then joined; a new array."""
    lead = parts[0].shape[:batch]
    return np.concatenate([p.reshape(lead + (-1,)) for p in parts], axis=-1, dtype=np.float32)


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_autoreset_mode(mode: Any) -> AutoresetMode:
    """An ``AutoresetMode`` from ``"same_step"``, ``"next_step"`` or the enum itself."""
    if isinstance(mode, str) and mode.lower() in AUTORESET_MODES:
        return AUTORESET_MODES[mode.lower()]
    if isinstance(mode, AutoresetMode) and mode in AUTORESET_MODES.values():
        return mode
    raise ValueError(f"autoreset_mode must be 'same_step' or 'next_step' (AutoresetMode.SAME_STEP or "
                     f"AutoresetMode.NEXT_STEP), got {mode!r}")


def cut_episode(benv: BatchEnv) -> None:
    """Move slot 0 of ``benv`` past an episode that ended outside the engine (a ``TimeLimit``
    wrapper, PettingZoo's ``max_cycles``, or ``reset()`` called mid-episode), as if the engine
    had ended it: the trial's next episode on the same level, or a new trial (a new level)
    after the trial's last episode."""
    st, slot = benv.state, np.array([0])
    if st.episode[0] + 1 >= benv.episodes:
        benv.new_trials(slot)
    else:
        benv.engine.restart(st, slot)
        benv.engine.observe(st)  # refreshes the observation buffers the BatchEnv steps from


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

    def forget(self, slots: np.ndarray) -> None:
        """Forget the kept final frames of ``slots`` only."""
        for s in np.asarray(slots).tolist():
            self._final.pop(s, None)

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
        episodes: episodes per trial (on the same level). ``reset()`` moves on to what follows
            the current episode: the trial's next episode, or a new trial (a new level) after
            the trial's last one. That holds however the episode ended: inside the env, or cut
            short outside it (a ``TimeLimit`` wrapper, or ``reset()`` called mid-episode), so an
            outside truncation never skips the rest of a trial. ``reset(seed=...)`` or
            ``options={"new_trial": True}`` starts a new trial; ``options={"level": i}`` starts a
            trial on pool level ``i``.
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
              ``truncated`` stays False; every ``reset()`` starts a new trial (a trial cut short
              outside the env, by a ``TimeLimit`` shorter than ``max_episode_steps``, warns once);
            - the info of every step that ends an episode has ``"episode_end": {"index": k,
              "return": float, "length": int, "terminated": bool}`` (that episode's index in the
              trial, return, length and whether it terminated rather than ran out of steps);
              ``episode_index`` and ``level_seed`` describe the returned observation.
        flatten: if True, observations are one float32 ``Box``: the grid flattened, then the
            scalars (then the trial features); see :func:`flat_space`. For MLP policies and
            clients that take only a Box (SB3's ``MlpPolicy``, SuperSuit).

    ``max_episode_steps`` is the most steps a Gymnasium episode can last: the variant's step
    limit (times ``episodes`` with ``trial_features``); ``gymnasium.make`` puts it in the env's
    ``spec``, so a ``TimeLimit`` made from that spec agrees with the engine.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS}

    def __init__(self, game: str = "treasure", variant: str | None = None, split: str = "train",
                 seed: int | None = None, players: int = 1, others: str = "random",
                 pool_size: int = DEFAULT_POOL, render_mode: str | None = None, episodes: int = 1,
                 trial_features: bool = False, flatten: bool = False):
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
        self._warned_cut = False
        self.trial_features = bool(trial_features)
        self.flatten = check_flag("flatten", flatten)
        if self.trial_features:
            self.observation_space = spaces.Dict({
                **self.observation_space.spaces,
                "trial": spaces.Box(-np.inf, np.inf, (TRIAL_FEATURES,), np.float32),
            })
            self._features = TrialFeatures(1, self.benv.players, self.benv.episodes)
        if self.flatten:
            self.observation_space = flat_space(self.observation_space)

    # -- spec -------------------------------------------------------------------------------
    _spec: EnvSpec | None = None

    @property
    def max_episode_steps(self) -> int:
        """The most steps a Gymnasium episode can last: the variant's step limit (times
        ``episodes`` with ``trial_features``, where an episode is a whole trial)."""
        return self.benv.engine.limit * (self.benv.episodes if self.trial_features else 1)

    @property
    def spec(self) -> EnvSpec | None:
        """The spec ``gymnasium.make`` gave this env, with :attr:`max_episode_steps` filled in
        (the registered id leaves it None: it depends on the variant and the options)."""
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        if value is not None and value.max_episode_steps is None:
            value = dataclasses.replace(value, max_episode_steps=self.max_episode_steps)
        self._spec = value

    # -- helpers ----------------------------------------------------------------------------
    def _obs(self, grid: np.ndarray, scalars: np.ndarray, trial: np.ndarray | None = None):
        if self.flatten:
            return flatten_obs(grid, scalars) if trial is None else flatten_obs(grid, scalars, trial)
        obs = {"grid": np.array(grid, dtype=np.uint8), "scalars": np.array(scalars, dtype=np.float32)}
        if trial is not None:
            obs["trial"] = np.array(trial, dtype=np.float32)
        return obs

    def _info(self, level: int, episode: int, trial_end: bool = False) -> dict[str, Any]:
        return {"level_seed": int(self.benv.levels.seeds[level]), "episode_index": int(episode),
                "trial_end": bool(trial_end)}

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
        elif seed is not None or new_trial or not self._started:
            self.benv.reset()
        elif not self._ended:  # the episode was cut short outside the env
            if self.trial_features:
                self._warn_cut_trial()
                self.benv.reset()  # every reset() starts a trial
            else:
                cut_episode(self.benv)
        # else: the previous episode ended and the BatchEnv has already started the next one
        # (the trial's next episode on the same level, or a new trial's first episode).
        self._started, self._ended = True, False
        self._display.clear()
        st = self.benv.state
        grid, scalars = self.benv.engine.observe(st)
        if self.render_mode == "human":
            self.render()
        trial = self._features.reset()[0, 0] if self.trial_features else None  # every reset() starts a trial
        return self._obs(grid[0, 0], scalars[0, 0], trial), self._info(st.level[0], st.episode[0])

    def _warn_cut_trial(self) -> None:
        st = self.benv.state
        if self._warned_cut or (st.t[0] == 0 and st.episode[0] == 0):
            return  # warn once, and only when a trial was under way
        self._warned_cut = True
        gymnasium.logger.warn(
            f"reset() cut a trial short (at step {int(st.t[0])} of episode {int(st.episode[0])} of "
            f"{self.benv.episodes}); with trial_features=True every reset() starts a new trial on a new "
            f"level. A TimeLimit wrapper must allow a whole trial: max_episode_steps={self.max_episode_steps}.")

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
            out_info = self._info(final["level"][0], final["episode"][0], final["trial_end"][0])
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
            last = np.zeros(feats.shape[-1], dtype=np.float32)  # the features that would follow it
            last[int(actions[0, 0])] = 1.0
            last[PREV_REWARD] = rewards[0, 0]
            last[EPISODE_INDEX] = final["episode"][0] / self.benv.episodes
            obs = self._obs(final["grid"][0, 0], final["scalars"][0, 0], last)
            out_info = self._info(final["level"][0], final["episode"][0], trial_end=True)
        else:
            st = self.benv.state
            obs = self._obs(grid[0, 0], scalars[0, 0], feats[0, 0])
            out_info = self._info(st.level[0], st.episode[0])
            if final is not None:
                self._display.clear()  # the next episode of the trial is what is shown now
        if final is not None:
            out_info["episode_end"] = {"index": int(final["episode"][0]), "return": float(final["score"][0, 0]),
                                       "length": int(final["length"][0]), "terminated": bool(terminated[0])}
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

    Same arguments as :class:`MetarenaEnv` (except ``trial_features``), plus ``num_envs`` and
    ``autoreset_mode``, declared as ``self.autoreset_mode`` and ``metadata["autoreset_mode"]``:

    - ``"same_step"`` (the default, ``AutoresetMode.SAME_STEP``; TorchRL's ``GymWrapper`` and
      Gymnasium's ``RecordEpisodeStatistics`` take it): for the slots whose episode ended in a
      step, the returned observation is the next episode's first one, ``infos["final_obs"][i]``
      the final one and ``infos["final_info"]`` the final infos (masked by ``infos["_final_obs"]``).
    - ``"next_step"`` (``AutoresetMode.NEXT_STEP``; Gymnasium's vector observation wrappers,
      e.g. ``FlattenObservation``, ``NormalizeObservation``, ``DtypeObservation``, need it): the
      step that ends an episode returns its final observation; the next ``step`` ignores the
      actions of those slots and returns their next episode's first observation, with reward 0
      and ``terminated = truncated = False``.

    Either way the next episode is the trial's next one on the same level, or a new trial, and
    the results are those of a ``gymnasium.vector.SyncVectorEnv`` of :class:`MetarenaEnv` in
    that mode. Every step's infos hold ``level_seed``, ``episode_index`` and ``trial_end`` (each
    with its ``_key`` mask) of the returned observation: ``trial_end`` is True where that
    observation ends an episode that ends its trial, so in same-step mode it shows only in
    ``infos["final_info"]``. ``render()`` returns a tuple of frames (one per slot) in
    ``rgb_array`` mode and shows slot 0 in ``human`` mode. ``reset()`` starts new trials in every
    slot; ``reset(options={"levels": [...]})`` starts them on the given pool levels.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS,
                "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, game: str = "treasure", variant: str | None = None,
                 split: str = "train", seed: int | None = None, players: int = 1, others: str = "random",
                 pool_size: int = DEFAULT_POOL, render_mode: str | None = None, episodes: int = 1,
                 autoreset_mode: str | AutoresetMode = AutoresetMode.SAME_STEP, flatten: bool = False):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        check_render_mode(render_mode)
        self._first_seed = check_seed(seed)
        self.autoreset_mode = check_autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.flatten = check_flag("flatten", flatten)
        self.num_envs = int(num_envs)
        self.benv = make_batch(game, variant, batch=self.num_envs, players=players, learners=1,
                               others=others, split=split, pool_size=pool_size, episodes=episodes)
        self.game = game
        self.render_mode = render_mode
        single = observation_space(self.benv.engine)
        self.single_observation_space = flat_space(single) if self.flatten else single
        self.single_action_space = action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._next_step = self.autoreset_mode == AutoresetMode.NEXT_STEP
        # next-step mode: the slots whose episode ended on the last step; the BatchEnv has already
        # started their next episode, whose first observation the coming step returns
        self._held = np.zeros(self.num_envs, dtype=bool)
        self._display = Display(self.benv, render_mode, f"metarena - {self.benv.spec.title}",
                                self.metadata["render_fps"], keep_final=self._next_step)

    def _obs(self, grid: np.ndarray, scalars: np.ndarray, batch: int = 1):
        """Observations of all slots from (num_envs, ...) grids and scalars (``batch=0``: of one
        slot); new arrays."""
        if self.flatten:
            return flatten_obs(grid, scalars, batch=batch)
        return {"grid": np.array(grid, dtype=np.uint8), "scalars": np.array(scalars, dtype=np.float32)}

    def _infos(self, level: np.ndarray, episode: np.ndarray, trial_end: np.ndarray,
               mask: np.ndarray | None = None) -> dict[str, Any]:
        """Infos of the slots in ``mask`` (default: all), from their level, episode and trial end."""
        n = self.num_envs
        mask = np.ones(n, dtype=bool) if mask is None else mask
        seeds = np.zeros(n, dtype=np.int64)
        index = np.zeros(n, dtype=np.int64)
        ends = np.zeros(n, dtype=bool)
        seeds[mask] = self.benv.levels.seeds[level]
        index[mask] = episode
        ends[mask] = trial_end
        return {"level_seed": seeds, "_level_seed": mask.copy(), "episode_index": index,
                "_episode_index": mask.copy(), "trial_end": ends, "_trial_end": mask.copy()}

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
        self._held[:] = False
        self._display.clear()
        st = self.benv.state
        obs = self._obs(grid[:, 0], scalars[:, 0])
        if self.render_mode == "human":
            self.render()
        return obs, self._infos(st.level, st.episode, np.zeros(self.num_envs, dtype=bool))

    def step(self, actions):
        if self.benv.state is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu" or (
                (actions < 0) | (actions >= E.NUM_ACTIONS)).any():
            raise ValueError(f"actions must be {self.num_envs} ints in [0, {E.NUM_ACTIONS}), got {actions!r}")
        held = self._held
        if held.any():  # next-step mode: these slots start their next episode this step
            st = self.benv.state
            kept = {f.name: getattr(st, f.name)[held].copy() for f in dataclasses.fields(st)}
        self._display.clear()
        grid, scalars, rewards, terminated, truncated, info = self.benv.step(
            actions.astype(np.int64).reshape(self.num_envs, 1))
        final = info.get("final")
        if held.any():
            final = self._undo_step(held, kept, grid, scalars, rewards, terminated, truncated, final)
        done = terminated | truncated
        if self._next_step:
            obs, infos = self._next_step_results(grid, scalars, final)
            self._held = done
        else:
            st = self.benv.state
            obs = self._obs(grid[:, 0], scalars[:, 0])  # of the next episode where one ended
            infos = self._infos(st.level, st.episode, np.zeros(self.num_envs, dtype=bool))
            if final is not None:
                slots = final["slots"]
                final_obs = np.full(self.num_envs, None, dtype=object)
                for j, s in enumerate(slots):
                    final_obs[s] = self._obs(final["grid"][j, 0], final["scalars"][j, 0], batch=0)
                infos.update({"final_obs": final_obs, "_final_obs": done.copy(),
                              "final_info": self._infos(final["level"], final["episode"], final["trial_end"], done),
                              "_final_info": done.copy()})
        if self.render_mode == "human":
            self.render()
        return obs, rewards[:, 0].copy(), terminated.copy(), truncated.copy(), infos

    def _undo_step(self, held, kept, grid, scalars, rewards, terminated, truncated, final):
        """Put the ``held`` slots back at the start of the episode the BatchEnv began for them
        on the last step (the step's actions for them are ignored), as if they had been reset
        now; returns ``final`` without them."""
        st = self.benv.state
        for name, values in kept.items():
            getattr(st, name)[held] = values
        # the BatchEnv's observation buffers: what the other players' policies read next step
        grid[held], scalars[held] = self.benv.engine.first_observation(st.level[held])
        rewards[held] = 0.0
        terminated[held] = truncated[held] = False
        self._display.forget(np.flatnonzero(held))
        if final is None:
            return None
        keep = ~held[final["slots"]]
        return {key: value[keep] for key, value in final.items()} if keep.any() else None

    def _next_step_results(self, grid, scalars, final):
        """Observations and infos of a next-step mode step: the final observation for the slots
        whose episode ended, the current one for the others."""
        st = self.benv.state
        g, s = grid[:, 0].copy(), scalars[:, 0].copy()
        level, episode = st.level.copy(), st.episode.copy()
        trial_end = np.zeros(self.num_envs, dtype=bool)
        if final is not None:
            slots = final["slots"]
            g[slots], s[slots] = final["grid"][:, 0], final["scalars"][:, 0]
            level[slots], episode[slots] = final["level"], final["episode"]
            trial_end[slots] = final["trial_end"]
        return self._obs(g, s), self._infos(level, episode, trial_end)

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
            # None: the engine truncates at the variant's step limit itself, and that limit depends
            # on the variant (and a trial_features episode spans a whole trial), so one TimeLimit
            # for the id would cut longer variants and trials short. Each env made from the id has
            # its own limit in env.spec.max_episode_steps instead (MetarenaEnv.spec).
            max_episode_steps=None,
            nondeterministic=False,
        )
        added.append(gid)
    return added


# importing this adapter registers the ids of every game, and of every game registered later
register_envs()
registry.on_register(lambda name: register_envs([name]))
