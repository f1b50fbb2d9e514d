"""The training driver: one run of any registered algorithm in a run directory.

``train("rl2", ["treasure"], "small", steps=1_000_000, out="runs/t1")`` meta-trains and writes
the run directory of :mod:`metarena.agents.rundir`: the config, one metrics row per update,
checkpoints every ``checkpoint_every`` updates and at the end, the learning curve, and (with
``eval_every``) test-split evaluations.

``resume=True`` reads ``config.json`` and ``latest`` and goes on from that checkpoint: the
network, Adam, the update and env-step counters are restored; torch, the level draws and the
action sampler are seeded with :func:`metarena.agents.ppo.run_seed` ``(seed, update)``; every
slot starts a fresh trial. Rows written after the checkpoint (before a kill) are dropped
first, so no update appears twice. The saved config is used; ``steps`` sets the new target.
With no checkpoint yet the run starts over; ``resume=True`` on a missing or empty directory
starts a new run there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from pathlib import Path

from metarena import games as _games

from .evaluate import evaluate
from .registry import Algorithm, algorithm, config_from_dict, load_net, make_config
from .rundir import STAT_COLUMNS, RunDir, load_optimizer, metric_cells, metric_columns, save_optimizer, write_atomic

CURVE_EVERY_S = 10.0  #: least seconds between two redraws of curve.png (the last one is always drawn)


class _TimeUp(Exception):
    """Raised from the update callback when the run's minutes are spent."""


def train(algo: str, games: list[str], variant: str | None, steps: int, out: str | os.PathLike,
          envs: int | None = None, device: str = "auto", wandb: bool = False, resume: bool = False, seed: int = 0,
          checkpoint_every: int = 10, eval_every: int = 0, eval_levels: int = 100, progress: bool = True,
          minutes: float | None = None, **overrides) -> Path:
    """Train ``algo`` on ``games`` for ``steps`` env steps in the run directory ``out``; returns
    the path of the final checkpoint. ``overrides`` are further fields of the algorithm's config
    (``chunk=16, episodes=2, lr=1e-3, ...`` for rl2); on resume the saved config is used instead.
    ``envs`` None: the algorithm's default.

    ``device``: "auto" = cuda if available, else cpu. ``eval_every`` > 0: every that many
    updates, evaluate the network on the first ``eval_levels`` test levels of every game
    (:func:`metarena.agents.evaluate.evaluate`) and append the result to ``evals.jsonl``.
    ``wandb``: also log to Weights & Biases (offline unless ``WANDB_API_KEY`` is set).
    ``minutes``: also stop (with a checkpoint) after the first update that ends that many
    minutes of wall-clock after the call, setup included.
    """
    began = time.perf_counter()
    from rich.console import Console

    from .ppo import _device

    # 1. check the arguments before anything is written
    if minutes is not None and minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    spec = algorithm(algo)
    games = [games] if isinstance(games, str) else list(games)
    run = RunDir(out)
    console = Console(stderr=True)
    if not run.is_empty() and not resume:
        raise ValueError(f"{run.path} is not empty (an earlier run?). Continue it with --resume, or pick another "
                         "--out; nothing was changed")
    resuming = resume and run.has_config()
    if resume and not run.is_empty() and not resuming:
        raise ValueError(f"{run.path} has no config.json: not a run directory to resume; pick another --out")

    # 2. the config: the saved one when resuming, else a new one from the arguments
    if resuming:
        saved_algo, saved = run.read_config()
        if saved_algo != algo:
            raise ValueError(f"{run.path} is a run of --algo {saved_algo}, not {algo}; resume it with that algorithm")
        cfg = dataclasses.replace(config_from_dict(algo, saved), total_steps=int(steps), device=device)
    else:
        cfg = make_config(algo, games, variant, steps, envs, device, seed, overrides)
    dev = str(_device(cfg.device))

    # 3. where training starts: a checkpoint of this run, a pretrained network, or nothing
    net, opt_state, start_update, start_steps, time_offset = None, None, 0, 0, 0.0
    if resuming:
        ckpt = run.latest()
        if ckpt is not None:
            net, meta, _ = load_net(ckpt, device=dev, algorithms=(algo,))
            opt_state = load_optimizer(ckpt, algo, dev)
            start_update, start_steps = int(meta.extra["update"]), int(meta.extra["env_steps"])
            time_offset = float(meta.extra.get("time_s", 0.0))
        run.truncate(start_update, metric_columns(cfg.episodes))
        console.print(f"resuming {run.path} at update {start_update}, {start_steps:,} env steps "
                      f"(target {cfg.total_steps:,})")
    else:
        run.create(algo, cfg.to_dict())
        if getattr(cfg, "init", None):
            net, _, _ = load_net(cfg.init, device=dev, algorithms=("finetune", "reptile"))
    console.print_json(json.dumps(cfg.to_dict()))

    # 4. train, logging and checkpointing after every update
    session = _Session(run, spec, cfg, dev, checkpoint_every, eval_every, eval_levels, time_offset, began, minutes,
                       wandb=wandb, progress=progress, start_steps=start_steps)
    try:
        spec.train(cfg, net, optimizer_state=opt_state, start_update=start_update, start_steps=start_steps,
                   callback=session.on_update)
    except _TimeUp:
        console.print(f"stopping: {minutes:g} minutes are up")
    finally:
        session.close()
    final = session.finish()
    console.print(f"done: {run.path} (checkpoint {final})")
    return final


class _Session:
    """What happens after each update of one training process: the metrics row, checkpoints,
    evaluations, the curve, wandb, the progress bar and the time limit."""

    def __init__(self, run: RunDir, spec: Algorithm, cfg, device: str, checkpoint_every: int, eval_every: int,
                 eval_levels: int, time_offset: float, began: float, minutes: float | None, *, wandb: bool,
                 progress: bool, start_steps: int):
        self.run, self.spec, self.cfg, self.device = run, spec, cfg, device
        self.checkpoint_every, self.eval_every, self.eval_levels = checkpoint_every, eval_every, eval_levels
        self.time_offset, self.began, self.minutes = time_offset, began, minutes
        self.metrics = run.open_metrics(metric_columns(cfg.episodes))
        self.logger = _wandb_run(run.path, cfg, run.path.name) if wandb else None
        self.bar = _progress(cfg.total_steps, start_steps, spec.name) if progress else None
        if self.bar is not None:
            self.bar.start()
        self.last = None  # (row, net, optimizer) of the last update
        self.final: Path | None = None
        self.last_curve = 0.0

    def on_update(self, row: dict, net, opt) -> None:
        update, env_steps = row["update"], row["steps"]
        time_s = self.time_offset + row["time_s"]
        self.metrics.write(metric_cells(row, time_s))
        self.last = (row, net, opt)
        rets = row["return_by_episode"]
        log = {"env_steps": env_steps, "steps_per_s": row["steps_per_s"], **{k: row[k] for k in STAT_COLUMNS},
               **{f"return_ep{k + 1}": r for k, r in enumerate(rets) if r is not None}}
        if self.eval_every > 0 and update % self.eval_every == 0:
            log.update(self.evaluate(net, update, env_steps))
        if update % self.checkpoint_every == 0:
            self.checkpoint(net, opt, update, env_steps, time_s)
        if self.logger is not None:
            self.logger.log(log, step=env_steps)
        if self.minutes is not None and time.perf_counter() - self.began >= 60.0 * self.minutes:
            raise _TimeUp  # the last update's checkpoint is written by finish(), as at a normal end
        if self.bar is not None:
            known = [f"{r:.2f}" for r in rets if r is not None]
            self.bar.update(self.bar.task_ids[0], completed=env_steps, rate=f"{row['steps_per_s']:,.0f} steps/s",
                            ret=" ".join(known) or "-")

    def checkpoint(self, net, opt, update: int, env_steps: int, time_s: float, force_curve: bool = False) -> None:
        """Optimizer, network, then the ``latest`` pointer (and the curve, at most every 10 s)."""
        cfg, folder = self.cfg, self.run.checkpoint_folder(update)
        if opt is not None:
            save_optimizer(folder, opt, self.spec.name, [_games.variant(g, cfg.variant) for g in cfg.games],
                           update, env_steps)
        extra = {"update": update, "env_steps": env_steps, "time_s": time_s, "config": cfg.to_dict()}
        self.final = self.spec.save(folder, net, cfg, env_steps, extra)
        self.run.point_latest(folder, update, env_steps)
        now = time.perf_counter()
        if force_curve or now - self.last_curve >= CURVE_EVERY_S:
            self.run.plot_curve()
            self.last_curve = now

    def evaluate(self, net, update: int, env_steps: int) -> dict:
        """The network as an agent on the first test levels of every game, into ``evals.jsonl``."""
        cfg = self.cfg
        agent = self.spec.agent(net, cfg, seed=cfg.seed, name=self.spec.name, device=self.device)
        out = {}
        for name in cfg.games:
            result = evaluate(agent, name, cfg.variant, split="test", levels=self.eval_levels, episodes=cfg.episodes,
                              seed=cfg.seed)
            self.run.append_eval({"update": update, "env_steps": env_steps, "result": result})
            for k, v in enumerate(result["per_episode"]["normalized"]):
                if v is not None:
                    out[f"eval/{name}/normalized_ep{k + 1}"] = v
        return out

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        self.metrics.close()
        if self.logger is not None:
            self.logger.finish()

    def finish(self) -> Path | None:
        """The last update's checkpoint (unless it was just written) and the final curve; the
        path of the run's last checkpoint."""
        if self.last is not None and self.last[0]["update"] % self.checkpoint_every:
            row, net, opt = self.last
            self.checkpoint(net, opt, row["update"], row["steps"], self.time_offset + row["time_s"], force_curve=True)
        elif self.last is not None or not (self.run.path / "curve.png").exists():
            self.run.plot_curve()
        return self.final or self.run.latest()


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
        write_atomic(id_file, run_id + "\n")
    return _wandb.init(project="metarena", name=name, id=run_id, resume="allow", dir=str(run),
                       config=cfg.to_dict(), mode=os.environ["WANDB_MODE"])


def _progress(total: int, done: int, label: str):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    bar = Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                   TextColumn("{task.fields[rate]}"), TextColumn("return {task.fields[ret]}"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    bar.add_task("train", total=total, completed=done, rate="- steps/s", ret="-")
    return bar
