"""The README stays a tour: short, with the CI's test command, real commands and live links."""

from __future__ import annotations

import re
from pathlib import Path

from metarena.arenas.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_a_tour_of_at_most_250_lines():
    assert len(README.splitlines()) <= 250


def test_the_readme_test_command_is_the_one_ci_runs():
    command = 'python -m pip install "torch==2.13.0" -e ".[test]" && python -m pytest -q'
    assert command in README
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_command_the_readme_names_exists():
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # the subcommands
    named = set(re.findall(r"^metarena ([a-z]+)", README, flags=re.M))
    assert named and named <= commands, named - commands


def test_every_relative_link_resolves():
    for md in (ROOT / "README.md", ROOT / "docs" / "RESULTS.md", *ROOT.glob("agents/zoo/*/TRAINING.md")):
        text = md.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (md.parent / target).exists(), f"{md.relative_to(ROOT)} links to a missing {target}"


def test_the_readme_shows_the_example_agent_the_tests_play():
    source = (ROOT / "examples" / "my_agent.py").read_text(encoding="utf-8")
    body = source[source.index("import numpy as np"):]
    assert "```python\n# examples/my_agent.py\n" + body + "```" in README
    assert 15 <= len([ln for ln in body.splitlines() if ln.strip()]) <= 30  # about 20 lines
