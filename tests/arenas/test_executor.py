"""The backends hand back every result in order, and a tournament's journal does not depend
on the backend: here, local processes, or a local two-worker Ray cluster."""

from __future__ import annotations

import json
import operator

import pytest

from metarena.arenas import executor
from metarena.arenas.cli import main


def journal(path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "duration_s"}
            for line in (path / "journal.jsonl").read_text().splitlines()]


def test_results_come_back_in_order():
    items = [3, 1, 2]
    assert list(executor.run(operator.neg, items)) == [(3, -3), (1, -1), (2, -2)]
    assert list(executor.run(operator.neg, items, workers=2)) == [(3, -3), (1, -1), (2, -2)]
    with pytest.raises(ValueError, match="unknown backend 'dask'"):
        list(executor.run(operator.neg, items, backend="dask"))


def test_a_ray_tournament_writes_the_local_journal(tmp_path):
    argv = ["tournament", "--game", "treasure", "--variant", "small", "--agents", "scripted,random", "--levels", "2",
            "--episodes", "2", "--batch", "1"]
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    assert main([*argv, "--out", str(tmp_path / "ray"), "--backend", "ray", "--workers", "2"]) == 0
    assert journal(tmp_path / "ray") == journal(tmp_path / "local")
