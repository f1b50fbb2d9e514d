"""Golden playthroughs: fixed seeds, fixed agents, a hash of everything observed.

Beside the hashes (``golden.json``), ``golden_steps.json`` keeps the first steps of every
case in a form one can read: each player's action, then its (row, col) and reward after the
step. A failure names the first step that differs, when it is one of those.

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
STEPS = Path(__file__).with_name("golden_steps.json")
READABLE = 8  #: steps of each case kept in golden_steps.json
CASES = [(g, seed, players) for g in games.names() for seed, players in ((0, 1), (5, 2), (12, 4))]


def playthrough(game: str, seed: int, players: int) -> tuple[str, list[dict]]:
    """The hash of everything observed, and the first ``READABLE`` steps: each player's
    ``actions``, then its ``pos`` (row, col) and ``reward`` after the step."""
    env = games.make_batch_env(game, None, batch=1, players=players, seeds=[seed], seed=seed, episodes=2)
    grid, scalars = env.reset(levels=[0])
    rng = np.random.default_rng(seed)
    h = hashlib.sha256()
    steps = []
    for t in range(2 * env.engine.limit + 2):
        actions = np.stack([env.game.policy(kind, env.engine, env.state, p, grid[:, p], rng)
                            for p, kind in zip(range(players), ("uninformed", "scripted", "random", "oracle"))], 1)
        grid, scalars, rewards, term, trunc, info = env.step(actions)
        for a in (grid, scalars, rewards, term, trunc):
            h.update(np.ascontiguousarray(a).tobytes())
        if t < READABLE:
            row, col = env.engine.rowcol(env.state)
            steps.append({"step": t + 1, "actions": [int(a) for a in actions[0]],
                          "pos": [[int(r), int(c)] for r, c in zip(row[0], col[0])],
                          "reward": [float(r) for r in rewards[0]]})
    return h.hexdigest(), steps


def _write_steps(steps: dict[str, list[dict]]) -> None:
    """One line a step, cases sorted."""
    cases = [f'  "{k}": [\n' + ",\n".join(f"    {json.dumps(s)}" for s in v) + "\n  ]" for k, v in sorted(steps.items())]
    STEPS.write_text("{\n" + ",\n".join(cases) + "\n}\n")


def first_difference(want: list[dict], got: list[dict]) -> str | None:
    """The first of the readable steps that differs, in words; None if they all agree."""
    for w, g in zip(want, got):
        if w != g:
            return f"step {w['step']}: expected {w}, got {g}"
    if len(want) != len(got):
        return f"{len(want)} readable steps expected, got {len(got)}"
    return None


def test_golden_playthroughs():
    got = {f"{g}/{seed}/{p}": playthrough(g, seed, p) for g, seed, p in CASES}
    if os.environ.get("METARENA_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps({k: v[0] for k, v in got.items()}, indent=2, sort_keys=True) + "\n")
        _write_steps({k: v[1] for k, v in got.items()})
        pytest.skip("golden playthroughs rewritten")
    want, want_steps = json.loads(GOLDEN.read_text()), json.loads(STEPS.read_text())
    assert set(got) == set(want) == set(want_steps), "cases were added or removed: regenerate the golden files"
    first = {k: first_difference(want_steps[k], got[k][1]) for k in want}
    readable = [f"{k}: {d}" for k, d in first.items() if d is not None]
    changed = [k for k in want if want[k] != got[k][0]]
    where = "\n".join(readable) or f"(the first {READABLE} steps agree: a later step differs)"
    assert not changed and not readable, f"behaviour changed in {changed}:\n{where}"


def test_playthroughs_are_repeatable():
    assert playthrough("coinrush", 5, 2) == playthrough("coinrush", 5, 2)
    assert playthrough("coinrush", 5, 2) != playthrough("coinrush", 10, 2)
