"""Training runs in a run directory that a killed process resumes from.

``train("rl2", ["treasure"], "small", steps=1_000_000, out="runs/t1")`` meta-trains and writes::

    runs/t1/
      config.json             the full RL2Config (also printed at the start)
      metrics.csv             one row per update (append-only, flushed every update)
      evals.jsonl             test-split evaluations, one JSON object a line (eval_every > 0)
      curve.png               mean return by update, one line per episode of the trial
      latest                  JSON naming the last complete checkpoint (written atomically)
      checkpoints/
        update_000010/
          weights.safetensors   the network (agents.checkpoint: safetensors + meta.json)
          meta.json             algorithm "rl2", architecture = RL2NetSpec as a dict, games,
                                steps, extra = {"update", "env_steps", "time_s", "config"}
          optimizer.safetensors Adam's state tensors, named "state.<param index>.<key>";
          optimizer.meta.json   its meta (algorithm "rl2-optimizer", extra["param_groups"])

A checkpoint is saved every ``checkpoint_every`` updates and at the end: the optimizer
first, then the network, then ``latest`` is replaced. ``latest`` therefore only ever names a
checkpoint whose files are all whole.

``resume=True`` reads ``config.json`` and ``latest`` and goes on from that checkpoint: the
network, Adam, the update and env-step counters are restored; torch, the level draws and the
action sampler are seeded with :func:`metarena.agents.ppo.run_seed` ``(seed, update)``; every slot
starts a fresh trial. Rows of ``metrics.csv`` and ``evals.jsonl`` after the checkpoint's
update (written before the kill) are dropped first, so no update appears twice. The saved
config is used; ``steps`` sets the new target. With no checkpoint yet the run starts over;
``resume=True`` on a missing or empty directory starts a new run there.

``metrics.csv`` columns: ``update, env_steps, time_s`` (seconds of training, resumed runs
included), ``steps_per_s`` (of the current process), ``rollout_s, update_s, episodes_ended,
policy_loss, value_loss, entropy, approx_kl, clipfrac``, then ``return_ep1 .. return_epK``
(mean return of the episodes with that index in the trial that ended during the update's
rollout; empty where none ended).

:func:`load_rl2_agent` turns a run directory, a checkpoint directory or a weights file into
an :class:`~metarena.agents.rl2.RL2Agent`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

@dataclasses.dataclass(frozen=True)
class Algorithm:
    """What ``train`` needs to know of a training algorithm."""

    name: str
    config: str  #: "module:Class" of its config dataclass
    net: str  #: "module:Class" of its network (built from its config's ``net_spec()``)
    spec: str  #: "module:Class" of the network's shape (saved as the checkpoint's architecture)
    loop: str  #: "module:function" with the contract of agents.ppo.train_rl2
    help: str
    sb3: bool = False  #: a Stable-Baselines3 model: saved and loaded through agents.baselines


ALGORITHM_TABLE = {a.name: a for a in (
    Algorithm("rl2", "agents.ppo:RL2Config", "agents.rl2:RL2Net", "agents.rl2:RL2NetSpec",
              "agents.ppo:train_rl2", "RL²: a recurrent policy meta-trained with PPO over trials"),
    Algorithm("finetune", "agents.finetune:FineTuneConfig", "agents.finetune:AdapterNet",
              "agents.finetune:AdapterNetSpec", "agents.ppo:train_rl2",
              "pretrain a backbone with PPO; it fine-tunes an adapter on each new level"),
    Algorithm("reptile", "agents.finetune:ReptileConfig", "agents.finetune:AdapterNet",
              "agents.finetune:AdapterNetSpec", "agents.finetune:train_reptile",
              "Reptile: meta-learn the starting point of that fine-tuning (--set init=PRETRAINED)"),
    Algorithm("ppo", "agents.baselines:SB3Config", "", "", "agents.baselines:train_sb3",
              "Stable-Baselines3 PPO on single episodes (no memory): a baseline", sb3=True),
    Algorithm("recurrent-ppo", "agents.baselines:SB3Config", "", "", "agents.baselines:train_sb3",
              "sb3-contrib RecurrentPPO over trials with the trial features: the peer meta-learner", sb3=True),
)}
ALGORITHMS = tuple(ALGORITHM_TABLE)


def _resolve(ref: str):
    import importlib

    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def algorithm(name: str) -> Algorithm:
    if name not in ALGORITHM_TABLE:
        raise ValueError(f"unknown algorithm {name!r}; available: {', '.join(ALGORITHMS)}")
    return ALGORITHM_TABLE[name]


def make_net(algo: str, cfg):
    """A fresh network of ``algo`` shaped as ``cfg`` says."""
    return _resolve(algorithm(algo).net)(cfg.net_spec())


CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.csv"
EVALS_NAME = "evals.jsonl"
CURVE_NAME = "curve.png"
LATEST_NAME = "latest"
CHECKPOINTS = "checkpoints"
OPTIMIZER_NAME = "optimizer.safetensors"
STAT_COLUMNS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")
CURVE_EVERY_S = 10.0  #: least seconds between two redraws of curve.png (the last one is always drawn)


# ---------------------------------------------------------------------------------------------
# small file helpers


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a temporary file beside it, fsync, ``os.replace``."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def metric_columns(episodes: int) -> list[str]:
    return ["update", "env_steps", "time_s", "steps_per_s", "rollout_s", "update_s", "episodes_ended",
            *STAT_COLUMNS, *(f"return_ep{k + 1}" for k in range(episodes))]


def read_metrics(run: str | os.PathLike) -> list[dict[str, float | None]]:
    """The rows of a run's ``metrics.csv`` as dicts of floats (None where empty); ``update``
    and ``env_steps`` as ints. A last line cut short by a kill is skipped."""
    path = Path(run) / METRICS_NAME
    if not path.exists():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for raw in reader:
            try:
                row = {k: (float(v) if v not in ("", None) else None) for k, v in raw.items() if k is not None}
                row["update"], row["env_steps"] = int(row["update"]), int(row["env_steps"])
            except (TypeError, ValueError, KeyError):
                continue
            if None in raw or len(raw) != len(reader.fieldnames or ()):
                continue
            rows.append(row)
    return rows


def _keep_lines(path: Path, keep) -> None:
    """Rewrite ``path`` (atomically) with only the complete lines for which ``keep(line)`` holds."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # a line cut short by a kill
    kept = [ln for ln in lines if ln and keep(ln)]
    _write_atomic(path, "".join(ln + "\n" for ln in kept))


def _truncate_metrics(path: Path, update: int, columns: list[str]) -> None:
    header = ",".join(columns)

    def keep(line: str) -> bool:
        if line == header:
            return True
        cells = next(csv.reader([line]))
        try:
            return len(cells) == len(columns) and int(cells[0]) <= update
        except ValueError:
            return False

    _keep_lines(path, keep)


def _truncate_evals(path: Path, update: int) -> None:
    def keep(line: str) -> bool:
        try:
            return int(json.loads(line)["update"]) <= update
        except (ValueError, KeyError, TypeError):
            return False

    _keep_lines(path, keep)


# ---------------------------------------------------------------------------------------------
# checkpoints of a run


def _optimizer_tensors(state: dict) -> tuple[dict[str, Any], list[dict]]:
    """Adam's ``state_dict()`` as flat tensors ``state.<index>.<key>`` plus its JSON param groups."""
    import torch

    tensors = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            tensors[f"state.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, json.loads(json.dumps(state["param_groups"]))


def _optimizer_state(tensors: dict, param_groups: list[dict]) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": param_groups}


def _game_entries(cfg) -> list:
    from metarena import games

    return [games.variant(name, cfg.variant) for name in cfg.games]


def _save(run: Path, algo: str, net, opt, cfg, update: int, env_steps: int, time_s: float) -> Path:
    from .checkpoint import CheckpointMeta, save_checkpoint

    folder = run / CHECKPOINTS / f"update_{update:06d}"
    entries = _game_entries(cfg)
    extra = {"update": update, "env_steps": env_steps, "time_s": time_s, "config": cfg.to_dict()}
    folder.mkdir(parents=True, exist_ok=True)
    if opt is not None:
        tensors, groups = _optimizer_tensors(opt.state_dict())
        save_checkpoint(folder / OPTIMIZER_NAME, tensors,
                        CheckpointMeta(algorithm=f"{algo}-optimizer", games=entries, steps=env_steps,
                                       extra={"update": update, "param_groups": groups}))
    if algorithm(algo).sb3:
        from .baselines import save_sb3

        save_sb3(folder, net, cfg, env_steps, extra)
    else:
        save_checkpoint(folder, net.state_dict(),
                        CheckpointMeta(algorithm=algo, architecture=dataclasses.asdict(net.spec), games=entries,
                                       steps=env_steps, extra=extra))
    latest = {"checkpoint": f"{CHECKPOINTS}/{folder.name}", "update": update, "env_steps": env_steps}
    _write_atomic(run / LATEST_NAME, json.dumps(latest, indent=2) + "\n")
    return folder


def latest_checkpoint(run: str | os.PathLike) -> Path | None:
    """The checkpoint named by a run directory's ``latest`` pointer, or None if there is none."""
    pointer = Path(run) / LATEST_NAME
    if not pointer.exists():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{pointer}: not a valid pointer (expected JSON with a 'checkpoint' key); "
                         "repair it or point it at a folder under checkpoints/") from None
    return Path(run) / name


def _spec_from(spec_cls, architecture: dict):
    fields = {f.name for f in dataclasses.fields(spec_cls)}
    kw = {k: v for k, v in architecture.items() if k in fields}
    if "hidden" in kw:
        kw["hidden"] = tuple(kw["hidden"])
    return spec_cls(**kw)


def checkpoint_path(path: str | os.PathLike) -> Path:
    """A run directory (its ``latest`` checkpoint), a checkpoint directory or a weights file."""
    p = Path(path)
    if p.is_dir() and (p / LATEST_NAME).exists():
        return latest_checkpoint(p)
    if p.is_dir() and (p / CONFIG_NAME).exists() and not (p / "meta.json").exists():
        raise ValueError(f"{p}: a run directory without a complete checkpoint yet (no '{LATEST_NAME}' file); "
                         "train longer or pick a checkpoint folder")
    return p


def load_net(path: str | os.PathLike, game: str | None = None, device: str = "cpu",
             algorithms: tuple[str, ...] = ALGORITHMS):
    """``(net, meta, checkpoint path)`` of a checkpoint trained by one of ``algorithms`` (see
    :func:`checkpoint_path` for what ``path`` may be)."""
    from .checkpoint import CheckpointError, load_checkpoint, read_meta

    p = checkpoint_path(path)
    algo = read_meta(p).algorithm
    if algo not in algorithms:
        raise CheckpointError(f"{p}: a checkpoint of algorithm '{algo}'; expected {' or '.join(algorithms)}")
    if algorithm(algo).sb3:
        from .baselines import load_sb3

        model, meta = load_sb3(p, game=game, device=device)
        return model.policy, meta, p
    state, meta = load_checkpoint(p, game=game, algorithm=algo, device=device)
    a = algorithm(algo)
    net = _resolve(a.net)(_spec_from(_resolve(a.spec), meta.architecture))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{p}: the weights do not fit the architecture in its meta ({exc})") from None
    return net.to(device).eval(), meta, p


def load_rl2(path: str | os.PathLike, game: str | None = None, device: str = "cpu"):
    """``(net, meta, checkpoint path)`` of an RL² checkpoint."""
    return load_net(path, game=game, device=device, algorithms=("rl2",))


def load_agent(path: str | os.PathLike, game: str | None = None, greedy: bool = False, device: str = "cpu",
               seed: int | None = None, strategy: str | None = None, adapt_lr: float | None = None):
    """The agent a checkpoint holds (a run directory, checkpoint directory or weights file):
    an :class:`~metarena.agents.rl2.RL2Agent` for ``rl2``; a :class:`~metarena.agents.finetune.FineTuneAgent` for
    ``finetune`` and ``reptile``, fine-tuning with the run's settings (``strategy`` overrides
    which parameters it tunes, ``adapt_lr`` their learning rate). ``game`` (optional) must be
    one it was trained on."""
    net, meta, p = load_net(path, game=game, device=device)
    if (strategy is not None or adapt_lr is not None) and meta.algorithm not in ("finetune", "reptile"):
        raise ValueError(f"a fine-tuning strategy or learning rate applies to finetune and reptile checkpoints, "
                         f"not '{meta.algorithm}'")
    if meta.algorithm == "rl2":
        from .rl2 import RL2Agent

        return RL2Agent(net, greedy=greedy, seed=seed, name=f"rl2:{p.name}", device=device)
    if algorithm(meta.algorithm).sb3:
        from .baselines import SB3Agent

        return SB3Agent(net, meta.algorithm, greedy=greedy, seed=seed, name=f"{meta.algorithm}:{p.name}",
                        episodes=int(meta.architecture.get("episodes", 4)))
    from .finetune import FineTuneAgent

    cfg = _config_from_dict(meta.algorithm, meta.extra.get("config", {}))
    if strategy is not None:
        cfg = dataclasses.replace(cfg, strategy=strategy)
    if adapt_lr is not None:
        cfg = dataclasses.replace(cfg, adapt_lr=adapt_lr)
    adapt = cfg.adapt_config()
    return FineTuneAgent(net, adapt, greedy=greedy, seed=seed, device=device,
                         name=f"{meta.algorithm}-{adapt.strategy}:{p.name}")


def load_rl2_agent(path: str | os.PathLike, game: str | None = None, greedy: bool = False,
                   device: str = "cpu", seed: int | None = None):
    """An :class:`~metarena.agents.rl2.RL2Agent` from a run directory, checkpoint directory or file."""
    from .rl2 import RL2Agent

    net, _, p = load_rl2(path, game=game, device=device)
    return RL2Agent(net, greedy=greedy, seed=seed, name=f"rl2:{p.name}", device=device)


# ---------------------------------------------------------------------------------------------
# the learning curve


def plot_curve(run: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Draw mean return by update (one line per episode of the trial) from ``metrics.csv``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    run = Path(run)
    rows = read_metrics(run)
    out = Path(path) if path is not None else run / CURVE_NAME
    fig = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    keys = sorted((k for k in (rows[0] if rows else {}) if k.startswith("return_ep")),
                  key=lambda k: int(k.removeprefix("return_ep")))
    x = np.array([r["env_steps"] for r in rows], dtype=float)
    for k in keys:
        y = np.array([np.nan if r[k] is None else r[k] for r in rows], dtype=float)
        ax.plot(x, y, lw=1.2, label=f"episode {k.removeprefix('return_ep')}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean return (episodes ended in the update)")
    ax.set_title(f"{run.name}: {len(rows)} updates", fontsize=10)
    ax.grid(True, alpha=0.3)
    if keys:
        ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------------------------------------
# the run


def _wandb_run(run: Path, cfg, name: str):
    """An offline wandb run unless WANDB_API_KEY is set; the id is kept in the run directory."""
    os.environ.setdefault("WANDB_MODE", "online" if os.environ.get("WANDB_API_KEY") else "offline")
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    import wandb as _wandb

    id_file = run / "wandb_id"
    if id_file.exists():
        run_id = id_file.read_text(encoding="utf-8").strip()
    else:
        run_id = uuid.uuid4().hex[:12]
        _write_atomic(id_file, run_id + "\n")
    return _wandb.init(project="metarena", name=name, id=run_id, resume="allow", dir=str(run),
                       config=cfg.to_dict(), mode=os.environ["WANDB_MODE"])


class _TimeUp(Exception):
    """Raised from the update callback when the run's minutes are spent."""


def _agent(algo: str, net, cfg, device):
    """The agent a network in training plays as (for the periodic evaluations)."""
    if algo == "rl2":
        from .rl2 import RL2Agent

        return RL2Agent(net, greedy=False, seed=cfg.seed, name="rl2", device=device)
    if algorithm(algo).sb3:
        from .baselines import SB3Agent

        return SB3Agent(net, algo, seed=cfg.seed, name=algo, episodes=cfg.episodes)
    import copy

    from .finetune import FineTuneAgent

    return FineTuneAgent(copy.deepcopy(net).cpu(), cfg.adapt_config(), seed=cfg.seed, name=algo)


def make_config(algo: str, games_: list[str], variant, steps, envs, device, seed, overrides: dict):
    """The config of ``algo`` for these arguments and ``overrides`` (``--set``: any other field;
    JSON lists become tuples); a ValueError names an unknown or misplaced setting."""
    config_cls = _resolve(algorithm(algo).config)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    reserved = {"games", "variant", "total_steps", "envs", "device", "seed", "algo"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown {algo} settings {unknown}; known: {sorted(fields - reserved)}")
    clash = sorted(set(overrides) & reserved)
    if clash:
        raise ValueError(f"pass {clash} as train() arguments, not as overrides")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}  # JSON lists: tuples
    if envs is not None:
        kw["envs"] = int(envs)
    if algorithm(algo).sb3:
        kw["algo"] = algo
    cfg = config_cls(games=tuple(games_), variant=variant, total_steps=int(steps), device=device, seed=int(seed),
                     **kw)
    cfg.validate()
    return cfg


def _config_from_dict(algo: str, d: dict):
    config_cls = _resolve(algorithm(algo).config)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in fields}
    return config_cls(**kw)


def _progress(enabled: bool, total: int, done: int, label: str = "train"):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not enabled:
        return None
    bar = Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                   TextColumn("{task.fields[rate]}"), TextColumn("return {task.fields[ret]}"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    bar.add_task("train", total=total, completed=done, rate="- steps/s", ret="-")
    return bar


def train(algo: str, games: list[str], variant: str | None, steps: int, out: str | os.PathLike,
          envs: int | None = None, device: str = "auto", wandb: bool = False, resume: bool = False, seed: int = 0,
          checkpoint_every: int = 10, eval_every: int = 0, eval_levels: int = 100, progress: bool = True,
          minutes: float | None = None, **overrides) -> Path:
    """Train ``algo`` on ``games`` for ``steps`` env steps in the run directory ``out``; returns
    the path of the final checkpoint. See the module docstring for the directory's layout and
    how ``resume`` works. ``overrides`` are further fields of the algorithm's config
    (:class:`~metarena.agents.ppo.RL2Config` for rl2: ``chunk=16, episodes=2, lr=1e-3, ...``); on resume
    the saved config is used instead. ``envs`` None: the algorithm's default.

    ``device``: "auto" = cuda if available, else cpu. ``eval_every`` > 0: every that many
    updates, evaluate the network on the first ``eval_levels`` test levels of every game
    (:func:`metarena.agents.evaluate.evaluate`) and append the result to ``evals.jsonl``.
    ``wandb``: also log to Weights & Biases (offline unless ``WANDB_API_KEY`` is set).
    ``minutes``: also stop (with a checkpoint) after the first update that ends that many
    minutes of wall-clock after the call, setup included.
    """
    began = time.perf_counter()
    if minutes is not None and minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    spec = algorithm(algo)
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if isinstance(games, str):
        games = [games]
    from rich.console import Console

    from .checkpoint import load_checkpoint
    from .ppo import _device

    run = Path(out)
    console = Console(stderr=True)
    if run.exists() and not run.is_dir():
        raise ValueError(f"{run} is a file, not a run directory; pick another --out")
    nonempty = run.is_dir() and any(run.iterdir())
    if nonempty and not resume:
        raise ValueError(f"{run} is not empty (an earlier run?). Continue it with --resume, or pick another "
                         "--out; nothing was changed")
    resuming = resume and (run / CONFIG_NAME).exists()
    if resume and nonempty and not resuming:
        raise ValueError(f"{run} has no {CONFIG_NAME}: not a run directory to resume; pick another --out")

    if resuming:
        saved = json.loads((run / CONFIG_NAME).read_text(encoding="utf-8"))
        if saved.get("algorithm", "rl2") != algo:
            raise ValueError(f"{run} is a run of --algo {saved.get('algorithm', 'rl2')}, not {algo}; "
                             "resume it with that algorithm")
        cfg = _config_from_dict(algo, saved)
        cfg = dataclasses.replace(cfg, total_steps=int(steps), device=device)
    else:
        cfg = make_config(algo, games, variant, steps, envs, device, seed, overrides)
    dev = _device(cfg.device)
    columns = metric_columns(cfg.episodes)

    net = opt_state = None
    start_update = start_steps = 0
    time_offset = 0.0
    if resuming:
        ckpt = latest_checkpoint(run)
        if ckpt is not None:
            net, meta, _ = load_net(ckpt, device=str(dev), algorithms=(algo,))
            if (ckpt / OPTIMIZER_NAME).exists():
                tensors, opt_meta = load_checkpoint(ckpt / OPTIMIZER_NAME, algorithm=f"{algo}-optimizer",
                                                    device=str(dev))
                opt_state = _optimizer_state(tensors, opt_meta.extra["param_groups"])
            start_update, start_steps = int(meta.extra["update"]), int(meta.extra["env_steps"])
            time_offset = float(meta.extra.get("time_s", 0.0))
        _truncate_metrics(run / METRICS_NAME, start_update, columns)
        _truncate_evals(run / EVALS_NAME, start_update)
        console.print(f"resuming {run} at update {start_update}, {start_steps:,} env steps "
                      f"(target {cfg.total_steps:,})")
    else:
        run.mkdir(parents=True, exist_ok=True)
        _write_atomic(run / CONFIG_NAME, json.dumps({"algorithm": algo, **cfg.to_dict()}, indent=2) + "\n")
        init = getattr(cfg, "init", None)
        if init:
            net, _, _ = load_net(init, device=str(dev), algorithms=("finetune", "reptile"))
    console.print_json(json.dumps(cfg.to_dict()))

    metrics_path = run / METRICS_NAME
    new_file = not metrics_path.exists() or metrics_path.stat().st_size == 0
    metrics_fh = open(metrics_path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (closed below)
    writer = csv.writer(metrics_fh)
    if new_file:
        writer.writerow(columns)
        metrics_fh.flush()
    logger = _wandb_run(run, cfg, run.name) if wandb else None
    bar = _progress(progress, cfg.total_steps, start_steps, algo)
    state = {"last_curve": 0.0, "final": None, "net": net, "opt": None, "row": None}

    def on_update(row: dict, net_, opt) -> None:
        update, env_steps = row["update"], row["steps"]
        time_s = time_offset + row["time_s"]
        rets = row["return_by_episode"]
        writer.writerow([update, env_steps, f"{time_s:.3f}", f"{row['steps_per_s']:.1f}",
                         f"{row['rollout_s']:.4f}", f"{row['update_s']:.4f}", row["episodes_ended"],
                         *(f"{row[k]:.6g}" for k in STAT_COLUMNS), *("" if r is None else f"{r:.6g}" for r in rets)])
        metrics_fh.flush()
        os.fsync(metrics_fh.fileno())
        state.update(net=net_, opt=opt, row=row)
        log = {"env_steps": env_steps, "steps_per_s": row["steps_per_s"], **{k: row[k] for k in STAT_COLUMNS},
               **{f"return_ep{k + 1}": r for k, r in enumerate(rets) if r is not None}}
        if eval_every > 0 and update % eval_every == 0:
            log.update(_evaluate(net_, update, env_steps))
        if update % checkpoint_every == 0:
            _checkpoint(net_, opt, update, env_steps, time_s)
        if logger is not None:
            logger.log(log, step=env_steps)
        if minutes is not None and time.perf_counter() - began >= 60.0 * minutes:
            raise _TimeUp  # the last update's checkpoint is written below, as at a normal end
        if bar is not None:
            known = [r for r in rets if r is not None]
            bar.update(bar.task_ids[0], completed=env_steps, rate=f"{row['steps_per_s']:,.0f} steps/s",
                       ret="-" if not known else " ".join(f"{r:.2f}" for r in rets if r is not None))

    def _checkpoint(net_, opt, update: int, env_steps: int, time_s: float, force_curve: bool = False) -> None:
        state["final"] = _save(run, algo, net_, opt, cfg, update, env_steps, time_s)
        now = time.perf_counter()
        if force_curve or now - state["last_curve"] >= CURVE_EVERY_S:
            plot_curve(run)
            state["last_curve"] = now

    def _evaluate(net_, update: int, env_steps: int) -> dict:
        from .evaluate import evaluate

        agent = _agent(algo, net_, cfg, dev)
        out_log = {}
        with open(run / EVALS_NAME, "a", encoding="utf-8") as fh:
            for name in cfg.games:
                result = evaluate(agent, name, cfg.variant, split="test", levels=eval_levels,
                                  episodes=cfg.episodes, seed=cfg.seed)
                fh.write(json.dumps({"update": update, "env_steps": env_steps, "result": result}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                norm = result["per_episode"]["normalized"]
                for k, v in enumerate(norm):
                    if v is not None:
                        out_log[f"eval/{name}/normalized_ep{k + 1}"] = v
        return out_log

    try:
        if bar is not None:
            bar.start()
        if spec.sb3:
            loop_kw = {"policy_state": None if net is None else net.state_dict()}
        else:
            loop_kw = {"net": net if net is not None else make_net(algo, cfg)}
        _resolve(spec.loop)(cfg, **loop_kw, optimizer_state=opt_state, start_update=start_update,
                            start_steps=start_steps, callback=on_update)
    except _TimeUp:
        console.print(f"stopping: {minutes:g} minutes are up")
    finally:
        if bar is not None:
            bar.stop()
        metrics_fh.close()
        if logger is not None:
            logger.finish()
    row = state["row"]
    if row is not None and row["update"] % checkpoint_every:
        _checkpoint(state["net"], state["opt"], row["update"], row["steps"], time_offset + row["time_s"],
                    force_curve=True)
    elif row is not None or not (run / CURVE_NAME).exists():
        plot_curve(run)
    final = state["final"] or latest_checkpoint(run)
    console.print(f"done: {run} (checkpoint {final})")
    return final
