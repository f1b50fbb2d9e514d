"""Checkpoints that are safe by construction: safetensors weights plus JSON metadata.

A checkpoint is either a directory::

    ckpt/weights.safetensors   the tensors (safetensors: a JSON header and raw bytes, nothing executable)
    ckpt/meta.json             what they are: :class:`CheckpointMeta`, readable by people and tools

or a *stem* ``X`` given as ``X.safetensors``: the files ``X.safetensors`` and ``X.meta.json``.
No code is ever deserialized, so a checkpoint from a stranger can be wrong, never dangerous.

API::

    path = save_checkpoint(path, state_dict, meta)       # atomic; returns the checkpoint's path
    state_dict, meta = load_checkpoint(path, game="treasure", algorithm="rl2")
    meta = read_meta(path)                               # meta.json only, weights untouched
    path = average_checkpoints([p1, p2, ...], out)       # the mean of one network's checkpoints
    state = sb3_policy_state(model); load_sb3_policy(model, state)   # Stable-Baselines3 policies

Every problem found on load raises :class:`CheckpointError` (a ``ValueError``) whose message
names the file, says what is wrong and what to do.

Saving is atomic. Each file is written under a temporary name in the same folder, flushed
with ``fsync`` and moved over the old one with ``os.replace``, weights first, then
``meta.json``. The weights file also carries the complete metadata in its safetensors
header, so it is self-describing: if a save is killed between the two moves, the loader
finds the new weights beside the old ``meta.json`` (they differ in ``save_id``), warns and
returns the new checkpoint, which is whole. A save killed earlier leaves the old checkpoint
untouched. Two processes must not save to the same path at the same time.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import glob
import hashlib
import json
import os
import subprocess
import secrets
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save as save_tensors

from metarena.games import engine as _engine
from metarena.games import tiles as _tiles

__all__ = [
    "SCHEMA_VERSION", "CheckpointError", "CheckpointMeta", "current_spec", "checkpoint_files",
    "save_checkpoint", "load_checkpoint", "read_meta", "average_checkpoints", "sb3_policy_state",
    "load_sb3_policy",
]

#: version of the layout of meta.json; bump it when keys change meaning or are removed
SCHEMA_VERSION = 1
WEIGHTS_NAME = "weights.safetensors"
META_NAME = "meta.json"
HEADER_KEY = "metarena.meta"  # key of the metadata copy in the safetensors header
FORMAT = "metarena-checkpoint"

REQUIRED_KEYS = (
    "format", "schema_version", "algorithm", "architecture", "games", "spec", "steps", "created_at",
    "git_commit", "extra", "tensors", "save_id", "data_sha256",
)
SPEC_KEYS = ("version", "view", "channels", "channel_names", "scalar_names", "actions")


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file, what is wrong and what to do."""


def current_spec() -> dict[str, Any]:
    """The observation and action spec of the running code, as recorded in every checkpoint."""
    return {
        "version": _engine.SPEC_VERSION,
        "view": _engine.VIEW,
        "channels": _tiles.NUM_CHANNELS,
        "channel_names": list(_tiles.CHANNEL_NAMES),
        "scalar_names": list(_engine.SCALAR_NAMES),
        "actions": _engine.NUM_ACTIONS,
    }


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    """The commit of the code that runs, or None (not a git checkout of this package, no git, too slow)."""
    here = Path(__file__).resolve()
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=here.parent, capture_output=True,
            text=True, timeout=5, check=False, stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split("\n")
    if out.returncode != 0 or len(lines) < 2:
        return None
    top, commit = lines[0].strip(), lines[1].strip()
    try:  # an installed copy inside some other repository (a venv in a project) is not that project's code
        ours = (Path(top) / here.parent.name / here.name).resolve() == here
    except OSError:
        return None
    if not ours or len(commit) not in (40, 64) or any(c not in "0123456789abcdef" for c in commit):
        return None
    return commit


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _game_entry(entry: Any) -> dict[str, Any]:
    """``{"game", "variant", "params"}`` from such a dict or a :class:`metarena.games.Variant`."""
    if hasattr(entry, "game") and hasattr(entry, "params") and hasattr(entry, "name") and not isinstance(entry, Mapping):
        return {"game": str(entry.game), "variant": str(entry.name), "params": dict(entry.params)}
    if isinstance(entry, Mapping) and isinstance(entry.get("game"), str):
        variant = entry.get("variant")
        params = entry.get("params", {})
        if variant is not None and not isinstance(variant, str):
            raise TypeError(f"the variant of a games entry must be a name (str) or None, got {variant!r}")
        if not isinstance(params, Mapping):
            raise TypeError(f"the params of a games entry must be a dict, got {params!r}")
        return {"game": entry["game"], "variant": variant, "params": dict(params)}
    raise TypeError(f"a games entry must be a games.Variant or a dict with 'game', 'variant', 'params'; got {entry!r}")


@dataclass
class CheckpointMeta:
    """What a checkpoint holds, stored as meta.json (and as a copy in the weights header).

    Fill in what you know; ``save_checkpoint`` fills ``created_at`` and ``git_commit`` when
    they are None, and always recomputes ``spec``, ``tensors``, ``save_id`` and ``data_sha256``.
    ``games`` entries may be given as :class:`metarena.games.Variant` objects.
    """

    algorithm: str  # e.g. "rl2", "ppo", "sb3-ppo"
    architecture: dict[str, Any] = field(default_factory=dict)  # JSON-able config that rebuilds the network
    games: list[dict[str, Any]] = field(default_factory=list)  # [{"game", "variant", "params"}]
    steps: int = 0  # environment steps of training
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, JSON-able
    created_at: str | None = None  # UTC, ISO 8601
    git_commit: str | None = None  # commit of the code that saved it; None when unknown
    spec: dict[str, Any] = field(default_factory=current_spec)  # observation/action spec it was trained on
    tensors: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "dtype", "shape"}], sorted by name
    save_id: str = ""  # random per save: tells the two files of one save apart from another's
    data_sha256: str = ""  # over the tensors' names, dtypes, shapes and bytes

    def __post_init__(self) -> None:
        self.games = [_game_entry(g) for g in self.games]

    @property
    def game_names(self) -> list[str]:
        return [g["game"] for g in self.games]

    def to_dict(self) -> dict[str, Any]:
        d = {"format": FORMAT, "schema_version": SCHEMA_VERSION}
        d.update(dataclasses.asdict(self))
        return d

    def to_json(self, indent: int | None = 2) -> str:
        """The meta.json text; raises ``ValueError`` if some value is not JSON (or not finite)."""
        try:
            return json.dumps(self.to_dict(), indent=indent, allow_nan=False, sort_keys=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint metadata must be JSON-able (architecture, games, extra): {exc}") from None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "meta") -> "CheckpointMeta":
        """Validate a parsed meta.json; raises :class:`CheckpointError` naming ``where``."""
        if not isinstance(d, Mapping):
            raise CheckpointError(f"{where}: expected a JSON object, got {type(d).__name__}. "
                                  "The checkpoint is damaged; save it again.")
        if d.get("format") != FORMAT:
            raise CheckpointError(f"{where}: not a metarena checkpoint (its 'format' is {d.get('format')!r}, "
                                  f"expected {FORMAT!r}).")
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            hint = ("it was written by a newer metarena: upgrade metarena to load it"
                    if isinstance(version, int) and version > SCHEMA_VERSION else
                    "it was written by an older metarena: load it with that version and save it again")
            raise CheckpointError(f"{where}: schema_version is {version!r}, this code reads {SCHEMA_VERSION}; {hint}.")
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            raise CheckpointError(f"{where}: missing keys {', '.join(missing)}. The file is incomplete or was "
                                  "edited by hand; save the checkpoint again.")
        _check_types(d, where)
        fields = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: d[k] for k in fields})
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "meta") -> "CheckpointMeta":
        try:
            d = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{where}: not valid JSON ({exc}). The checkpoint is damaged; "
                                  "save it again or use another checkpoint.") from None
        return cls.from_dict(d, where)


def _check_types(d: Mapping[str, Any], where: str) -> None:
    def bad(key: str, expected: str) -> CheckpointError:
        return CheckpointError(f"{where}: key '{key}' is {d.get(key)!r}; expected {expected}. "
                               "The file is damaged or was edited by hand; save the checkpoint again.")

    if not isinstance(d["algorithm"], str) or not d["algorithm"]:
        raise bad("algorithm", "a non-empty string")
    for key in ("architecture", "extra"):
        if not isinstance(d[key], dict):
            raise bad(key, "an object")
    if not isinstance(d["games"], list) or not all(
            isinstance(g, dict) and isinstance(g.get("game"), str) and isinstance(g.get("params", {}), dict)
            and (g.get("variant") is None or isinstance(g.get("variant"), str)) for g in d["games"]):
        raise bad("games", 'a list of {"game": str, "variant": str, "params": {...}}')
    if not isinstance(d["steps"], int) or isinstance(d["steps"], bool) or d["steps"] < 0:
        raise bad("steps", "a non-negative integer")
    if not isinstance(d["created_at"], str):
        raise bad("created_at", "an ISO 8601 time string")
    if d["git_commit"] is not None and not isinstance(d["git_commit"], str):
        raise bad("git_commit", "a commit hash or null")
    if not isinstance(d["spec"], dict) or any(k not in d["spec"] for k in SPEC_KEYS):
        raise bad("spec", f"an object with keys {', '.join(SPEC_KEYS)}")
    if not isinstance(d["tensors"], list) or not all(
            isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("dtype"), str)
            and isinstance(t.get("shape"), list) and all(isinstance(n, int) for n in t["shape"])
            for t in d["tensors"]):
        raise bad("tensors", 'a list of {"name": str, "dtype": str, "shape": [int, ...]}')
    for key in ("save_id", "data_sha256"):
        if not isinstance(d[key], str):
            raise bad(key, "a string")


# ---------------------------------------------------------------------------------------------
# paths


def checkpoint_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(weights file, meta file)`` of the checkpoint at ``path``.

    ``X.safetensors`` or ``X.meta.json`` names the stem form; ``dir/weights.safetensors`` or
    ``dir/meta.json`` names the directory ``dir``; a path ``X`` with an ``X.safetensors`` beside
    it and no directory ``X`` is the stem form; any other path is a directory.
    """
    p = Path(path)
    if p.name in (WEIGHTS_NAME, META_NAME):
        p = p.parent
    elif p.name.endswith(".safetensors"):
        stem = str(p)[: -len(".safetensors")]
        return Path(stem + ".safetensors"), Path(stem + ".meta.json")
    elif p.name.endswith(".meta.json"):
        stem = str(p)[: -len(".meta.json")]
        return Path(stem + ".safetensors"), Path(stem + ".meta.json")
    elif not p.is_dir() and Path(str(p) + ".safetensors").exists():
        return Path(str(p) + ".safetensors"), Path(str(p) + ".meta.json")
    return p / WEIGHTS_NAME, p / META_NAME


def _checkpoint_path(weights: Path) -> Path:
    return weights.parent if weights.name == WEIGHTS_NAME else weights


# ---------------------------------------------------------------------------------------------
# saving


def _prepare(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, dense, contiguous CPU tensors sorted by name; tensors that share memory are copied."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a dict of name -> torch.Tensor, got {type(state_dict).__name__}")
    out: dict[str, torch.Tensor] = {}
    for name in sorted(state_dict):
        t = state_dict[name]
        if not isinstance(name, str) or not name:
            raise TypeError(f"tensor names must be non-empty strings, got {name!r}")
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"state_dict['{name}'] is {type(t).__name__}, not a torch.Tensor")
        if t.layout != torch.strided:
            raise TypeError(f"state_dict['{name}'] is a {t.layout} tensor; save t.to_dense() instead")
        out[name] = t.detach().to("cpu").contiguous()
    seen: set[int] = set()
    for name, t in out.items():  # safetensors refuses tensors that share memory (tied weights)
        if t.numel() == 0:
            continue
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            out[name] = t.clone()
        else:
            seen.add(ptr)
    return out


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _describe(tensors: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    return [{"name": k, "dtype": _dtype_name(t), "shape": list(t.shape)} for k, t in sorted(tensors.items())]


def _data_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(json.dumps([name, _dtype_name(t), list(t.shape)]).encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def new_temp(path: Path) -> tuple[int, Path]:
    """A new, empty hidden file beside ``path``, opened for writing, created with mode 0666 so
    that the kernel applies the umask as it does for ``open()``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _write_temp(final: Path, write: Callable[[Path], None]) -> Path:
    """Write a temporary file beside ``final`` with ``write(path)``, fsync it, return its path
    (its permissions are those ``open()`` gives a new file)."""
    fd, tmp = new_temp(final)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _commit(tmp: Path, final: Path) -> None:
    """Move a finished temporary file over ``final`` (atomic) and make the move durable."""
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def _coerce_meta(meta: CheckpointMeta | Mapping[str, Any]) -> CheckpointMeta:
    if isinstance(meta, CheckpointMeta):
        return dataclasses.replace(meta)
    if isinstance(meta, Mapping):
        fields = {f.name for f in dataclasses.fields(CheckpointMeta)}
        unknown = sorted(set(meta) - fields - {"format", "schema_version"})
        if unknown:
            raise TypeError(f"unknown checkpoint meta keys {unknown}; known: {sorted(fields)} "
                            "(put anything else under 'extra')")
        return CheckpointMeta(**{k: v for k, v in meta.items() if k in fields})
    raise TypeError(f"meta must be a CheckpointMeta or a dict, got {type(meta).__name__}")


def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor],
                    meta: CheckpointMeta | Mapping[str, Any]) -> Path:
    """Save ``state_dict`` and ``meta`` atomically at ``path``; return the checkpoint's path.

    ``path`` is a directory (created if needed) unless it ends in ``.safetensors`` (the stem
    form, see :func:`checkpoint_files`). The caller's ``meta`` is not modified; the saved
    metadata is what :func:`load_checkpoint` returns.
    """
    tensors = _prepare(state_dict)
    m = _coerce_meta(meta)
    if not isinstance(m.algorithm, str) or not m.algorithm:
        raise ValueError("meta.algorithm must be a non-empty string, e.g. 'rl2' or 'sb3-ppo'")
    if not isinstance(m.steps, int) or isinstance(m.steps, bool) or m.steps < 0:
        raise ValueError(f"meta.steps must be a non-negative integer, got {m.steps!r}")
    m.spec = current_spec()
    m.tensors = _describe(tensors)
    m.save_id = uuid.uuid4().hex
    m.data_sha256 = _data_sha256(tensors)
    if m.created_at is None:
        m.created_at = _utc_now()
    if m.git_commit is None:
        m.git_commit = _git_commit()
    text = m.to_json()  # raises before anything is written if meta is not JSON-able

    weights, meta_file = checkpoint_files(path)
    if weights.parent.exists() and not weights.parent.is_dir():
        raise ValueError(f"{weights.parent} is a file, not a folder; give a directory or a '.safetensors' path")
    weights.parent.mkdir(parents=True, exist_ok=True)

    header = {HEADER_KEY: m.to_json(indent=None)}
    # the bytes are written into the file made by new_temp (safetensors' save_file would make
    # its own, 0600 whatever the umask)
    tmp_weights = _write_temp(weights, lambda p: p.write_bytes(save_tensors(tensors, metadata=header)))
    try:
        tmp_meta = _write_temp(meta_file, lambda p: p.write_text(text + "\n", encoding="utf-8"))
    except BaseException:
        tmp_weights.unlink(missing_ok=True)
        raise
    try:
        _commit(tmp_weights, weights)  # the weights carry the whole metadata: from here the new save is whole
        _commit(tmp_meta, meta_file)
    finally:
        tmp_weights.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
    for final in (weights, meta_file):  # temporary files of saves that were killed before
        for stale in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
            stale.unlink(missing_ok=True)
    return _checkpoint_path(weights)


# ---------------------------------------------------------------------------------------------
# loading


def _read_meta_file(meta_file: Path) -> CheckpointMeta:
    try:
        raw = meta_file.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{meta_file}: missing. A checkpoint needs its meta.json beside the weights; "
                              "copy the whole checkpoint, not only the weights.") from None
    except OSError as exc:
        raise CheckpointError(f"{meta_file}: cannot be read ({exc}).") from None
    return CheckpointMeta.from_json(raw, str(meta_file))


def _locate(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    weights, meta_file = checkpoint_files(p)
    if not weights.exists() and not meta_file.exists():
        if not p.exists():
            raise CheckpointError(f"{p}: no such checkpoint (neither a folder with {WEIGHTS_NAME} and {META_NAME} "
                                  "nor X.safetensors with X.meta.json). Check the path.")
        raise CheckpointError(f"{p}: not a checkpoint: {weights.name} and {meta_file.name} are both missing. "
                              "Give the folder that save_checkpoint wrote.")
    return weights, meta_file


def read_meta(path: str | os.PathLike) -> CheckpointMeta:
    """The validated meta.json of the checkpoint at ``path`` (the weights are not read)."""
    return _read_meta_file(_locate(path)[1])


def _check_meta(m: CheckpointMeta, where: str, game: str | None, algorithm: str | None) -> None:
    spec = current_spec()
    for key, what in (("version", "spec version"), ("view", "view size"), ("channels", "channel count"),
                      ("channel_names", "channel names"), ("scalar_names", "scalar names"),
                      ("actions", "number of actions")):
        if m.spec.get(key) != spec[key]:
            versions = "" if key == "version" else f" (spec version {m.spec.get('version')!r} vs {spec['version']!r})"
            raise CheckpointError(
                f"{where}: trained for observation/action {what} {m.spec.get(key)!r}, but this code has "
                f"{spec[key]!r}{versions}. The network cannot play here: use the metarena version it was "
                "trained with, or train a new one.")
    if algorithm is not None and m.algorithm != algorithm:
        raise CheckpointError(f"{where}: a checkpoint of algorithm '{m.algorithm}', not '{algorithm}'. "
                              f"Load it as '{m.algorithm}' or pick a '{algorithm}' checkpoint.")
    if game is not None and game not in m.game_names:
        trained = ", ".join(dict.fromkeys(m.game_names)) or "no game recorded"
        raise CheckpointError(f"{where}: trained on {trained}, not on '{game}'. Pick a checkpoint trained on "
                              f"'{game}', or play one of: {trained}.")


def _read_weights(weights: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except FileNotFoundError:
        raise CheckpointError(f"{weights}: missing. The checkpoint has its metadata but no weights; "
                              "copy the whole checkpoint again.") from None
    except Exception as exc:  # safetensors raises its own error type (and OSError, ValueError) on bad bytes
        raise CheckpointError(f"{weights}: not a readable safetensors file ({type(exc).__name__}: {exc}). "
                              "It is truncated or damaged: copy it again or use another checkpoint.") from None
    return tensors, header


def load_checkpoint(path: str | os.PathLike, *, game: str | None = None, algorithm: str | None = None,
                    device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Load and validate the checkpoint at ``path``: ``(state_dict, meta)``.

    Raises :class:`CheckpointError` if anything is missing or damaged, if it was made for another
    observation/action spec, if ``game`` is given and the checkpoint was not trained on it, or if
    ``algorithm`` is given and differs.
    """
    weights, meta_file = _locate(path)
    meta = _read_meta_file(meta_file)
    tensors, header = _read_weights(weights)

    text = header.get(HEADER_KEY)
    if text is None:
        raise CheckpointError(f"{weights}: its header lacks the checkpoint metadata; it was not written by "
                              "save_checkpoint. Save the tensors with save_checkpoint.")
    inner = CheckpointMeta.from_json(text, f"{weights} (header)")
    if inner.save_id != meta.save_id:
        warnings.warn(f"{meta_file} belongs to another save than {weights} (a save was interrupted between "
                      "its two files); using the metadata stored in the weights. Save again to repair meta.json.",
                      RuntimeWarning, stacklevel=2)
        meta = inner
        _check_meta(meta, str(weights), game, algorithm)
    else:
        _check_meta(meta, str(meta_file), game, algorithm)
    if inner.to_dict() != meta.to_dict():
        changed = [k for k, v in inner.to_dict().items() if meta.to_dict().get(k) != v]
        raise CheckpointError(f"{meta_file}: differs from the metadata stored in {weights.name} in "
                              f"{', '.join(changed)}: it was edited. Restore it, or save the checkpoint again "
                              "with save_checkpoint to change its metadata.")

    listed = {t["name"]: t for t in meta.tensors}
    found = {t["name"]: t for t in _describe(tensors)}
    if listed != found:
        missing = sorted(set(listed) - set(found))
        unexpected = sorted(set(found) - set(listed))
        different = sorted(k for k in set(listed) & set(found) if listed[k] != found[k])
        parts = [f"missing {missing}" if missing else "", f"unlisted {unexpected}" if unexpected else "",
                 "different dtype or shape: " + ", ".join(
                     f"{k} {found[k]['dtype']}{found[k]['shape']} vs {listed[k]['dtype']}{listed[k]['shape']}"
                     for k in different) if different else ""]
        raise CheckpointError(f"{weights}: its tensors do not match those listed in {meta_file.name} "
                              f"({'; '.join(p for p in parts if p)}). The two files come from different saves; "
                              "copy the whole checkpoint again.")
    if _data_sha256(tensors) != meta.data_sha256:
        raise CheckpointError(f"{weights}: the tensor bytes do not match their checksum in {meta_file.name}; "
                              "the file is corrupted. Copy it again or use another checkpoint.")
    if torch.device(device).type != "cpu":
        tensors = {k: t.to(device) for k, t in tensors.items()}
    return tensors, meta


def average_checkpoints(paths: list[str | os.PathLike], out: str | os.PathLike,
                        extra: Mapping[str, Any] | None = None) -> Path:
    """Save at ``out`` the mean of the checkpoints at ``paths``; return its path.

    They must be checkpoints of one network (same algorithm, architecture, games and tensors),
    e.g. those a training run wrote along its way: each floating-point tensor of the result is
    their mean (summed in float64), any other tensor must be the same in all. The metadata is
    the last one's, with ``extra`` merged into its ``extra``. Raises :class:`CheckpointError`
    naming the first checkpoint that does not match, before anything is written.
    """
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint")
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    first: CheckpointMeta | None = None
    for path in paths:
        tensors, meta = load_checkpoint(path)
        if first is None:
            first, dtypes = meta, {k: t.dtype for k, t in tensors.items()}
            total = {k: t.double() if t.is_floating_point() else t for k, t in tensors.items()}
            continue
        same = {k: getattr(meta, k) == getattr(first, k) for k in ("algorithm", "architecture", "games", "tensors")}
        if not all(same.values()):
            raise CheckpointError(f"{path}: not a checkpoint of the same network as {paths[0]} (its "
                                  f"{', '.join(k for k, ok in same.items() if not ok)} differ); average the "
                                  "checkpoints of one run")
        for k, t in tensors.items():
            if t.is_floating_point():
                total[k] += t.double()
            elif not torch.equal(t, total[k]):
                raise CheckpointError(f"{path}: its tensor {k} ({t.dtype}) differs from {paths[0]}'s, and only "
                                      "floating-point tensors can be averaged")
    mean = {k: (t / len(paths)).to(dtypes[k]) if t.is_floating_point() else t for k, t in total.items()}
    return save_checkpoint(out, mean, dataclasses.replace(meta, extra={**meta.extra, **(extra or {})},
                                                          created_at=None, git_commit=None))


# ---------------------------------------------------------------------------------------------
# Stable-Baselines3 policies


def sb3_policy_state(model: Any) -> dict[str, torch.Tensor]:
    """The policy tensors of a Stable-Baselines3 model (``model.policy.state_dict()``), on the CPU."""
    policy = getattr(model, "policy", None)
    if not isinstance(policy, torch.nn.Module):
        raise TypeError(f"expected a Stable-Baselines3 model with a torch policy, got {type(model).__name__}")
    return {k: v.detach().to("cpu").clone() for k, v in policy.state_dict().items()}


def load_sb3_policy(model: Any, state_dict: Mapping[str, torch.Tensor]) -> Any:
    """Load tensors from :func:`sb3_policy_state` into a model built with the same policy; returns it.

    Raises :class:`CheckpointError` when the names or shapes do not fit the model's policy.
    """
    policy = getattr(model, "policy", None)
    if not isinstance(policy, torch.nn.Module):
        raise TypeError(f"expected a Stable-Baselines3 model with a torch policy, got {type(model).__name__}")
    own = policy.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong = sorted(k for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(p for p in (
            f"missing {missing[:8]}" if missing else "", f"unexpected {unexpected[:8]}" if unexpected else "",
            "shape differs for " + ", ".join(f"{k} {list(state_dict[k].shape)} vs {list(own[k].shape)}"
                                             for k in wrong[:8]) if wrong else "") if p)
        raise CheckpointError(f"the saved policy does not fit this {type(policy).__name__} ({detail}). Build the "
                              "model with the architecture recorded in the checkpoint's meta.")
    policy.load_state_dict({k: v.to(policy.device) for k, v in state_dict.items()}, strict=True)
    return model
