"""The one registry: algorithm names and agent names, each mapped to real objects.

**Algorithms** (``metarena train --algo NAME``): :data:`ALGORITHMS` maps each name to an
:class:`Algorithm`, which holds its config class, how to make its network, its training
loop, how to save and load a checkpoint of it, and the agent a network of it plays as.

**Agents** (``--agent NAME`` wherever a command takes one): :func:`make_agent` turns a name
into an agent:

- a reference agent: ``oracle``, ``uninformed``, ``scripted``, ``random``, ``stay``;
- a ceiling planner: ``recall``, ``window-recall`` (one per game);
- a shipped agent: ``rl2`` (``agents/zoo/rl2-<game>/``), or any folder of ``agents/zoo/``
  by its name (a multi-game agent such as ``rl2-all``);
- ``ppo-scratch``: SB3 PPO learning each level from scratch (the benchmark only);
- the path of a run directory, a checkpoint directory or a weights file, of any algorithm;
- an agent of your own, ``FILE.py:Class`` or ``module:Class`` (:mod:`metarena.agents.external`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from metarena import games

from .baselines import ALGOS as SB3_ALGOS
from .baselines import SB3Agent, SB3Config, ScratchPPO, load_sb3, save_sb3, train_sb3
from .checkpoint import CheckpointError, CheckpointMeta, load_checkpoint, read_meta, save_checkpoint
from .config import from_dict, from_settings
from .external import external_source, is_external, make_external, spec_exists
from .finetune import AdapterNet, AdapterNetSpec, FineTuneAgent, FineTuneConfig, ReptileConfig, train_reptile
from .imitation import CEILING, imitated_games
from .planners import PLANNERS, make_planner
from .ppo import RL2Config, members, train_rl2
from .reference import REFERENCE_AGENTS, ReferenceAgent
from .rl2 import RL2Agent, RL2Net, RL2NetSpec
from .rundir import checkpoint_path

ZOO = Path(__file__).parent / "zoo"
#: agents that only the adaptation benchmark plays (they learn inside ``metarena eval``)
EVAL_ONLY = ("ppo-scratch",)


# ---------------------------------------------------------------------------------------------
# algorithms


@dataclass(frozen=True)
class Algorithm:
    """What training, checkpoints and the agent loaders need to know of an algorithm."""

    name: str
    help: str
    config: type  #: its config dataclass
    #: ``net(cfg)``: a fresh network shaped as the config says (None: the loop builds its own)
    net: Callable[[Any], Any] | None
    #: the training loop, ``loop(cfg, net=..., optimizer_state=..., start_update=...,
    #: start_steps=..., callback=...)``, with the contract of :func:`metarena.agents.ppo.train_rl2`
    loop: Callable[..., Any]
    #: ``save(folder, net, cfg, steps, extra)``: a checkpoint of the network in training
    save: Callable[..., Path]
    #: ``load(path, game, device) -> (net, meta)``: the network of a checkpoint
    load: Callable[..., tuple[Any, CheckpointMeta]]
    #: ``agent(net, cfg, *, greedy, seed, name, device)``: the agent a network plays as
    agent: Callable[..., Any]
    #: ``update_size(cfg) -> (env steps, "how they come about")`` of one update, or None where
    #: it varies (a run ends after the update that reaches its target, rounding it up)
    update_size: Callable[[Any], tuple[int, str] | None] = lambda cfg: None

    def train(self, cfg, net=None, **kw):
        """Run the training loop from ``net`` (None: a fresh network); ``kw`` as for ``loop``."""
        if net is None and self.net is not None:
            torch.manual_seed(cfg.seed)  # a fresh network's weights follow the seed, as all else does
            net = self.net(cfg)
        return self.loop(cfg, net=net, **kw)


def _torch_saver(algo: str):
    def save(folder: Path, net, cfg, steps: int, extra: dict) -> Path:
        meta = CheckpointMeta(algorithm=algo, architecture=dataclasses.asdict(net.spec), steps=steps, extra=extra,
                              games=[games.variant(name, v) for name, v in members(cfg)])
        return save_checkpoint(folder, net.state_dict(), meta)

    return save


def _torch_loader(algo: str, net_cls: type, spec_cls: type):
    def load(path: Path, game: str | None = None, device: str = "cpu"):
        state, meta = load_checkpoint(path, game=game, algorithm=algo, device=device)
        fields = {f.name for f in dataclasses.fields(spec_cls)}
        kw = {k: v for k, v in meta.architecture.items() if k in fields}
        if "hidden" in kw:
            kw["hidden"] = tuple(kw["hidden"])
        net = net_cls(spec_cls(**kw))
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: the weights do not fit the architecture in its meta ({exc})") from None
        return net.to(device).eval(), meta

    return load


def _load_sb3(path: Path, game: str | None = None, device: str = "cpu"):
    model, meta = load_sb3(path, game=game, device=device)
    return model.policy, meta


def _rollout_size(cfg) -> tuple[int, str]:
    return cfg.envs * cfg.chunk, f"envs {cfg.envs} x chunk {cfg.chunk}"


def _sb3_size(cfg) -> tuple[int, str]:
    return cfg.steps_per_update, f"envs {cfg.envs} x n_steps {cfg.rollout_steps()}"


def _train_rl2(cfg, **kw):
    """:func:`train_rl2`, where any agent :func:`make_agent` knows can be the ``teacher``: made here,
    once for each game it labels, so that a teacher that cannot be made fails before the levels
    are built."""
    teachers = {}
    if cfg.imitate > 0 and cfg.teacher != CEILING:
        teachers = {g: make_agent(cfg.teacher, g, seed=cfg.seed)
                    for g in imitated_games(cfg.games, cfg.imitate_games, cfg.teacher)}
    return train_rl2(cfg, make_teacher=lambda name, game, seed=None: teachers[game], **kw)


def _rl2_agent(net, cfg, *, greedy=False, seed=None, name="rl2", device="cpu"):
    return RL2Agent(net, greedy=greedy, seed=seed, name=name, device=device)


def _finetune_agent(net, cfg, *, greedy=False, seed=None, name="finetune", device="cpu"):
    # a copy: the agent freezes its network, which may be the one in training
    return FineTuneAgent(copy.deepcopy(net).cpu(), cfg.adapt_config(), greedy=greedy, seed=seed, device=device,
                         name=name)


def _sb3_agent(net, cfg, *, greedy=False, seed=None, name="ppo", device="cpu"):
    return SB3Agent(net, cfg.algo, greedy=greedy, seed=seed, name=name, episodes=cfg.episodes)


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("rl2", "RL²: a recurrent policy meta-trained with PPO over trials", RL2Config,
              lambda cfg: RL2Net(cfg.net_spec()), _train_rl2, _torch_saver("rl2"),
              _torch_loader("rl2", RL2Net, RL2NetSpec), _rl2_agent, _rollout_size),
    Algorithm("finetune", "pretrain a backbone with PPO; it fine-tunes an adapter on each new level",
              FineTuneConfig, lambda cfg: AdapterNet(cfg.net_spec()), _train_rl2, _torch_saver("finetune"),
              _torch_loader("finetune", AdapterNet, AdapterNetSpec), _finetune_agent, _rollout_size),
    Algorithm("reptile", "Reptile: meta-learn the starting point of that fine-tuning (--set init=PRETRAINED)",
              ReptileConfig, lambda cfg: AdapterNet(cfg.net_spec()), train_reptile, _torch_saver("reptile"),
              _torch_loader("reptile", AdapterNet, AdapterNetSpec), _finetune_agent),
    Algorithm("ppo", "Stable-Baselines3 PPO on single episodes (no memory): a baseline", SB3Config, None,
              train_sb3, save_sb3, _load_sb3, _sb3_agent, _sb3_size),
    Algorithm("recurrent-ppo", "sb3-contrib RecurrentPPO over trials with the trial features: the peer "
              "meta-learner", SB3Config, None, train_sb3, save_sb3, _load_sb3, _sb3_agent, _sb3_size),
)}
assert set(SB3_ALGOS) <= set(ALGORITHMS)


def algorithm(name: str) -> Algorithm:
    """The algorithm ``name``; a ValueError lists the known ones."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; available: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


#: settings that are train() arguments, never ``--set`` overrides
RESERVED = {"games", "variant", "total_steps", "envs", "device", "seed", "algo"}


def make_config(algo: str, games_: list[str], variant, steps, envs, device, seed, overrides: dict):
    """The config of ``algo`` for these arguments and ``overrides`` (``--set``: any other field;
    JSON lists become tuples), validated; a ValueError names an unknown or misplaced setting
    (with the likely one meant) or a value out of its range."""
    fixed = dict(games=tuple(games_), variant=variant, total_steps=int(steps), device=device, seed=int(seed))
    if envs is not None:
        fixed["envs"] = int(envs)
    if algo in SB3_ALGOS:
        fixed["algo"] = algo
    return from_settings(algorithm(algo).config, overrides, reserved=RESERVED, **fixed)


def resumed_config(algo: str, saved: dict, given: dict, overrides: dict):
    """The config a resumed run of ``algo`` would go on with, and how it differs from the saved one.

    ``saved``: the run's ``config.json``; ``given``: the fields the caller's own arguments set
    (``games``, ``variant``, ``envs``, ``seed``, ``device``, ``total_steps``: only those the
    user gave); ``overrides``: ``--set`` settings. Everything else keeps its saved value. The
    result is validated as :func:`make_config`'s is. Returns ``(cfg, {field: (saved value, new
    value)})`` for every field whose value differs (in JSON types), so a value that equals the
    saved one changes nothing."""
    cls = algorithm(algo).config
    base = config_from_dict(algo, saved).to_dict()
    fixed = {k: v for k, v in base.items() if k in RESERVED}
    fixed.update(given)
    settings = {k: v for k, v in base.items() if k not in RESERVED}
    settings.update(overrides)
    cfg = from_settings(cls, settings, reserved=RESERVED, **fixed)
    new = cfg.to_dict()
    return cfg, {k: (base[k], new[k]) for k in new if new[k] != base[k]}


def config_from_dict(algo: str, d: dict):
    """The config of ``algo`` saved as ``d`` (``config.json``, a checkpoint's ``extra["config"]``)."""
    return from_dict(algorithm(algo).config, d, ignore=("algorithm",))


def load_net(path: str | os.PathLike, game: str | None = None, device: str = "cpu",
             algorithms: tuple[str, ...] | None = None):
    """``(net, meta, checkpoint path)`` of the checkpoint ``path`` names (a run directory, a
    checkpoint directory or a weights file), trained by one of ``algorithms`` (default: any);
    ``game`` (optional) must be one it was trained on."""
    p = checkpoint_path(path)
    algo = read_meta(p).algorithm
    allowed = tuple(ALGORITHMS) if algorithms is None else algorithms
    if algo not in allowed:
        raise CheckpointError(f"{p}: a checkpoint of algorithm '{algo}'; expected {' or '.join(allowed)}")
    net, meta = ALGORITHMS[algo].load(p, game=game, device=device)
    return net, meta, p


# ---------------------------------------------------------------------------------------------
# agents


def _shipped() -> dict[str, dict[str | None, Path]]:
    """Shipped agent name -> game (None: every game it was trained on) -> folder."""
    out: dict[str, dict[str | None, Path]] = {}
    for folder in sorted(ZOO.glob("*/meta.json")) if ZOO.exists() else []:
        folder = folder.parent
        trained = sorted({g["game"] for g in json.loads((folder / "meta.json").read_text(encoding="utf-8"))["games"]})
        if len(trained) == 1 and folder.name.endswith(f"-{trained[0]}"):  # one game (in one or more variants)
            out.setdefault(folder.name.removesuffix(f"-{trained[0]}"), {})[trained[0]] = folder
        else:
            out.setdefault(folder.name, {})[None] = folder
    return out


def shipped_path(name: str, game: str | None) -> Path:
    """The folder of the shipped agent ``name`` for ``game``."""
    by_game = _shipped().get(name, {})
    if None in by_game:
        return by_game[None]
    if game is None:
        raise ValueError(f"the shipped agent '{name}' exists once per game: say which game")
    if game not in by_game:
        have = sorted(p.name for p in ZOO.glob(f"{name}-*")) if ZOO.exists() else []
        raise ValueError(f"no shipped '{name}' agent for {game} (shipped: {', '.join(have) or 'none'}); "
                         "train one with `metarena train` and pass its run directory")
    return by_game[game]


def agent_names() -> list[str]:
    """Every agent name :func:`make_agent` knows (a path is also accepted)."""
    return [*REFERENCE_AGENTS, *PLANNERS, *_shipped(), *EVAL_ONLY]


def is_agent_name(name: str) -> bool:
    """Whether :func:`make_agent` can resolve ``name`` (a known name, an existing path, or an
    external spec whose file or module exists: nothing is imported)."""
    return name in agent_names() or Path(name).exists() or spec_exists(name)


def agent_problem(name: str) -> str | None:
    """None when :func:`make_agent` can resolve ``name``; else what is wrong with it, in words
    that name the missing file or module rather than only "unknown agent"."""
    if is_agent_name(name):
        return None
    known = (f"choose from {', '.join(agent_names())}, or give the path of a trained checkpoint or run "
             "directory, or your own agent as path/to/file.py:Class or module:Class")
    if is_external(name):
        left = name.rpartition(":")[0]
        if left.endswith(".py"):
            return f"agent '{name}': no such file: {left}"
        return f"agent '{name}': no module named '{left.split('.')[0]}' (is it installed?)"
    if "/" in name or os.sep in name or name.endswith((".safetensors", ".json", ".py")):
        hint = " (your own agent needs its class too: FILE.py:Class)" if name.endswith(".py") else ""
        return f"agent '{name}': no such file or directory{hint}"
    return f"unknown agent '{name}'; {known}"


def make_agent(name: str, game: str | None = None, *, seed: int | None = None, strategy: str | None = None,
               adapt_lr: float | None = None, greedy: bool = False, device: str = "cpu"):
    """The agent called ``name`` (see the module docstring), for ``game`` where it matters
    (ceiling planners and shipped agents exist per game; a checkpoint must have been trained on
    it). ``strategy`` and ``adapt_lr`` override a finetune or reptile checkpoint's fine-tuning;
    ``greedy`` makes a trained agent take its most likely action."""
    tunable = (name not in agent_names() and not is_external(name)) or name in _shipped()
    if (strategy is not None or adapt_lr is not None) and not tunable:
        raise ValueError(f"'{name}' does not fine-tune; --strategy and --adapt-lr apply to finetune and "
                         "reptile checkpoints")
    if is_external(name):  # runs the file's code in this process; the arena uses a worker process
        return _untrained(make_external(name, seed), greedy)
    if name in REFERENCE_AGENTS:
        return _untrained(ReferenceAgent(name, seed), greedy)
    if name in PLANNERS:
        return _untrained(make_planner(name, game), greedy)
    if name in EVAL_ONLY:
        return _untrained(ScratchPPO(), greedy)
    shipped = _shipped()
    if name in shipped:
        agent = load_agent(shipped_path(name, game), game, seed=seed, strategy=strategy, adapt_lr=adapt_lr,
                           greedy=greedy, device=device)
        agent.name = name
        return agent
    if Path(name).exists():
        return load_agent(name, game, seed=seed, strategy=strategy, adapt_lr=adapt_lr, greedy=greedy, device=device)
    raise ValueError(f"unknown agent '{name}'; choose from {', '.join(agent_names())}, "
                     "or give the path of a trained checkpoint or run directory")


def _untrained(agent, greedy: bool):
    if greedy:
        raise ValueError(f"--greedy applies to trained agents, not '{agent.name}'")
    return agent


def load_agent(path: str | os.PathLike, game: str | None = None, *, seed: int | None = None,
               strategy: str | None = None, adapt_lr: float | None = None, greedy: bool = False,
               device: str = "cpu"):
    """The agent a checkpoint holds (a run directory, checkpoint directory or weights file),
    named ``<algorithm>:<checkpoint folder>``."""
    net, meta, p = load_net(path, game=game, device=device)
    algo = ALGORITHMS[meta.algorithm]
    tunes = meta.algorithm in ("finetune", "reptile")
    if (strategy is not None or adapt_lr is not None) and not tunes:
        raise ValueError(f"a fine-tuning strategy or learning rate applies to finetune and reptile checkpoints, "
                         f"not '{meta.algorithm}'")
    if meta.algorithm in SB3_ALGOS:  # the policy's architecture records the K it was trained for
        cfg = SB3Config(algo=meta.algorithm, episodes=int(meta.architecture.get("episodes", 4)))
    else:
        cfg = config_from_dict(meta.algorithm, meta.extra.get("config", {}))
    if strategy is not None:
        cfg = dataclasses.replace(cfg, strategy=strategy)
    if adapt_lr is not None:
        cfg = dataclasses.replace(cfg, adapt_lr=adapt_lr)
    name = f"{meta.algorithm}-{cfg.strategy}:{p.name}" if tunes else f"{meta.algorithm}:{p.name}"
    return algo.agent(net, cfg, greedy=greedy, seed=seed, name=name, device=device)


def weights_hash(name: str, game: str | None = None) -> str | None:
    """What identifies the weights the agent ``name`` plays with: the SHA-256 of a trained
    agent's tensors (from its checkpoint's meta), of an external agent's source file, or None
    for an agent without weights (reference agents, planners)."""
    if name in REFERENCE_AGENTS or name in PLANNERS or name in EVAL_ONLY:
        return None
    if is_external(name):
        source = external_source(name)
        return None if source is None else hashlib.sha256(source.read_bytes()).hexdigest()
    path = shipped_path(name, game) if name in _shipped() else checkpoint_path(name)
    return read_meta(path).data_sha256


__all__ = ["ALGORITHMS", "Algorithm", "algorithm", "make_config", "resumed_config", "config_from_dict", "load_net",
           "make_agent", "load_agent", "agent_names", "is_agent_name", "shipped_path", "weights_hash", "ZOO",
           "EVAL_ONLY"]
