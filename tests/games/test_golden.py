"""Golden playthroughs: fixed seeds, fixed agents, a hash of everything observed.

Beside the hashes (``golden.json``), ``golden_steps.json`` keeps the first steps of every
case in a form one can read: each player's action, then its (row, col) and reward after the
step. A failure names the first step that differs, when it is one of those.

A failure means the behaviour of a game changed. If that was intended,
regenerate with ``METARENA_UPDATE_GOLDEN=1 python -m pytest tests/games/test_golden.py``
and say why in the commit.
"""

import json
import os
from pathlib import Path

import pytest

from metarena import games
from metarena.games.testing import playthrough

GOLDEN = Path(__file__).with_name("golden.json")
STEPS = Path(__file__).with_name("golden_steps.json")
READABLE = 8  #: steps of each case kept in golden_steps.json
CASES = [(g, seed, players) for g in games.names() for seed, players in ((0, 1), (5, 2), (12, 4))]


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
    got = {f"{g}/{seed}/{p}": playthrough(g, seed, p, READABLE) for g, seed, p in CASES}
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
