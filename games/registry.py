"""The game registry: every game by name, its variants and its levels.

>>> from metarena.games import registry
>>> registry.names()
['treasure', 'coinrush']

Games are added with :func:`register` (the built-in ones by ``metarena.games`` itself).
Interfaces that give each game an id of their own (the Gymnasium adapter) ask to hear of
games registered later with :func:`on_register`, so this module imports none of them.
"""

from __future__ import annotations

from typing import Callable

from .engine import Game, Level
from .variant import VARIANT_DIR, Variant, VariantError, load_variant

_GAMES: dict[str, Game] = {}
_LISTENERS: list[Callable[[str], None]] = []


def register(game: Game) -> Game:
    """Add a game to the registry (its name must be new); returns it."""
    name = game.spec.name
    if name in _GAMES:
        raise ValueError(f"a game named '{name}' is already registered")
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
    if not v.source.startswith(str(VARIANT_DIR)):
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
