"""`metarena bench train`: every trainer reports a positive end-to-end rate within its budget."""

import torch

from metarena.agents.bench import bench_rl2, bench_sb3, bench_train


def test_rl2_rate_counts_steps_after_warm_up():
    torch.set_num_threads(1)
    res = bench_rl2("treasure", "small", seconds=1.0, envs=32)
    assert res["updates"] >= 2 and res["steps"] == (res["updates"] - 1) * 32 * res["chunk"]
    assert res["steps_per_s"] > 0


def test_rl2_settings_change_the_network_benched():
    torch.set_num_threads(1)
    res = bench_rl2("treasure", "small", seconds=0.5, envs=32, settings={"hidden": [16], "memory": 8, "chunk": 8})
    assert res["network"] == "MLP 16 -> GRU 8" and res["chunk"] == 8
    assert res["steps"] == (res["updates"] - 1) * 32 * 8
    assert res["timed_updates"] == res["updates"] - 1 and res["rollout_s"] > 0 and res["update_s"] > 0


def test_rl2_on_several_games_and_variants_at_once():
    torch.set_num_threads(1)
    res = bench_train("rl2", ["treasure", "coinrush"], "small,medium", seconds=0.5, peers=False, envs=32,
                      settings={"hidden": [16], "memory": 8, "chunk": 8})
    assert res["game"] == "treasure,coinrush" and [r["algo"] for r in res["runs"]] == ["rl2"]
    assert res["runs"][0]["steps"] == (res["runs"][0]["updates"] - 1) * 32 * 8 > 0


def test_the_peers_are_not_measured_on_several_games():
    import pytest

    for games, variant in ((["treasure", "coinrush"], None), (["treasure"], "small,medium")):
        with pytest.raises(ValueError, match="--algo rl2 --no-peers"):
            bench_train("rl2", games, variant, seconds=0.1)


def test_sb3_ppo_rate_and_no_folder_left_in_the_temp_directory(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    torch.set_num_threads(1)
    res = bench_sb3("ppo", "treasure", "small", seconds=1.0)
    assert res["steps"] > 0 and res["steps_per_s"] > 0
    assert [p.name for p in tmp_path.iterdir()] == []  # SB3's default logger would leave SB3-<date>


def test_unknown_algorithm():
    import pytest

    with pytest.raises(ValueError, match="rl2, ppo, recurrent-ppo"):
        bench_train("dqn", "treasure")
