"""`metarena train --variant small,medium,...`: every (game, variant) pair is a member of the mix,
bad entries exit 2 before anything is written, and the held-out variant is never trained on."""

import json
from collections import Counter

import numpy as np
import pytest

from metarena.agents.checkpoint import load_checkpoint
from metarena.agents.ppo import ReturnScale, RL2Config, RL2Envs, members, normalize, pair_slots
from metarena.agents.rundir import read_metrics
from metarena.arenas.cli import main
from metarena.games.batch import BatchEnv

ENVS, CHUNK = 8, 8
PER_UPDATE = ENVS * CHUNK
TINY = ["--envs", str(ENVS), "--set", f"chunk={CHUNK}", "--set", "pool_size=16", "--set", "hidden=[16]",
        "--set", "memory=8", "--set", "minibatches=2", "--set", "torch_threads=1", "--set", "episodes=2"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def train(capsys, out, variant, *argv, game="treasure", steps=2 * PER_UPDATE):
    return run(capsys, "train", "--algo", "rl2", "--game", game, "--variant", variant, "--steps", steps,
               "--out", out, *TINY, *argv)


@pytest.fixture
def played(monkeypatch):
    """Counts the steps BatchEnv takes per (game, variant name, map side)."""
    counts = Counter()
    step = BatchEnv.step

    def counting(self, actions):
        counts[(self.game.spec.name, self.variant.name, self.levels.tiles.shape[1])] += 1
        return step(self, actions)

    monkeypatch.setattr(BatchEnv, "step", counting)
    return counts


def test_members_are_each_game_with_each_variant():
    cfg = RL2Config(games=("treasure", "coinrush"), variant="small,medium", envs=8, minibatches=2)
    assert members(cfg) == [("treasure", "small"), ("treasure", "medium"), ("coinrush", "small"),
                            ("coinrush", "medium")]
    assert members(RL2Config(games=("treasure", "coinrush"), variant="small")) == [
        ("treasure", "small"), ("coinrush", "small")]  # one variant: the games, as before
    with pytest.raises(ValueError, match="split evenly over the 4 .game, variant. pairs"):
        RL2Config(games=("treasure", "coinrush"), variant="small,medium", envs=6, minibatches=2).validate()


def test_shares_give_a_game_more_of_the_slots():
    cfg = RL2Config(games=("treasure", "drift", "cycles"), variant="small,medium", envs=24, minibatches=2,
                    shares="drift:3, cycles:2", pool_size=4)
    cfg.validate()
    assert pair_slots(cfg) == [2, 2, 6, 6, 4, 4]  # weights 1, 3, 2 over 12 in all, each game's split over its variants
    envs = RL2Envs(cfg)
    try:
        assert [e.batch for e in envs.envs] == [2, 2, 6, 6, 4, 4]
        assert envs.game_of_slot.tolist() == [0] * 4 + [1] * 12 + [2] * 8
        grid, *_ = envs.reset()
        assert len(grid) == 24
    finally:
        envs.close()
    assert pair_slots(RL2Config(games=("treasure", "drift"), envs=8)) == [4, 4]  # no shares: an even split


@pytest.mark.parametrize("shares,needle", [
    ("drift:3", "'drift' is not one of the games trained on"),
    ("treasure:0", "not game:weight with a whole weight of 1 or more"),
    ("treasure=2", "not game:weight"),
    ("treasure:1.5", "not game:weight"),
    ("treasure:2,treasure:3", "'treasure' is named twice"),
    ("coinrush:2", "give envs a multiple of 6"),
])
def test_bad_shares_are_refused_with_the_reason(shares, needle):
    cfg = RL2Config(games=("treasure", "coinrush"), variant="small,medium", envs=8, minibatches=2, shares=shares)
    with pytest.raises(ValueError, match=needle):
        cfg.validate()


def test_a_run_on_two_variants_plays_and_records_both(tmp_path, capsys, played):
    mine = tmp_path / "mine.toml"
    mine.write_text('base = "small"\nchests = 2\n')
    out = tmp_path / "run"
    code, _, err = train(capsys, out, f"small,medium,{mine}", "--envs", "6", steps=2 * 6 * CHUNK)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["variant"] == f"small,medium,{mine}" and config["envs"] == 6
    assert [r["update"] for r in read_metrics(out)] == [1, 2]
    # each member's slots stepped its own pool: small maps (9) and medium maps (13)
    assert {k[:2] for k in played} == {("treasure", "small"), ("treasure", "medium"), ("treasure", "mine")}
    assert {k[2] for k in played} == {9, 13}
    assert played[("treasure", "small", 9)] == played[("treasure", "medium", 13)] == played[("treasure", "mine", 9)]
    _, meta = load_checkpoint(out / "checkpoints" / "update_000002", game="treasure", algorithm="rl2")
    assert [(g["game"], g["variant"]) for g in meta.games] == [("treasure", "small"), ("treasure", "medium"),
                                                                 ("treasure", "mine")]
    assert meta.games[2]["params"]["chests"] == 2
    code, _, err = run(capsys, "eval", "--agent", out, "--game", "treasure", "--variant", "heldout",
                       "--levels", "2", "--episodes", "2")
    assert code == 0, err


@pytest.mark.parametrize("variant,needle", [
    ("small,huge", "no built-in variant 'huge'"),
    ("small,missing.toml", "missing.toml: no such variant file"),
    ("small,,medium", "empty entry"),
    ("small,small", "names small twice"),
    ("heldout", "kept for evaluation"),
    ("small,heldout", "kept for evaluation"),
])
def test_bad_variant_lists_exit_2_and_write_nothing(tmp_path, capsys, variant, needle):
    out = tmp_path / "run"
    code, _, err = train(capsys, out, variant)
    assert code == 2 and needle in err, err
    assert not out.exists()


def test_only_mixing_algorithms_take_several_variants(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--algo", "ppo", "--game", "treasure", "--variant", "small,medium",
                       "--steps", 64, "--out", out)
    assert code == 2 and "works with --algo rl2 or finetune" in err
    assert not out.exists()


def test_advantages_by_game_are_normalized_within_each_game():
    """``adv_by_game``: a game that pays little gets the same policy-gradient scale as one that
    pays a lot; with one group it is the plain normalization."""
    import torch

    gen = torch.Generator().manual_seed(0)
    adv = torch.cat([torch.randn(16, 6, generator=gen) * 0.01, torch.randn(16, 4, generator=gen) * 3 + 2], 1)
    groups = torch.tensor([1] * 6 + [0] * 4)
    out = normalize(adv, groups)
    for g in (0, 1):
        part = out[:, groups == g]
        assert abs(part.mean().item()) < 1e-5 and abs(part.std().item() - 1) < 1e-4
    plain = normalize(adv)
    assert plain[:, :6].std() < 0.01  # over the whole batch the small game all but vanishes
    assert torch.allclose(normalize(adv, torch.zeros(10, dtype=torch.long)), plain)


def test_rewards_scaled_by_game_give_every_game_returns_of_one_scale(tmp_path, capsys):
    """``scale_by_game``: each game's rewards are divided by a running standard deviation of its
    discounted returns, so a game that pays 100 times more ends up on the same scale; the
    returns run on across chunks and start again after a trial's end. A run with it trains and
    logs the raw returns."""
    import torch

    gen = torch.Generator().manual_seed(0)
    groups = np.array([0] * 6 + [1] * 4)
    scale = ReturnScale(groups, gamma=0.9)
    for _ in range(20):
        reward = (torch.rand(16, 10, generator=gen) < 0.2).float() * torch.tensor([0.01] * 6 + [1.0] * 4)
        done = (torch.rand(16, 10, generator=gen) < 0.05).float()
        scaled = scale(reward, done)
        assert torch.equal(scaled > 0, reward > 0)
    ratio = scaled[:, :6].max() / scaled[:, 6:].max()
    assert 0.5 < ratio < 2, ratio  # 0.01 against 1 before
    std = scale.var.sqrt()
    assert 50 < std[1] / std[0] < 200, std
    after = ReturnScale(np.zeros(2, dtype=int), gamma=0.5)
    after(torch.tensor([[1.0, 1.0], [1.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert after.ret.tolist() == [1.0, 1.5]  # slot 0's trial ended after the first step

    out = tmp_path / "run"
    code, _, err = train(capsys, out, "small", "--set", "scale_by_game=true", game="treasure,coinrush")
    assert code == 0, err
    rows = read_metrics(out)
    assert len(rows) == 2
