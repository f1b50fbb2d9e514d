"""Run directories: what a run writes, and a run killed with SIGKILL resumes without gaps or repeats."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from metarena.agents.checkpoint import load_checkpoint
from metarena.agents.ppo import RL2Config
from metarena.agents.registry import load_agent
from metarena.agents.rundir import latest_checkpoint, load_optimizer, read_metrics
from metarena.agents.train import train

ROOT = Path(__file__).resolve().parents[2]
TINY = {"envs": 32, "chunk": 16, "episodes": 2, "hidden": (32,), "memory": 16, "pool_size": 32,
        "minibatches": 2, "torch_threads": 1, "progress": False}
PER_UPDATE = 32 * 16


def test_tiny_run_writes_its_directory(tmp_path):
    out = tmp_path / "run"
    final = train("rl2", ["treasure"], "small", steps=5 * PER_UPDATE, out=str(out), checkpoint_every=2,
                  eval_every=4, eval_levels=4, **TINY)
    config = json.loads((out / "config.json").read_text())
    assert config["games"] == ["treasure"] and config["envs"] == 32 and config["chunk"] == 16
    assert config["total_steps"] == 5 * PER_UPDATE and config["hidden"] == [32]
    rows = read_metrics(out)
    assert [r["update"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["env_steps"] for r in rows] == [PER_UPDATE * u for u in range(1, 6)]
    assert {"return_ep1", "return_ep2", "policy_loss", "steps_per_s"} <= set(rows[0])
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["update_000002", "update_000004", "update_000005"]  # every 2 updates and at the end
    assert final == out / "checkpoints" / "update_000005" == latest_checkpoint(out)
    state, meta = load_checkpoint(final, game="treasure", algorithm="rl2")
    assert meta.steps == 5 * PER_UPDATE and meta.extra["update"] == 5
    assert meta.architecture["hidden"] == [32] and meta.architecture["memory"] == 16
    assert not any(k.startswith("state.") for k in state)  # the optimizer lives in its own file
    _, opt_meta = load_checkpoint(final / "optimizer.safetensors", algorithm="rl2-optimizer")
    assert opt_meta.extra["param_groups"][0]["lr"] == pytest.approx(RL2Config().lr)
    evals = [json.loads(line) for line in (out / "evals.jsonl").read_text().splitlines()]
    assert [e["update"] for e in evals] == [4] and evals[0]["result"]["split"] == "valid"
    assert evals[0]["result"]["levels"] == 4
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    for where in (out, final, final / "weights.safetensors"):
        agent = load_agent(where, game="treasure", greedy=True)
        for k, v in agent.net.state_dict().items():
            torch.testing.assert_close(v, state[k])


@pytest.mark.parametrize("algo", ["rl2", "finetune"])
def test_the_same_seed_trains_the_same_network(tmp_path, algo):
    """A fresh run's weights, levels and actions all follow --seed: whatever the process drew
    before, two runs of one seed end with the same weights (and another seed does not)."""
    finals = []
    for i, seed in enumerate((5, 5, 6)):
        torch.rand(1 + i)  # the global generator in another state before each run
        final = train(algo, ["treasure"], "small", steps=2 * PER_UPDATE, out=str(tmp_path / f"run{i}"), seed=seed,
                      **TINY)
        finals.append(load_checkpoint(final, game="treasure", algorithm=algo)[0])
    same, other = finals[1], finals[2]
    assert all(torch.equal(finals[0][k], same[k]) for k in same)
    assert not all(torch.equal(finals[0][k], other[k]) for k in other)


def test_killed_run_resumes_without_repeats(tmp_path):
    out = tmp_path / "run"
    code = ("from metarena.agents.train import train\n"
            f"train('rl2', ['treasure'], 'small', steps={400 * PER_UPDATE}, out={str(out)!r}, "
            f"checkpoint_every=1, **{TINY!r})\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ckpts = out / "checkpoints"
            if ckpts.is_dir() and len(list(ckpts.iterdir())) >= 3 and (out / "latest").exists():
                break
            if proc.poll() is not None:
                pytest.fail(f"training exited early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoints within 60 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    killed_at = json.loads((out / "latest").read_text())
    assert killed_at["update"] >= 2
    with open(out / "metrics.csv", "a") as fh:
        fh.write("999,12")  # a row cut short by the kill
    before = read_metrics(out)
    assert before[-1]["update"] >= killed_at["update"]

    target = killed_at["env_steps"] + 3 * PER_UPDATE + 100  # not a whole number of updates: rounded up
    final = train("rl2", ["treasure"], "small", steps=target, out=str(out), resume=True, progress=False)
    rows = read_metrics(out)
    updates = np.array([r["update"] for r in rows])
    steps = np.array([r["env_steps"] for r in rows])
    assert updates[0] == 1 and (np.diff(updates) == 1).all()  # strictly increasing, no gap, no repeat
    assert (np.diff(steps) > 0).all() and len(set(steps)) == len(steps)
    assert steps[-1] >= target and steps[-1] - target < PER_UPDATE
    assert (steps == updates * PER_UPDATE).all()
    # rows up to the checkpoint are those written before the kill; later ones were rewritten
    assert [r["env_steps"] for r in rows[:killed_at["update"]]] == [r["env_steps"] for r in before[:killed_at["update"]]]
    times = [r["time_s"] for r in rows]
    assert (np.diff(times) > 0).all()  # the training clock goes on too
    _, meta = load_checkpoint(final, game="treasure", algorithm="rl2")
    assert meta.steps == steps[-1] and meta.extra["update"] == updates[-1]
    assert latest_checkpoint(out) == final
    opt_state, _ = load_checkpoint(final / "optimizer.safetensors", algorithm="rl2-optimizer")
    adam_steps = {float(v) for k, v in opt_state.items() if k.endswith(".step")}
    assert adam_steps == {float(updates[-1] * RL2Config().epochs * 2)}  # epochs x minibatches per update, across the kill


def test_fresh_run_into_a_used_directory_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"(?s)run.*--resume.*--out"):
        train("rl2", ["treasure"], "small", steps=PER_UPDATE, out=str(out), **TINY)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="rl2"):
        train("dqn", ["treasure"], "small", steps=PER_UPDATE, out=str(tmp_path / "other"), **TINY)
    assert not (tmp_path / "other").exists()


def test_minutes_stop_a_run_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    final = train("rl2", ["treasure"], "small", steps=100 * PER_UPDATE, out=str(out), checkpoint_every=50,
                  minutes=1e-6, **TINY)
    assert [r["update"] for r in read_metrics(out)] == [1]  # the first update already ran past the time
    assert final == latest_checkpoint(out) == out / "checkpoints" / "update_000001"
    assert len(list((out / "checkpoints").iterdir())) == 1
    with pytest.raises(ValueError, match="minutes must be > 0"):
        train("rl2", ["treasure"], "small", steps=10, out=str(tmp_path / "other"), minutes=0, **TINY)


def test_a_run_saves_the_mean_of_its_last_checkpoints(tmp_path):
    """--set average=0.5: at the end the run also saves ``average/``, the mean of the checkpoints
    of its last half of updates; a resumed run may change the share, and saves it again."""
    out = tmp_path / "run"
    final = train("rl2", ["treasure"], "small", steps=6 * PER_UPDATE, out=str(out), checkpoint_every=1,
                  settings={"average": 0.5}, **TINY)
    mean, meta = load_checkpoint(out / "average", game="treasure", algorithm="rl2")
    assert meta.extra["average"] == {"fraction": 0.5, "updates": [4, 5, 6]}
    assert meta.steps == load_checkpoint(final)[1].steps == 6 * PER_UPDATE
    states = [load_checkpoint(out / "checkpoints" / f"update_{u:06d}")[0] for u in (4, 5, 6)]
    for k, v in mean.items():
        torch.testing.assert_close(v, (sum(s[k].double() for s in states) / 3).float(), rtol=0, atol=0)
    assert not torch.equal(mean["policy.weight"], states[-1]["policy.weight"])
    agent = load_agent(out / "average", game="treasure")
    assert torch.equal(agent.net.state_dict()["policy.weight"], mean["policy.weight"])

    train("rl2", None, None, steps=8 * PER_UPDATE, out=str(out), resume=True, settings={"average": 0.25},
          checkpoint_every=1, progress=False)
    assert load_checkpoint(out / "average")[1].extra["average"] == {"fraction": 0.25, "updates": [7, 8]}
    plain = tmp_path / "plain"
    train("rl2", ["treasure"], "small", steps=2 * PER_UPDATE, out=str(plain), **TINY)
    assert not (plain / "average").exists()  # 0, the default: none


def test_the_learning_rate_falls_with_the_minutes(tmp_path):
    """--set lr_decay with --minutes: the fall follows the clock, so it ends where the run does
    (here the time is up before the first update: it already learns at zero)."""
    kept = {}
    for decay in (0.0, 0.5):
        out = tmp_path / f"run{decay}"
        final = train("rl2", ["treasure"], "small", steps=100 * PER_UPDATE, out=str(out), minutes=1e-6,
                      settings={"lr_decay": decay}, **TINY)
        kept[decay] = load_optimizer(final, "rl2", "cpu")["param_groups"][0]["lr"]
    assert kept == {0.0: 2e-3, 0.5: 0.0}


def test_a_cooling_entropy_bonus_is_logged_and_ends_with_the_minutes(tmp_path):
    """--set ent_decay with --minutes: metrics.csv gains the bonus's weight per update, which
    follows the clock (here the time is up before the first update: it is already zero)."""
    out = tmp_path / "run"
    train("rl2", ["treasure"], "small", steps=100 * PER_UPDATE, out=str(out), minutes=1e-6,
          settings={"ent_decay": 0.5}, **TINY)
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and [float(r["ent_coef"]) for r in rows] == [0.0] * len(rows)
