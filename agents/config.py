"""One way to declare, check, build and save a config dataclass.

Every field of a config is declared with :func:`setting`: its default, what it does, and
what values it takes. The type comes from the annotation; the range from the setting::

    @dataclass
    class MyConfig:
        lr: float = setting(3e-4, "Adam learning rate.", gt=0)
        gamma: float = setting(0.99, "Discount per step.", ge=0, le=1)
        hidden: tuple[int, ...] = setting((64,), "Layer sizes.", ge=1)
        strategy: Strategy = setting(Strategy.ADAPTER, "What is tuned.")

        def validate(self) -> None:
            config.validate(self)       # every field against its type and range
            ...                         # then the checks that involve several fields

The annotations understood: ``int``, ``float``, ``bool``, ``str``, a :class:`Choice` enum,
``tuple[T, ...]`` of one of those, and any of them ``| None``. ``bool`` is not an ``int``
(``chunk=True`` is an error); an ``int`` is a ``float``; NaN and infinities are no numbers.
A string and a tuple must not be empty unless the setting says ``min_len=0``; a tuple's
range applies to each item.

These functions work on every config class:

- :func:`validate` raises ``ValueError`` naming the class, the field, the value and what is
  allowed: ``RL2Config.lr = -1: expected a number > 0``.
- :func:`from_settings` builds a config from user settings (``metarena train --set KEY=VALUE``,
  values parsed as JSON) and the caller's own arguments; an unknown key names the close
  matches and the known keys.
- :func:`to_dict` gives JSON types (a :class:`Choice` as its string, a tuple as a list).
- :func:`from_dict` reads :func:`to_dict`'s output back (a saved ``config.json``). Unknown
  keys are rejected (they come from another version or another algorithm, and dropping a
  setting silently would load a config other than the one that was trained); keys the file
  lacks take their defaults, so a config saved before a field existed still loads.

The enums of closed sets derive from :class:`Choice` (a ``str`` enum that also works on
Python 3.10): a member equals its string value, formats as it and is saved as it. For a
config's ``validate()``, :func:`check_games` checks game names against the registry, and
:func:`is_torch_device` is a ready ``check=`` for device fields; :func:`settings_of` lists a
class's settings (docs and ranges) for help texts.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import numbers
import types
import typing
from typing import Any, Callable, Iterable, Mapping, TypeVar

import numpy as np

__all__ = ["Choice", "Setting", "setting", "validate", "from_settings", "from_dict", "to_dict", "settings_of", "describe",
           "check_games", "is_torch_device"]

T = TypeVar("T")
_KEY = "metarena.setting"  #: the key of a field's metadata that holds its Setting


class Choice(str, enum.Enum):
    """Base of the enums of config options: ``Strategy.ADAPTER == "adapter"``, and
    ``str()``, ``format()`` and JSON give the value (on every Python version)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The members' string values, in declaration order."""
        return tuple(m.value for m in cls)


@dataclasses.dataclass(frozen=True)
class Setting:
    """What a config field takes, kept in its ``dataclasses.field`` metadata (see :func:`setting`)."""

    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_len: int = 1
    check: Callable[[Any], bool] | None = None
    allowed: str = ""

    def bounds(self) -> str:
        """The range in words: ``"> 0"``, ``"in [0, 1]"``, ``""`` when unbounded."""
        lo = (self.ge, "[") if self.ge is not None else (self.gt, "(") if self.gt is not None else None
        hi = (self.le, "]") if self.le is not None else (self.lt, ")") if self.lt is not None else None
        if lo and hi:
            return f"in {lo[1]}{_num(lo[0])}, {_num(hi[0])}{hi[1]}"
        if lo:
            return f"{'>=' if lo[1] == '[' else '>'} {_num(lo[0])}"
        if hi:
            return f"{'<=' if hi[1] == ']' else '<'} {_num(hi[0])}"
        return ""

    def in_range(self, x: float) -> bool:
        return ((self.ge is None or x >= self.ge) and (self.gt is None or x > self.gt)
                and (self.le is None or x <= self.le) and (self.lt is None or x < self.lt))


def setting(default: Any, doc: str, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, min_len: int = 1,
            check: Callable[[Any], bool] | None = None, allowed: str = "") -> Any:
    """A config field: ``default``, ``doc`` (what the field does) and its range.

    ``ge``/``gt``/``le``/``lt``: bounds of a number (of each item of a tuple), inclusive
    (``ge``, ``le``) or open (``gt``, ``lt``). ``min_len``: least length of a string or a
    tuple (1: not empty). ``check``: a further test of a value that has passed the others
    (not called for None), with ``allowed`` saying in words what it accepts, e.g.
    ``check=is_torch_device, allowed="'auto' or a torch device such as 'cpu' or 'cuda'"``.
    """
    if not doc or not doc.strip():
        raise TypeError("setting() needs a doc: what the field does")
    if ge is not None and gt is not None or le is not None and lt is not None:
        raise TypeError("setting() takes one lower bound (ge or gt) and one upper bound (le or lt)")
    if check is not None and not allowed:
        raise TypeError("setting(check=...) needs allowed=: what the check accepts, in words")
    meta = Setting(doc=" ".join(doc.split()), ge=ge, gt=gt, le=le, lt=lt, min_len=min_len, check=check,
                   allowed=allowed)
    return dataclasses.field(default=default, metadata={_KEY: meta})


def check_games(cfg: Any, field: str = "games") -> None:
    """A cross-field check for a config's ``validate()``: every name in ``cfg.<field>`` is a
    registered game, else ``ValueError`` naming the config, the field and the registered games."""
    from metarena import games

    known = games.names()
    value = getattr(cfg, field)
    for name in value:
        if name not in known:
            raise ValueError(f"{type(cfg).__name__}.{field} = {_show(tuple(value))}: unknown game {name!r}; "
                             f"registered games: {', '.join(known)}")


def is_torch_device(name: Any) -> bool:
    """``"auto"`` or a string torch parses as a device (``"cpu"``, ``"cuda:1"``, ``"mps"``)."""
    if name == "auto":
        return True
    import torch

    try:
        torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# types


@dataclasses.dataclass(frozen=True)
class _Kind:
    """A field's annotation, taken apart: the base type, whether a tuple of it, whether None is allowed."""

    base: type
    is_tuple: bool
    optional: bool


def _kind(annotation: Any, where: str) -> _Kind:
    optional = False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"{where}: unsupported annotation {annotation!r} (one type, optionally | None)")
        optional, annotation = True, rest[0]
    is_tuple = typing.get_origin(annotation) is tuple
    if is_tuple:
        args = typing.get_args(annotation)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{where}: unsupported annotation {annotation!r} (use tuple[T, ...])")
        annotation = args[0]
    if not (annotation in (int, float, bool, str) or isinstance(annotation, type) and issubclass(annotation, Choice)):
        raise TypeError(f"{where}: unsupported type {annotation!r} (int, float, bool, str or a Choice enum)")
    return _Kind(annotation, is_tuple, optional)


def _fields(cls: type) -> list[tuple[dataclasses.Field, _Kind, Setting]]:
    """Every field of the config class ``cls`` with its kind and setting (TypeError if one has none)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a config dataclass")
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        where = f"{cls.__name__}.{f.name}"
        meta = f.metadata.get(_KEY)
        if meta is None:
            raise TypeError(f"{where} is declared without setting(): every config field needs a doc and a range")
        out.append((f, _kind(hints[f.name], where), meta))
    return out


def settings_of(cls: type) -> dict[str, Setting]:
    """``{field name: Setting}`` of a config class, in declaration order (for help texts)."""
    return {f.name: meta for f, _, meta in _fields(cls)}


def describe(cls: type) -> list[dict[str, Any]]:
    """Every setting of a config class as ``{"name", "default", "allowed", "doc"}`` (the default
    in JSON types, what it takes in words), in declaration order: ``metarena settings``."""
    out = []
    for f, kind, meta in _fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append({"name": f.name, "default": _plain(default), "allowed": _expected(kind, meta),
                    "doc": " ".join(meta.doc.split())})
    return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _show(value: Any) -> str:
    if isinstance(value, Choice):
        return repr(value.value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _expected(kind: _Kind, meta: Setting) -> str:
    """What a field takes, in words: ``"a number in (0, 1]"``, ``"a list of integers >= 1"``."""
    plural = kind.is_tuple
    if issubclass(kind.base, Choice):
        item = "one of " + ", ".join(repr(v) for v in kind.base.values())
    elif kind.base is bool:
        item = "booleans (true or false)" if plural else "a boolean (true or false)"
    elif kind.base is str:
        item = ("non-empty strings" if plural else "a non-empty string") if meta.min_len else \
            ("strings" if plural else "a string")
    else:
        noun = "integer" if kind.base is int else "number"
        item = f"{noun}s" if plural else f"a{'n' if noun == 'integer' else ''} {noun}"
        if meta.bounds():
            item += " " + meta.bounds()
    if meta.allowed:
        item = meta.allowed
    if plural:
        size = "a non-empty" if meta.min_len == 1 else "a" if meta.min_len == 0 else f"at least {meta.min_len}-long"
        item = f"{size} list of {item}" if not issubclass(kind.base, Choice) else f"{size} list, each {item}"
    if kind.optional:
        item += ", or None (null)"
    return item


def _item_ok(base: type, meta: Setting, x: Any) -> bool:
    if issubclass(base, Choice):
        return isinstance(x, str) and x in base.values()
    if base is bool:
        return isinstance(x, (bool, np.bool_))
    if base is str:
        return isinstance(x, str) and len(x) >= meta.min_len
    if isinstance(x, (bool, np.bool_)):
        return False  # a bool is not a number here
    if base is int and not isinstance(x, numbers.Integral):
        return False
    if base is float and not isinstance(x, numbers.Real):
        return False
    if not math.isfinite(x):
        return False
    return meta.in_range(x)


def _value_ok(kind: _Kind, meta: Setting, value: Any) -> bool:
    if value is None:
        return kind.optional
    if kind.is_tuple:
        if not isinstance(value, tuple) or len(value) < meta.min_len:
            return False
        items_meta = dataclasses.replace(meta, min_len=1) if kind.base is str else meta
        if not all(_item_ok(kind.base, items_meta, x) for x in value):
            return False
    elif not _item_ok(kind.base, meta, value):
        return False
    return meta.check is None or bool(meta.check(value))


# ---------------------------------------------------------------------------------------------
# the four functions


def validate(cfg: Any) -> None:
    """Check every field of ``cfg`` against its type and range; ``ValueError`` names the first
    that fails: ``RL2Config.lr = -1: expected a number > 0``. Checks that involve several
    fields are the config's own ``validate()`` method's."""
    name = type(cfg).__name__
    for f, kind, meta in _fields(type(cfg)):
        value = getattr(cfg, f.name)
        if not _value_ok(kind, meta, value):
            raise ValueError(f"{name}.{f.name} = {_show(value)}: expected {_expected(kind, meta)}")


def _coerce(kind: _Kind, value: Any) -> Any:
    """A value as it comes from JSON or the command line, turned into the field's type where
    that is unambiguous (a list into a tuple, a string into its Choice, an int into a float);
    anything else is left for :func:`validate` to report."""

    def item(x: Any) -> Any:
        if issubclass(kind.base, Choice) and isinstance(x, str) and x in kind.base.values():
            return kind.base(x)
        if kind.base is float and isinstance(x, numbers.Integral) and not isinstance(x, bool):
            return float(x)
        return x

    if value is None:
        return None
    if kind.is_tuple and isinstance(value, list):
        value = tuple(value)
    if kind.is_tuple and isinstance(value, tuple):
        return tuple(item(x) for x in value)
    return item(value)


def _check(cfg: Any) -> Any:
    """``cfg.validate()`` where the class has one (field checks plus its cross-field checks), else :func:`validate`."""
    if callable(getattr(cfg, "validate", None)):
        cfg.validate()
    else:
        validate(cfg)
    return cfg


def _unknown(cls: type, keys: list[str], known: Iterable[str], what: str) -> ValueError:
    """``unknown RL2Config setting 'lrr' (did you mean 'lr'?); known: chunk, clip, ...``"""
    known = sorted(known)
    named = []
    for key in keys:
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        named.append(f"{key!r}" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
    what += "s" if len(keys) > 1 else ""
    return ValueError(f"unknown {cls.__name__} {what} {', '.join(named)}; known: {', '.join(known)}")


def from_settings(cls: type[T], settings: Mapping[str, Any], *, reserved: Iterable[str] = (), **fixed: Any) -> T:
    """A validated ``cls`` from user ``settings`` (``{"lr": 0.001, "hidden": [256]}``, as
    ``--set KEY=VALUE`` parses them) and the caller's ``fixed`` arguments (``games=...,
    seed=...``); fields in neither take their defaults.

    A key of ``settings`` that is no field raises ``ValueError`` naming close matches and the
    known keys; so does one that is among ``fixed`` or ``reserved`` (fields the caller sets
    from its own arguments, e.g. ``--seed``), which must not be given as a setting. Values
    are coerced as JSON gives them (lists to tuples, strings to enums, ints to floats), then
    the config is checked with its ``validate()`` method (field and cross-field checks).
    """
    fields = {f.name: kind for f, kind, _ in _fields(cls)}
    for key in fixed:
        if key not in fields:
            raise TypeError(f"{cls.__name__} has no field {key!r}")
    taken = set(fixed) | set(reserved)
    open_keys = set(fields) - taken
    unknown = [key for key in settings if key not in fields]
    if unknown:
        raise _unknown(cls, unknown, open_keys, "setting")
    kw = {}
    for key, value in settings.items():
        if key in taken:
            raise ValueError(f"{cls.__name__}.{key} is given by its own argument here, not as a setting; "
                             f"settings: {', '.join(sorted(open_keys))}")
        kw[key] = _coerce(fields[key], value)
    kw.update({key: _coerce(fields[key], value) for key, value in fixed.items()})
    return _check(cls(**kw))


def _plain(x: Any) -> Any:
    """A field's value in JSON types."""
    if isinstance(x, Choice):
        return x.value
    if isinstance(x, tuple):
        return [_plain(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return float(x)
    return x


def to_dict(cfg: Any) -> dict[str, Any]:
    """The fields of ``cfg`` in JSON types, in declaration order: a :class:`Choice` as its
    string, a tuple as a list, numpy scalars as Python numbers."""
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def from_dict(cls: type[T], d: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> T:
    """The ``cls`` that :func:`to_dict` saved as ``d`` (e.g. a run's ``config.json``).

    Keys ``d`` lacks take their defaults (a config saved before a field existed); a key that
    is no field raises ``ValueError`` unless named in ``ignore`` (e.g. ``"algorithm"``, which
    a run's ``config.json`` stores beside the fields). Values are coerced as in
    :func:`from_settings` and checked with :func:`validate` (types and ranges only: the
    cross-field checks need the game registry and variant files of the machine that trains,
    so call ``cfg.validate()`` before training with it).
    """
    fields = {f.name: kind for f, kind, _ in _fields(cls)}
    skip = set(ignore)
    unknown = [key for key in d if key not in fields and key not in skip]
    if unknown:
        raise _unknown(cls, unknown, fields, "key")
    kw = {key: _coerce(fields[key], value) for key, value in d.items() if key not in skip}
    cfg = cls(**kw)
    validate(cfg)
    return cfg
