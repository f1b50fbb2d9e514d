"""Tournaments: schedules, a journal that is a pure function of the arguments, resume after a
kill, bit-identical replays, forfeits, and bad input refused before any match."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metarena.arenas.cli import main
from metarena.arenas.tournament import Spec, TournamentError, replay_digest, schedule, seatings

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "agents_fixture"
EXAMPLE = f"{ROOT / 'examples' / 'my_agent.py'}:MyAgent"
SMALL = ["--game", "treasure", "--variant", "small", "--levels", "3", "--episodes", "2", "--batch", "2"]


def journal(out: Path) -> list[dict]:
    """The journal's records without their timing field."""
    lines = (out / "journal.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "duration_s"} for line in lines]


def test_formats_seat_every_agent_as_they_say():
    assert seatings(["a", "b", "c"], "round-robin", 2) == [("a", "b"), ("a", "c"), ("b", "a"), ("b", "c"),
                                                          ("c", "a"), ("c", "b")]
    assert seatings(["a", "b", "c"], "gauntlet", 2) == [("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")]
    ffa = seatings(["a", "b", "c", "d"], "ffa", 3)
    assert len(ffa) == 4 * 3 and ("a", "b", "c") in ffa and ("b", "c", "a") in ffa and ("c", "a", "b") in ffa
    for bad in ((["a"], "round-robin", 2), (["a", "b"], "ffa", 3), (["a"], "gauntlet", 2), (["a", "a"], "ffa", 2),
                (["a", "b", "c"], "gauntlet", 3), (["a", "b"], "swiss", 2)):
        with pytest.raises(TournamentError):
            seatings(*bad)
    groups = schedule(Spec("treasure", ("a", "b", "c"), levels=5, batch=2))
    assert [len(g.levels) for g in groups] == [2, 2, 1] * 6  # chunks of `batch` levels per seating
    ids = [m for g in groups for m in g.match_ids()]
    assert ids == [f"m{i:06d}" for i in range(30)]


def test_a_tournament_is_a_pure_function_of_its_arguments(tmp_path, capsys):
    agents = ["scripted", "random", EXAMPLE]  # a person's own agent joins as a file
    for out in ("a", "b"):
        assert main(["tournament", *SMALL, "--batch", "3", "--agents", ",".join(agents), "--out",
                     str(tmp_path / out), "--json"]) == 0
        st = json.loads(capsys.readouterr().out)
    first, second = journal(tmp_path / "a"), journal(tmp_path / "b")
    assert first == second and len(first) == 6 * 3  # 6 seatings x 3 levels
    assert {r["seats"][0] for r in first} == set(agents)
    assert all(r["status"] == ["ok", "ok"] and len(r["returns"]) == 2 for r in first)
    assert sorted(st["agents"]) == sorted(agents)
    for name in ("leaderboard.json", "leaderboard.md", "leaderboard.png"):
        assert (tmp_path / "a" / name).stat().st_size > 100
    # every match replays bit for bit: the same observations and rewards, from seed, seats and actions
    for record in first:
        recorded, replayed = replay_digest(tmp_path / "a", record["match"])
        assert recorded == replayed, record["match"]


def test_resume_after_a_kill_plays_only_the_missing_matches(tmp_path):
    slow = f"{FIXTURES / 'sluggish.py'}:Sluggish"
    argv = ["tournament", *SMALL, "--levels", "3", "--batch", "1", "--agents", f"scripted,{slow}"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main([*argv, "--out", str(whole)]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "metarena", *argv, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = killed / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the tournament ended before it could be killed"
    done = len(log.read_text().splitlines())
    assert done < len(journal(whole))
    with open(log, "a") as fh:  # a kill in the middle of a line leaves it torn
        fh.write('{"schema": 1, "match": "m0000')
    with pytest.warns(UserWarning, match="cut short"):
        assert main([*argv, "--out", str(killed), "--resume"]) == 0
    assert journal(killed) == journal(whole)  # nothing lost, nothing counted twice
    assert len((killed / "replays.jsonl").read_text().splitlines()) == len(journal(whole))


def test_a_broken_agent_forfeits_and_only_it_loses(tmp_path, capsys):
    broken = f"{FIXTURES / 'broken.py'}:Raises"
    out = tmp_path / "t"
    assert main(["tournament", *SMALL, "--agents", f"scripted,{broken}", "--out", str(out), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    records = journal(out)
    assert len(records) == 2 * 3
    for r in records:
        mine = r["seats"].index(broken)
        assert r["status"][mine] == "error" and r["status"][1 - mine] == "ok"
    board = {row["agent"]: row for row in st["leaderboard"]}
    assert st["agents"][0] == "scripted" and board[broken]["forfeits"]["error"] == 6


@pytest.mark.parametrize("argv, needle", [
    (["--agents", "scripted,genius"], "unknown agent 'genius'"),
    (["--agents", "scripted,random", "--format", "ffa", "--players", "3"], "needs at least 3 agents"),
    (["--agents", f"scripted,{ROOT / 'agents' / 'zoo' / 'rl2-coinrush'}"], "coinrush"),
    (["--agents", f"scripted,{FIXTURES / 'broken.py'}:NoSuchClass"], "NoSuchClass"),
])
def test_bad_input_is_refused_before_any_match(tmp_path, capsys, argv, needle):
    out = tmp_path / "t"
    assert main(["tournament", *SMALL, *argv, "--out", str(out)]) == 2
    assert needle in capsys.readouterr().err
    assert not (out / "journal.jsonl").exists()


def test_resume_refuses_other_arguments(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["tournament", *SMALL, "--levels", "1", "--agents", "scripted,random", "--out", str(out)]) == 0
    before = (out / "journal.jsonl").read_text()
    assert main(["tournament", *SMALL, "--levels", "1", "--agents", "scripted,random", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["tournament", *SMALL, "--levels", "1", "--agents", "scripted,oracle", "--out", str(out),
                 "--resume"]) == 2
    assert "other arguments (agents)" in capsys.readouterr().err
    assert (out / "journal.jsonl").read_text() == before


def test_replay_command_records_a_match(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["tournament", *SMALL, "--levels", "1", "--agents", "scripted,random", "--out", str(out)]) == 0
    gif = tmp_path / "m.gif"
    assert main(["replay", str(out), "m000001", "--headless", "--record", str(gif)]) == 0
    assert gif.stat().st_size > 1000
    assert main(["replay", str(out), "m999999", "--headless"]) == 2
    assert "no match 'm999999'" in capsys.readouterr().err


def test_bench_tournament_counts_matches(capsys):
    assert main(["bench", "tournament", "--game", "treasure", "--variant", "small", "--agents", "scripted,random",
                 "--levels", "4", "--batch", "4", "--episodes", "2", "--peer-matches", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["matches"] == 8 and res["matches_per_s"] > 0 and res["pettingzoo"]["matches"] == 2
    assert res["speedup"] == pytest.approx(res["matches_per_s"] / res["pettingzoo"]["matches_per_s"])


def test_the_journal_does_not_depend_on_the_worker_count(tmp_path):
    argv = ["tournament", *SMALL, "--levels", "2", "--batch", "1", "--agents", "scripted,random"]
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    assert main([*argv, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    assert journal(tmp_path / "one") == journal(tmp_path / "two")
    assert (tmp_path / "one" / "replays.jsonl").read_text() == (tmp_path / "two" / "replays.jsonl").read_text()


def test_demo_plays_every_game_and_records_a_match(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--levels", "2", "--episodes", "2", "--out", str(out), "--headless"]) == 0
    text = capsys.readouterr().out
    from metarena import games

    from metarena.arenas.demo import _shipped

    for game in games.names():
        records = journal(out / game)
        seats = {"uninformed", "scripted", "random"} | ({"rl2"} if _shipped(game) else set())
        seatings = len(seats) * (len(seats) - 1)  # every ordered pair
        assert len(records) == seatings * 2 and (out / game / "leaderboard.json").exists()
        assert {s for r in records for s in r["seats"]} == seats
        assert f"{game}:" in text
    gif = next(out.glob("demo-*.gif"))
    assert gif.stat().st_size > 1000 and f"wrote {gif}" in text
    assert main(["demo", "--levels", "2", "--episodes", "2", "--out", str(out), "--headless"]) == 0  # again: reuses
