"""The pretrain / fine-tune adapter method: adapting to a new level by gradient.

1. **Pretrain** (``metarena train --algo finetune``): an :class:`AdapterNet` (an encoder MLP
   over the window and scalars, a residual low-rank adapter, policy and value heads; no
   memory) is trained with the same PPO as RL² (:func:`metarena.agents.ppo.train_rl2`) over the
   training levels, one episode per trial.
2. **Fine-tune** (:class:`FineTuneAgent`): on each new level, after every episode, the
   agent takes ``epochs`` PPO steps on what the level has shown so far (every step of the
   trial's finished episodes, with Monte-Carlo returns and the value head as baseline), so
   the next episode is played by an adapted policy. Every slot (level) gets its own copy
   of the adapted weights and its own Adam state: hundreds of levels adapt side by side.
   What is tuned is the ``strategy``:

   - ``adapter``: the adapter only, the backbone frozen;
   - ``discriminative``: everything, the backbone at ``lr * backbone_decay``;
   - ``all``: everything at ``lr``.

3. **Reptile** (``metarena train --algo reptile``, :func:`train_reptile`): first-order
   meta-learning of the starting point of that fine-tuning. Each meta-iteration plays one
   trial with fine-tuning on each of ``envs`` training levels, then moves the initial weights
   θ by the ``outer`` rule:

   - ``reptile``: toward the mean of the adapted ones, ``θ <- θ + meta_lr * (mean_i θ_i - θ)``;
   - ``fomaml`` (first-order MAML): one Adam step (``outer_lr``) down the mean gradient of the
     fine-tuning's loss on each level's *last* episode, taken at the weights θ_i that episode
     was played with: it follows the return after the adaptation, not the adaptation's path.

The adapter is ``h + up(relu(down(h)))`` on the encoder's output, ``up`` initialised to
zero, so a fresh adapter leaves the backbone's policy unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from metarena import games
from metarena.games.batch import BatchEnv
from metarena.games.engine import NUM_ACTIONS, SCALAR_NAMES, VIEW
from metarena.games.tiles import NUM_CHANNELS
from metarena.games.trial import PREV_REWARD

from .base import Context, Observation
from .config import Choice, setting
from .config import validate as validate_fields
from .ppo import RL2Config, metrics_row, ppo_terms, run_seed
from .rl2 import heads, mlp, trial_starts
from .rollout import Hooks, play
from .rundir import STAT_COLUMNS

class Strategy(Choice):
    """What the fine-tuning tunes (a member equals its string: ``Strategy.ALL == "all"``)."""

    ADAPTER = "adapter"  #: the adapter only, the backbone frozen
    DISCRIMINATIVE = "discriminative"  #: everything, the backbone at lr * backbone_decay
    ALL = "all"  #: everything at lr


STRATEGIES = Strategy.values()
ADAPTER_PREFIX = "adapter."
ADV_FLOOR = 0.1  #: least RMS the fine-tuning's advantages are scaled by (rewards are of order 1)


class Outer(Choice):
    """How a meta-iteration moves the starting point (a member equals its string)."""

    REPTILE = "reptile"  #: toward the mean of the adapted weights
    FOMAML = "fomaml"  #: down the post-adaptation loss's gradient, taken at the adapted weights


@dataclass(frozen=True)
class AdapterNetSpec:
    """The shape of an :class:`AdapterNet`; saved beside its weights."""

    view: int = VIEW  #: side of the observation window
    channels: int = NUM_CHANNELS  #: one-hot tile channels per cell
    scalars: int = len(SCALAR_NAMES)  #: scalars per observation
    hidden: tuple[int, ...] = (128, 128)  #: sizes of the encoder's layers (MLP, ReLU)
    rank: int = 16  #: width of the adapter's bottleneck
    actions: int = NUM_ACTIONS  #: number of actions

    @property
    def inputs(self) -> int:
        return self.view * self.view * self.channels + self.scalars


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x @ w.T + b`` where the weights are shared (``w`` (out, in)) or per slot (``w``
    (n, out, in), ``b`` (n, out), ``x`` (n, L, in))."""
    if w.dim() == 2:
        return F.linear(x, w, b)
    return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


class AdapterNet(nn.Module):
    """Encoder MLP -> residual adapter -> policy logits and value. Memory-less.

    It has the interface :func:`metarena.agents.ppo.train_rl2` trains (``initial_state``,
    ``features``, ``advance``, ``unroll``, ``unroll_features``; see :class:`~metarena.agents.rl2.RL2Net`),
    so pretraining is the RL² PPO with trials of one episode; the trial features and the
    state it is given are ignored.
    """

    def __init__(self, spec: AdapterNetSpec = AdapterNetSpec()):
        super().__init__()
        self.spec = spec
        self.encoder, size = mlp(spec.inputs, spec.hidden)
        self.adapter = nn.ModuleDict({"down": nn.Linear(size, spec.rank), "up": nn.Linear(spec.rank, size)})
        nn.init.zeros_(self.adapter["up"].weight)
        nn.init.zeros_(self.adapter["up"].bias)
        self.policy, self.value = heads(size, spec.actions)

    @staticmethod
    def inputs(grid: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        """(..., V, V, C) uint8 and (..., S) -> (..., D) float32."""
        return torch.cat([grid.flatten(-3).float(), scalars.float()], dim=-1)

    def trunk(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The encoder's output (the backbone below the adapter)."""
        h = x
        for i in range(0, len(self.spec.hidden) * 2, 2):
            h = torch.relu(_linear(h, params[f"encoder.{i}.weight"], params[f"encoder.{i}.bias"]))
        return h

    def forward_with(self, params: dict[str, torch.Tensor], x: torch.Tensor, h: torch.Tensor | None = None):
        """Logits and value of inputs ``x`` under ``params`` (names as in
        ``named_parameters``; each shared, or per slot with a leading axis of n, then ``x`` is
        (n, L, D)); ``h``: the trunk's output, when already known. Returns ``(logits (..., A),
        value (...))``."""
        if h is None:
            h = self.trunk(params, x)
        z = torch.relu(_linear(h, params["adapter.down.weight"], params["adapter.down.bias"]))
        h = h + _linear(z, params["adapter.up.weight"], params["adapter.up.bias"])
        return (_linear(h, params["policy.weight"], params["policy.bias"]),
                _linear(h, params["value.weight"], params["value.bias"]).squeeze(-1))

    def forward(self, grid, scalars):
        return self.forward_with(dict(self.named_parameters()), self.inputs(grid, scalars))

    def initial_state(self, n: int, device=None) -> torch.Tensor:
        return torch.zeros(n, 1, device=device)

    def features(self, grid, scalars, trial, extra=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self.inputs(grid, scalars).to(dtype)

    def advance(self, x, h):
        logits, value = self.forward_with(dict(self.named_parameters()), x)
        return logits, value, h

    def unroll_features(self, x, first, h):
        return self.advance(x, h)

    def unroll(self, grid, scalars, trial, first, h):
        return self.advance(self.features(grid, scalars, trial), h)


def trainable_names(net: AdapterNet, strategy: str) -> list[str]:
    """The parameters a strategy fine-tunes."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown fine-tuning strategy '{strategy}'; choose from {', '.join(STRATEGIES)}")
    names = [n for n, _ in net.named_parameters()]
    return [n for n in names if n.startswith(ADAPTER_PREFIX)] if strategy == "adapter" else names


@dataclass
class AdaptConfig:
    """How :class:`FineTuneAgent` fine-tunes on a new level after each episode."""

    strategy: Strategy = setting(
        Strategy.ADAPTER, """What is tuned: "adapter" (backbone frozen), "discriminative" (backbone at
        lr * backbone_decay) or "all" (every parameter at lr).""")
    lr: float = setting(3e-3, """Adam learning rate of the adapter (and of everything under "all").""", gt=0)
    backbone_decay: float = setting(
        0.1, """Under "discriminative": the backbone's learning rate is lr times this.""", ge=0)
    epochs: int = setting(
        8, """Gradient steps after each episode, each over every step the trial has played (0: no
        fine-tuning).""", ge=0)
    clip: float = setting(0.2, """PPO ratio clip range.""", gt=0)
    gamma: float = setting(0.99, """Discount of the Monte-Carlo returns (within an episode).""", ge=0, le=1)
    ent_coef: float = setting(0.0, """Weight of the entropy bonus.""", ge=0)
    vf_coef: float = setting(0.5, """Weight of the value loss.""", ge=0)
    max_grad_norm: float = setting(0.5, """Gradient-norm clip, per slot.""", gt=0)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field outside its type or range
        (:func:`metarena.agents.config.validate`)."""
        validate_fields(self)


class _StepLog:
    """Every step the agent played, all slots side by side (one row of arrays per step)."""

    def __init__(self):
        self.grid: list[torch.Tensor] = []  # (n, V, V, C) uint8
        self.scalars: list[torch.Tensor] = []  # (n, S)
        self.action: list[torch.Tensor] = []
        self.logp: list[torch.Tensor] = []
        self.value: list[torch.Tensor] = []
        self.reward: list[np.ndarray] = []  # filled in at the next step
        self.done: list[np.ndarray] = []  # the step ended its slot's episode
        self.tag: list[np.ndarray] = []  # (n,) trial id of the slot at that step

    def __len__(self) -> int:
        return len(self.grid)


class FineTuneAgent:
    """An :class:`AdapterNet` that fine-tunes itself on each level after every episode.

    Batched: slot ``i`` has its own copy of the tuned weights and of Adam's moments, kept in
    the memory (so ``--memory-reset`` wipes the adaptation, as it wipes RL²'s state). The
    reward of an episode's last step reaches the agent as the previous-reward trial feature
    of the next observation, so each slot adapts at its first step after an episode ends.
    """

    def __init__(self, net: AdapterNet, adapt: AdaptConfig = AdaptConfig(), greedy: bool = False,
                 seed: int | None = None, name: str | None = None, device: str | torch.device = "cpu"):
        adapt.validate()
        self.net = net.to(device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.adapt_cfg, self.greedy, self.device = adapt, greedy, torch.device(device)
        self.name = name or f"finetune-{adapt.strategy}"
        self.tuned = trainable_names(net, adapt.strategy)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(0 if seed is None else int(seed))
        self._trials = 0

    # -- memory ------------------------------------------------------------------------------

    def _fresh(self, n: int) -> dict:
        base = dict(self.net.named_parameters())
        tags = np.arange(self._trials, self._trials + n, dtype=np.int64)
        self._trials += n
        return {"params": {k: base[k].detach().unsqueeze(0).repeat(n, *[1] * base[k].dim()) for k in self.tuned},
                "m": {k: torch.zeros((n, *base[k].shape), device=self.device) for k in self.tuned},
                "v": {k: torch.zeros((n, *base[k].shape), device=self.device) for k in self.tuned},
                "t": torch.zeros(n, device=self.device), "tag": tags,
                "pending": np.zeros(n, dtype=bool)}

    def begin_trial(self, n: int) -> dict:
        memory = self._fresh(n)
        memory["log"] = _StepLog()
        return memory

    def reset_memory(self, memory: dict, slots: np.ndarray) -> dict:
        """Those slots start over: initial weights, no Adam state, nothing of the trial kept."""
        fresh = self._fresh(len(slots))
        index = torch.as_tensor(slots, device=self.device)
        for group in ("params", "m", "v"):
            for k in self.tuned:
                memory[group][k][index] = fresh[group][k]
        memory["t"][index] = 0.0
        for k in ("tag", "pending"):
            memory[k][slots] = fresh[k]
        return memory

    def end_episode(self, memory: dict, slots: np.ndarray) -> dict:
        if len(memory["log"]):
            memory["log"].done[-1][slots] = True
        memory["pending"][slots] = True
        return memory

    # -- acting ------------------------------------------------------------------------------

    def _params(self, memory: dict, slots=None) -> dict[str, torch.Tensor]:
        out = dict(self.net.named_parameters())
        for k in self.tuned:
            out[k] = memory["params"][k] if slots is None else memory["params"][k][slots]
        return out

    @torch.no_grad()
    def act(self, obs: Observation, memory: dict, ctx: Context | None = None) -> tuple[np.ndarray, dict]:
        log: _StepLog = memory["log"]
        if len(log):  # the reward of the previous step
            log.reward[-1][:] = obs.trial[:, PREV_REWARD]
        new = np.flatnonzero(trial_starts(obs.trial) & memory["pending"])  # a new level: nothing to adapt
        if len(new):
            self.reset_memory(memory, new)
        pending = np.flatnonzero(memory["pending"])
        if len(pending):
            with torch.enable_grad():
                self.adapt(memory, pending)
            memory["pending"][pending] = False
        grid = torch.tensor(obs.grid, device=self.device)  # copies: the env reuses its buffers
        scalars = torch.tensor(obs.scalars, device=self.device)
        x = self.net.inputs(grid, scalars)
        logits, value = self.net.forward_with(self._params(memory), x.unsqueeze(1))
        logits, value = logits.squeeze(1), value.squeeze(1)
        logp_all = torch.log_softmax(logits, -1)
        if self.greedy:
            action = logits.argmax(-1)
        else:
            action = torch.multinomial(logp_all.exp(), 1, generator=self.generator).squeeze(-1)
        n = len(action)
        log.grid.append(grid)
        log.scalars.append(scalars)
        log.action.append(action)
        log.logp.append(logp_all.gather(1, action[:, None]).squeeze(1))
        log.value.append(value)
        log.reward.append(np.zeros(n, dtype=np.float32))
        log.done.append(np.zeros(n, dtype=bool))
        log.tag.append(memory["tag"].copy())
        return action.cpu().numpy().astype(np.int64), memory

    # -- adapting ----------------------------------------------------------------------------

    def _batch(self, memory: dict, slots: np.ndarray, last: bool = False):
        """The finished episodes of these slots' trials (``last``: the last of them only): tensors
        (s, L, ...) and a mask."""
        log: _StepLog = memory["log"]
        tags = np.stack(log.tag)[:, slots]  # (L, s)
        mine = tags == memory["tag"][slots]
        first = int(np.argmax(mine.any(axis=1)))  # the earliest step of any of these trials
        mine = mine[first:]
        # only steps of finished episodes: those up to each slot's last "done"
        done = np.stack(log.done[first:])[:, slots] & mine
        end = np.where(done.any(0), len(done) - 1 - np.argmax(done[::-1], axis=0), -1)
        mask = mine & (np.arange(len(mine))[:, None] <= end[None, :])
        if last:  # no episode end after the step but its own
            mask &= done[::-1].cumsum(0)[::-1] == 1
        idx = torch.as_tensor(slots, device=self.device)
        rows = lambda seq: torch.stack([a[idx] for a in seq[first:]], 1)  # noqa: E731  (s, L, ...)
        x = self.net.inputs(rows(log.grid), rows(log.scalars))
        action, logp, value = rows(log.action), rows(log.logp), rows(log.value)
        reward = np.stack(log.reward[first:])[:, slots]
        ret = np.zeros_like(reward)
        g = np.zeros(len(slots), dtype=np.float32)
        for t in range(len(reward) - 1, -1, -1):  # Monte-Carlo returns within each episode
            g = np.where(done[t], 0.0, g)
            g = reward[t] + self.adapt_cfg.gamma * g
            ret[t] = g
        to = lambda a: torch.as_tensor(a.T.copy(), device=self.device)  # noqa: E731
        return x, action, logp, value, to(ret), to(mask.astype(np.float32))

    def _loss(self, params: dict, batch: tuple, frozen: torch.Tensor | None = None) -> torch.Tensor:
        """(s,) each slot's PPO loss on its ``batch`` (as :meth:`_batch` gives it) under
        ``params``; ``frozen``: the trunk's output, where the backbone is not tuned. Advantages
        are scaled to unit RMS per level, never enlarged more than 1 / ADV_FLOOR times; no mean
        is subtracted: with one episode of data, that would punish the start of a winning path."""
        cfg = self.adapt_cfg
        x, action, logp_old, value_old, ret, mask = batch
        count = mask.sum(1).clamp(min=1)
        adv = (ret - value_old) * mask
        rms = (adv.pow(2).sum(1, keepdim=True) / count[:, None]).sqrt()
        adv = adv / rms.clamp(min=ADV_FLOOR)
        logits, value = self.net.forward_with(params, x, frozen)
        surrogate, value_loss, entropy, _, _ = ppo_terms(logits, action, logp_old, adv, value, ret, cfg.clip)
        per_step = surrogate + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
        return (per_step * mask).sum(1) / count

    def adapt(self, memory: dict, slots: np.ndarray) -> dict:
        """``epochs`` PPO steps for these slots on their trial's finished episodes (in place)."""
        cfg = self.adapt_cfg
        if cfg.epochs == 0 or not len(memory["log"]):
            return {}
        batch = self._batch(memory, slots)
        idx = torch.as_tensor(slots, device=self.device)
        tuned = {k: memory["params"][k][idx].clone().requires_grad_(True) for k in self.tuned}
        m = {k: memory["m"][k][idx] for k in self.tuned}
        v = {k: memory["v"][k][idx] for k in self.tuned}
        t = memory["t"][idx]
        params = dict(self.net.named_parameters()) | tuned
        lrs = {k: cfg.lr * (cfg.backbone_decay if cfg.strategy == "discriminative"
                            and not k.startswith(ADAPTER_PREFIX) else 1.0) for k in self.tuned}
        stats = {}
        frozen = None
        if not any(k.startswith("encoder.") for k in self.tuned):
            with torch.no_grad():
                frozen = self.net.trunk(params, batch[0])  # the backbone does not change: once
        for _ in range(cfg.epochs):
            loss_per_slot = self._loss(params, batch, frozen)  # each slot's own loss
            grads = torch.autograd.grad(loss_per_slot.sum(), list(tuned.values()))
            norm = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads))
            scale = (cfg.max_grad_norm / (norm + 1e-6)).clamp(max=1.0)
            t = t + 1
            with torch.no_grad():
                for (k, p), g in zip(tuned.items(), grads):
                    g = g * scale.view(-1, *[1] * (g.dim() - 1))
                    _adam_step(p, g, m[k], v[k], t, lrs[k])
            stats = {"loss": float(loss_per_slot.detach().mean())}
        with torch.no_grad():
            for k in self.tuned:
                memory["params"][k][idx] = tuned[k].detach()
                memory["m"][k][idx] = m[k]
                memory["v"][k][idx] = v[k]
            memory["t"][idx] = t
        return stats

    def post_gradient(self, memory: dict, slots: np.ndarray) -> dict[str, torch.Tensor]:
        """FOMAML's part of these slots: the sum over them of the gradient of each one's loss
        on its trial's last finished episode, taken at the weights it holds now (the ones that
        episode was played with); one tensor of each tuned parameter's shape."""
        idx = torch.as_tensor(slots, device=self.device)
        tuned = {k: memory["params"][k][idx].clone().requires_grad_(True) for k in self.tuned}
        loss = self._loss(dict(self.net.named_parameters()) | tuned, self._batch(memory, slots, last=True))
        grads = torch.autograd.grad(loss.sum(), list(tuned.values()))
        return {k: g.sum(0) for k, g in zip(tuned, grads)}


def _adam_step(p, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8) -> None:
    """One Adam step, in place, with a step count ``t`` (n,) per slot."""
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    shape = (-1,) + (1,) * (p.dim() - 1)
    c1 = (1 - b1 ** t).view(shape)
    c2 = (1 - b2 ** t).view(shape)
    p.sub_(lr * (m / c1) / ((v / c2).sqrt() + eps))


# ---------------------------------------------------------------------------------------------
# training: pretraining and Reptile


@dataclass
class FineTuneConfig(RL2Config):
    """Pretraining of the backbone (PPO over the training levels, one episode per trial)
    and how the agent adapts at test time."""

    episodes: int = setting(
        1, """Episodes per trial while pretraining (the network has no memory: 1).""", ge=1)
    hidden: tuple[int, ...] = setting((128, 128), """Sizes of the encoder MLP's layers, input first.""", ge=1)
    rank: int = setting(16, """Width of the adapter's bottleneck.""", ge=1)
    strategy: Strategy = setting(
        Strategy.ADAPTER, """Fine-tuning strategy at test time: adapter, discriminative or all
        (see :class:`AdaptConfig`).""")
    adapt_lr: float = setting(3e-3, """Adam learning rate of the fine-tuning.""", gt=0)
    backbone_decay: float = setting(
        0.1, """Under "discriminative": the backbone's learning rate is adapt_lr times this.""", ge=0)
    adapt_epochs: int = setting(
        8, """Gradient steps after each episode of a test level (0: no fine-tuning).""", ge=0)

    def adapt_config(self) -> AdaptConfig:
        return AdaptConfig(strategy=self.strategy, lr=self.adapt_lr, backbone_decay=self.backbone_decay,
                           epochs=self.adapt_epochs)

    def net_spec(self) -> AdapterNetSpec:
        return AdapterNetSpec(hidden=tuple(self.hidden), rank=self.rank)

    def validate(self) -> None:
        super().validate()
        if self.map:
            raise ValueError(f"map={self.map}: the adapter network has no memory to keep a map in "
                             "(the map memory is rl2's); leave map at 0")


@dataclass
class ReptileConfig(FineTuneConfig):
    """Reptile: meta-learns the starting point of the fine-tuning."""

    envs: int = setting(256, """Training levels per meta-iteration, one trial with fine-tuning on each.""", ge=1)
    episodes: int = setting(
        4, """Episodes per trial: the fine-tuning happens after each of the first K-1.""", ge=1)
    outer: Outer = setting(
        Outer.REPTILE, """The meta-update: "reptile" (toward the mean adapted weights, by meta_lr) or
        "fomaml" (first-order MAML: an Adam step of outer_lr down the mean gradient of the loss of each
        level's last episode, at the weights it was played with).""")
    meta_lr: float = setting(0.5, """Reptile's step size: θ <- θ + meta_lr * (mean adapted θ - θ).""", gt=0)
    outer_lr: float = setting(1e-4, """FOMAML's Adam learning rate for the starting point.""", gt=0)
    init: str | None = setting(
        None, """A pretrained checkpoint (``--algo finetune`` run or checkpoint) to start from; None:
        a fresh network.""")


class KeepAdapted(Hooks):
    """What a meta-iteration needs of every slot's trial: the tuned weights its last episode was
    played with (Reptile), or the sum of the gradients of the slots' last-episode losses at
    those weights (FOMAML, ``grads``: taken as each trial ends)."""

    def __init__(self, agent: FineTuneAgent, n: int, episodes: int, outer: str):
        self.agent, self.episodes = agent, episodes
        shapes = {k: p.shape for k, p in agent.net.named_parameters() if k in agent.tuned}
        self.final = {k: torch.empty((n, *shape)) for k, shape in shapes.items()} if outer == Outer.REPTILE else None
        self.grads = {k: torch.zeros(shape) for k, shape in shapes.items()} if outer == Outer.FOMAML else None
        self.counted = np.zeros(n, dtype=bool)
        self.memory: dict | None = None

    def on_episode_end(self, memories, slots, episodes):
        self.memory = memories[0]
        if self.final is not None:
            last = torch.as_tensor(slots[episodes == self.episodes - 1])
            for k in self.final:
                self.final[k][last] = self.memory["params"][k][last]

    def on_step(self, env, actions, step):
        if self.grads is None or not step.trial_done.any():
            return
        ended = np.flatnonzero(step.trial_done & ~self.counted)  # each slot's first trial only
        self.counted[ended] = True
        if len(ended):
            # the agent hears of a step's reward at its next action: the trial's last one, here
            self.memory["log"].reward[-1][ended] = step.rewards[ended, 0]
            for k, g in self.agent.post_gradient(self.memory, ended).items():
                self.grads[k] += g


def train_reptile(config: ReptileConfig, log: Callable[[dict], None] | None = None,
                  net: AdapterNet | None = None, *, optimizer_state: dict | None = None,
                  start_update: int = 0, start_steps: int | None = None,
                  callback: Callable[[dict, AdapterNet, torch.optim.Optimizer | None], None] | None = None,
                  ) -> tuple[AdapterNet, list[dict]]:
    """Meta-iterations over fine-tuning trials; the same contract as
    :func:`metarena.agents.ppo.train_rl2` (one "update" is one meta-iteration). Reptile's outer
    step has no state (no optimizer); FOMAML's is an Adam over the tuned parameters, whose
    ``optimizer_state`` a resumed run hands back. ``return_by_episode`` is the learning curve
    of the fine-tuning on the meta-iteration's levels; ``meta_shift`` the size of the outer
    step (the L2 norm of the change of the starting point)."""
    cfg = config
    cfg.validate()
    torch.set_num_threads(cfg.threads()[1])  # the fine-tuning is the learning phase
    seed = run_seed(cfg.seed, start_update)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if net is None:
        net = AdapterNet(cfg.net_spec())
    net = net.to("cpu")
    K, B = cfg.episodes, cfg.envs
    per = B // len(cfg.games)
    envs = [BatchEnv(games.get(g), games.variant(g, cfg.variant), batch=per, split="train",
                     pool_size=cfg.pool_size, episodes=K, seed=int(rng.integers(2 ** 31)))
            for g in cfg.games]
    tuned = trainable_names(net, cfg.strategy)
    params = dict(net.named_parameters())
    opt = None
    if cfg.outer == Outer.FOMAML:
        opt = torch.optim.Adam([params[k] for k in tuned], lr=cfg.outer_lr)
        if optimizer_state is not None:
            opt.load_state_dict(optimizer_state)
    done_steps = start_steps if start_steps is not None else 0
    metrics: list[dict] = []
    start = time.perf_counter()
    update = start_update
    run_steps = 0
    while done_steps + run_steps < cfg.total_steps or update == start_update:
        update += 1
        t0 = time.perf_counter()
        agent = FineTuneAgent(net, cfg.adapt_config(), seed=int(rng.integers(2 ** 31)))
        returns, kept, steps = [], [], 0
        for env in envs:
            keep = KeepAdapted(agent, env.batch, K, cfg.outer)
            stats = play(env, [agent], seed=int(rng.integers(2 ** 31)), hooks=keep)
            returns.append(stats.returns[:, :, 0])
            kept.append(keep)
            steps += stats.steps
        t1 = time.perf_counter()
        before = {k: params[k].detach().clone() for k in tuned}
        if opt is None:  # Reptile: toward the mean of the adapted weights
            with torch.no_grad():
                for k in tuned:
                    target = torch.cat([keep.final[k] for keep in kept]).mean(0)
                    params[k].add_(cfg.meta_lr * (target - params[k]))
        else:  # FOMAML: down the mean post-adaptation gradient
            for k in tuned:
                params[k].grad = sum(keep.grads[k] for keep in kept) / B
            opt.step()
            opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            shift = sum(float((params[k] - before[k]).pow(2).sum()) for k in tuned)
        t2 = time.perf_counter()
        run_steps += steps
        r = np.concatenate(returns)
        row = metrics_row(update, done_steps + run_steps, t2 - start, run_steps, t1 - t0, t2 - t1,
                          [float(x) for x in r.mean(0)], r.size,
                          {**dict.fromkeys(STAT_COLUMNS, float("nan")), "meta_shift": math.sqrt(shift)})
        metrics.append(row)
        if log is not None:
            log(row)
        if callback is not None:
            callback(row, net, opt)
    return net, metrics

