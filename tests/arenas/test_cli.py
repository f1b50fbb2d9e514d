"""The `metarena` command: outputs, files, and exit code 2 with a clear message on bad input."""

import json
import re
import subprocess
import sys

import imageio.v3 as iio
import pytest

from metarena import games
from metarena.arenas.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_games_json_lists_every_game_with_reference_scores(capsys):
    code, out, _ = run(capsys, "games", "--json", "--levels", "40")
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == 2 and all(g["reference"]["random_rollouts"] == 16 for g in data["games"])
    names = [g["name"] for g in data["games"]]
    assert names == ["treasure", "coinrush", "rules", "drift", "cycles"]
    for g in data["games"]:
        scores = g["reference"]["scores"]
        assert set(scores) == {"oracle", "uninformed", "scripted", "random"}
        assert scores["oracle"]["return"] >= scores["uninformed"]["return"] > scores["random"]["return"]
        assert g["gym_id"].startswith("metarena/")
        assert g["default_variant"] in g["variants"]


@pytest.mark.parametrize("columns", ["80", "200"])  # the texts below the table; in it
def test_games_table(capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    code, out, _ = run(capsys, "games", "--levels", "0")
    assert code == 0 and "Traceback" not in out
    for name in games.names():
        assert re.search(rf"\b{name}\b", out), name  # whole, not folded into "treas…"
    assert "which chest holds the treasure" in " ".join(out.split())
    assert max(map(len, out.splitlines())) <= int(columns)


def test_levels_show_writes_a_png(tmp_path, capsys):
    out_png = tmp_path / "level.png"
    code, out, _ = run(capsys, "levels", "show", "treasure", "--variant", "small", "--seed", "5",
                       "--out", str(out_png), "--reveal")
    assert code == 0 and "test split" in out and "hidden: treasure in chest" in out
    img = iio.imread(out_png)
    assert img.ndim == 3 and img.shape[2] in (3, 4) and img.shape[0] > 100


@pytest.mark.parametrize("argv,needle", [
    (["levels", "show", "chess"], "unknown game 'chess'"),
    (["levels", "show", "treasure", "--variant", "huge"], "no built-in variant 'huge'"),
    (["levels", "show", "treasure", "--out", "level.jpg"], "must name a .png"),
    (["watch", "treasure", "--agents", "genius"], "unknown agent 'genius'"),
    (["watch", "treasure", "--agents", "random,random,random,random,random"], "1-4 players"),
    (["watch", "treasure", "--record", "out.avi"], ".gif or .mp4"),
    (["bench", "env", "--game", "treasure", "--players", "9"], "1-4 players"),
    (["bench", "train", "--game", "treasure", "--no-peers", "--set", "width=3"], "unknown RL2Config setting 'width'"),
    (["bench", "train", "--algo", "ppo", "--game", "treasure", "--set", "lr=0.1"], "--algo rl2 only"),
    (["bench", "train", "--game", "treasure,coinrush"], "--algo rl2 --no-peers"),
    (["bench", "train", "--game", "treasure,chess", "--no-peers"], "unknown game 'chess'"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err


def test_bad_variant_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("size = 12\n")
    code, _, err = run(capsys, "levels", "show", "treasure", "--variant", str(bad))
    assert code == 2 and str(bad) in err and "'size'" in err and "odd" in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("command", [["train", "--algo", "rl2", "--game", "treasure", "--steps", "10"],
                                     ["bench", "train", "--game", "treasure", "--no-peers"]])
def test_cuda_without_a_gpu_exits_2_before_writing(tmp_path, capsys, command):
    out = tmp_path / "run"
    code, _, err = run(capsys, *command, "--device", "cuda", *(["--out", str(out)] if command[0] == "train" else []))
    assert code == 2 and "sees no CUDA GPU" in err and "--device cpu" in err and "Traceback" not in err
    assert not out.exists()  # nothing written


def test_argument_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "env", "--game", "treasure", "--seconds", "-1"])
    assert exc.value.code == 2


def test_watch_headless_records(tmp_path, capsys):
    gif = tmp_path / "m.gif"
    code, out, _ = run(capsys, "watch", "coinrush", "--variant", "small", "--agents", "scripted,random",
                       "--episodes", "1", "--headless", "--record", str(gif))
    assert code == 0 and gif.exists() and "episode 1" in out
    assert iio.imread(gif, index=None).shape[0] > 10


@pytest.mark.parametrize("shards", ["1", "2"])
def test_bench_env_json(capsys, shards):
    code, out, _ = run(capsys, "bench", "env", "--game", "treasure", "--variant", "small", "--batch", "64",
                       "--seconds", "0.2", "--shards", shards, "--pool", "16", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["steps_per_s"] > 0 and data["batch"] == 64 and data["shards"] == int(shards)
    assert data["agent_steps"] == data["batch_steps"] * 64


def test_bench_train_prints_the_speed_and_where_an_update_goes(capsys):
    code, out, _ = run(capsys, "bench", "train", "--game", "treasure", "--variant", "small", "--no-peers",
                       "--seconds", "0.3", "--envs", "16", "--set", "hidden=[8]", "--set", "memory=8",
                       "--set", "chunk=8", "--set", "torch_threads=1")
    assert code == 0
    speed, update = out.splitlines()
    assert re.match(r"rl2 +[\d,]+ env-steps/s  \([\d,]+ steps in [\d.]+ s, 16 envs on cpu, MLP 8 -> GRU 8", speed)
    assert re.fullmatch(r" +an update: \d+\.\d\d s collecting, \d+\.\d\d s learning", update)


def test_bench_render_json(capsys):
    code, out, _ = run(capsys, "bench", "render", "--game", "coinrush", "--frames", "20", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["ms_median"] > 0 and data["frame"][2] == 3


def test_console_command_help():
    res = subprocess.run([sys.executable, "-m", "metarena", "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    for cmd in ("games", "levels", "watch", "play", "bench"):
        assert cmd in res.stdout


def test_play_without_a_display_explains(capsys):
    code, _, err = run(capsys, "play", "treasure")
    assert code == 2 and "display" in err


def test_eval_json_and_plot(tmp_path, capsys):
    png = tmp_path / "curve.png"
    code, out, _ = run(capsys, "eval", "--agent", "oracle", "--game", "treasure", "--variant", "small",
                       "--levels", "30", "--episodes", "2", "--json", "--plot", str(png))
    assert code == 0 and png.stat().st_size > 5000
    data = json.loads(out)
    assert data["schema"] == 2 and data["split"] == "test" and data["episodes"] == 2
    assert data["agent"] == "oracle" and data["per_episode"]["success"] == [1.0, 1.0]
    # the ceiling is played by default, on the same levels
    assert data["ceiling"]["planner"] == "window-recall" and data["random_rollouts"] == 16
    assert data["ceiling"]["agent_fraction"][-1] >= 1.0  # the oracle is at or above the ceiling


def test_eval_without_the_ceiling_and_with_more_random_rollouts(capsys):
    code, out, _ = run(capsys, "eval", "--agent", "scripted", "--game", "treasure", "--variant", "small",
                       "--levels", "8", "--episodes", "2", "--no-ceiling", "--random-rollouts", "20")
    assert code == 0 and "ceiling not played (--no-ceiling)" in out
    assert "mean of 20 rollouts" in out and "ceiling norm." not in out
    code, out, _ = run(capsys, "eval", "--agent", "scripted", "--game", "treasure", "--variant", "small",
                       "--levels", "8", "--episodes", "2")
    assert code == 0 and "ceiling norm." in out and "of ceiling" in out


def test_eval_compare_draws_earlier_results_of_the_same_levels(tmp_path, capsys):
    first = tmp_path / "random.json"
    code, out, _ = run(capsys, "eval", "--agent", "random", "--game", "treasure", "--variant", "small",
                       "--levels", "20", "--episodes", "2", "--json")
    first.write_text(out)
    png = tmp_path / "both.png"
    code, _, _ = run(capsys, "eval", "--agent", "scripted", "--game", "treasure", "--variant", "small",
                     "--levels", "20", "--episodes", "2", "--plot", str(png), "--compare", str(first))
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    code, _, err = run(capsys, "eval", "--agent", "scripted", "--game", "treasure", "--variant", "small",
                       "--levels", "21", "--episodes", "2", "--plot", str(png), "--compare", str(first))
    assert code == 2 and "other levels: levels 20 (this run: 21)" in err
    (tmp_path / "junk.json").write_text("{}")
    code, _, err = run(capsys, "eval", "--agent", "scripted", "--game", "treasure", "--levels", "20",
                       "--plot", str(png), "--compare", str(tmp_path / "junk.json"))
    assert code == 2 and "not a result of `metarena eval --json`" in err


def test_eval_greedy_and_strategy_apply_to_trained_agents_only(capsys):
    code, _, err = run(capsys, "eval", "--agent", "random", "--game", "treasure", "--greedy")
    assert code == 2 and "--greedy applies to trained agents" in err
    code, _, err = run(capsys, "eval", "--agent", "rl2", "--game", "treasure", "--strategy", "all")
    assert code == 2 and "applies to finetune and reptile" in err
    code, _, err = run(capsys, "eval", "--agent", "rl2", "--game", "treasure", "--adapt-lr", "1e-3")
    assert code == 2 and "applies to finetune and reptile" in err
    code, _, err = run(capsys, "eval", "--agent", "random", "--game", "treasure", "--adapt-lr", "1e-3")
    assert code == 2 and "--adapt-lr apply to finetune and reptile" in err
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--agent", "rl2", "--game", "treasure", "--adapt-lr", "0"])
    assert exit_.value.code == 2 and "expected a positive number, got 0.0" in capsys.readouterr().err


def test_eval_bad_agent_exits_2(capsys):
    code, _, err = run(capsys, "eval", "--agent", "genius", "--game", "treasure")
    assert code == 2 and "unknown agent" in err


def test_train_then_eval_and_watch_the_checkpoint(tmp_path, capsys):
    import torch

    torch.set_num_threads(1)
    run_dir = tmp_path / "run"
    code, out, _ = run(capsys, "train", "--algo", "rl2", "--game", "treasure", "--variant", "small",
                       "--steps", "2048", "--envs", "16", "--out", str(run_dir), "--checkpoint-every", "1",
                       "--set", "pool_size=64")  # the default pool builds 65,536 levels (~40 s)
    assert code == 0 and (run_dir / "metrics.csv").exists() and (run_dir / "latest").exists()
    assert json.loads((run_dir / "config.json").read_text())["pool_size"] == 64
    code, out, _ = run(capsys, "eval", "--agent", str(run_dir), "--game", "treasure", "--variant", "small",
                       "--levels", "10", "--episodes", "2", "--json")
    assert code == 0 and json.loads(out)["agent"].startswith("rl2")
    code, _, err = run(capsys, "eval", "--agent", str(run_dir), "--game", "coinrush", "--levels", "5")
    assert code == 2 and "trained on treasure" in err
    code, _, err = run(capsys, "train", "--algo", "rl2", "--game", "treasure", "--steps", "10",
                       "--out", str(run_dir))
    assert code == 2 and "--resume" in err
    # a damaged checkpoint is refused with a message, not a traceback
    latest = json.loads((run_dir / "latest").read_text())["checkpoint"]
    weights = run_dir / latest / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code, _, err = run(capsys, "eval", "--agent", str(run_dir), "--game", "treasure", "--levels", "5")
    assert code == 2 and "weights.safetensors" in err and "Traceback" not in err


@pytest.mark.parametrize("algo", ["rl2", "finetune", "reptile", "ppo", "recurrent-ppo"])
def test_settings_lists_every_field_of_the_algorithm_config(capsys, algo):
    import dataclasses

    from metarena.agents.registry import ALGORITHMS

    code, out, _ = run(capsys, "settings", algo, "--json")
    assert code == 0
    rows = json.loads(out)["settings"]
    assert [r["name"] for r in rows] == [f.name for f in dataclasses.fields(ALGORITHMS[algo].config)]
    by_name = {r["name"]: r for r in rows}
    assert by_name["total_steps"]["flag"] == "--steps" and by_name["seed"]["flag"] == "--seed"
    assert by_name["gamma"]["flag"] == "--set gamma=VALUE" and by_name["gamma"]["doc"]
    if algo == "rl2":
        assert by_name["lr"]["default"] == 0.002 and by_name["lr"]["allowed"] == "a number > 0"
