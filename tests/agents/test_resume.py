"""Resuming a run: the records are cut back to the checkpoint every time (not only when a kill
lands between a row and its checkpoint), a resumed run draws fresh levels and actions, and
the documented defaults of the configs."""

import copy
import csv
import dataclasses
import json

import numpy as np
import pytest
import torch

from metarena.agents import ppo
from metarena.agents.finetune import FineTuneConfig, ReptileConfig
from metarena.agents.ppo import RL2Config, run_seed, train_rl2
from metarena.agents.rl2 import RL2Net, RL2NetSpec
from metarena.agents.train import train

ENVS, CHUNK = 8, 8
PER_UPDATE = ENVS * CHUNK
TINY = {"envs": ENVS, "chunk": CHUNK, "pool_size": 16, "episodes": 2, "hidden": (16,), "memory": 8,
        "minibatches": 2, "torch_threads": 1, "progress": False}
MARK = 99999.0  #: time_s of the rows written by hand: no real run takes that long


def _metrics(run) -> list[dict]:
    with open(run / "metrics.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _evals(run) -> list[dict]:
    return [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]


def test_resume_cuts_the_records_back_to_the_checkpoint(tmp_path):
    """Rows past the checkpoint (written by hand here, complete and well formed) are dropped
    when the run resumes, and the resumed run writes each update exactly once."""
    run = tmp_path / "run"
    train("rl2", ["treasure"], "small", steps=4 * PER_UPDATE, out=str(run), checkpoint_every=2, eval_every=2,
          eval_levels=2, **TINY)
    rows = _metrics(run)
    assert [int(r["update"]) for r in rows] == [1, 2, 3, 4]
    assert [e["update"] for e in _evals(run)] == [2, 4]
    assert json.loads((run / "latest").read_text())["update"] == 4
    # two updates past the checkpoint, as a process killed before its next checkpoint leaves them
    columns = list(rows[0])
    with open(run / "metrics.csv", "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns)
        for update in (5, 6):
            writer.writerow(dict(rows[-1], update=update, env_steps=update * PER_UPDATE, time_s=MARK))
    with open(run / "evals.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"update": 6, "env_steps": 6 * PER_UPDATE, "result": {"marker": MARK}}) + "\n")

    train("rl2", ["treasure"], "small", steps=6 * PER_UPDATE, out=str(run), resume=True, checkpoint_every=2,
          eval_every=2, eval_levels=2, progress=False)
    after = _metrics(run)
    assert [int(r["update"]) for r in after] == [1, 2, 3, 4, 5, 6]  # no update twice
    assert [int(r["env_steps"]) for r in after] == [PER_UPDATE * u for u in range(1, 7)]
    assert all(float(r["time_s"]) != MARK for r in after)  # the hand-written rows are gone
    assert after[:4] == rows  # and those up to the checkpoint are untouched
    evals = _evals(run)
    assert [e["update"] for e in evals] == [2, 4, 6]
    assert "marker" not in evals[-1]["result"] and evals[-1]["result"]["split"] == "valid"


def test_run_seed():
    assert run_seed(7, 0) == 7  # a fresh run: the seed itself
    seeds = {run_seed(s, u) for s in (0, 7) for u in (1, 2, 3, 100)}
    assert len(seeds) == 8 and not seeds & {0, 7}  # a new one after every update count, per seed
    assert run_seed(7, 3) == run_seed(7, 3)  # and the same resume draws the same
    assert all(0 <= s < 2 ** 31 for s in seeds)


def test_a_resumed_run_does_not_replay_the_same_levels_and_actions(monkeypatch):
    """The first rollout of a run resumed after update 4 differs from a fresh run's (other
    levels, other sampled actions), and is the same each time that resume is made."""
    cfg = RL2Config(variant="small", envs=ENVS, chunk=CHUNK, episodes=2, pool_size=16, hidden=(16,), memory=8,
                    minibatches=2, torch_threads=1, total_steps=PER_UPDATE, seed=3)
    torch.manual_seed(0)
    start = RL2Net(RL2NetSpec(hidden=(16,), memory=8, episodes=2))
    seen = []
    real = ppo.collect

    def record(*args):
        chunk = real(*args)
        seen.append((chunk.grid.clone(), chunk.action.clone()))
        return chunk

    monkeypatch.setattr(ppo, "collect", record)

    def first_rollout(start_update):
        seen.clear()
        total = (start_update + 1) * PER_UPDATE
        train_rl2(dataclasses.replace(cfg, total_steps=total), net=copy.deepcopy(start), start_update=start_update)
        assert len(seen) == 1
        return seen[0]

    fresh, resumed, again = first_rollout(0), first_rollout(4), first_rollout(4)
    assert not torch.equal(fresh[0][0], resumed[0][0])  # other levels in the slots
    assert not torch.equal(fresh[1], resumed[1])  # other actions
    assert torch.equal(resumed[0], again[0]) and torch.equal(resumed[1], again[1])


# ---------------------------------------------------------------------------------------------
# the documented defaults

RL2_DEFAULTS = {
    "games": ("treasure",), "variant": "medium", "envs": 1024, "chunk": 64, "episodes": 4, "pool_size": 65536,
    "total_steps": 10_000_000, "lr": 2e-3, "gamma": 0.99, "gae_lambda": 0.95, "clip": 0.2, "epochs": 2,
    "minibatches": 4, "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5, "hidden": (64,), "memory": 64,
    "stagger": True, "seed": 0, "device": "auto", "shards": 1, "torch_threads": 1, "rollout_threads": 0,
}


@pytest.mark.parametrize("name", sorted(RL2_DEFAULTS))
def test_rl2_config_defaults(name):
    value = getattr(RL2Config(), name)
    assert value == RL2_DEFAULTS[name], f"RL2Config.{name} = {value!r}, documented {RL2_DEFAULTS[name]!r}"


def test_finetune_and_reptile_defaults():
    ft, rp = FineTuneConfig(), ReptileConfig()
    assert (ft.episodes, tuple(ft.hidden), ft.rank, ft.strategy, ft.adapt_lr, ft.backbone_decay,
            ft.adapt_epochs) == (1, (128, 128), 16, "adapter", 3e-3, 0.1, 8)
    assert (rp.envs, rp.episodes, rp.meta_lr, rp.init) == (256, 4, 0.5, None)
    assert np.isclose(ft.lr, RL2Config().lr) and ft.chunk == RL2Config().chunk  # the rest as RL²'s
