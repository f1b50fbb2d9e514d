"""Variants (named generator parameters, TOML) and the train/test split of seeds.

A game declares its parameters as a tuple of :class:`Param`; its built-in
variants live in ``games/variants/<game>.toml``, one table per variant. A
variant may also come from a user's TOML file: top-level keys, plus an
optional ``base`` whose values fill the keys left out (the game's default
variant when ``base`` is absent): a built-in variant's name (``base =
"large"``) or another variant file (``base = "other.toml"``, a path relative
to the folder of the file that names it), so that files chain. A base file
that is missing or a chain that comes back to a file it passed is an error
naming the user's file. The built-in variant :data:`HELDOUT` is kept for
evaluation: ``metarena train`` refuses it.

Every value is checked on load; a mistake raises :class:`VariantError`, whose
message names the file, the key and what is allowed.

Splits: level seeds are non-negative integers. **A seed divisible by 5 is a
test seed; every other seed is a train seed.** ``split_seed`` maps the i-th
level of a split to its seed, so pools of levels never cross the split.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VARIANT_DIR = Path(__file__).parent / "variants"
SPLITS = ("train", "valid", "test")
#: the train-split levels a training pool may draw from; the train seeds past them are the
#: ``valid`` split, for choosing between trained agents on levels of the training distribution
#: that no run has played
TRAIN_LEVELS = 1 << 20
#: the built-in variant every game keeps for evaluation only: training refuses it
HELDOUT = "heldout"


class VariantError(ValueError):
    """A variant file or name is wrong; the message says what and how to fix it."""


@dataclass(frozen=True)
class Param:
    """One generator parameter of a game: its type, range and meaning."""

    name: str
    type: type  # int, float or bool
    low: float | None = None
    high: float | None = None
    doc: str = ""
    odd: bool = False  # ints only: the value must be odd

    def allowed(self) -> str:
        kind = {int: "an integer", float: "a number", bool: "true or false"}[self.type]
        if self.low is not None and self.high is not None:
            kind += f" in [{self.low}, {self.high}]"
        elif self.low is not None:
            kind += f" >= {self.low}"
        if self.odd:
            kind += ", odd"
        return kind

    def check(self, value: Any, where: str) -> Any:
        ok_type = isinstance(value, bool) if self.type is bool else (
            isinstance(value, self.type) and not isinstance(value, bool)
            or (self.type is float and isinstance(value, int) and not isinstance(value, bool))
        )
        if not ok_type:
            raise VariantError(
                f"{where}: key '{self.name}' is {type(value).__name__} {value!r}; "
                f"expected {self.allowed()} ({self.doc})"
            )
        if self.type is float:
            value = float(value)
            if not math.isfinite(value):
                raise VariantError(f"{where}: key '{self.name}' must be finite; expected {self.allowed()}")
        if self.type is not bool and (
            (self.low is not None and value < self.low) or (self.high is not None and value > self.high)
        ):
            raise VariantError(
                f"{where}: key '{self.name}' = {value!r} is out of range; expected {self.allowed()} ({self.doc})"
            )
        if self.odd and value % 2 == 0:
            raise VariantError(f"{where}: key '{self.name}' = {value!r} must be odd ({self.doc})")
        return value


@dataclass(frozen=True)
class Variant:
    """Validated generator parameters of one game."""

    game: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # where it came from: "<built-in>" or a file path

    def __hash__(self) -> int:
        return hash((self.game, self.name, tuple(self.params.items())))

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") or key == "params":
            raise AttributeError(key)
        try:
            return self.params[key]
        except KeyError:
            raise AttributeError(key) from None

    def to_dict(self) -> dict[str, Any]:
        return {"game": self.game, "name": self.name, **dict(self.params)}


def _read_toml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise VariantError(f"{path} is a folder, not a variant file: give a built-in variant name (see "
                           "`metarena games`) or the path of a TOML file")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise VariantError(
            f"{path}: no such variant file. Give a built-in variant name (see `metarena games`) "
            "or the path of a TOML file."
        ) from None
    except UnicodeDecodeError:
        raise VariantError(f"{path}: not a text file (a TOML variant file is UTF-8 text)") from None
    except tomllib.TOMLDecodeError as exc:
        raise VariantError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise VariantError(f"{path}: cannot be read ({exc.strerror or exc})") from None


#: the variants file of each game that keeps it elsewhere than ``games/variants/<game>.toml``
#: (a game of your own: ``Game.variant_file``, recorded by ``registry.register``)
VARIANT_FILES: dict[str, Path] = {}


def variant_file(game: str) -> Path:
    """The TOML file of a game's built-in variants."""
    return VARIANT_FILES.get(game, VARIANT_DIR / f"{game}.toml")


def builtin_variants(game: str) -> dict[str, dict[str, Any]]:
    """The raw tables of the game's variants file (:func:`variant_file`)."""
    return _read_toml(variant_file(game))


def validate(game: str, name: str, raw: Mapping[str, Any], schema: tuple[Param, ...], where: str,
             defaults: Mapping[str, Any] | None = None) -> Variant:
    """Check ``raw`` against ``schema``; keys left out come from ``defaults``."""
    by_name = {p.name: p for p in schema}
    values: dict[str, Any] = dict(defaults or {})
    for key, value in raw.items():
        if key not in by_name:
            raise VariantError(
                f"{where}: unknown key '{key}' for game '{game}'. Allowed keys: {', '.join(sorted(by_name))}"
            )
        values[key] = by_name[key].check(value, where)
    missing = [p.name for p in schema if p.name not in values]
    if missing:
        raise VariantError(f"{where}: missing keys {', '.join(missing)} for game '{game}'")
    return Variant(game=game, name=name, params={p.name: values[p.name] for p in schema}, source=where)


def variant_list(spec: str | None) -> list[str | None]:
    """The variants a spec names, in order: ``"small,medium,my.toml"`` names three (training
    on several at once); a spec without a comma, an existing file whose name has one, and
    ``None`` (the default) name one. An empty entry or one given twice is a
    :class:`VariantError`."""
    if spec is None or "," not in spec or Path(spec).is_file():
        return [spec]
    parts = [part.strip() for part in spec.split(",")]
    if not all(parts):
        raise VariantError(f"variant list {spec!r} has an empty entry; separate variant names or TOML paths "
                           "with single commas (small,medium,my.toml)")
    twice = sorted({part for part in parts if parts.count(part) > 1})
    if twice:
        raise VariantError(f"variant list {spec!r} names {', '.join(twice)} twice; give each variant once")
    return parts


def is_file_spec(spec: str) -> bool:
    """Whether a variant spec names a TOML file (else a built-in variant)."""
    return spec.endswith(".toml") or "/" in spec or Path(spec).exists()


def load_variant(game: str, spec: str | None, schema: tuple[Param, ...], default: str) -> Variant:
    """A built-in variant by name, or a TOML file by path (``None`` means the default)."""
    builtin_path = variant_file(game)
    tables = builtin_variants(game)
    spec = spec or default

    def builtin(name: str) -> Variant:
        if name not in tables:
            raise VariantError(
                f"game '{game}' has no built-in variant '{name}', and there is no file of that name. "
                f"Built-in variants: {', '.join(tables)}; or give the path of a TOML file."
            )
        return validate(game, name, tables[name], schema, f"{builtin_path} [{name}]")

    if not is_file_spec(spec):
        return builtin(spec)
    path = Path(spec)
    raw, params = _file_params(game, path, schema, default, tables, builtin, chain=())
    name = raw.pop("name", path.stem)
    if not isinstance(name, str):
        raise VariantError(f"{path}: key 'name' must be a string")
    return validate(game, name, raw, schema, str(path), defaults=params)


def _file_params(game: str, path: Path, schema: tuple[Param, ...], default: str, tables: Mapping[str, Any],
                 builtin, chain: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys of the variant file ``path`` (``base`` removed) and the values of its base,
    following ``base`` from file to file; ``chain``: the files that led here."""
    raw = _read_toml(path)
    if not raw:
        raise VariantError(f"{path} is empty: a variant file holds the keys it changes (see `metarena games "
                           f"--json` for {game}'s keys), and may name the variant it extends with "
                           f"base = \"{default}\"")
    base = raw.pop("base", default)
    if isinstance(base, str) and is_file_spec(base):
        base_path = path.parent / base
        here = (*chain, path)
        seen = [p.resolve() for p in here]
        if base_path.resolve() in seen:
            again = seen.index(base_path.resolve())
            loop = " -> ".join(str(p) for p in here[again:])
            raise VariantError(f"{here[0]}: the bases make a cycle: {loop} -> {here[again]}; "
                               "end the chain with a built-in variant (base = \"" + default + "\")")
        if not base_path.is_file():
            raise VariantError(f"{here[0]}: base = {base!r} in {path} names {base_path}, which "
                               + ("is not a file" if base_path.exists() else "does not exist")
                               + " (a base file's path is relative to the folder of the file that names it)")
        try:
            base_raw, base_params = _file_params(game, base_path, schema, default, tables, builtin, here)
            base_raw.pop("name", None)
            params = dict(validate(game, base_path.stem, base_raw, schema, str(base_path),
                                   defaults=base_params).params)
        except VariantError as exc:
            if not chain and str(path) not in str(exc):  # say which of the user's files led there
                raise VariantError(f"{path}: its base {base!r} cannot be used: {exc}") from None
            raise
        return raw, params
    if not isinstance(base, str) or base not in tables:
        raise VariantError(f"{chain[0] if chain else path}: base = {base!r}"
                           + (f" in {path}" if chain else "")
                           + f" is not a built-in variant of {game}; choose from {', '.join(tables)}, "
                           "or give the path of a TOML file")
    return raw, dict(builtin(base).params)


def toml_value(value: Any) -> str:
    """A parameter's value as TOML writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def template(v: Variant, schema: tuple[Param, ...], name: str, base: str) -> str:
    """A commented variant file that extends the built-in variant ``base`` and sets every key of
    ``schema`` to its value in ``v`` (``base``'s own values: the file loads as ``base`` until a
    value is changed), with a comment above each key saying what it means and what it takes."""
    lines = [
        f"# A variant of {v.game}, extending its built-in variant '{base}'. Change the values you want;",
        "# a key you delete takes the base's value. Use it wherever a command takes --variant:",
        f"#   metarena levels show {v.game} --variant path/to/this.toml",
        "# `base` may also name another variant file, relative to this file's folder (base = \"other.toml\").",
        f"base = {_toml_string(base)}",
        f"name = {_toml_string(name)}",
    ]
    for p in schema:
        lines += ["", f"# {p.doc}: {p.allowed()}", f"{p.name} = {toml_value(v.params[p.name])}"]
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    """A TOML basic string."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in out) + '"'


def _train_seed(index: int) -> int:
    """The ``index``-th seed not divisible by 5 (1, 2, 3, 4, 6, ...): train, then valid."""
    return 5 * (index // 4) + 1 + index % 4


def _train_index(seed: int) -> int:
    """The inverse of :func:`_train_seed`, for a seed not divisible by 5."""
    return 4 * (seed // 5) + seed % 5 - 1


def seed_split(seed: int) -> str:
    """The split a level seed belongs to: ``"test"`` if divisible by 5; else ``"train"`` for the
    first :data:`TRAIN_LEVELS` such seeds and ``"valid"`` past them."""
    if seed < 0:
        raise ValueError(f"level seeds are non-negative integers, got {seed}")
    if seed % 5 == 0:
        return "test"
    return "train" if _train_index(seed) < TRAIN_LEVELS else "valid"


def split_seed(split: str, index: int) -> int:
    """The seed of the ``index``-th level of ``split`` (train: 1,2,3,4,6,...; test: 0,5,10,...;
    valid: the train seeds past the first :data:`TRAIN_LEVELS`, which no training pool reaches)."""
    if index < 0:
        raise ValueError(f"level indices are non-negative integers, got {index}")
    if split == "test":
        return 5 * index
    if split == "train":
        if index >= TRAIN_LEVELS:
            raise ValueError(f"the train split has {TRAIN_LEVELS:,} levels (asked for level {index:,}); "
                             "the train seeds past them are the valid split")
        return _train_seed(index)
    if split == "valid":
        return _train_seed(TRAIN_LEVELS + index)
    raise ValueError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
