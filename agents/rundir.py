"""The run directory: what a training run writes, and what a killed run resumes from.

``metarena train ... --out runs/t1`` writes::

    runs/t1/
      config.json             {"algorithm": ..., **the full config} (also printed at the start)
      metrics.csv             one row per update (append-only, flushed every update)
      evals.jsonl             valid-split evaluations, one JSON object a line (eval_every > 0)
      curve.png               mean return by update, one line per episode of the trial
      latest                  JSON naming the last complete checkpoint (written atomically)
      average/                the mean of the checkpoints of the run's last updates (rl2's
                              ``--set average=F``, :meth:`RunDir.write_average`): a checkpoint
                              whose extra also has {"average": {"fraction", "updates"}}
      wandb_id                the Weights & Biases run id (with --wandb)
      checkpoints/
        update_000010/
          weights.safetensors   the network (metarena.agents.checkpoint: safetensors + meta.json)
          meta.json             algorithm, architecture, games, steps,
                                extra = {"update", "env_steps", "time_s", "config"}
          optimizer.safetensors Adam's state tensors, named "state.<param index>.<key>";
          optimizer.meta.json   its meta (algorithm "<algo>-optimizer", extra["param_groups"])

A checkpoint is saved optimizer first, then the network, then ``latest`` is replaced, so
``latest`` only ever names a checkpoint whose files are all whole. On resume,
:meth:`RunDir.truncate` drops the rows of ``metrics.csv`` and ``evals.jsonl`` written after
that checkpoint's update, so no update appears twice.

``metrics.csv`` columns: ``update, env_steps, time_s`` (seconds of training, resumed runs
included), ``steps_per_s`` (of the current process), ``rollout_s, update_s, episodes_ended,
policy_loss, value_loss, entropy, approx_kl, clipfrac``, then ``return_ep1 .. return_epK``
(mean return of the episodes with that index in the trial that ended during the update's
rollout; empty where none ended); then, in a run that imitates, ``imitation, agreement``, and in
one whose entropy bonus cools down, ``ent_coef``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .checkpoint import CheckpointMeta, average_checkpoints, load_checkpoint, new_temp, save_checkpoint

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.csv"
EVALS_NAME = "evals.jsonl"
CURVE_NAME = "curve.png"
LATEST_NAME = "latest"
AVERAGE_NAME = "average"
CHECKPOINTS = "checkpoints"
OPTIMIZER_NAME = "optimizer.safetensors"
#: the loss statistics of an update, in every metrics row (NaN where a loop has none)
STAT_COLUMNS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")
#: what a run that imitates a planner adds (``--set imitate``): the cross-entropy towards its
#: labels, and the share of labelled steps whose most likely action is the label
IMITATION_COLUMNS = ("imitation", "agreement")
#: what a run whose entropy bonus cools down adds (``--set ent_decay``): the bonus's weight
COOLING_COLUMNS = ("ent_coef",)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8): a temporary file beside it,
    fsync, ``os.replace``. The file gets the permissions ``open()`` gives a new file (0666
    less the umask, e.g. 0644), not ``mkstemp``'s 0600."""
    path = Path(path)
    fd, tmp = new_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def metric_columns(episodes: int, extra: tuple[str, ...] = ()) -> list[str]:
    """The header of ``metrics.csv`` for trials of ``episodes`` episodes; ``extra``: statistics a
    run adds at the end (:data:`IMITATION_COLUMNS`)."""
    return ["update", "env_steps", "time_s", "steps_per_s", "rollout_s", "update_s", "episodes_ended",
            *STAT_COLUMNS, *(f"return_ep{k + 1}" for k in range(episodes)), *extra]


def metric_cells(row: dict, time_s: float, extra: tuple[str, ...] = ()) -> list[str]:
    """One line of ``metrics.csv`` from an update's metrics row (see :func:`metric_columns`)."""
    return [row["update"], row["steps"], f"{time_s:.3f}", f"{row['steps_per_s']:.1f}", f"{row['rollout_s']:.4f}",
            f"{row['update_s']:.4f}", row["episodes_ended"], *(f"{row[k]:.6g}" for k in STAT_COLUMNS),
            *("" if r is None else f"{r:.6g}" for r in row["return_by_episode"]),
            *(f"{row[k]:.6g}" for k in extra)]


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


def keep_lines(path: Path, keep: Callable[[str], bool]) -> None:
    """Rewrite ``path`` (atomically) with only the complete lines for which ``keep(line)`` holds."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # a line cut short by a kill
    kept = [ln for ln in lines if ln and keep(ln)]
    write_atomic(path, "".join(ln + "\n" for ln in kept))


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


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint a path names: a run directory (its ``latest`` checkpoint), a checkpoint
    directory or a weights file."""
    p = Path(path)
    if p.is_dir() and (p / LATEST_NAME).exists():
        return latest_checkpoint(p)
    if p.is_dir() and (p / CONFIG_NAME).exists() and not (p / "meta.json").exists():
        raise ValueError(f"{p}: a run directory without a complete checkpoint yet (no '{LATEST_NAME}' file); "
                         "train longer or pick a checkpoint folder")
    return p


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


def _update_of(folder: Path) -> int | None:
    """The update a checkpoint folder ``update_000120`` was saved after (None for another name)."""
    head, _, number = folder.name.partition("_")
    return int(number) if head == "update" and number.isdigit() else None


class RunDir:
    """A run directory (see the module docstring): its config, metrics, evaluations, latest
    pointer and checkpoint folders. Nothing is written until a method is called."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"{self.path} is a file, not a run directory; pick another --out")

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_NAME

    @property
    def evals_path(self) -> Path:
        return self.path / EVALS_NAME

    def is_empty(self) -> bool:
        """True where nothing has been written yet (no folder, or an empty one)."""
        return not (self.path.is_dir() and any(self.path.iterdir()))

    def has_config(self) -> bool:
        return self.config_path.exists()

    def create(self, algorithm: str, config: dict[str, Any]) -> None:
        """Start a new run: the folder and ``config.json``."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config_path, json.dumps({"algorithm": algorithm, **config}, indent=2) + "\n")

    def read_config(self) -> tuple[str, dict[str, Any]]:
        """``(algorithm, config dict)`` of ``config.json``."""
        try:
            saved = json.loads(self.config_path.read_text(encoding="utf-8"))
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.config_path}: not a readable run config ({exc}); this run cannot be "
                             "resumed, start a new one in another --out") from None
        return saved.pop("algorithm", "rl2"), saved

    def latest(self) -> Path | None:
        """The last complete checkpoint, or None."""
        return latest_checkpoint(self.path)

    def checkpoint_folder(self, update: int) -> Path:
        """The (new) folder of the checkpoint after ``update``."""
        folder = self.path / CHECKPOINTS / f"update_{update:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def checkpoints(self) -> dict[int, Path]:
        """``{update: folder}`` of the complete checkpoints: those up to the one ``latest`` names."""
        latest = self.latest()
        if latest is None:
            return {}
        last = _update_of(latest)
        found = {_update_of(p): p for p in (self.path / CHECKPOINTS).glob("update_*") if p.is_dir()}
        return {u: found[u] for u in sorted(found) if u is not None and u <= last}

    def write_average(self, fraction: float) -> Path:
        """Save as ``average/`` the mean of the checkpoints of the run's last ``fraction`` of its
        updates (with the last update's, which is always there); return its path.

        With a constant learning rate the weights go on moving around a good region after the
        returns level off; their mean over a stretch of updates is a policy that does not depend
        on where the last update happened to stop.
        """
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"the fraction of updates to average must be in (0, 1], got {fraction!r}")
        found = self.checkpoints()
        if not found:
            raise ValueError(f"{self.path}: no complete checkpoint to average; train first")
        last = max(found)
        updates = [u for u in found if u > last * (1.0 - fraction)]
        return average_checkpoints([found[u] for u in updates], self.path / AVERAGE_NAME,
                                   extra={"average": {"fraction": fraction, "updates": updates}})

    def point_latest(self, folder: Path, update: int, env_steps: int) -> None:
        """Name ``folder`` the last complete checkpoint (atomically)."""
        latest = {"checkpoint": f"{CHECKPOINTS}/{folder.name}", "update": update, "env_steps": env_steps}
        write_atomic(self.path / LATEST_NAME, json.dumps(latest, indent=2) + "\n")

    def truncate(self, update: int, columns: list[str]) -> None:
        """Drop the rows of ``metrics.csv`` and ``evals.jsonl`` after ``update`` (and any line
        cut short or not of this run's shape): what a resumed run will write again."""
        header = ",".join(columns)

        def keep_metric(line: str) -> bool:
            if line == header:
                return True
            cells = next(csv.reader([line]))
            try:
                return len(cells) == len(columns) and int(cells[0]) <= update
            except ValueError:
                return False

        def keep_eval(line: str) -> bool:
            try:
                return int(json.loads(line)["update"]) <= update
            except (ValueError, KeyError, TypeError):
                return False

        keep_lines(self.metrics_path, keep_metric)
        keep_lines(self.evals_path, keep_eval)

    def open_metrics(self, columns: list[str]) -> "MetricsLog":
        return MetricsLog(self.metrics_path, columns)

    def append_eval(self, record: dict) -> None:
        """One line of ``evals.jsonl``, flushed to disk."""
        with open(self.evals_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def plot_curve(self) -> Path:
        return plot_curve(self.path)


class MetricsLog:
    """``metrics.csv`` opened for appending: the header if the file is new, then one line per
    update, each flushed to disk."""

    def __init__(self, path: Path, columns: list[str]):
        new = not path.exists() or path.stat().st_size == 0
        self._fh = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self._writer = csv.writer(self._fh)
        if new:
            self.write(columns)

    def write(self, cells: list) -> None:
        self._writer.writerow(cells)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


# ---------------------------------------------------------------------------------------------
# the optimizer beside a checkpoint


def save_optimizer(folder: Path, optimizer, algorithm: str, games: list, update: int, env_steps: int) -> None:
    """Adam's ``state_dict()`` as safetensors (``state.<index>.<key>``) plus its JSON param groups."""
    import torch

    state = optimizer.state_dict()
    tensors = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            tensors[f"state.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    groups = json.loads(json.dumps(state["param_groups"]))
    save_checkpoint(folder / OPTIMIZER_NAME, tensors,
                    CheckpointMeta(algorithm=f"{algorithm}-optimizer", games=games, steps=env_steps,
                                   extra={"update": update, "param_groups": groups}))


def load_optimizer(folder: Path, algorithm: str, device: str) -> dict | None:
    """The optimizer state saved beside a checkpoint (an ``opt.load_state_dict`` argument), or
    None where there is none (an algorithm without one)."""
    if not (folder / OPTIMIZER_NAME).exists():
        return None
    tensors, meta = load_checkpoint(folder / OPTIMIZER_NAME, algorithm=f"{algorithm}-optimizer", device=device)
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta.extra["param_groups"]}
