"""Golden playthroughs: fixed seeds, fixed agents, a hash of everything observed.

A failure means the behaviour of a game changed. If that was intended,
regenerate with ``METARENA_UPDATE_GOLDEN=1 python -m pytest tests/games/test_golden.py``
and say why in the commit.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from metarena import games

GOLDEN = Path(__file__).with_name("golden.json")
CASES = [(g, seed, players) for g in games.names() for seed, players in ((0, 1), (5, 2), (12, 4))]


def playthrough(game: str, seed: int, players: int) -> str:
    env = games.make_batch_env(game, None, batch=1, players=players, seeds=[seed], seed=seed, episodes=2)
    grid, scalars = env.reset(levels=[0])
    rng = np.random.default_rng(seed)
    h = hashlib.sha256()
    for _ in range(2 * env.engine.limit + 2):
        actions = np.stack([env.game.policy(kind, env.engine, env.state, p, grid[:, p], rng)
                            for p, kind in zip(range(players), ("uninformed", "scripted", "random", "oracle"))], 1)
        grid, scalars, rewards, term, trunc, info = env.step(actions)
        for a in (grid, scalars, rewards, term, trunc):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_golden_playthroughs():
    got = {f"{g}/{seed}/{p}": playthrough(g, seed, p) for g, seed, p in CASES}
    if os.environ.get("METARENA_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        pytest.skip("golden playthroughs rewritten")
    want = json.loads(GOLDEN.read_text())
    changed = [k for k in want if want[k] != got.get(k)]
    assert not changed, f"behaviour changed in {changed}"
    assert set(got) == set(want), "cases were added or removed: regenerate the golden file"


def test_playthroughs_are_repeatable():
    assert playthrough("coinrush", 5, 2) == playthrough("coinrush", 5, 2)
    assert playthrough("coinrush", 5, 2) != playthrough("coinrush", 10, 2)
