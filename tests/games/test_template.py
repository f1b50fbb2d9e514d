"""A new game in one file: games/template.py copied under a new name, loaded through
METARENA_GAMES, passes check_game, and trains, evaluates and plays from the command line.

It runs in a subprocess, so that the copied game never joins this process's registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metarena import games
from metarena.games import registry

TEMPLATE = Path(games.__file__).with_name("template.py")

SCRIPT = r"""
import json, sys
from metarena import games
from metarena.arenas.cli import main
from metarena.games.testing import check_game

assert "my_game" in games.names(), games.names()
check_game("my_game", seeds=200, echo=None)  # raises GameCheckError naming every failed check
codes = [
    main(["check", "my_game", "--only", "spec,golden", "--seeds", "10"]),
    main(["eval", "--agent", "scripted", "--game", "my_game", "--levels", "20", "--json"]),
    main(["watch", "my_game", "--variant", "small", "--headless", "--episodes", "1", "--record", "out/w.gif"]),
    main(["train", "--algo", "rl2", "--game", "my_game", "--variant", "small", "--steps", "256", "--envs", "16",
          "--out", "out/run", "--set", "chunk=8", "--set", "pool_size=16", "--set", "hidden=[16]",
          "--set", "memory=8", "--set", "minibatches=2", "--set", "episodes=2", "--set", "torch_threads=1"]),
    main(["eval", "--agent", "out/run", "--game", "my_game", "--variant", "small", "--levels", "4",
          "--episodes", "2", "--json"]),
]
print("CODES", json.dumps(codes))
"""


def copy_template(folder: Path, name: str) -> Path:
    """The template as the user's own game ``name``: the two files copied, the name changed."""
    source = TEMPLATE.read_text(encoding="utf-8")
    assert source.count('name="beacons"') == 1
    path = folder / f"{name}.py"
    path.write_text(source.replace('name="beacons"', f'name="{name}"'), encoding="utf-8")
    shutil.copy(TEMPLATE.with_suffix(".toml"), path.with_suffix(".toml"))
    return path


def test_the_template_becomes_a_game_that_passes_every_check_and_trains(tmp_path):
    game = copy_template(tmp_path, "my_game")
    env = dict(os.environ, METARENA_GAMES=str(game), SDL_VIDEODRIVER="dummy", WANDB_MODE="disabled")
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    codes = json.loads(res.stdout.split("CODES", 1)[1])
    assert codes == [0, 0, 0, 0, 0], res.stderr[-3000:]
    assert "my_game passed every check" in res.stdout
    evals = [json.loads(chunk) for chunk in _json_blocks(res.stdout.split("CODES", 1)[0])]
    assert [e["game"] for e in evals] == ["my_game", "my_game"]
    assert evals[0]["reference"]["oracle"]["return"][0] > evals[0]["reference"]["random"]["return"][0]
    assert (tmp_path / "out" / "w.gif").stat().st_size > 1000
    assert (tmp_path / "out" / "run" / "latest").is_file()


def _json_blocks(text: str) -> list[str]:
    """The top-level JSON objects printed one after another (each starts with '{' on a line)."""
    blocks, depth, start = [], 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                blocks.append(text[start:i + 1])
    return [b for b in blocks if '"schema"' in b]


def test_a_plugin_that_fails_to_load_is_named_and_the_others_stay(tmp_path):
    env = dict(os.environ, METARENA_GAMES=f"{tmp_path / 'missing.py'},no_such_module_here",
               SDL_VIDEODRIVER="dummy")
    res = subprocess.run([sys.executable, "-c", "from metarena import games; print(games.names())"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert "treasure" in res.stdout and "coinrush" in res.stdout
    assert f"cannot load the game '{tmp_path / 'missing.py'}': no such file" in res.stderr
    assert "cannot load the game 'no_such_module_here'" in res.stderr


def test_a_game_keeps_its_variants_beside_its_file(tmp_path, monkeypatch):
    """``variant_file`` on a game points the registry at its own TOML."""
    path = copy_template(tmp_path, "beside_game")
    module = registry._import(str(path))
    monkeypatch.setattr(registry, "_GAMES", dict(registry._GAMES))
    monkeypatch.setattr(registry, "VARIANT_FILES", dict(registry.VARIANT_FILES))
    variant_module = sys.modules["metarena.games.variant"]  # (games.variant is the function)
    monkeypatch.setattr(variant_module, "VARIANT_FILES", registry.VARIANT_FILES)
    registry.register(module.GAME)
    v = registry.variant("beside_game", "large")
    assert v.beacons == 10 and v.source.startswith(str(path.with_suffix(".toml")))
    with pytest.raises(games.VariantError, match="no built-in variant 'huge'"):
        registry.variant("beside_game", "huge")
