"""The game registry: every game by name, its variants and its levels.

>>> from metarena.games import registry
>>> registry.names()
['treasure', 'coinrush', 'rules', 'drift', 'cycles']

Games are added with :func:`register` (the built-in ones by ``metarena.games`` itself).
Interfaces that give each game an id of their own (the Gymnasium adapter) ask to hear of
games registered later with :func:`on_register`, so this module imports none of them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Callable

from .engine import Game, Level
from .variant import VARIANT_FILES, Variant, VariantError, load_variant, variant_file

_GAMES: dict[str, Game] = {}
_LISTENERS: list[Callable[[str], None]] = []


def register(game: Game) -> Game:
    """Add a game to the registry (its name must be new); returns it. A game whose variants
    live elsewhere than ``games/variants/<name>.toml`` names its file as ``variant_file``."""
    name = game.spec.name
    if name in _GAMES:
        raise ValueError(f"a game named '{name}' is already registered")
    if getattr(game, "variant_file", None) is not None:
        VARIANT_FILES[name] = Path(game.variant_file)
    _GAMES[name] = game
    for listener in _LISTENERS:
        listener(name)
    return game


def on_register(listener: Callable[[str], None]) -> None:
    """Call ``listener(name)`` for every game registered from now on."""
    _LISTENERS.append(listener)


def names() -> list[str]:
    """The registered games' names, in the order they were registered."""
    return list(_GAMES)


def get(name: str) -> Game:
    """The game named ``name``; a KeyError lists the known games."""
    try:
        return _GAMES[name]
    except KeyError:
        raise KeyError(f"unknown game '{name}'; known games: {', '.join(_GAMES)}") from None


def variant(game: str, spec: str | Variant | None = None) -> Variant:
    """A built-in variant by name or a TOML file by path; ``None`` is the game's default. A
    :class:`Variant` already resolved (at the command line's edge) is returned as it is."""
    g = get(game)
    if isinstance(spec, Variant):
        if spec.game != game:
            raise ValueError(f"variant '{spec.name}' is a variant of {spec.game}, not of {game}")
        return spec
    v = load_variant(game, spec, g.spec.params, g.spec.default_variant)
    if not v.source.startswith(str(variant_file(game))):  # a user's file: can it make levels?
        _check_makes_levels(g, v)
    return v


#: level seeds a variant file's values are tried on: a test seed and two train seeds
TRIAL_SEEDS = (0, 1, 2)


def _check_makes_levels(g: Game, v: Variant) -> None:
    """A user's variant whose keys are each valid may still be impossible together (a small
    map with many rooms): make a few levels now, so the mistake is reported against the file."""
    for seed in TRIAL_SEEDS:
        try:
            g.generate(v, seed)
        except ValueError as exc:
            raise VariantError(f"{v.source}: these values cannot make a {g.spec.name} level ({exc}); "
                               "see `metarena games --json` for each key's range") from None


def level(game: str, variant_spec: str | Variant | None = None, seed: int = 0) -> Level:
    """The level ``(game, variant, seed)``."""
    return get(game).generate(variant(game, variant_spec), seed)


#: the environment variable naming games of your own to load: module names or .py files,
#: separated by commas
PLUGINS_ENV = "METARENA_GAMES"
#: the entry-point group through which an installed package adds its games
ENTRY_POINTS = "metarena.games"


def load_plugins() -> list[str]:
    """Load the games of your own named by :data:`PLUGINS_ENV` and the :data:`ENTRY_POINTS`
    group; returns the names of the games they registered. A module (or file) either calls
    :func:`register` itself or defines ``GAME``, which is registered for it. A plugin that
    fails to load is reported on stderr and skipped; the built-in games stay."""
    before = set(_GAMES)
    specs = [s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(",") if s.strip()]
    for spec in specs:
        try:
            _adopt(_import(spec), spec)
        except Exception as exc:  # the user's code: any failure is reported, not fatal
            _report(f"{PLUGINS_ENV}: cannot load the game '{spec}': {exc}")
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINTS):
        try:
            loaded = ep.load()
            if isinstance(loaded, Game):
                if loaded.spec.name not in _GAMES:
                    register(loaded)
            else:
                _adopt(loaded, ep.value)
        except Exception as exc:
            _report(f"entry point '{ep.name}' of {ENTRY_POINTS}: cannot load the game: {exc}")
    return [name for name in _GAMES if name not in before]


def _report(message: str) -> None:
    """A plugin that fails to load: said on stderr (the other games work on)."""
    print(f"metarena: warning: {message}", file=sys.stderr)


def _import(spec: str):
    """A module by name, or a ``.py`` file by path (imported under its file name)."""
    if not spec.endswith(".py"):
        return importlib.import_module(spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    name = path.stem
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path.resolve()):
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path.resolve())
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def _adopt(module, spec: str) -> None:
    """Register ``module.GAME`` unless the module registered its game itself."""
    game = getattr(module, "GAME", None)
    if isinstance(game, Game) and game.spec.name not in _GAMES:
        register(game)
    elif game is not None and not isinstance(game, Game):
        raise TypeError(f"GAME in {spec} is a {type(game).__name__}, not a metarena Game")
