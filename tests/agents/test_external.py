"""External agents: specs, loading by path or module, clear errors, the registry, the example."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from metarena import games
from metarena.agents.base import Agent
from metarena.agents.external import external_source, is_external, load_class, make_external, spec_exists
from metarena.agents.registry import is_agent_name, make_agent
from metarena.agents.rollout import play

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "my_agent.py"
FIXTURE = ROOT / "tests" / "arenas" / "agents_fixture"

AGENT = '''
import numpy as np


class Seeded:
    def __init__(self, seed=None):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def begin_trial(self, n):
        return None

    def act(self, obs, memory, ctx):
        return self.rng.integers(0, 5, size=len(obs.grid)), memory

    def end_episode(self, memory, slots):
        return memory


class Plain(Seeded):
    name = "plain-agent"

    def __init__(self):
        super().__init__(0)


class NoAct:
    name = "no-act"

    def begin_trial(self, n):
        return None


def helper():
    return 1
'''


@pytest.fixture
def agent_file(tmp_path) -> Path:
    path = tmp_path / "agent.py"
    path.write_text(AGENT, encoding="utf-8")
    return path


@pytest.mark.parametrize("name, external", [
    ("examples/my_agent.py:MyAgent", True),
    ("path/to/file.py:Cls", True),
    ("some.module:Class", True),
    ("mod:Cls", True),
    ("rl2", False),
    ("scripted", False),
    ("runs/treasure-rl2", False),
    ("runs/treasure-rl2/ckpt-000100", False),
    ("rl2:ckpt-000100", False),  # a trained agent's name: its right side is no class name
    ("file.py:", False),
    (":Cls", False),
    ("some module:Cls", False),
    ("a/b.txt:Cls", False),
    ("file.py:Not-A-Class", False),
])
def test_is_external_reads_the_spec(name, external):
    assert is_external(name) is external


def test_an_existing_path_with_a_colon_is_a_path(tmp_path):
    run = tmp_path / "run.py:Best"  # a folder whose name looks like a spec
    run.mkdir()
    assert not is_external(str(run))
    assert is_external(f"{tmp_path / 'other.py'}:Best")


def test_spec_exists_imports_nothing(tmp_path):
    bad = f"{FIXTURE / 'bad_import.py'}:Anything"
    before = set(sys.modules)
    assert spec_exists(bad) and is_agent_name(bad)  # it exists; loading it would fail
    assert not spec_exists(f"{tmp_path / 'missing.py'}:Cls") and not is_agent_name(f"{tmp_path / 'missing.py'}:Cls")
    assert spec_exists("json.decoder:JSONDecoder") and not spec_exists("no_such_module_xyz:Cls")
    assert not is_agent_name("no_such_module_xyz:Cls")
    assert not spec_exists("scripted")
    assert not [m for m in set(sys.modules) - before if "external" in m or "no_such" in m]


def test_external_source_finds_the_file(agent_file):
    assert external_source(f"{agent_file}:Seeded") == agent_file.resolve()
    assert external_source("json.decoder:JSONDecoder") == Path(json.decoder.__file__)
    assert external_source("no_such_module_xyz:Cls") is None
    assert external_source("scripted") is None


def test_load_class_by_path_and_by_module(agent_file):
    cls = load_class(f"{agent_file}:Seeded")
    assert cls.__name__ == "Seeded" and cls.__module__.startswith("_metarena_external_agent_")
    assert load_class("metarena.agents.reference:ReferenceAgent").__name__ == "ReferenceAgent"


def test_load_class_says_what_is_wrong(agent_file, tmp_path):
    with pytest.raises(ValueError, match="no file .*missing.py"):
        load_class(f"{tmp_path / 'missing.py'}:Cls")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'.*No module named"):
        load_class("no_such_module_xyz:Cls")
    with pytest.raises(ValueError, match="RuntimeError: this file cannot be imported"):
        load_class(f"{FIXTURE / 'bad_import.py'}:Anything")
    with pytest.raises(ValueError, match=r"no class 'Missing'.*NoAct, Plain, Seeded"):
        load_class(f"{agent_file}:Missing")
    with pytest.raises(ValueError, match="'helper' .* is a function, not a class"):
        load_class(f"{agent_file}:helper")
    with pytest.raises(ValueError, match="does not implement the agent protocol: it has no act, end_episode"):
        load_class(f"{agent_file}:NoAct")
    with pytest.raises(ValueError, match="not an external agent"):
        load_class("scripted")


def test_make_external_passes_the_seed_when_asked_and_names_the_agent(agent_file):
    seeded = make_external(f"{agent_file}:Seeded", seed=7)
    assert seeded.seed == 7 and seeded.name == "Seeded" and isinstance(seeded, Agent)
    plain = make_external(f"{agent_file}:Plain", seed=7)  # its constructor takes no seed
    assert plain.seed == 0 and plain.name == "plain-agent"


def test_make_external_reports_a_failing_constructor(tmp_path):
    path = tmp_path / "fails.py"
    path.write_text(AGENT + "\n\nclass Fails(Seeded):\n    def __init__(self, seed=None):\n"
                            "        raise OSError('no weights here')\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"Fails\(...\) raised OSError: no weights here"):
        make_external(f"{path}:Fails")


def test_the_registry_makes_external_agents(agent_file):
    agent = make_agent(f"{agent_file}:Seeded", "treasure", seed=3)
    assert agent.name == "Seeded" and agent.seed == 3
    with pytest.raises(ValueError, match="--greedy applies to trained agents"):
        make_agent(f"{agent_file}:Seeded", "treasure", greedy=True)
    with pytest.raises(ValueError, match="does not fine-tune"):
        make_agent(f"{agent_file}:Seeded", "treasure", strategy="head")
    with pytest.raises(ValueError, match="no class 'Missing'"):
        make_agent(f"{agent_file}:Missing", "treasure")


def test_the_example_agent_plays_and_beats_random():
    env = games.make_batch_env("treasure", "small", batch=32, players=1, episodes=2, pool_size=32)
    mine = play(env, [make_external(f"{EXAMPLE}:MyAgent", seed=0)], seed=0)
    rand = play(env, [make_agent("random", seed=0)], seed=0)
    assert mine.finished.all()
    assert mine.returns.mean() > rand.returns.mean() + 0.05


def test_eval_runs_the_example_agent(capsys, monkeypatch):
    from metarena.arenas.cli import main

    monkeypatch.chdir(ROOT)  # the spec as the README shows it, relative to the repository
    code = main(["eval", "--agent", "examples/my_agent.py:MyAgent", "--game", "treasure", "--variant", "small",
                 "--levels", "4", "--episodes", "2", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    assert result["agent"] == "my-agent" and len(result["per_episode"]["return"]) == 2
    assert np.isfinite(result["per_episode"]["return"]).all()
