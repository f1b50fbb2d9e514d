"""metarena games: the batched engine, the games and their registry.

Importing this package imports no Gymnasium, PettingZoo or pygame: the Gymnasium ids
``metarena/<Name>-v0`` are registered by the adapter, ``metarena.games.gym_env``, when it
is imported.

>>> from metarena import games
>>> games.names()
['treasure', 'coinrush', 'rules', 'drift', 'cycles']
>>> env = games.make_batch_env("treasure", batch=64)
"""

from __future__ import annotations

from . import coinrush, cycles, drift, rules, treasure
from .batch import BatchEnv, make_batch_env
from .engine import VIEW, Engine, Game, GameSpec, Level, LevelBatch, State, make_levels, split_seeds
from .registry import get, level, load_plugins, names, register, variant
from .variant import SPLITS, Variant, VariantError, load_variant, seed_split, split_seed

register(treasure.GAME)
register(coinrush.GAME)
register(rules.GAME)
register(drift.GAME)
register(cycles.GAME)
load_plugins()  # your own games: METARENA_GAMES=my_game.py, or an entry point (games/template.py)

__all__ = [
    "VIEW", "Engine", "Game", "GameSpec", "Level", "LevelBatch", "State", "make_levels", "split_seeds",
    "SPLITS", "Variant", "VariantError", "load_variant", "seed_split", "split_seed",
    "register", "names", "get", "variant", "level", "load_plugins", "BatchEnv", "make_batch_env",
]

