"""Greedy steps inside one observation window, for the games' scripted reference agents:
:func:`free_moves`, :func:`wander` and :func:`greedy_seek`. (Planners that build a map from
their windows are agents: :mod:`metarena.agents.planners`.)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import tiles as T
from .engine import MOVES


def free_moves(grid: np.ndarray) -> np.ndarray:
    """(B, 5) bool: which actions do not walk into a wall (stay is always free)."""
    v = grid.shape[1]
    c = v // 2
    walls = grid[..., T.WALL].astype(bool)
    free = np.ones((grid.shape[0], len(MOVES)), dtype=bool)
    for a, (dy, dx) in enumerate(MOVES[1:], start=1):
        free[:, a] = ~walls[:, c + dy, c + dx]
    return free


REVERSE = np.array([0, 2, 1, 4, 3])  # the move that undoes each action


def wander(free: np.ndarray, rng: np.random.Generator, previous: np.ndarray | None = None) -> np.ndarray:
    """(B,) a random free move other than stay; with ``previous`` moves (B,), keep going the
    same way where possible and turn back only at a dead end."""
    score = np.where(free[:, 1:], rng.random(free[:, 1:].shape), -np.inf)
    if previous is not None:
        moving = previous > 0
        rows = np.flatnonzero(moving)
        score[rows, previous[rows] - 1] += 1.0
        score[rows, REVERSE[previous[rows]] - 1] -= 2.0
    return np.where(free[:, 1:].any(1), score.argmax(1) + 1, 0)


def greedy_seek(grid: np.ndarray, channels: Sequence[int], rng: np.random.Generator,
                previous: np.ndarray | None = None, avoid: np.ndarray | None = None) -> np.ndarray:
    """(B,) actions towards the nearest visible cell holding one of ``channels``.

    ``grid`` is a batch of observation windows (B, V, V, C). Distance is
    Manhattan within the window; the agent steps along the longer axis first,
    the other axis when that is a wall, and otherwise wanders (see :func:`wander`,
    which keeps to the ``previous`` move's direction). ``avoid`` (B, V, V) bool masks
    cells to ignore.
    """
    b, v = grid.shape[0], grid.shape[1]
    c = v // 2
    wanted = grid[..., list(channels)].any(-1)
    wanted[:, c, c] = False
    if avoid is not None:
        wanted &= ~avoid
    dy, dx = np.meshgrid(np.arange(v) - c, np.arange(v) - c, indexing="ij")
    manhattan = np.abs(dy) + np.abs(dx)
    cost = np.where(wanted, manhattan, 10 * v).reshape(b, -1)
    best = cost.argmin(1)
    seen = cost[np.arange(b), best] < 10 * v
    ty, tx = dy.ravel()[best], dx.ravel()[best]
    vertical = np.where(ty < 0, 1, 2)
    horizontal = np.where(tx < 0, 3, 4)
    first = np.where(np.abs(ty) >= np.abs(tx), vertical, horizontal)
    second = np.where(np.abs(ty) >= np.abs(tx), horizontal, vertical)
    second_useful = np.where(np.abs(ty) >= np.abs(tx), tx != 0, ty != 0)
    free = free_moves(grid)
    rows = np.arange(b)
    action = wander(free, rng, previous)
    use_second = seen & second_useful & free[rows, second]
    action = np.where(use_second, second, action)
    use_first = seen & free[rows, first]
    return np.where(use_first, first, action)
