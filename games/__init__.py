"""metarena games: the batched engine, the games and their registry.

>>> from metarena import games
>>> games.names()
['treasure', 'coinrush']
>>> env = games.make_batch_env("treasure", batch=64)
"""

from __future__ import annotations

from .engine import VIEW, Engine, Game, GameSpec, Level, LevelBatch, State, make_levels, split_seeds
from .variant import SPLITS, Variant, VariantError, load_variant, seed_split, split_seed

_GAMES: dict[str, Game] = {}
_INTERFACES = False  # set once the Gymnasium ids of the built-in games are registered


def register(game: Game) -> Game:
    """Add a game to the registry (its name must be new)."""
    name = game.spec.name
    if name in _GAMES:
        raise ValueError(f"a game named '{name}' is already registered")
    _GAMES[name] = game
    if _INTERFACES:
        _register_interfaces([name])
    return game


def names() -> list[str]:
    return list(_GAMES)


def get(name: str) -> Game:
    try:
        return _GAMES[name]
    except KeyError:
        raise KeyError(f"unknown game '{name}'; known games: {', '.join(_GAMES)}") from None


def variant(game: str, spec: str | None = None) -> Variant:
    """A built-in variant by name or a TOML file by path; ``None`` is the game's default."""
    g = get(game)
    return load_variant(game, spec, g.spec.params, g.spec.default_variant)


def level(game: str, variant_spec: str | None = None, seed: int = 0) -> Level:
    """The level ``(game, variant, seed)``."""
    return get(game).generate(variant(game, variant_spec), seed)


from . import coinrush, treasure  # noqa: E402  (registration below needs the registry above)

register(treasure.GAME)
register(coinrush.GAME)

from .batch import BatchEnv, make_batch_env  # noqa: E402

__all__ = [
    "VIEW", "Engine", "Game", "GameSpec", "Level", "LevelBatch", "State", "make_levels", "split_seeds",
    "SPLITS", "Variant", "VariantError", "load_variant", "seed_split", "split_seed",
    "register", "names", "get", "variant", "level", "BatchEnv", "make_batch_env",
]


def _register_interfaces(game_names: list[str] | None = None) -> None:
    """Register the Gymnasium ids ``metarena/<Name>-v0`` (skipped if Gymnasium is missing)."""
    global _INTERFACES
    try:
        from .gym_env import register_envs
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        return
    register_envs(game_names)
    _INTERFACES = True


_register_interfaces()
