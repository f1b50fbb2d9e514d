"""PPO for RL²: a recurrent policy meta-trained over trials of K episodes.

One update:

1. **Rollout.** Every env slot plays ``chunk`` steps of its ongoing trial.
   The GRU state is carried from chunk to chunk and cleared only where a
   trial starts (in :meth:`agents.rl2.RL2Net.unroll`, one line), never at an
   episode boundary inside a trial.
2. **Advantages (GAE).** A trial is one long episode of the meta-task: an
   episode boundary inside a trial is not a ``done`` (the value there is
   what the rest of the trial will pay, adaptation included). ``done`` is set
   only where a trial ends. That end is treated as terminal, with no
   bootstrap: after K episodes the trial is truly over (a new level
   follows), even when the last episode itself ended at its step limit. The
   value of the observation after the chunk bootstraps the chunk's tail.
3. **PPO.** ``epochs`` passes over the chunk, cut into ``minibatches`` groups
   of whole env slots; each minibatch is unrolled through the GRU from the
   chunk's first hidden state (BPTT over the whole chunk), with the clipped
   surrogate, a value loss and an entropy bonus.

``train_rl2(config)`` returns the network and one metrics dict per update.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

import games
from games.batch import BatchEnv
from games.trial import TrialEnv

from .rl2 import RL2Net, RL2NetSpec


@dataclass
class RL2Config:
    """Everything an RL² run depends on; saved beside its checkpoints."""

    games: tuple[str, ...] = ("treasure",)
    """Games to meta-train on. With several, the env slots are split evenly between them
    (one network for all: observations share one vocabulary)."""
    variant: str | None = "medium"
    """Variant of every game (a name or a TOML path); None: each game's default."""
    envs: int = 1024
    """Env slots stepped side by side (the rollout batch)."""
    chunk: int = 64
    """Steps per slot and update; also the BPTT length."""
    episodes: int = 4
    """Episodes per trial (K): the memory spans them, then a new level follows."""
    pool_size: int = 1024
    """Training levels per game the trials draw from (the first of the train split)."""
    total_steps: int = 10_000_000
    """Env steps (slots x steps) to train for, rounded up to whole updates."""
    lr: float = 5e-4
    """Adam learning rate (constant)."""
    gamma: float = 0.99
    """Discount per step, across the episodes of a trial."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip: float = 0.2
    """PPO ratio clip range."""
    epochs: int = 3
    """Passes over each rollout."""
    minibatches: int = 4
    """Minibatches per pass, each a group of whole env slots (envs must divide evenly)."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    hidden: tuple[int, ...] = (256,)
    """Sizes of the encoder MLP's layers."""
    memory: int = 128
    """Size of the GRU state."""
    seed: int = 0
    """Seeds torch, the level draws and the actions sampled."""
    device: str = "auto"
    """Torch device: "auto" (cuda if available, else cpu), "cpu", "cuda", ..."""
    shards: int = 1
    """Processes the env steps in: 1 = a plain BatchEnv in this process; 2 = a
    ShardedBatchEnv whose second half runs in a worker process (use the second core)."""
    torch_threads: int = 0
    """Torch intra-op threads; 0 = auto: 1 when shards > 1 (the env's worker process
    busies the other core while stepping, and two busy threads on one core crawl),
    else the number of cores."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        if self.envs % self.minibatches:
            raise ValueError(f"envs ({self.envs}) must be a multiple of minibatches ({self.minibatches})")
        if self.envs % len(self.games):
            raise ValueError(f"envs ({self.envs}) must split evenly over the games {self.games}")
        for name in self.games:
            games.get(name)  # raises with the known names


class _Envs:
    """One TrialEnv per game, their slots side by side."""

    def __init__(self, cfg: RL2Config):
        n = cfg.envs // len(cfg.games)
        self.envs: list[TrialEnv] = []
        for i, name in enumerate(cfg.games):
            v = games.variant(name, cfg.variant)
            kw = dict(episodes=cfg.episodes, pool_size=cfg.pool_size, split="train", seed=cfg.seed + 1000 * i)
            if cfg.shards > 1:
                from games.shards import ShardedBatchEnv

                env = TrialEnv(ShardedBatchEnv(name, v, batch=n, shards=cfg.shards, **kw), cfg.episodes)
            else:
                env = TrialEnv(BatchEnv(games.get(name), v, batch=n, **kw))
            self.envs.append(env)

    def _cat(self, parts):
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def reset(self):
        outs = [e.reset() for e in self.envs]
        return tuple(self._cat([o[i][:, 0] for o in outs]) for i in range(3))

    def step(self, actions: np.ndarray):
        """Player 0's ``grid, scalars, trial, rewards, trial_done`` and the finished episodes'
        ``(episode index, return)``."""
        outs, lo = [], 0
        for e in self.envs:
            outs.append(e.step(actions[lo:lo + e.batch, None]))
            lo += e.batch
        obs = [self._cat([o[i][:, 0] for o in outs]) for i in range(4)]
        done = self._cat([o.trial_done for o in outs])
        finals = [o.info["final"] for o in outs if "final" in o.info]
        ep = np.concatenate([f["episode"] for f in finals]) if finals else np.zeros(0, dtype=np.int64)
        ret = np.concatenate([f["score"][:, 0] for f in finals]) if finals else np.zeros(0, dtype=np.float32)
        return (*obs, done, ep, ret)

    def close(self) -> None:
        for e in self.envs:
            e.close()


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train_rl2(config: RL2Config, log: Callable[[dict], None] | None = None,
              net: RL2Net | None = None) -> tuple[RL2Net, list[dict]]:
    """Meta-train an :class:`RL2Net` with PPO; returns it and one metrics dict per update.

    ``log`` is called with each update's metrics. ``net`` continues training a given network.
    Metrics: ``update``, ``steps`` (env steps so far), ``time_s``, ``steps_per_s`` (env steps per
    second of the whole run so far, rollouts and updates included), ``rollout_s`` and
    ``update_s`` of this update, ``return_by_episode`` (mean return of the episodes that
    ended during this rollout, by index k in the trial; None where none ended),
    ``episodes_ended``, ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``,
    ``clipfrac``.
    """
    cfg = config
    cfg.validate()
    threads = cfg.torch_threads or (1 if cfg.shards > 1 else (os.cpu_count() or 1))
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    dev = _device(cfg.device)
    if net is None:
        net = RL2Net(RL2NetSpec(hidden=tuple(cfg.hidden), memory=cfg.memory, episodes=cfg.episodes))
    net = net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=1e-5)
    sampler = torch.Generator(device=dev)
    sampler.manual_seed(cfg.seed)
    envs = _Envs(cfg)
    B, T, K = cfg.envs, cfg.chunk, cfg.episodes
    updates = max(1, math.ceil(cfg.total_steps / (B * T)))
    metrics: list[dict] = []
    try:
        grid, scalars, trial = (torch.as_tensor(x, device=dev) for x in envs.reset())
        first = torch.ones(B, device=dev)  # the next observation is the first of a trial
        h = net.initial_state(B, dev)
        buf_grid = torch.empty((T,) + tuple(grid.shape), dtype=torch.uint8, device=dev)
        buf_scalars = torch.empty((T,) + tuple(scalars.shape), device=dev)
        buf_trial = torch.empty((T,) + tuple(trial.shape), device=dev)
        buf = {k: torch.empty(T, B, device=dev) for k in ("first", "action", "logp", "value", "reward", "done")}
        start = time.perf_counter()
        for update in range(1, updates + 1):
            # -- rollout: T steps of every slot, the GRU state carried over from the last chunk
            t0 = time.perf_counter()
            h0 = h.clone()
            ep_sum, ep_count = np.zeros(K), np.zeros(K)
            net.eval()
            for t in range(T):
                buf_grid[t], buf_scalars[t], buf_trial[t], buf["first"][t] = grid, scalars, trial, first
                with torch.no_grad():
                    logits, value, h = net.unroll(grid[None], scalars[None], trial[None], first[None], h)
                    action = torch.multinomial(torch.softmax(logits[0], -1), 1, generator=sampler).squeeze(-1)
                    buf["logp"][t] = torch.log_softmax(logits[0], -1).gather(1, action[:, None]).squeeze(1)
                buf["action"][t], buf["value"][t] = action, value[0]
                out = envs.step(action.cpu().numpy())
                grid, scalars, trial = (torch.as_tensor(x, device=dev) for x in out[:3])
                buf["reward"][t] = torch.as_tensor(out[3], device=dev)
                first = torch.as_tensor(out[4], dtype=torch.float32, device=dev)
                buf["done"][t] = first  # a trial ended: its next observation starts a new one
                np.add.at(ep_sum, out[5], out[6])
                np.add.at(ep_count, out[5], 1)
            with torch.no_grad():
                next_value = net.unroll(grid[None], scalars[None], trial[None], first[None], h)[1][0]
            t1 = time.perf_counter()

            # -- advantages: GAE over the chunk; only a trial's end stops the bootstrap
            adv = torch.zeros(T, B, device=dev)
            last = torch.zeros(B, device=dev)
            for t in reversed(range(T)):
                not_done = 1.0 - buf["done"][t]
                next_v = next_value if t == T - 1 else buf["value"][t + 1]
                delta = buf["reward"][t] + cfg.gamma * next_v * not_done - buf["value"][t]
                last = delta + cfg.gamma * cfg.gae_lambda * not_done * last
                adv[t] = last
            returns = adv + buf["value"]

            # -- PPO: epochs x minibatches of whole slots, each unrolled from the chunk's start
            net.train()
            stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clipfrac": 0.0}
            n_mb = 0
            per = B // cfg.minibatches
            for _ in range(cfg.epochs):
                order = torch.randperm(B, generator=sampler, device=dev)
                for m in range(cfg.minibatches):
                    mb = order[m * per:(m + 1) * per]
                    logits, value, _ = net.unroll(buf_grid[:, mb], buf_scalars[:, mb], buf_trial[:, mb],
                                                  buf["first"][:, mb], h0[mb])
                    logp_all = torch.log_softmax(logits, -1)
                    logp = logp_all.gather(2, buf["action"][:, mb].long()[..., None]).squeeze(2)
                    entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
                    a = adv[:, mb]
                    a = (a - a.mean()) / (a.std() + 1e-8)
                    log_ratio = logp - buf["logp"][:, mb]
                    ratio = log_ratio.exp()
                    policy_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip, 1 + cfg.clip)).mean()
                    value_loss = 0.5 * (value - returns[:, mb]).pow(2).mean()
                    loss = policy_loss - cfg.ent_coef * entropy + cfg.vf_coef * value_loss
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
                    opt.step()
                    with torch.no_grad():
                        stats["policy_loss"] += policy_loss.item()
                        stats["value_loss"] += value_loss.item()
                        stats["entropy"] += entropy.item()
                        stats["approx_kl"] += ((ratio - 1) - log_ratio).mean().item()
                        stats["clipfrac"] += ((ratio - 1).abs() > cfg.clip).float().mean().item()
                    n_mb += 1
            t2 = time.perf_counter()
            row = {"update": update, "steps": update * B * T, "time_s": t2 - start,
                   "steps_per_s": update * B * T / (t2 - start), "rollout_s": t1 - t0, "update_s": t2 - t1,
                   "return_by_episode": [float(s / c) if c else None for s, c in zip(ep_sum, ep_count)],
                   "episodes_ended": int(ep_count.sum()), **{k: v / n_mb for k, v in stats.items()}}
            metrics.append(row)
            if log is not None:
                log(row)
    finally:
        envs.close()
    net.eval()
    return net, metrics
