"""Bad input at the command line: exit code 2, a message that says what was wrong and what to
do, no traceback, and nothing left half-made on disk. Also the help texts and long-work output."""

import argparse
import os
import subprocess
import sys

import pytest

from metarena import games
from metarena.arenas import cli
from metarena.arenas.cli import build_parser, main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv) -> str:
    """Run a command that must be refused; its stderr."""
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def files(tmp_path):
    """A file, a folder, and variant files that are each wrong in one way."""
    (tmp_path / "a_file").write_text("not a folder\n")
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00\x01")
    (tmp_path / "empty.toml").write_text("")
    (tmp_path / "bad_base.toml").write_text('base = "nope"\nsize = 9\n')
    (tmp_path / "impossible.toml").write_text("size = 7\nrooms = 10\n")
    return tmp_path


# -- variants ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,needles", [
    ("binary.toml", ["binary.toml", "not a text file"]),
    ("a_folder", ["a_folder is a folder, not a variant file"]),
    ("empty.toml", ["empty.toml is empty", 'base = "medium"']),
    ("bad_base.toml", ["bad_base.toml: base = 'nope' is not a built-in variant of treasure", "small, medium, large"]),
    ("impossible.toml", ["impossible.toml: these values cannot make a treasure level", "cannot hold 10 rooms"]),
])
def test_a_bad_variant_is_named_with_what_is_wrong(files, capsys, name, needles):
    for argv in (["levels", "show", "treasure", "--out", files / "x.png"],
                 ["eval", "--agent", "random", "--game", "treasure", "--levels", "2"]):
        err = refused(capsys, *argv, "--variant", files / name)
        for needle in needles:
            assert needle in err
        assert "games/variants/treasure.toml" not in err  # the user's file is blamed, not the built-in one
    assert not (files / "x.png").exists()


def test_an_unknown_variant_name_says_there_is_no_such_file_either(capsys):
    err = refused(capsys, "levels", "show", "coinrush", "--variant", "huge")
    assert "no built-in variant 'huge'" in err and "no file of that name" in err


# -- players, counts ----------------------------------------------------------------------------

def test_levels_show_with_too_many_players(tmp_path, capsys):
    err = refused(capsys, "levels", "show", "treasure", "--players", "5", "--out", tmp_path / "x.png")
    assert "treasure takes 1-4 players, got 5" in err
    assert not (tmp_path / "x.png").exists()


def test_games_with_negative_levels(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["games", "--levels", "-1"])
    assert exc.value.code == 2
    assert "expected a non-negative integer, got -1" in capsys.readouterr().err


# -- outputs under a file -----------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["levels", "show", "treasure", "--out", "{file}/x.png"],
    ["eval", "--agent", "random", "--game", "treasure", "--levels", "2", "--plot", "{file}/x.png"],
    ["watch", "treasure", "--headless", "--episodes", "1", "--record", "{file}/x.gif"],
    ["tournament", "--game", "treasure", "--agents", "random,stay", "--levels", "1", "--out", "{file}/t"],
    ["demo", "--levels", "1", "--headless", "--out", "{file}/d"],
])
def test_an_output_under_a_file_is_refused_before_any_work(files, capsys, argv):
    argv = [a.replace("{file}", str(files / "a_file")) for a in argv]
    err = refused(capsys, *argv)
    assert f"'{files / 'a_file'}' is a file, not a folder" in err
    assert (files / "a_file").read_text() == "not a folder\n"


def test_an_output_file_that_is_a_folder_is_refused(files, capsys):
    (files / "dir.png").mkdir()  # a folder named like a PNG
    err = refused(capsys, "levels", "show", "treasure", "--out", files / "dir.png")
    assert "is a folder; give the name of a file" in err


def test_missing_folders_of_an_output_are_made(tmp_path, capsys):
    png = tmp_path / "new" / "deeper" / "level.png"
    code, out, _ = run(capsys, "levels", "show", "treasure", "--out", png)
    assert code == 0 and png.is_file()
    assert f"wrote {png.resolve()} (" in out and "KB)" in out  # the absolute path and the size


def test_watch_says_where_the_gif_is_and_how_big(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "watch", "treasure", "--variant", "small", "--headless", "--episodes", "1")
    assert code == 0
    gif = tmp_path / "watch-treasure-0.gif"
    assert gif.is_file()
    assert f"wrote {gif} (" in out and "KB)" in out


# -- agents -------------------------------------------------------------------------------------

@pytest.mark.parametrize("agent,needle", [
    ("nosuch/agent.py:MyAgent", "agent 'nosuch/agent.py:MyAgent': no such file: nosuch/agent.py"),
    ("no_such_package.agents:MyAgent", "no module named 'no_such_package'"),
    ("runs/typo", "agent 'runs/typo': no such file or directory"),
    ("my_agent.py", "your own agent needs its class too: FILE.py:Class"),
    ("genius", "unknown agent 'genius'; choose from"),
])
def test_a_missing_agent_says_what_is_missing(capsys, agent, needle):
    err = refused(capsys, "eval", "--agent", agent, "--game", "treasure", "--levels", "2")
    assert needle in err
    if agent != "genius":
        assert "unknown agent" not in err


# -- pipes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["games", "--levels", "0"], ["games", "--levels", "0", "--json"],
                                  ["settings", "rl2"]])
def test_a_closed_pipe_ends_quietly(argv):
    """`metarena games | head -1`: the reader goes away; no BrokenPipeError traceback."""
    read, write = os.pipe()
    os.close(read)  # every write to the pipe now fails with EPIPE
    try:
        res = subprocess.run([sys.executable, "-m", "metarena", *argv], stdout=write, stderr=subprocess.PIPE,
                             text=True, timeout=120)
    finally:
        os.close(write)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr


# -- long work ------------------------------------------------------------------------------------

def test_eval_reports_progress_in_episodes(monkeypatch, capsys):
    """The eval command hands evaluate() a progress callback that reaches every episode."""
    seen = []
    real = cli._Progress.update

    def spy(self, done, total):
        seen.append((done, total))
        real(self, done, total)

    monkeypatch.setattr(cli._Progress, "update", spy)
    code, _, _ = run(capsys, "eval", "--agent", "random", "--game", "coinrush", "--variant", "small",
                     "--levels", "6", "--episodes", "2")
    assert code == 0
    total = 6 * 2 * (1 + 2 + 16 + 1)  # the agent, oracle, uninformed, 16 random rollouts, the ceiling
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_more_shards_than_cores_is_warned(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_cores", lambda: 2)
    code, _, err = run(capsys, "bench", "env", "--game", "treasure", "--variant", "small", "--batch", "8",
                       "--seconds", "0.2", "--shards", "3", "--pool", "8", "--json")
    assert code == 0
    assert "3 env processes (--shards) on 2 CPU cores" in err


# -- help -----------------------------------------------------------------------------------------

def _options(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            yield " ".join(path), action


def test_every_option_has_help_and_shows_its_default():
    missing = []
    for command, action in _options(build_parser()):
        flag = action.option_strings[0] if action.option_strings else action.dest
        text = action.help or ""
        if not text:
            missing.append(f"{command} {flag}: no help")
        shown = action.default is None or action.default is False or action.default == [] or action.required
        if action.option_strings and not shown and "default" not in text:
            missing.append(f"{command} {flag}: default {action.default!r} not shown")
    assert not missing, "\n".join(missing)


def test_game_options_list_the_games():
    for command, action in _options(build_parser()):
        if action.dest == "game":
            assert all(g in action.help for g in games.names()), f"{command}: {action.help}"


def test_agent_options_name_rl2_and_run_directories():
    for command, action in _options(build_parser()):
        if action.dest in ("agent", "agents", "opponents"):
            assert "rl2" in action.help and "run directory" in action.help, f"{command} {action.dest}"
