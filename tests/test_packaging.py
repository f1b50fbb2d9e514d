"""The distribution installs one import package, ``metarena``, and nothing beside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_only_the_metarena_package(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info/ beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("metarena", "games", "agents", "arenas", "scripts", "tests"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("metarena-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"metarena"}, f"the wheel installs other top-level names: {sorted(top - {'metarena'})}"
    for part in ("games", "agents", "arenas"):  # every package of the source tree, subpackages too
        for init in (ROOT / part).rglob("__init__.py"):
            assert f"metarena/{init.relative_to(ROOT).as_posix()}" in names, f"the wheel lacks {init.parent}"
    assert "metarena/games/variants/treasure.toml" in names  # data files travel too
    assert any(n.startswith("metarena/agents/zoo/") and n.endswith(".safetensors") for n in names)
    assert not any(n.startswith(("metarena/tests/", "metarena/scripts/")) for n in names)


def test_metarena_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "metarena", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: metarena" in out.stdout
