"""The import graph: no circles, and the boundaries of the design.

Every module's imports are read from its source (imports inside functions included), and
turned into edges between the project's modules. The test fails on a circle or on an import
that crosses a boundary:

- ``metarena.games`` knows no agent and no arena; inside it only the interface adapters
  (``gym_env``, ``pz_env``) and the conformance suite (``testing``, which runs their checkers)
  import Gymnasium or PettingZoo, and only the renderer and the adapters import pygame;
- ``metarena.agents`` knows no arena;
- the game files do not import the trial env;
- importing ``metarena.games`` imports no Gymnasium, PettingZoo or pygame.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"metarena": ROOT / "metarena", "metarena.games": ROOT / "games", "metarena.agents": ROOT / "agents",
            "metarena.arenas": ROOT / "arenas"}


def modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules and outside top-level packages that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known and target.startswith("metarena"):
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target if target.startswith("metarena") else target.split(".")[0])
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    found = circles(graph())
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_no_boundary_is_crossed():
    adapters = {"metarena.games.gym_env", "metarena.games.pz_env"}
    checkers = adapters | {"metarena.games.testing"}
    drawing = adapters | {"metarena.games.render", "metarena.games.bench"}
    game_files = {"metarena.games.treasure", "metarena.games.coinrush", "metarena.games.engine",
                  "metarena.games.planning", "metarena.games.maze", "metarena.games.tiles"}
    crossed = []
    for module, targets in graph().items():
        for t in targets:
            if module.startswith("metarena.games") and t.startswith(("metarena.agents", "metarena.arenas")):
                crossed.append(f"{module} imports {t}: games know no agent and no arena")
            if module.startswith("metarena.agents") and t.startswith("metarena.arenas"):
                crossed.append(f"{module} imports {t}: agents know no arena")
            if module.startswith("metarena.games") and t in ("gymnasium", "pettingzoo") and module not in checkers:
                crossed.append(f"{module} imports {t}: only the interface adapters and their checks may")
            if module.startswith("metarena.games") and t == "pygame" and module not in drawing:
                crossed.append(f"{module} imports {t}: only the renderer and the adapters may")
            if module in game_files and t == "metarena.games.trial":
                crossed.append(f"{module} imports the trial env")
    assert not crossed, "\n".join(crossed)


def test_the_checker_sees_circles_and_crossings():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    known = modules()
    assert "metarena.games.trial" in imports("metarena.agents.rl2", known["metarena.agents.rl2"], known)
    assert "metarena.games.registry" in imports("metarena.games.batch", known["metarena.games.batch"], known)


def test_importing_the_engine_imports_no_interface_library():
    code = ("import sys, metarena.games, metarena.games.trial; "
            "print(sorted(m for m in ('gymnasium', 'pettingzoo', 'pygame') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_gymnasium_ids_come_with_the_adapter():
    code = ("import gymnasium, metarena.games as g; before = 'metarena/Treasure-v0' in gymnasium.registry; "
            "import metarena.games.gym_env; print(before, all(metarena.games.gym_env.env_id(n) in gymnasium.registry "
            "for n in g.names()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_nothing_imports_the_bare_folders():
    bare = [f"{path.relative_to(ROOT)} imports {t}" for name, path in modules().items()
            for t in imports(name, path, modules()) if t in ("games", "agents", "arenas")]
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bare += [f"{path.relative_to(ROOT)} imports {n}" for n in names
                     if n.split(".")[0] in ("games", "agents", "arenas")]
    assert not bare, "\n".join(bare)
