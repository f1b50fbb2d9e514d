"""Stable-Baselines3 baselines for the adaptation benchmark.

Two peers of RL², trained on the same Gymnasium env (:class:`metarena.games.gym_env.MetarenaEnv`):

- ``"ppo"``: SB3 PPO with ``MultiInputPolicy`` (no memory). It trains on plain episodes,
  each on a fresh level of the training pool; within a trial it cannot adapt.
- ``"recurrent-ppo"``: sb3-contrib RecurrentPPO with ``MultiInputLstmPolicy``. The env runs
  trials of K episodes on one level (``MetarenaEnv(..., trial_features=True)``): the
  observation holds the 8 trial features of :mod:`metarena.games.trial` and an SB3 "episode" is the
  whole trial, so the LSTM state is reset only where a trial starts, as in RL².

API::

    model, rows = train_sb3(SB3Config(algo="recurrent-ppo"), callback=...)  # same contract as train_rl2
    path = save_sb3("ckpt", model, cfg, steps=rows[-1]["steps"])          # safetensors + meta.json
    agent = load_sb3_agent("ckpt", game="treasure", greedy=True)          # an SB3Agent; nothing unpickled
    result = scratch_ppo("treasure", "small", levels=20, episodes=4)      # PPO from scratch on each level

:class:`SB3Agent` puts an SB3 policy behind the agent protocol of :mod:`metarena.agents.base`, so it
plays in :func:`metarena.agents.rollout.play` and :func:`metarena.agents.evaluate.evaluate`.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from metarena import games
from metarena.games.engine import SCALAR_NAMES
from metarena.games.variant import TRAIN_LEVELS

from .base import Context, EpisodeStats, Observation
from .config import Choice, check_games, is_torch_device, setting
from .config import from_dict as config_from_dict
from .config import to_dict as config_to_dict
from .config import validate as validate_fields

__all__ = [
    "ALGOS", "SB3Config", "train_sb3", "SB3Agent", "architecture", "build_model", "save_sb3", "load_sb3",
    "load_sb3_agent", "scratch_ppo", "make_vec_env", "policy_kwargs", "quiet_logger",
]

class SB3Algo(Choice):
    """The SB3 algorithm of a baseline (a member equals its string: ``SB3Algo.PPO == "ppo"``)."""

    PPO = "ppo"  #: SB3 PPO, MultiInputPolicy, no memory
    RECURRENT_PPO = "recurrent-ppo"  #: sb3-contrib RecurrentPPO, MultiInputLstmPolicy


ALGOS = SB3Algo.values()
POLICIES = {"ppo": "MultiInputPolicy", "recurrent-ppo": "MultiInputLstmPolicy"}
#: SB3's defaults of the rollout length and minibatch size, per algorithm (used where the config says None)
DEFAULT_N_STEPS = {"ppo": 2048, "recurrent-ppo": 128}
DEFAULT_BATCH_SIZE = {"ppo": 64, "recurrent-ppo": 128}
#: activation functions a checkpoint may name (rebuilt by name, never unpickled)
ACTIVATIONS = {name: getattr(nn, name) for name in ("Tanh", "ReLU", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid")}
SCORE = SCALAR_NAMES.index("score")


def _positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


@dataclass
class SB3Config:
    """Everything an SB3 baseline run depends on; saved beside its checkpoints."""

    games: tuple[str, ...] = setting(
        ("treasure",), """Games to train on. With several, the env copies are split evenly between them
        (one policy for all: observations share one vocabulary).""")
    variant: str | None = setting(
        "medium", """Variant of every game (a name or a TOML path); None: each game's default.""")
    algo: SB3Algo = setting(
        SB3Algo.PPO, """``"ppo"`` (SB3 PPO, MultiInputPolicy, no memory) or ``"recurrent-ppo"``
        (sb3-contrib RecurrentPPO, MultiInputLstmPolicy).""")
    envs: int = setting(
        8, """Parallel copies of the Gymnasium env (a DummyVecEnv, stepped one after another).""", ge=1)
    n_steps: int | None = setting(
        None, """Steps per env copy and update (SB3's ``n_steps``); None: SB3's default for the
        algorithm (2048 for ppo, 128 for recurrent-ppo).""", ge=1)
    batch_size: int | None = setting(
        None, """Minibatch size of the PPO epochs, at least 2 (advantages are normalized per
        minibatch); None: SB3's default (64 for ppo, 128 for recurrent-ppo).""", ge=2)
    n_epochs: int = setting(10, """Passes over each rollout (SB3's default).""", ge=1)
    lr: float = setting(3e-4, """Adam learning rate, constant (SB3's default).""", gt=0)
    gamma: float = setting(
        0.99, """Discount per step (for recurrent-ppo across the episodes of a trial).""", ge=0, le=1)
    gae_lambda: float = setting(0.95, """GAE lambda.""", ge=0, le=1)
    ent_coef: float = setting(0.0, """Weight of the entropy bonus (SB3's default 0).""", ge=0)
    clip_range: float = setting(0.2, """PPO ratio clip range.""", gt=0)
    episodes: int = setting(
        4, """Episodes per trial (K). For ppo training plays plain episodes, each on a fresh level (K
        only sizes ``return_by_episode``); for recurrent-ppo the env plays trials of K episodes on
        one level with the trial features in the observation, and an SB3 episode is the whole
        trial, so the LSTM state is reset only at a trial's start.""", ge=1)
    pool_size: int = setting(
        65536, """Training levels per game that episodes draw from (the first of the train split).
        Made once per process and shared by every env copy (cached as in
        :mod:`metarena.games.batch`).""", ge=1, le=TRAIN_LEVELS)
    total_steps: int = setting(
        10_000_000, """Env steps (all copies) to train for, rounded up to whole updates.""", ge=0)
    net_arch: tuple[int, ...] = setting(
        (64, 64), """Layer sizes of the policy and of the value MLP (each gets its own; SB3's
        default).""", ge=1)
    lstm_hidden: int = setting(
        256, """Size of the LSTM state (recurrent-ppo only; sb3-contrib's default).""", ge=1)
    seed: int = setting(
        0, """Seeds SB3 (torch, numpy, the env copies' level draws and the sampled actions).""", ge=0)
    device: str = setting(
        "auto", """Torch device: "auto" (cuda if available, else cpu), "cpu", "cuda", ...""",
        check=is_torch_device, allowed="'auto' or a torch device such as 'cpu' or 'cuda'")

    @property
    def steps_per_update(self) -> int:
        return self.envs * self.rollout_steps()

    def rollout_steps(self) -> int:
        """``n_steps`` with None resolved to the algorithm's default."""
        return int(self.n_steps if self.n_steps is not None else DEFAULT_N_STEPS.get(self.algo, 2048))

    def minibatch(self) -> int:
        """``batch_size`` with None resolved to the algorithm's default."""
        return int(self.batch_size if self.batch_size is not None else DEFAULT_BATCH_SIZE.get(self.algo, 64))

    def to_dict(self) -> dict:
        """The fields in JSON types (tuples as lists, ``algo`` as its string):
        :func:`metarena.agents.config.to_dict`."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SB3Config":
        """The config of :meth:`to_dict` (lists back to tuples): :func:`metarena.agents.config.from_dict`;
        unknown keys raise ValueError."""
        return config_from_dict(cls, d)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that cannot work: each field against its
        type and range (:func:`metarena.agents.config.validate`), then the fields together."""
        validate_fields(self)
        check_games(self)
        for name in self.games:
            games.variant(name, self.variant)  # raises with the known variants
        if self.envs % len(self.games):
            raise ValueError(f"envs ({self.envs}) must split evenly over the games {tuple(self.games)}")
        if self.steps_per_update < 2:
            raise ValueError(f"envs * n_steps must be at least 2 (SB3 needs 2 samples per rollout), "
                             f"got {self.envs} * {self.rollout_steps()}")


# ---------------------------------------------------------------------------------------------
# building models


def _sb3_class(algo: str):
    if algo == "ppo":
        from stable_baselines3 import PPO

        return PPO
    if algo == "recurrent-ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    raise ValueError(f"unknown SB3 algorithm {algo!r}; choose from {', '.join(ALGOS)}")


def policy_kwargs(cfg: SB3Config) -> dict:
    """The ``policy_kwargs`` a config gives the SB3 policy (JSON-able)."""
    kw: dict[str, Any] = {"net_arch": list(cfg.net_arch)}
    if cfg.algo == "recurrent-ppo":
        kw["lstm_hidden_size"] = int(cfg.lstm_hidden)
    return kw


def make_vec_env(cfg: SB3Config):
    """A DummyVecEnv of ``cfg.envs`` MetarenaEnv copies on the train split, split evenly over
    ``cfg.games`` (with the trial features and K-episode trials for recurrent-ppo)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from metarena.games.gym_env import MetarenaEnv

    recurrent = cfg.algo == "recurrent-ppo"
    per = cfg.envs // len(cfg.games)

    def maker(game: str):
        return lambda: MetarenaEnv(game, cfg.variant, split="train", pool_size=cfg.pool_size,
                                   episodes=cfg.episodes if recurrent else 1, trial_features=recurrent)

    return DummyVecEnv([maker(game) for game in cfg.games for _ in range(per)])


def quiet_logger():
    """An SB3 logger that prints and writes nothing, for ``model.set_logger(quiet_logger())``
    before ``learn()``. Without one, SB3's first ``learn()`` configures its default logger,
    which makes an empty ``SB3-<date>`` folder in the temp directory every time."""
    from stable_baselines3.common.logger import Logger

    return Logger(folder=None, output_formats=[])


def _build_model(cfg: SB3Config, env, seed: int):
    cls = _sb3_class(cfg.algo)
    model = cls(POLICIES[cfg.algo], env, learning_rate=cfg.lr, n_steps=cfg.rollout_steps(),
                batch_size=cfg.minibatch(), n_epochs=cfg.n_epochs, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda,
                clip_range=cfg.clip_range, ent_coef=cfg.ent_coef, policy_kwargs=policy_kwargs(cfg),
                seed=seed, device=cfg.device, verbose=0)
    model.set_logger(quiet_logger())
    return model


# ---------------------------------------------------------------------------------------------
# training


class _RolloutTracker:
    """Per rollout: the episodes that ended (index in the trial, return) and when the rollout ended."""

    def __init__(self, episodes: int, recurrent: bool, envs: int):
        from stable_baselines3.common.callbacks import BaseCallback

        tracker = self

        class Callback(BaseCallback):
            def _on_step(self) -> bool:
                tracker.on_step(self.locals)
                return True

            def _on_rollout_end(self) -> None:
                tracker.rollout_end = time.perf_counter()

        self.callback = Callback(verbose=0)
        self.episodes, self.recurrent = episodes, recurrent
        self.running = np.zeros(envs, dtype=np.float64)  # ppo: return so far of each env's episode
        self.begin()

    def begin(self) -> None:
        self.total = np.zeros(self.episodes, dtype=np.float64)
        self.count = np.zeros(self.episodes, dtype=np.int64)
        self.rollout_end: float | None = None

    def on_step(self, local: dict) -> None:
        if self.recurrent:
            for info in local["infos"]:
                end = info.get("episode_end")
                if end is not None and end["index"] < self.episodes:
                    self.total[end["index"]] += end["return"]
                    self.count[end["index"]] += 1
        else:  # plain episodes: every one is the first of its trial
            self.running += local["rewards"]
            done = np.flatnonzero(local["dones"])
            if len(done):
                self.total[0] += self.running[done].sum()
                self.count[0] += len(done)
                self.running[done] = 0.0

    def returns(self) -> list[float | None]:
        from .ppo import mean_returns

        return mean_returns(self.total, self.count)


def _train_stats(model) -> dict:
    values = model.logger.name_to_value

    def get(key: str, sign: float = 1.0) -> float | None:
        v = values.get(key)
        return None if v is None else sign * float(v)

    return {"policy_loss": get("train/policy_gradient_loss"), "value_loss": get("train/value_loss"),
            "entropy": get("train/entropy_loss", -1.0), "approx_kl": get("train/approx_kl"),
            "clipfrac": get("train/clip_fraction")}


def train_sb3(cfg: SB3Config, log: Callable[[dict], None] | None = None,
              net=None, *, optimizer_state: dict | None = None,
              start_update: int = 0, start_steps: int | None = None,
              callback: Callable[[dict, Any, torch.optim.Optimizer], None] | None = None):
    """Train SB3 PPO or RecurrentPPO (``cfg.algo``); returns ``(model, metrics)``.

    The same contract as :func:`metarena.agents.ppo.train_rl2`: one update is one SB3 rollout
    (``envs * n_steps`` env steps) and one training phase; after each, ``log(row)`` and then
    ``callback(row, model.policy, model.policy.optimizer)`` are called (e.g. to save
    checkpoints with :func:`save_sb3`). Row keys: ``update``, ``steps`` (env steps so far),
    ``time_s``, ``steps_per_s`` (steps of this call per second of this call), ``rollout_s`` and
    ``update_s`` of this update, ``return_by_episode`` (K entries: mean return of the episodes
    with index k that ended during this rollout, None where none did; for ppo every episode
    is index 0), ``episodes_ended``, ``policy_loss``, ``value_loss``, ``entropy``,
    ``approx_kl``, ``clipfrac`` (SB3's logged means of the update).

    Resuming: ``net`` (a policy of the same architecture, e.g. a checkpoint's) and
    ``optimizer_state`` (``model.policy.optimizer.state_dict()``) restore the model;
    ``start_update`` and ``start_steps`` (default ``start_update * envs * n_steps``) are the
    counters already done, the run goes on until ``total_steps`` env steps in all, seeded
    with ``run_seed(seed, start_update)``; every env copy starts a fresh trial.
    The env copies are closed on return (the model's policy stays usable).
    """
    from .checkpoint import load_sb3_policy
    from .ppo import metrics_row, run_seed

    cfg.validate()
    seed = run_seed(cfg.seed, start_update)
    per = cfg.steps_per_update
    done_steps = start_update * per if start_steps is None else int(start_steps)
    updates = math.ceil(max(0, cfg.total_steps - done_steps) / per)
    if not start_update:
        updates = max(1, updates)
    recurrent = cfg.algo == "recurrent-ppo"
    venv = make_vec_env(cfg)
    metrics: list[dict] = []
    try:
        model = _build_model(cfg, venv, seed)
        if net is not None:
            load_sb3_policy(model, net.state_dict())
        if optimizer_state is not None:
            model.policy.optimizer.load_state_dict(optimizer_state)
        tracker = _RolloutTracker(cfg.episodes, recurrent, cfg.envs)
        start = time.perf_counter()
        for i, update in enumerate(range(start_update + 1, start_update + updates + 1)):
            tracker.begin()
            t0 = time.perf_counter()
            # one learn() call = exactly one rollout and one training phase
            model.learn(total_timesteps=per, callback=tracker.callback, log_interval=None,
                        reset_num_timesteps=i == 0)
            t2 = time.perf_counter()
            t1 = tracker.rollout_end if tracker.rollout_end is not None else t2
            run = (i + 1) * per
            row = metrics_row(update, done_steps + run, t2 - start, run, t1 - t0, t2 - t1, tracker.returns(),
                              tracker.count.sum(), _train_stats(model))
            metrics.append(row)
            if log is not None:
                log(row)
            if callback is not None:
                callback(row, model.policy, model.policy.optimizer)
    finally:
        venv.close()
    model.policy.set_training_mode(False)
    return model, metrics


# ---------------------------------------------------------------------------------------------
# the agent


def _is_recurrent(policy) -> bool:
    return hasattr(policy, "lstm_actor")


class SB3Agent:
    """An SB3 policy (``model.policy``) behind the agent protocol, batched over n slots.

    ``algo`` is ``"ppo"`` (memory None) or ``"recurrent-ppo"``: the memory is a dict with the
    actor LSTM's ``h`` and ``c``, each ``(layers, n, hidden)`` (slot axis 1, which
    :func:`metarena.agents.rollout.reset_memory` understands). The LSTM state spans the trial: ``end_episode`` keeps it, ``begin_trial`` is fresh (zeros), and it
    is also cleared where the trial features mark a trial's start.

    ``greedy``: the most likely action (SB3's ``deterministic=True``); else actions are sampled
    with the agent's own torch generator seeded from ``seed`` (global random state untouched).
    ``episodes``: K the policy was trained for (the index feature is k / K).
    """

    def __init__(self, policy, algo: str, greedy: bool = False, seed: int | None = None,
                 name: str | None = None, episodes: int = 4):
        if algo not in ALGOS:
            raise ValueError(f"algo must be one of {', '.join(ALGOS)}, got {algo!r}")
        policy = getattr(policy, "policy", policy)  # a model is accepted too
        if _is_recurrent(policy) != (algo == "recurrent-ppo"):
            raise ValueError(f"a {type(policy).__name__} is not a policy of algorithm '{algo}'")
        self.policy, self.algo, self.greedy, self.episodes = policy, algo, greedy, int(episodes)
        self.recurrent = algo == "recurrent-ppo"
        self.name = name or f"sb3-{algo}"
        policy.set_training_mode(False)
        self.device = policy.device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(0 if seed is None else int(seed))

    def begin_trial(self, n: int) -> dict[str, np.ndarray] | None:
        if not self.recurrent:
            return None
        lstm = self.policy.lstm_actor
        zeros = np.zeros((lstm.num_layers, n, lstm.hidden_size), dtype=np.float32)
        return {"h": zeros, "c": zeros.copy()}

    def observation(self, obs: Observation) -> dict[str, np.ndarray]:
        """The observation dict the Gymnasium env would give the policy, for the n slots (with
        the trial features for recurrent-ppo, whose env shows them)."""
        out = {"grid": np.asarray(obs.grid, dtype=np.uint8), "scalars": np.asarray(obs.scalars, dtype=np.float32)}
        if self.recurrent:
            out["trial"] = np.asarray(obs.trial, dtype=np.float32)
        return out

    def _choose(self, dist) -> np.ndarray:
        if self.greedy:
            action = dist.mode()
        else:
            probs = dist.distribution.probs
            action = torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)
        return action.cpu().numpy().astype(np.int64).reshape(-1)

    @torch.no_grad()
    def act(self, obs: Observation, memory: Any, ctx: Context | None = None) -> tuple[np.ndarray, Any]:
        if not self.recurrent:
            tensor, _ = self.policy.obs_to_tensor(self.observation(obs))
            return self._choose(self.policy.get_distribution(tensor)), None
        from .rl2 import trial_starts

        trial = obs.trial
        tensor, _ = self.policy.obs_to_tensor(self.observation(obs))
        dev = self.device
        starts = torch.as_tensor(trial_starts(np.asarray(trial)), dtype=torch.float32, device=dev)
        state = (torch.as_tensor(memory["h"], device=dev), torch.as_tensor(memory["c"], device=dev))
        dist, (h, c) = self.policy.get_distribution(tensor, state, starts)
        action = self._choose(dist)
        return action, {"h": h.cpu().numpy(), "c": c.cpu().numpy()}

    def end_episode(self, memory: Any, slots: np.ndarray) -> Any:
        """The LSTM state is kept: it spans the trial."""
        return memory


# ---------------------------------------------------------------------------------------------
# checkpoints


def _space_entry(space) -> dict:
    low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
    if low.min() != low.max() or high.min() != high.max():
        raise ValueError(f"only boxes with uniform bounds can be recorded, got {space}")

    def bound(v: float) -> float | None:  # JSON has no inf: None stands for an unbounded side
        return float(v) if math.isfinite(v) else None

    return {"shape": [int(s) for s in space.shape], "dtype": str(np.dtype(space.dtype)),
            "low": bound(float(low.min())), "high": bound(float(high.max()))}


def architecture(policy, algo: str, episodes: int) -> dict:
    """What rebuilds ``policy`` (JSON-able): the algorithm, the SB3 policy name, the spaces, the
    policy kwargs and K. Raises ``ValueError`` for policies that cannot be rebuilt from it."""
    from gymnasium import spaces

    policy = getattr(policy, "policy", policy)
    if algo not in ALGOS:
        raise ValueError(f"algo must be one of {', '.join(ALGOS)}, got {algo!r}")
    if _is_recurrent(policy) != (algo == "recurrent-ppo"):
        raise ValueError(f"a {type(policy).__name__} is not a policy of algorithm '{algo}'")
    obs_space, act_space = policy.observation_space, policy.action_space
    if not isinstance(obs_space, spaces.Dict) or not isinstance(act_space, spaces.Discrete):
        raise ValueError(f"expected a Dict observation space and a Discrete action space, got {obs_space}, "
                         f"{act_space}")
    if type(policy.features_extractor).__name__ != "CombinedExtractor":
        raise ValueError(f"only the default CombinedExtractor can be saved, got "
                         f"{type(policy.features_extractor).__name__}")
    act = policy.activation_fn.__name__
    if ACTIVATIONS.get(act) is not policy.activation_fn:
        raise ValueError(f"activation {act} cannot be saved; use one of {', '.join(ACTIVATIONS)}")
    net_arch = policy.net_arch
    net_arch = {k: list(v) for k, v in net_arch.items()} if isinstance(net_arch, dict) else list(net_arch)
    kwargs: dict[str, Any] = {"net_arch": net_arch, "activation_fn": act,
                              "share_features_extractor": bool(policy.share_features_extractor)}
    if algo == "recurrent-ppo":
        if policy.lstm_kwargs:
            raise ValueError(f"lstm_kwargs {policy.lstm_kwargs} cannot be saved")
        kwargs.update(lstm_hidden_size=int(policy.lstm_actor.hidden_size),
                      n_lstm_layers=int(policy.lstm_actor.num_layers), shared_lstm=bool(policy.shared_lstm),
                      enable_critic_lstm=bool(policy.enable_critic_lstm))
    return {"algo": algo, "policy": POLICIES[algo],
            "observation_space": {k: _space_entry(s) for k, s in obs_space.spaces.items()},
            "actions": int(act_space.n), "policy_kwargs": kwargs, "episodes": int(episodes)}


def save_sb3(path, model_or_policy, cfg: SB3Config, steps: int, extra: dict | None = None) -> Path:
    """Save an SB3 policy (a model or its ``policy``) as a metarena checkpoint at ``path`` (a
    directory, or ``X.safetensors``): the policy tensors, algorithm ``cfg.algo``, the
    :func:`architecture` that rebuilds it, ``cfg.games`` with their variant, ``steps`` and
    ``extra`` (plus ``extra["config"] = cfg.to_dict()``). Returns the checkpoint's path."""
    from types import SimpleNamespace

    from .checkpoint import CheckpointMeta, save_checkpoint, sb3_policy_state

    policy = getattr(model_or_policy, "policy", model_or_policy)
    arch = architecture(policy, cfg.algo, cfg.episodes)
    entries = [games.variant(name, cfg.variant) for name in cfg.games]
    meta = CheckpointMeta(algorithm=cfg.algo, architecture=arch, games=entries, steps=int(steps),
                          extra={**dict(extra or {}), "config": cfg.to_dict()})
    return save_checkpoint(path, sb3_policy_state(SimpleNamespace(policy=policy)), meta)


@contextlib.contextmanager
def _global_rng_kept():
    """Restore Python's, numpy's and torch's (CPU) global random state on exit."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def _spaces_env(observation_space, action_space):
    import gymnasium

    class SpacesEnv(gymnasium.Env):
        """A stand-in env that only has the spaces (to build a model for loaded weights)."""

        def __init__(self):
            self.observation_space, self.action_space = observation_space, action_space

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, True, False, {}

    return SpacesEnv()


def build_model(arch: dict, device: str = "cpu", where: str = "architecture"):
    """A fresh PPO / RecurrentPPO model with the policy that ``arch`` (see :func:`architecture`)
    describes, on a stand-in env of its spaces; its weights are random until loaded. Raises
    :class:`~metarena.agents.checkpoint.CheckpointError` when ``arch`` is incomplete or wrong."""
    from gymnasium import spaces

    from .checkpoint import CheckpointError

    try:
        algo = arch["algo"]
        if algo not in ALGOS:
            raise ValueError(f"unknown algo {algo!r}")
        obs = spaces.Dict({
            key: spaces.Box(-np.inf if e["low"] is None else e["low"], np.inf if e["high"] is None else e["high"],
                            tuple(int(s) for s in e["shape"]), np.dtype(e["dtype"]))
            for key, e in arch["observation_space"].items()})
        act = spaces.Discrete(int(arch["actions"]))
        kwargs = dict(arch["policy_kwargs"])
        name = kwargs.get("activation_fn", "Tanh")
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation_fn {name!r}")
        kwargs["activation_fn"] = ACTIVATIONS[name]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: cannot rebuild the SB3 policy ({type(exc).__name__}: {exc}). The "
                              "checkpoint was not saved by agents.baselines.save_sb3 or is damaged.") from None
    with _global_rng_kept():  # building initializes weights with torch's global generator
        try:
            model = _sb3_class(algo)(arch.get("policy", POLICIES[algo]), _spaces_env(obs, act), n_steps=2,
                                     batch_size=2, n_epochs=1, policy_kwargs=kwargs, device=device, verbose=0)
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{where}: cannot rebuild the SB3 policy ({type(exc).__name__}: {exc}).") from None
    return model


def load_sb3(path, game: str | None = None, device: str = "cpu"):
    """``(model, meta)`` of an SB3 checkpoint (a checkpoint directory or weights file); ``game``
    (optional) must be one it was trained on. Nothing is unpickled: the model is built from
    the recorded architecture and the tensors are loaded into its policy."""
    from .checkpoint import CheckpointError, load_checkpoint, load_sb3_policy

    state, meta = load_checkpoint(path, game=game)
    if meta.algorithm not in ALGOS:
        raise CheckpointError(f"{path}: a checkpoint of algorithm '{meta.algorithm}', not an SB3 baseline "
                              f"({', '.join(ALGOS)}). Load it with the loader of '{meta.algorithm}'.")
    if meta.architecture.get("algo") != meta.algorithm:
        raise CheckpointError(f"{path}: its architecture is for '{meta.architecture.get('algo')}', its algorithm "
                              f"'{meta.algorithm}'; the metadata is inconsistent. Save the checkpoint again.")
    model = build_model(meta.architecture, device=device, where=str(path))
    load_sb3_policy(model, state)
    model.policy.set_training_mode(False)
    return model, meta


def load_sb3_agent(path, game: str | None = None, greedy: bool = False, seed: int | None = None,
                   device: str = "cpu") -> SB3Agent:
    """An :class:`SB3Agent` from a checkpoint saved by :func:`save_sb3` (directory or weights file)."""
    model, meta = load_sb3(path, game=game, device=device)
    return SB3Agent(model.policy, meta.algorithm, greedy=greedy, seed=seed,
                    name=f"{meta.algorithm}:{Path(path).name}", episodes=int(meta.architecture.get("episodes", 4)))


# ---------------------------------------------------------------------------------------------
# PPO from scratch on each test level


def scratch_ppo(game: str, variant: str | None = None, split: str = "test", levels: int = 20, episodes: int = 4,
                seed: int = 0, n_steps: int = 32, batch_size: int = 32, n_epochs: int = 4, lr: float = 3e-4,
                net_arch: tuple[int, ...] = (64, 64), device: str = "cpu") -> dict:
    """The baseline "SB3 PPO trained from scratch on the test level with the same K-episode
    budget": for each of the first ``levels`` levels of ``split`` (the levels of
    :func:`metarena.agents.evaluate.evaluate`, in the same order), a fresh PPO (``MultiInputPolicy``,
    seeded ``seed + i``) plays exactly ``episodes`` episodes on that level, updating after
    every ``n_steps`` steps (so it learns during and across the episodes). Returns
    ``{"returns": (levels, K) float32, "lengths": (levels, K) int32}``: each episode's return
    and length, in the order played. Global random state is restored afterwards; prints nothing.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    from metarena.games.gym_env import MetarenaEnv

    if not _positive_int(levels) or not _positive_int(episodes):
        raise ValueError(f"levels and episodes must be positive integers, got {levels!r}, {episodes!r}")
    if not _positive_int(n_steps) or n_steps < 2 or not _positive_int(batch_size) or batch_size < 2:
        raise ValueError(f"n_steps and batch_size must be integers >= 2, got {n_steps!r}, {batch_size!r}")
    returns = np.zeros((levels, episodes), dtype=np.float32)
    lengths = np.zeros((levels, episodes), dtype=np.int32)

    class Recorder(BaseCallback):
        """Records each episode's return and length; stops learning when the K-th ends."""

        def __init__(self, row: int):
            super().__init__(verbose=0)
            self.row, self.k, self.ret, self.len = row, 0, 0.0, 0

        def _on_step(self) -> bool:
            self.ret += float(self.locals["rewards"][0])
            self.len += 1
            if self.locals["dones"][0]:
                returns[self.row, self.k], lengths[self.row, self.k] = self.ret, self.len
                self.k, self.ret, self.len = self.k + 1, 0.0, 0
            return self.k < episodes

    kwargs = {"net_arch": list(net_arch)}
    with _global_rng_kept():
        for i in range(levels):
            # the pool is the first `levels` levels of the split, in order: level i is split_seeds(split, levels)[i]
            env = MetarenaEnv(game, variant, split=split, pool_size=levels, episodes=episodes)
            venv = DummyVecEnv([lambda env=env: env])
            venv.set_options({"level": i})  # the first reset starts the trial on level i; the rest go on with it
            model = PPO("MultiInputPolicy", venv, learning_rate=lr, n_steps=n_steps,
                        batch_size=min(batch_size, n_steps), n_epochs=n_epochs, policy_kwargs=kwargs,
                        seed=seed + i, device=device, verbose=0)
            model.set_logger(quiet_logger())
            recorder = Recorder(i)
            model.learn(total_timesteps=10 ** 12, callback=recorder, log_interval=None)
            venv.close()
            if recorder.k < episodes:  # pragma: no cover - learn() only stops through the recorder
                raise RuntimeError(f"PPO stopped after {recorder.k} of {episodes} episodes on level {i}")
    return {"returns": returns, "lengths": lengths}


class ScratchPPO:
    """The baseline "SB3 PPO from scratch on the test level, with the same K-episode budget":
    a fresh PPO learns each level during its K episodes (:func:`scratch_ppo`). Not batched:
    one model per level, about 0.4 s a level on treasure. A
    :class:`~metarena.agents.base.LevelLearner`: only the benchmark plays it."""

    name = "ppo-scratch"

    def play(self, game, variant, split, levels, episodes, seed):
        out = scratch_ppo(game, variant, split=split, levels=levels, episodes=episodes, seed=seed)
        return EpisodeStats(out["returns"][..., None], out["lengths"], np.ones(out["lengths"].shape, dtype=bool),
                            int(out["lengths"].sum()))
