"""The training driver: one run of any registered algorithm in a run directory.

``train("rl2", ["treasure"], "small", steps=1_000_000, out="runs/t1")`` meta-trains and writes
the run directory of :mod:`metarena.agents.rundir`: the config, one metrics row per update,
checkpoints every ``checkpoint_every`` updates and at the end, the learning curve, and (with
``eval_every``) valid-split evaluations. ``steps`` is rounded up to whole updates (a note on
stderr says so); the progress bar counts the env steps the run will really take.

Everything is checked before anything is written: a bad argument or setting raises
``ValueError`` and leaves no run directory behind. A new run that fails or is interrupted
before its first update finishes is removed again.

``resume=True`` reads ``config.json`` and ``latest`` and goes on from that checkpoint: the
network, Adam, the update and env-step counters are restored; torch, the level draws and the
action sampler are seeded with :func:`metarena.agents.ppo.run_seed` ``(seed, update)``; every
slot starts a fresh trial. Rows written after the checkpoint (before a kill) are dropped
when the first new update is written, so no update appears twice. The saved config is used:
an argument left None keeps its saved value, one that equals it changes nothing, and one
that differs is refused (``ValueError`` naming each "saved X, given Y"), except the step
target and :data:`RESUME_CHANGES` (where and how fast the run trains, and what it saves at the
end), which are applied and reported. A run already at its target returns its checkpoint at
once. With no checkpoint yet the run starts over; a missing or empty directory is an error
(nothing to resume).

SIGINT (Ctrl-C) and SIGTERM stop training: the last finished update is saved as a checkpoint
(``latest`` names it) and :class:`Interrupted` is raised (a ``KeyboardInterrupt``; its
``exit_code`` is 130 or 143); ``--resume`` goes on from there.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shlex
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

from metarena import games as _games

from metarena.games.variant import HELDOUT, variant_list

from .checkpoint import read_meta
from .evaluate import evaluate
from .ppo import members
from .registry import Algorithm, algorithm, load_net, make_config, resumed_config
from .rundir import (COOLING_COLUMNS, IMITATION_COLUMNS, STAT_COLUMNS, RunDir, load_optimizer, metric_cells, metric_columns,
                     save_optimizer, write_atomic)

CURVE_EVERY_S = 10.0  #: least seconds between two redraws of curve.png (the last one is always drawn)
#: config fields a resumed run may change (beside the step target): where and how fast it runs, and what it
#: saves at the end, not what it learns
RESUME_CHANGES = ("device", "shards", "torch_threads", "rollout_threads", "bf16", "average")
#: the option of `metarena train` that sets each config field it does not take as --set
FLAGS = {"games": "--game", "variant": "--variant", "envs": "--envs", "seed": "--seed", "device": "--device",
         "total_steps": "--steps"}
#: the algorithms that train on several variants at once (``--variant small,medium``): those
#: whose loop steps :class:`metarena.agents.ppo.RL2Envs`
MULTI_VARIANT = ("rl2", "finetune")


class _TimeUp(Exception):
    """Raised from the update callback when the run's minutes are spent."""


class Interrupted(KeyboardInterrupt):
    """Training was stopped by SIGINT or SIGTERM. ``checkpoint``: the checkpoint of the last
    finished update (None where no update had finished); ``exit_code``: 128 + the signal
    number, as a shell reports a process the signal ended (130, 143)."""

    def __init__(self, signum: int, checkpoint: Path | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.checkpoint = int(signum), checkpoint

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def train(algo: str, games: list[str] | None, variant: str | None, steps: int | None, out: str | os.PathLike,
          envs: int | None = None, device: str | None = None, wandb: bool = False, resume: bool = False,
          seed: int | None = None, checkpoint_every: int = 10, eval_every: int = 0, eval_levels: int = 100,
          progress: bool = True, minutes: float | None = None, settings: dict | None = None,
          **overrides) -> Path:
    """Train ``algo`` on ``games`` for ``steps`` env steps in the run directory ``out``; returns
    the path of the final checkpoint. ``settings`` (``--set``) and ``overrides`` are further
    fields of the algorithm's config (``chunk=16, episodes=2, lr=1e-3, ...`` for rl2).
    ``envs`` None: the algorithm's default; ``seed`` None: 0; ``device`` None: "auto" (cuda
    if available, else cpu). On resume, ``games``, ``variant``, ``envs``, ``seed``, ``device``
    and ``steps`` None keep the saved values (see the module docstring for what may change).

    ``eval_every`` > 0: every that many updates, evaluate the network on the first
    ``eval_levels`` valid levels of every game (:func:`metarena.agents.evaluate.evaluate`) and
    append the result to ``evals.jsonl``: unseen levels of the training distribution, so that
    choosing a checkpoint by them leaves the test split unspent. ``wandb``: also log to Weights &
    Biases (offline unless ``WANDB_API_KEY`` is set). ``minutes``: also stop (with a checkpoint)
    after the first update that ends that many minutes of wall-clock after the call, setup
    included.
    """
    began = time.perf_counter()
    from rich.console import Console

    from .ppo import _device

    # 1. the arguments and the run directory, before anything is written
    if minutes is not None and not (minutes > 0 and math.isfinite(minutes)):
        raise ValueError(f"minutes must be > 0 (and finite), got {minutes}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if eval_every < 0:
        raise ValueError(f"eval_every must be >= 0 (0: no evaluations), got {eval_every}")
    if eval_every and eval_levels < 1:
        raise ValueError(f"eval_levels must be >= 1, got {eval_levels}")
    spec = algorithm(algo)
    games = None if games is None else [games] if isinstance(games, str) else list(games)
    settings = {**overrides, **(settings or {})}
    run = RunDir(out)
    console = Console(stderr=True)

    def say(text: str) -> None:  # plain text on stderr: no markup, no wrapping inside a line
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    if resume:
        _check_resumable(run)
    elif not run.is_empty():
        raise ValueError(f"{run.path} is not empty (an earlier run?). Continue it with --resume, or pick another "
                         "--out; nothing was changed")

    # 2. the config: the saved one when resuming, else a new one from the arguments
    changes: dict[str, tuple] = {}
    if resume:
        saved_algo, saved = run.read_config()
        if saved_algo != algo:
            raise ValueError(f"{run.path} is a run of --algo {saved_algo}, not {algo}; resume it with that algorithm")
        given = {"games": None if games is None else tuple(games), "variant": variant, "envs": envs, "seed": seed,
                 "device": device, "total_steps": None if steps is None else int(steps)}
        given = {k: v for k, v in given.items() if v is not None}
        cfg, changes = resumed_config(algo, saved, given, settings)
        changes.pop("total_steps", None)
        refused = {k: v for k, v in changes.items() if k not in RESUME_CHANGES}
        if refused:
            raise ValueError(_refusal(run, refused))
    else:
        if not games:
            raise ValueError("no game to train on: give at least one (--game)")
        if steps is None:
            raise ValueError("no step target: give the env steps to train for (--steps)")
        _check_variants(algo, variant)
        cfg = make_config(algo, games, variant, steps, envs, device or "auto", 0 if seed is None else seed,
                          settings)
    for name, spec_ in members(cfg):
        _games.variant(name, spec_)  # a variant (file) that does not load fails here, not mid-setup

    # 3. where training starts: a checkpoint of this run, a pretrained network, or nothing
    net, opt_state, start_update, start_steps, time_offset = None, None, 0, 0, 0.0
    ckpt = run.latest() if resume else None
    if ckpt is not None:
        extra = read_meta(ckpt).extra
        try:
            start_update, start_steps = int(extra["update"]), int(extra["env_steps"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{ckpt}: not a checkpoint of a training run (its meta has no update and env_steps); "
                             "point latest at another checkpoint, or start a new run") from None
        if start_steps >= cfg.total_steps:
            say(f"{run.path}: already at {start_steps:,} env steps (target {cfg.total_steps:,}): nothing to do; "
                "raise --steps to train further")
            return ckpt
    dev = str(_device(cfg.device))
    if ckpt is not None:
        net, _, _ = load_net(ckpt, device=dev, algorithms=(algo,))
        opt_state = load_optimizer(ckpt, algo, dev)
        time_offset = float(extra.get("time_s", 0.0))
    if net is None and getattr(cfg, "init", None):
        net, _, _ = load_net(cfg.init, device=dev, algorithms=("finetune", "reptile"))
    planned, rounding = _plan(spec, cfg, start_update, start_steps)

    # 4. write (a new run's folder and config; resuming, nothing until the first update) and
    # train, logging and checkpointing after every update; SIGINT and SIGTERM stop cleanly from here
    made = None if resume else _first_missing(run.path)
    session = None
    with _Signals() as signals:
        try:
            if resume:
                say(f"resuming {run.path} at update {start_update}, {start_steps:,} env steps "
                    f"(target {cfg.total_steps:,})")
                for key, (was, now) in changes.items():
                    say(f"resuming with {FLAGS.get(key, '--set ' + key)} {_show(now)} (saved: {_show(was)})")
            else:
                try:
                    run.create(algo, cfg.to_dict())
                except OSError as exc:
                    raise ValueError(f"cannot write the run directory {run.path} ({exc.strerror or exc}); pick "
                                     "another --out") from None
            console.print_json(json.dumps(cfg.to_dict()))
            if rounding:
                say(rounding)
            session = _Session(run, spec, cfg, dev, checkpoint_every, eval_every, eval_levels, time_offset, began,
                               minutes, wandb=wandb, progress=progress, start_steps=start_steps,
                               planned=planned, resuming=resume, start_update=start_update, signals=signals,
                               console=console)
            try:
                cools = getattr(cfg, "lr_decay", 0) or getattr(cfg, "ent_decay", 0)
                timed = {"deadline": began + 60.0 * minutes} if minutes is not None and cools \
                    else {}  # the learning rate's (the entropy bonus's) fall ends with the minutes
                spec.train(cfg, net, optimizer_state=opt_state, start_update=start_update, start_steps=start_steps,
                           callback=session.on_update, **timed)
            except _TimeUp:
                session.close()
                say(f"stopping: {minutes:g} minutes are up")
            signals.hold = True  # a signal now would cut the final checkpoint short
            session.close()
            final = session.finish()
        except BaseException as exc:
            signals.hold = True
            if session is not None:
                session.close()
            signum = signals.signum or (signal.SIGINT if isinstance(exc, KeyboardInterrupt) else None)
            if session is None or session.last is None:  # no update finished: nothing to keep
                if not resume:
                    _discard(run, made)
                if signum is None:
                    raise
                say(f"interrupted by {signal.Signals(signum).name} before the first update finished: "
                    + (f"{run.path} is as it was" if resume else f"nothing was kept of {run.path}"))
                raise Interrupted(signum) from None
            if signum is None:
                raise  # an error: the checkpoints written so far stay
            final = session.finish()
            row = session.last[0]
            say(f"interrupted by {signal.Signals(signum).name}: saved update {row['update']} ({row['steps']:,} env "
                f"steps) as {final}; continue with\n  metarena train --algo {algo} --out "
                f"{shlex.quote(str(run.path))} --steps {cfg.total_steps} --resume")
            raise Interrupted(signum, final) from None
    mean = (f"; the mean of the checkpoints of its last {cfg.average:.0%} of updates: {session.averaged}"
            if session.averaged else "")
    say(f"done: {run.path} (checkpoint {final}{mean})")
    return final


def _check_variants(algo: str, variant: str | None) -> None:
    """``--variant`` of a new run: not the held-out variant, and several only where ``algo`` mixes them."""
    specs = variant_list(variant)
    if HELDOUT in specs:
        raise ValueError(f"--variant {HELDOUT}: the '{HELDOUT}' variant of every game is kept for evaluation "
                         f"(`metarena eval --variant {HELDOUT}`) and is never trained on; choose another variant")
    if len(specs) > 1 and algo not in MULTI_VARIANT:
        raise ValueError(f"--variant {variant}: training on several variants at once works with --algo "
                         f"{' or '.join(MULTI_VARIANT)}; {algo} trains on one")


def _check_resumable(run: RunDir) -> None:
    """``--resume`` needs a run directory with a config."""
    if not run.path.exists():
        raise ValueError(f"--resume: {run.path} does not exist, so there is no run to resume; check the path, or "
                         "drop --resume to start a new run there")
    if run.is_empty():
        raise ValueError(f"--resume: {run.path} is empty, so there is no run to resume; drop --resume to start a "
                         "new run there")
    if not run.has_config():
        raise ValueError(f"{run.path} has no config.json: not a run directory to resume; pick another --out")


def _show(value) -> str:
    return "none" if value is None else json.dumps(value)


def _refusal(run: RunDir, refused: dict[str, tuple]) -> str:
    """The message that refuses to resume with other settings."""
    items = "; ".join(f"{FLAGS.get(key, '--set ' + key)}: saved {_show(was)}, given {_show(now)}"
                      for key, (was, now) in refused.items())
    may = ", ".join(["--steps", *(FLAGS.get(k, f"--set {k}") for k in RESUME_CHANGES)])
    return (f"{run.path} was trained with other settings, and --resume goes on with the saved ones: {items}. "
            f"Drop {'that option' if len(refused) == 1 else 'those options'} to continue the run ({may} may "
            "change), or train a new run with them in another --out; nothing was changed")


def _plan(spec: Algorithm, cfg, start_update: int, start_steps: int) -> tuple[int, str]:
    """The env steps the run will have taken at its end (the target rounded up to whole
    updates), and a note where that differs from the target."""
    size = spec.update_size(cfg)
    target = cfg.total_steps
    if size is None:
        return target, ""
    per, how = size
    updates = math.ceil(max(0, target - start_steps) / per)
    if not start_update:
        updates = max(1, updates)
    planned = start_steps + updates * per
    if planned == target:
        return planned, ""
    count = f"{updates:,} {'more ' if start_steps else ''}update{'s' if updates != 1 else ''}"
    return planned, (f"--steps {target:,} rounds up to {count} of {per:,} env steps ({how}): the run ends at "
                     f"{planned:,} env steps")


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` (itself included) that does not exist yet."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


def _discard(run: RunDir, made: Path | None) -> None:
    """Remove what a new run wrote: the folders it made, or everything in the (empty) folder
    it started in."""
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)
    elif run.path.is_dir():
        for p in run.path.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


#: code an exception must not be raised into: Python's import machinery (a module's lock could
#: stay held) and the compiler of the map's kernels (its callbacks swallow the exception)
_UNINTERRUPTIBLE = ("<frozen importlib", f"{os.sep}numba{os.sep}", f"{os.sep}llvmlite{os.sep}")


def _uninterruptible(frame) -> bool:
    """Whether ``frame``, or one that called it, runs code of :data:`_UNINTERRUPTIBLE`."""
    while frame is not None:
        if any(part in frame.f_code.co_filename for part in _UNINTERRUPTIBLE):
            return True
        frame = frame.f_back
    return False


class _Signals:
    """While training (in the main thread): SIGINT and SIGTERM raise :class:`Interrupted`;
    inside :meth:`deferred` they are raised at its end; once ``hold`` is set (the last
    checkpoint is being written) they are ignored. A signal the process ignores (SIG_IGN,
    e.g. SIGINT of a background job) stays ignored; the handlers before are restored on exit."""

    def __init__(self):
        self.signum: int | None = None  #: the first signal received
        self.hold = False
        self._defer = False
        self._pending: int | None = None
        self._before: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.hold:
            return
        if self.signum is None:
            self.signum = signum
        if self._defer:
            self._pending = signum
            return
        if _uninterruptible(frame):
            # raised there, the exit can wait for ever (a module's lock held, a compile half
            # done): the signal is sent again a moment later
            self._later(signum)
            return
        raise Interrupted(signum)

    @staticmethod
    def _later(signum: int, delay: float = 0.05) -> None:
        """Send ``signum`` to this process again after ``delay`` seconds."""
        timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
        timer.daemon = True
        timer.start()

    @contextlib.contextmanager
    def deferred(self):
        """A block that a signal does not cut short (it is raised when the block ends)."""
        self._defer = True
        try:
            yield
        finally:
            self._defer = False
            pending, self._pending = self._pending, None
            if pending is not None and not self.hold:
                raise Interrupted(pending)

    def __enter__(self) -> "_Signals":
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(s) is not signal.SIG_IGN:
                    self._before[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._before.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def _snapshot(net, opt) -> tuple[dict, dict | None]:
    """Copies of a network's and its optimizer's state (the update after goes on changing them)."""
    return ({k: v.detach().clone() for k, v in net.state_dict().items()},
            copy.deepcopy(opt.state_dict()) if opt is not None else None)


def _restore(net, opt, snapshot: tuple[dict, dict | None]) -> None:
    net.load_state_dict(snapshot[0])
    if opt is not None:
        opt.load_state_dict(snapshot[1])


class _Session:
    """What happens after each update of one training process: the metrics row, checkpoints,
    evaluations, the curve, wandb, the progress bar and the time limit. Nothing of the run
    directory changes until the first update ends (then a resumed run's records are cut
    back to its checkpoint)."""

    def __init__(self, run: RunDir, spec: Algorithm, cfg, device: str, checkpoint_every: int, eval_every: int,
                 eval_levels: int, time_offset: float, began: float, minutes: float | None, *, wandb: bool,
                 progress: bool, start_steps: int, planned: int, resuming: bool, start_update: int,
                 signals: _Signals, console):
        self.run, self.spec, self.cfg, self.device, self.signals = run, spec, cfg, device, signals
        self.checkpoint_every, self.eval_every, self.eval_levels = checkpoint_every, eval_every, eval_levels
        self.time_offset, self.began, self.minutes = time_offset, began, minutes
        self.resuming, self.start_update = resuming, start_update
        #: statistics beyond STAT_COLUMNS that this run writes
        self.extra = ((IMITATION_COLUMNS if getattr(cfg, "imitate", 0) else ())
                      + (COOLING_COLUMNS if getattr(cfg, "ent_decay", 0) else ()))
        self.columns = metric_columns(cfg.episodes, self.extra)
        self.metrics = None  # opened at the first update
        self.closed = False
        self.bar = None
        self.logger = _wandb_run(run.path, cfg, run.path.name) if wandb else None
        self.bar = _progress(planned, start_steps, spec.name, console) if progress else None
        if self.bar is not None:
            self.bar.start()
        #: (row, net, optimizer, snapshot of both) of the last update whose metrics row is written
        self.last = None
        self.saved: int | None = None  #: the update of the last checkpoint this process wrote
        self.final: Path | None = None
        self.averaged: Path | None = None  #: the run's ``average/`` checkpoint, once written
        self.last_curve = 0.0

    def on_update(self, row: dict, net, opt) -> None:
        update, env_steps = row["update"], row["steps"]
        time_s = self.time_offset + row["time_s"]
        if self.metrics is None:
            if self.resuming:
                self.run.truncate(self.start_update, self.columns)
            self.metrics = self.run.open_metrics(self.columns)
        with self.signals.deferred():  # a row on disk is an update an interrupted run saves
            self.metrics.write(metric_cells(row, time_s, self.extra))
            self.last = (row, net, opt, _snapshot(net, opt))
        rets = row["return_by_episode"]
        log = {"env_steps": env_steps, "steps_per_s": row["steps_per_s"],
               **{k: row[k] for k in (*STAT_COLUMNS, *self.extra)},
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
            save_optimizer(folder, opt, self.spec.name, [_games.variant(g, v) for g, v in members(cfg)],
                           update, env_steps)
        extra = {"update": update, "env_steps": env_steps, "time_s": time_s, "config": cfg.to_dict()}
        self.final = self.spec.save(folder, net, cfg, env_steps, extra)
        self.run.point_latest(folder, update, env_steps)
        self.saved = update
        now = time.perf_counter()
        if force_curve or now - self.last_curve >= CURVE_EVERY_S:
            self.run.plot_curve()
            self.last_curve = now

    def evaluate(self, net, update: int, env_steps: int) -> dict:
        """The network as an agent on the first valid levels of every game, into ``evals.jsonl``."""
        cfg = self.cfg
        agent = self.spec.agent(net, cfg, seed=cfg.seed, name=self.spec.name, device=self.device)
        out = {}
        several = len(variant_list(cfg.variant)) > 1
        for name, spec in members(cfg):
            result = evaluate(agent, name, spec, split="valid", levels=self.eval_levels, episodes=cfg.episodes,
                              seed=cfg.seed)
            self.run.append_eval({"update": update, "env_steps": env_steps, "result": result})
            key = f"{name}/{result.get('variant', spec)}" if several else name
            for k, v in enumerate(result["per_episode"]["normalized"]):
                if v is not None:
                    out[f"eval/{key}/normalized_ep{k + 1}"] = v
        return out

    def close(self) -> None:
        """Stop the bar, close the metrics and wandb (once)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.stop()
        if self.metrics is not None:
            self.metrics.close()
        if self.logger is not None:
            self.logger.finish()

    def finish(self) -> Path | None:
        """The checkpoint of the last finished update (unless it was written already; from its
        snapshot, so that an update cut short by a signal leaves no trace) and the final
        curve; the path of the run's last checkpoint."""
        if self.last is not None and self.saved != self.last[0]["update"]:
            row, net, opt, snapshot = self.last
            _restore(net, opt, snapshot)
            self.checkpoint(net, opt, row["update"], row["steps"], self.time_offset + row["time_s"], force_curve=True)
        elif self.last is not None or not (self.run.path / "curve.png").exists():
            self.run.plot_curve()
        if getattr(self.cfg, "average", 0) and self.run.latest() is not None:
            self.averaged = self.run.write_average(self.cfg.average)
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


def _progress(total: int, done: int, label: str, console):
    """The progress bar on ``console`` (stderr, with the run's other messages): env steps of ``total``."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    bar = Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                   TextColumn("{task.fields[rate]}"), TextColumn("return {task.fields[ret]}"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)
    bar.add_task("train", total=total, completed=done, rate="- steps/s", ret="-")
    return bar
