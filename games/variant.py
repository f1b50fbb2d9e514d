"""Variants (named generator parameters, TOML) and the train/test split of seeds.

A game declares its parameters as a tuple of :class:`Param`; its built-in
variants live in ``games/variants/<game>.toml``, one table per variant. A
variant may also come from a user's TOML file: top-level keys, plus an
optional ``base = "<built-in variant>"`` whose values fill the keys left out
(the game's default variant when ``base`` is absent).

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
SPLITS = ("train", "test")


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


def builtin_variants(game: str) -> dict[str, dict[str, Any]]:
    """The raw tables of ``games/variants/<game>.toml``."""
    return _read_toml(VARIANT_DIR / f"{game}.toml")


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


def load_variant(game: str, spec: str | None, schema: tuple[Param, ...], default: str) -> Variant:
    """A built-in variant by name, or a TOML file by path (``None`` means the default)."""
    builtin_path = VARIANT_DIR / f"{game}.toml"
    tables = builtin_variants(game)
    spec = spec or default

    def builtin(name: str) -> Variant:
        if name not in tables:
            raise VariantError(
                f"game '{game}' has no built-in variant '{name}', and there is no file of that name. "
                f"Built-in variants: {', '.join(tables)}; or give the path of a TOML file."
            )
        return validate(game, name, tables[name], schema, f"{builtin_path} [{name}]")

    looks_like_path = spec.endswith(".toml") or "/" in spec or Path(spec).exists()
    if not looks_like_path:
        return builtin(spec)
    path = Path(spec)
    raw = _read_toml(path)
    if not raw:
        raise VariantError(f"{path} is empty: a variant file holds the keys it changes (see `metarena games "
                           f"--json` for {game}'s keys), and may name the variant it extends with "
                           f"base = \"{default}\"")
    base = raw.pop("base", default)
    if not isinstance(base, str) or base not in tables:
        raise VariantError(f"{path}: base = {base!r} is not a built-in variant of {game}; "
                           f"choose from {', '.join(tables)}")
    name = raw.pop("name", path.stem)
    if not isinstance(name, str):
        raise VariantError(f"{path}: key 'name' must be a string")
    return validate(game, name, raw, schema, str(path), defaults=dict(builtin(base).params))


def seed_split(seed: int) -> str:
    """The split a level seed belongs to: ``"test"`` if divisible by 5, else ``"train"``."""
    if seed < 0:
        raise ValueError(f"level seeds are non-negative integers, got {seed}")
    return "test" if seed % 5 == 0 else "train"


def split_seed(split: str, index: int) -> int:
    """The seed of the ``index``-th level of ``split`` (train: 1,2,3,4,6,...; test: 0,5,10,...)."""
    if split == "test":
        return 5 * index
    if split == "train":
        return 5 * (index // 4) + 1 + index % 4
    raise ValueError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
