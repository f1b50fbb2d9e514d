"""Agents of your own: a class in a Python file or an installed module, named by a spec.

A spec names a class that implements the agent protocol (:mod:`metarena.agents.base`)::

    path/to/my_agent.py:MyAgent      # a file, loaded by its path (relative to the current folder)
    some.module:MyAgent              # an installed module, imported by its name

It works wherever a command takes an agent name (``metarena eval --agent
examples/my_agent.py:MyAgent --game treasure``, tournaments, watch). The class needs
``begin_trial``, ``act`` and ``end_episode`` as the protocol states them, and a ``name``
(an instance without one is named after its class). Its constructor takes ``seed=`` if it
wants one, or nothing.

Loading a spec runs its code: :func:`make_external` does so in this process; the arena plays
external agents in a worker process instead (:class:`metarena.arenas.guard.ProcessAgent`),
where a crash, a hang or a slow step cannot hold up the other players. Nothing is unpickled
here: the class is made from source code.

:func:`is_external` and :func:`spec_exists` read only the spec's text and the file system;
they import nothing.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

#: the methods a class must define to play (the ``name`` may come from :func:`make_external`)
PROTOCOL = ("begin_trial", "act", "end_episode")


def _parts(spec: str) -> tuple[str, str]:
    """``(file or module, class name)`` of a spec (split at its last colon)."""
    left, _, right = spec.rpartition(":")
    return left, right


def _is_path(name: str) -> bool:
    try:
        return Path(name).expanduser().exists()
    except (OSError, ValueError):  # e.g. an embedded NUL byte
        return False


def is_external(name: str) -> bool:
    """Whether ``name`` is an external agent spec: ``FILE.py:Class`` or ``dotted.module:Class``.

    Plain agent names (``rl2``, ``scripted``) and the paths of existing files or folders (a run
    directory may hold a colon) are not. Whether the file or module exists is not checked here
    (see :func:`spec_exists`)."""
    left, right = _parts(name)
    if not left or not right.isidentifier() or _is_path(name):
        return False
    if left.endswith(".py"):
        return True
    return all(part.isidentifier() for part in left.split("."))


def _file(left: str) -> Path | None:
    """The agent file of a spec's left side, or None when it names a module."""
    return Path(left).expanduser() if left.endswith(".py") else None


def spec_exists(spec: str) -> bool:
    """Whether the file of an external spec exists, or (for a module) its top-level package
    can be found. Imports nothing; :func:`load_class` tells what else is wrong."""
    if not is_external(spec):
        return False
    left, _ = _parts(spec)
    path = _file(left)
    if path is not None:
        return path.is_file()
    top = left.split(".")[0]
    if top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        return False


def external_source(spec: str) -> Path | None:
    """The source file of an external agent (its ``.py`` file, or the file of its module), or
    None when there is none to find. For a dotted module, its parent packages are imported."""
    if not is_external(spec):
        return None
    left, _ = _parts(spec)
    path = _file(left)
    if path is not None:
        return path.resolve() if path.is_file() else None
    try:
        found = importlib.util.find_spec(left)
    except Exception:  # a parent package missing or failing to import
        return None
    if found is None or not found.has_location or not found.origin:
        return None
    return Path(found.origin)


def _load_module(spec: str, left: str) -> Any:
    path = _file(left)
    if path is None:
        try:
            return importlib.import_module(left)
        except Exception as exc:
            raise ValueError(f"agent '{spec}': cannot import module '{left}' ({type(exc).__name__}: {exc}); "
                             "is it installed in this environment, or did you mean a file (FILE.py:Class)?") from exc
    if not path.is_file():
        raise ValueError(f"agent '{spec}': no file {path} (the path is relative to the current folder, "
                         f"{Path.cwd()})")
    resolved = path.resolve()
    # a private name: the file cannot shadow a real module, and two files with one stem do not collide
    digest = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:12]
    name = f"_metarena_external_{resolved.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"agent '{spec}': {path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and typing look classes' modules up here
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ValueError(f"agent '{spec}': loading {path} failed ({type(exc).__name__}: {exc})") from exc
    return module


def load_class(spec: str) -> type:
    """The agent class an external spec names. A ValueError says what is wrong: not a spec,
    the file is missing, the module does not import (with its error), no such class, or the
    class lacks a method of the agent protocol."""
    if not is_external(spec):
        raise ValueError(f"'{spec}' is not an external agent: write FILE.py:Class or module.name:Class")
    left, cls_name = _parts(spec)
    module = _load_module(spec, left)
    cls = vars(module).get(cls_name)
    if cls is None:
        defined = sorted(k for k, v in vars(module).items()
                         if inspect.isclass(v) and v.__module__ == module.__name__)
        raise ValueError(f"agent '{spec}': no class '{cls_name}' in {left} "
                         f"(classes defined there: {', '.join(defined) or 'none'})")
    if not inspect.isclass(cls):
        raise ValueError(f"agent '{spec}': '{cls_name}' in {left} is a {type(cls).__name__}, not a class")
    missing = [m for m in PROTOCOL if not callable(getattr(cls, m, None))]
    if missing:
        raise ValueError(f"agent '{spec}': {cls_name} does not implement the agent protocol: it has no "
                         f"{', '.join(missing)} (see metarena/agents/base.py, or examples/my_agent.py)")
    return cls


def _takes_seed(cls: type) -> bool:
    try:
        return "seed" in inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a signature Python cannot read (some built-in classes)
        return False


def make_external(spec: str, seed: int | None = None) -> Any:
    """An instance of the class ``spec`` names (:func:`load_class`), made with ``seed=seed``
    when its constructor has a ``seed`` parameter, else with no arguments. An instance
    without a ``name`` (or with an empty one) is named after the class. Runs the spec's code
    in this process."""
    cls = load_class(spec)
    _, cls_name = _parts(spec)
    try:
        agent = cls(seed=seed) if _takes_seed(cls) else cls()
    except Exception as exc:
        raise ValueError(f"agent '{spec}': {cls_name}(...) raised {type(exc).__name__}: {exc}") from exc
    name = getattr(agent, "name", None)  # optional on the class: filled in here
    if not isinstance(name, str) or not name:
        try:
            agent.name = cls_name
        except AttributeError as exc:
            raise ValueError(f"agent '{spec}': {cls_name} has no usable `name` and none can be set ({exc}); "
                             "give the class a `name` string") from exc
    return agent


__all__ = ["PROTOCOL", "is_external", "spec_exists", "external_source", "load_class", "make_external"]
