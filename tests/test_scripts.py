"""Every script in scripts/ runs with a tiny budget (each is a thin entry point)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from metarena import games

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _main(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_every_script_has_a_smoke_test():
    here = Path(__file__).read_text()
    for path in SCRIPTS.glob("*.py"):
        assert f'_main("{path.stem}")' in here, f"scripts/{path.name} has no smoke test"


def test_ceiling_prints_both_planners(capsys):
    _main("ceiling")(["--game", "treasure", "--variant", "small", "--levels", "4", "--episodes", "2", "--json"])
    results = json.loads(capsys.readouterr().out)
    assert [r["agent"] for r in results] == ["recall", "window-recall"]
    assert all(r["levels"] == 4 and r["episodes"] == 2 for r in results)


def test_coinrush_coins_prints_a_row_per_episode(capsys):
    _main("coinrush_coins")(["--agent", "oracle", "--variant", "small", "--levels", "4", "--episodes", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("oracle on coinrush") and len(lines) == 2 + 2
    assert float(lines[2].split()[4]) == 0.0  # the oracle takes no costing coin: it costs nothing


@pytest.mark.parametrize("argv", [["--seconds", "0.2", "--reps", "1", "--batch", "64", "--pool-size", "64"]])
def test_bench_table_prints_the_tables(capsys, argv):
    _main("bench_table")(argv)
    out = capsys.readouterr().out
    assert "| game | slots x players |" in out and "`treasure`" in out and "ms per rgb_array frame" in out


def test_gain_by_first_episode_splits_the_levels(capsys):
    main = _main("gain_by_first_episode")
    main(["--agent", "oracle", "--levels", "6", "--episodes", "2"])
    rows = [(r[:23].strip(), [float(x) for x in r[23:].replace("-", "nan").split()])
            for r in capsys.readouterr().out.strip().splitlines()[2:]]
    assert [name for name, _ in rows] == ["all", "episode 1 returned > 0"]  # the oracle always finds it
    assert rows[1][1][0] == 1.0
    main(["--agent", "scripted", "--levels", "12", "--episodes", "2"])
    rows = [[float(x) for x in r[23:].split()] for r in capsys.readouterr().out.strip().splitlines()[2:]]
    assert len(rows) == 3 and 0 < rows[1][0] < 1 and abs(rows[1][0] + rows[2][0] - 1.0) < 0.02
    assert abs(rows[1][-1] + rows[2][-1] - 1.0) < 0.02  # the groups' parts make up the whole gain
    with pytest.raises(SystemExit):
        main(["--agent", "random", "--episodes", "1"])


def test_finetune_steps_measures_a_start(tmp_path, capsys):
    from metarena.agents.train import train

    run = tmp_path / "ft"
    train("finetune", ["treasure"], "small", steps=2 * 16 * 16, out=str(run), envs=16, chunk=16, hidden=(16,), rank=4,
          pool_size=16, minibatches=2, torch_threads=1, progress=False)
    capsys.readouterr()
    _main("finetune_steps")(["--agent", str(run), "--levels", "6", "--episodes", "2", "--adapt-lr", "0.01"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"{run}: step ")
    step = float(line.split("step ")[1].split(",")[0])
    entropy = float(line.rsplit(" ", 1)[1])
    assert step > 0 and 0 < entropy <= np.log(5) + 1e-6
    with pytest.raises(SystemExit):
        _main("finetune_steps")(["--agent", str(run), "--levels", "1"])


@pytest.mark.parametrize("argv", [
    ("gain_by_first_episode", ["--agent", "nosuch"]),
    ("gain_by_first_episode", ["--agent", "random", "--game", "nosuch"]),
    ("finetune_steps", ["--agent", "/no/such/run"]),
    ("coinrush_coins", ["--agent", "nosuch"]),
    ("bench_table", ["--pool-size", "0"]),
])
def test_scripts_refuse_bad_input_with_exit_2(argv, capsys):
    name, args = argv
    with pytest.raises(SystemExit) as exc:
        _main(name)(args)
    assert exc.value.code == 2 and "error:" in capsys.readouterr().err


def test_widen_map_plays_alike_on_the_levels_it_was_trained_on(tmp_path, capsys):
    """The widened copy has the same weights, a wider map measured in the old side, and plays
    the small levels it was trained on move for move as the original; what cannot be widened,
    or would overwrite something, is a usage error."""
    from metarena import games
    from metarena.agents.ppo import RL2Config
    from metarena.agents.registry import algorithm, load_agent
    from metarena.agents.rollout import play
    from metarena.games.batch import BatchEnv

    cfg = RL2Config(games=("coinrush",), variant="small", envs=8, chunk=16, episodes=2, pool_size=8,
                    total_steps=128, torch_threads=1, map=9, route=True, hidden=(16,), memory=8)
    rl2 = algorithm("rl2")
    net, rows = rl2.train(cfg)
    source = rl2.save(tmp_path / "narrow", net, cfg, rows[-1]["steps"], {})
    main = _main("widen_map")
    assert main([str(source), "--side", "13", "--out", str(tmp_path / "wide")]) == 0
    assert "map 13 cells" in capsys.readouterr().out
    narrow, wide = load_agent(str(source), "coinrush", seed=0), load_agent(str(tmp_path / "wide"), "coinrush", seed=0)
    assert (wide.net.spec.map, wide.net.spec.map_unit, narrow.net.spec.map) == (13, 9, 9)
    for a, b in zip(narrow.net.state_dict().values(), wide.net.state_dict().values()):
        assert torch.equal(a, b)
    results = []
    for agent in (narrow, wide):
        env = BatchEnv(games.get("coinrush"), games.variant("coinrush", "small"), batch=4, episodes=2, split="test",
                       pool_size=4)
        results.append(play(env, [agent], levels=np.arange(4), seed=0).returns)
    assert np.array_equal(results[0], results[1])
    for bad in ([str(source), "--side", "9", "--out", str(tmp_path / "same")],  # not wider
                [str(tmp_path / "wide"), "--side", "17", "--out", str(tmp_path / "wide")],  # not empty
                ["/no/such/run", "--side", "13", "--out", str(tmp_path / "none")]):
        with pytest.raises(SystemExit) as exc:
            main(bad)
        assert exc.value.code == 2 and "error:" in capsys.readouterr().err
    assert not (tmp_path / "same").exists() and not (tmp_path / "none").exists()


def test_average_run_saves_the_mean_of_a_finished_runs_last_checkpoints(tmp_path, capsys):
    """The mean of the checkpoints of a run's last updates, written after the run as a run with
    ``--set average`` writes it at its end; what is not a run, or a share out of range, is a
    usage error."""
    from metarena.agents.checkpoint import load_checkpoint
    from metarena.agents.train import train

    out = tmp_path / "run"
    train("rl2", ["coinrush"], "small", steps=4 * 8 * 16, out=str(out), checkpoint_every=1, envs=8, chunk=16,
          episodes=2, hidden=(16,), memory=8, pool_size=8, torch_threads=1, progress=False)
    main = _main("average_run")
    assert main([str(out), "--fraction", "0.5"]) == 0
    assert "the mean of 2 checkpoints, updates 3-4" in capsys.readouterr().out
    mean, meta = load_checkpoint(out / "average")
    states = [load_checkpoint(out / "checkpoints" / f"update_{u:06d}")[0] for u in (3, 4)]
    torch.testing.assert_close(mean["policy.bias"], (states[0]["policy.bias"] + states[1]["policy.bias"]) / 2)
    assert meta.extra["average"] == {"fraction": 0.5, "updates": [3, 4]}
    for bad in ([str(out), "--fraction", "0"], [str(out), "--fraction", "1.5"], [str(tmp_path / "none")]):
        with pytest.raises(SystemExit) as exc:
            main(bad)
        assert exc.value.code == 2 and "error:" in capsys.readouterr().err
    assert load_checkpoint(out / "average")[1].extra["average"]["updates"] == [3, 4]  # kept as it was


def test_reward_counts_shows_what_each_episode_was_paid(capsys):
    """The oracle of rules, told the table and the key, never springs the trap and leaves by the
    exit in every episode; an unknown agent is a usage error."""
    main = _main("reward_counts")
    main(["--agent", "oracle", "--game", "rules", "--levels", "6", "--episodes", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("oracle on rules/medium") and len(lines) == 3 + 2
    amounts = [float(a) for a in lines[1].strip("|").split("|")[1:]]
    assert -1.0 not in amounts and 3.0 in amounts
    for row in lines[3:]:
        assert float(row.strip("|").split("|")[1 + amounts.index(3.0)]) == 1.0
    main(["--agent", "oracle", "--game", "rules", "--levels", "6", "--episodes", "1", "--sequences", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    orders = lines[lines.index("| share | rewards |") + 2:]  # each first episode ends by the exit, none by the trap
    assert 1 <= len(orders) <= 3 and all(row.endswith("+3 |") and "-1" not in row for row in orders)
    assert sum(float(row.split("|")[1]) for row in orders) <= 1.0
    # split by whether the exit was in view before the first reward: every trial lands in one row
    main(["--agent", "oracle", "--game", "rules", "--levels", "6", "--episodes", "1", "--sequences", "12",
          "--seen", "exit"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert "| share | rewards | exit seen before the first |" in lines
    rows = lines[lines.index("| share | rewards | exit seen before the first |") + 2:]
    assert rows and all(row.endswith((" yes |", " no |")) for row in rows)
    assert abs(sum(float(row.split("|")[1]) for row in rows) - 1.0) < 1e-9
    # grouped by how the first episode began: every trial in one group, and the oracle's second
    # episode leaves by the exit in each group, as its returns by episode say
    main(["--agent", "oracle", "--game", "rules", "--levels", "6", "--episodes", "2", "--by-start", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| episode 1 began |"))
    columns = [c.strip() for c in lines[head].strip("|").split("|")]
    groups = [[c.strip() for c in row.strip("|").split("|")] for row in lines[head + 2:]]
    assert groups and abs(sum(float(g[1]) for g in groups) - 1.0) < 1e-9
    assert columns[2:4] == ["return 1", "return 2"] and "ep. 2 +3" in columns
    for g in groups:
        assert g[0] != "-1" and float(g[columns.index("ep. 2 +3")]) == 1.0 and float(g[3]) > 2.5
    # how the first episode ended: the oracle always by the exit, never still; an agent that
    # stays runs out of steps with nothing taken, still at every step but the one the limit cut
    main(["--agent", "oracle", "--game", "rules", "--levels", "6", "--episodes", "1", "--endings", "3",
          "--seen", "exit"])
    lines = capsys.readouterr().out.strip().splitlines()
    head = lines.index("| ended | exit seen by then | share | steps still |")
    assert lines[head + 2:] == ["| ended, last reward +3 | yes | 1.000 | 0.0 |"]
    main(["--agent", "stay", "--game", "rules", "--levels", "4", "--episodes", "1", "--endings", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    limit = games.get("rules").step_limit(games.variant("rules", None))
    head = lines.index("| ended | share | steps still |")
    assert lines[head + 2] == f"| out of steps | 1.000 | {limit - 1:.1f} |"
    assert lines[-3:] == ["| share | rewards | key kind taken | exit found locked | levels |", "|---|---|---|---|---|",
                          "| 1.000 | none | no | no | 0, 1, 2, 3 |"]
    main(["--agent", "stay", "--game", "rules", "--levels", "6", "--episodes", "1", "--endings", "3"])
    assert capsys.readouterr().out.strip().splitlines()[-1] == "| 1.000 | none | no | no | 0, 1, 2, 3, ... |"
    # a random walk that steps on the exit holding no kind finds it locked; the exit is never found
    # locked by a player holding the key kind (it would have opened)
    main(["--agent", "random", "--game", "rules", "--levels", "40", "--episodes", "1", "--endings", "40"])
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line.split(" | ") for line in lines[lines.index("|---|---|---|---|---|") + 1:]]
    assert any(r[1] == "none" and r[3] == "yes" for r in rows)
    assert all(r[2] == "no" for r in rows if r[3] == "yes") and any(r[2] == "yes" for r in rows)
    locked = next(line for line in lines if line.startswith("out of steps with the exit found locked"))
    shares = [float(w) for w in locked.replace(";", " ").split() if w[0].isdigit()]
    assert shares[0] == pytest.approx(sum(float(r[0].strip("| ")) for r in rows if r[3] == "yes"), abs=0.002)
    for bad in (["--agent", "nobody", "--game", "rules", "--levels", "2"],
                ["--agent", "oracle", "--game", "rules", "--endings", "-1"],
                ["--agent", "oracle", "--game", "rules", "--by-start", "-1"],
                ["--agent", "oracle", "--game", "rules", "--by-start", "1", "--episodes", "1"],
                ["--agent", "oracle", "--game", "rules", "--sequences", "-1"],
                ["--agent", "oracle", "--game", "rules", "--seen", "exit"],
                ["--agent", "oracle", "--game", "rules", "--sequences", "3", "--seen", "nowhere"]):
        with pytest.raises(SystemExit) as exc:
            main(bad)
        assert exc.value.code == 2
