"""Checkpoints: round trip, refusal of damaged or mismatched files, atomic saves, SB3 policies."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import stable_baselines3 as sb3
import torch

from metarena import games
from metarena.agents import checkpoint as ck
from metarena.agents.checkpoint import CheckpointError, CheckpointMeta, load_checkpoint, save_checkpoint
from metarena.games import gym_env  # noqa: F401  (registers the metarena/... Gymnasium ids)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 4, generator=g)
    return {
        "body.weight": w.t(),  # not contiguous
        "body.bias": torch.randn(6, generator=g),
        "head.weight": torch.randn(5, 6, generator=g, dtype=torch.float64),
        "steps": torch.tensor(7, dtype=torch.int64),  # 0-d
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
        "half": torch.randn(2, 2, generator=g).to(torch.bfloat16),
    }


def _meta(**kw) -> CheckpointMeta:
    base = dict(algorithm="rl2", architecture={"hidden": 64, "layers": [32, 32]},
                games=[games.variant("treasure", "small"), {"game": "coinrush", "variant": "default", "params": {}}],
                steps=1234, extra={"note": "test", "lr": 3e-4})
    base.update(kw)
    return CheckpointMeta(**base)


def _assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


def test_round_trip(tmp_path):
    state, meta = _state(), _meta()
    path = save_checkpoint(tmp_path / "ckpt", state, meta)
    assert path == tmp_path / "ckpt"
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "weights.safetensors"]
    loaded, m = load_checkpoint(path, game="treasure", algorithm="rl2")
    _assert_same(loaded, {k: v.contiguous() for k, v in state.items()})
    assert loaded["body.weight"].is_contiguous()
    # what was given comes back; what save fills in is there
    for key in ("algorithm", "architecture", "games", "steps", "extra"):
        assert getattr(m, key) == getattr(meta, key), key
    assert m.games[0] == {"game": "treasure", "variant": "small", "params": dict(games.variant("treasure", "small").params)}
    assert m.spec == ck.current_spec() and m.spec["version"] == games.engine.SPEC_VERSION
    assert m.created_at and m.created_at.endswith("Z")
    assert m.git_commit is None or len(m.git_commit) in (40, 64)
    assert {t["name"] for t in m.tensors} == set(state)
    assert meta.created_at is None and meta.tensors == []  # the caller's meta is left alone
    # meta.json is plain JSON with a schema version, equal to what load returns
    on_disk = json.loads((path / "meta.json").read_text())
    assert on_disk["schema_version"] == ck.SCHEMA_VERSION and CheckpointMeta.from_dict(on_disk) == m
    assert CheckpointMeta.from_json(m.to_json()) == m
    assert ck.read_meta(path) == m
    # saving again over it replaces it and leaves no temporary files
    save_checkpoint(path, _state(1), m)
    loaded2, m2 = load_checkpoint(path / "meta.json")
    _assert_same(loaded2, {k: v.contiguous() for k, v in _state(1).items()})
    assert m2.save_id != m.save_id and m2.created_at == m.created_at
    (path / ".weights.safetensors.abc123.tmp").write_bytes(b"left by a killed save")
    save_checkpoint(path, _state(1), m)
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "weights.safetensors"]


def test_stem_form_and_dict_meta(tmp_path):
    path = save_checkpoint(tmp_path / "run" / "step_10.safetensors", _state(), {"algorithm": "ppo", "steps": 10})
    assert path == tmp_path / "run" / "step_10.safetensors"
    assert (tmp_path / "run" / "step_10.meta.json").exists()
    for p in (path, tmp_path / "run" / "step_10", tmp_path / "run" / "step_10.meta.json"):
        _, m = load_checkpoint(p, algorithm="ppo")
        assert m.steps == 10 and m.games == []
    with pytest.raises(TypeError, match="extra"):
        save_checkpoint(tmp_path / "x", _state(), {"algorithm": "ppo", "learning_rate": 1e-3})
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "y", _state(), {"algorithm": "ppo", "extra": {"f": float("nan")}})
    assert not (tmp_path / "y").exists() or not any((tmp_path / "y").iterdir())


def test_tied_tensors_are_saved(tmp_path):
    w = torch.randn(3, 3)
    path = save_checkpoint(tmp_path / "c", {"a": w, "b": w, "c": w[1]}, _meta())
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded["a"], w) and torch.equal(loaded["b"], w) and torch.equal(loaded["c"], w[1])


def test_truncated_weights(tmp_path):
    path = save_checkpoint(tmp_path / "c", _state(), _meta())
    f = path / "weights.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 40])
    with pytest.raises(CheckpointError, match="weights.safetensors"):
        load_checkpoint(path)
    f.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="weights.safetensors"):
        load_checkpoint(path)
    f.write_bytes(b"")
    with pytest.raises(CheckpointError, match="weights.safetensors"):
        load_checkpoint(path)


def test_random_bytes(tmp_path):
    path = save_checkpoint(tmp_path / "c", _state(), _meta())
    rng = np.random.default_rng(0)
    for n in (3, 8, 100, 5000):
        (path / "weights.safetensors").write_bytes(rng.bytes(n))
        with pytest.raises(CheckpointError, match="weights.safetensors"):
            load_checkpoint(path)
    (path / "meta.json").write_bytes(rng.bytes(200))
    with pytest.raises(CheckpointError, match="meta.json"):
        load_checkpoint(path)


def test_flipped_byte_in_tensor_data(tmp_path):
    path = save_checkpoint(tmp_path / "c", {"w": torch.zeros(64)}, _meta())
    f = path / "weights.safetensors"
    data = bytearray(f.read_bytes())
    data[-3] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_weights_from_another_checkpoint(tmp_path):
    a = save_checkpoint(tmp_path / "a", {"w": torch.zeros(3)}, _meta())
    save_checkpoint(tmp_path / "b", {"w": torch.zeros(4), "v": torch.ones(1)}, _meta(algorithm="ppo"))
    os.replace(tmp_path / "b" / "weights.safetensors", a / "weights.safetensors")
    with pytest.warns(RuntimeWarning, match="another save"):  # self-describing weights win
        loaded, m = load_checkpoint(a)
    assert m.algorithm == "ppo" and loaded["w"].shape == (4,)


def test_wrong_game_and_algorithm(tmp_path):
    path = save_checkpoint(tmp_path / "c", _state(), _meta())
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, game="cycles")
    assert "treasure" in str(err.value) and "coinrush" in str(err.value) and "cycles" in str(err.value)
    with pytest.raises(CheckpointError, match="rl2"):
        load_checkpoint(path, algorithm="ppo")


@pytest.mark.parametrize("key, value", [("version", 999), ("view", 7), ("channels", 3), ("actions", 9)])
def test_wrong_spec(tmp_path, key, value):
    path = save_checkpoint(tmp_path / "c", _state(), _meta())
    d = json.loads((path / "meta.json").read_text())
    d["spec"][key] = value
    (path / "meta.json").write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=r"meta\.json.*spec version"):
        load_checkpoint(path)


def test_bad_meta(tmp_path):
    path = save_checkpoint(tmp_path / "c", _state(), _meta())
    meta_file = path / "meta.json"
    good = json.loads(meta_file.read_text())

    meta_file.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    meta_file.write_text(json.dumps({**good, "schema_version": 2}))
    with pytest.raises(CheckpointError, match="schema_version"):
        load_checkpoint(path)
    meta_file.write_text(json.dumps({k: v for k, v in good.items() if k not in ("algorithm", "tensors")}))
    with pytest.raises(CheckpointError, match="missing keys algorithm, tensors"):
        load_checkpoint(path)
    meta_file.write_text(json.dumps({**good, "steps": "many"}))
    with pytest.raises(CheckpointError, match="steps"):
        load_checkpoint(path)
    meta_file.write_text(json.dumps({**good, "tensors": good["tensors"][1:]}))  # a listed tensor removed
    with pytest.raises(CheckpointError, match="edited"):
        load_checkpoint(path)
    meta_file.unlink()
    with pytest.raises(CheckpointError, match="meta.json: missing"):
        load_checkpoint(path)


def test_listed_tensors_must_match_weights(tmp_path):
    # a weights file whose header copy of the metadata lists other tensors than it holds
    from safetensors.torch import save_file

    path = save_checkpoint(tmp_path / "c", {"w": torch.zeros(3)}, _meta())
    meta_text = (path / "meta.json").read_text()
    header = {ck.HEADER_KEY: json.dumps(json.loads(meta_text))}
    save_file({"w": torch.zeros(4)}, str(path / "weights.safetensors"), metadata=header)
    with pytest.raises(CheckpointError, match=r"do not match.*w float32\[4\] vs float32\[3\]"):
        load_checkpoint(path)
    save_file({"w": torch.zeros(3)}, str(path / "weights.safetensors"))  # no metadata in the header
    with pytest.raises(CheckpointError, match="header"):
        load_checkpoint(path)


def test_missing_paths(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "empty")
    path = save_checkpoint(tmp_path / "c", _state(), _meta())
    (path / "weights.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weights.safetensors: missing"):
        load_checkpoint(path)


def test_failed_save_keeps_previous(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c", _state(0), _meta(steps=1))
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    written = []

    def fail(tmp, final):
        written.append(Path(tmp).stat().st_size)  # the temporary file is complete
        raise OSError("disk full")

    monkeypatch.setattr(ck, "_commit", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _state(1), _meta(steps=2))
    assert written and written[0] > 0
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before  # no temporary file left behind
    loaded, m = load_checkpoint(path)
    assert m.steps == 1
    _assert_same(loaded, {k: v.contiguous() for k, v in _state(0).items()})


def test_writer_dying_mid_file_keeps_previous(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c", _state(0), _meta(steps=1))
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    real_write = Path.write_bytes

    def half_then_fail(self, data):
        real_write(self, data[:9])  # a few bytes of the weights file, then the process dies
        raise MemoryError

    monkeypatch.setattr(Path, "write_bytes", half_then_fail)
    with pytest.raises(MemoryError):
        save_checkpoint(path, _state(1), _meta(steps=2))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before  # no temporary file is left either
    assert load_checkpoint(path)[1].steps == 1


def test_save_killed_between_files_loads_new(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c", _state(0), _meta(steps=1))
    real = ck._commit
    calls = []

    def second_fails(tmp, final):
        calls.append(final)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(tmp, final)

    monkeypatch.setattr(ck, "_commit", second_fails)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _state(1), _meta(steps=2))
    monkeypatch.setattr(ck, "_commit", real)
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "weights.safetensors"]
    with pytest.warns(RuntimeWarning, match="interrupted"):
        loaded, m = load_checkpoint(path)
    assert m.steps == 2
    _assert_same(loaded, {k: v.contiguous() for k, v in _state(1).items()})
    save_checkpoint(path, loaded, m)  # saving again repairs meta.json
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_checkpoint(path)[1].steps == 2


def test_git_commit_without_git(tmp_path, monkeypatch):
    ck._git_commit.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable
    try:
        assert ck._git_commit() is None
    finally:
        ck._git_commit.cache_clear()


def test_average_is_the_mean_of_the_floating_point_tensors(tmp_path):
    """Each floating-point tensor of the mean is the mean of the checkpoints' (in its own dtype);
    any other tensor is carried over; the metadata is the last one's with ``extra`` added."""
    states = [_state(seed) for seed in range(3)]
    for k in ("steps", "mask"):  # what cannot be averaged is the same in all three
        states[1][k] = states[2][k] = states[0][k]
    paths = [save_checkpoint(tmp_path / f"c{i}", s, _meta(steps=100 * (i + 1))) for i, s in enumerate(states)]
    out = ck.average_checkpoints(paths, tmp_path / "mean", extra={"average": {"of": 3}})
    mean, meta = load_checkpoint(out)
    for k, first in states[0].items():
        assert mean[k].dtype == first.dtype and mean[k].shape == first.shape, k
        if first.is_floating_point():
            expected = (sum(s[k].double() for s in states) / 3).to(first.dtype)
            torch.testing.assert_close(mean[k], expected, rtol=0, atol=0)
        else:
            assert torch.equal(mean[k], first), k
    assert meta.steps == 300 and meta.extra == {"note": "test", "lr": 3e-4, "average": {"of": 3}}
    assert not torch.equal(mean["body.bias"], states[0]["body.bias"])


def test_average_refuses_checkpoints_of_different_networks(tmp_path):
    one = save_checkpoint(tmp_path / "one", _state(0), _meta())
    wider = save_checkpoint(tmp_path / "wider", _state(1), _meta(architecture={"hidden": 128}))
    counted = _state(2)
    counted["steps"] = torch.tensor(8, dtype=torch.int64)
    other_int = save_checkpoint(tmp_path / "int", counted, _meta())
    with pytest.raises(CheckpointError, match="not a checkpoint of the same network.*architecture"):
        ck.average_checkpoints([one, wider], tmp_path / "bad")
    with pytest.raises(CheckpointError, match="its tensor steps .*only floating-point"):
        ck.average_checkpoints([one, other_int], tmp_path / "bad")
    with pytest.raises(ValueError, match="at least one"):
        ck.average_checkpoints([], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # nothing is written before every checkpoint is read


def test_no_pickle_in_module():
    source = Path(ck.__file__).read_text()
    assert "pickle" not in source
    assert "torch.load" not in source


def test_sb3_policy_round_trip(tmp_path):
    def make(seed):
        env = gymnasium.make("metarena/Treasure-v0", variant="small", pool_size=4, seed=0)
        return sb3.PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, seed=seed, device="cpu",
                       policy_kwargs={"net_arch": [16]}, verbose=0)

    a, b = make(0), make(1)
    obs, _ = a.get_env().envs[0].reset(seed=3)
    batch = {k: np.stack([v] * 4) for k, v in obs.items()}
    batch["scalars"] = batch["scalars"] + np.arange(4, dtype=np.float32)[:, None]

    def probs(model):
        with torch.no_grad():
            t, _ = model.policy.obs_to_tensor(batch)
            return model.policy.get_distribution(t).distribution.probs

    assert not torch.allclose(probs(a), probs(b))
    meta = CheckpointMeta(algorithm="sb3-ppo", architecture={"policy": "MultiInputPolicy", "net_arch": [16]},
                          games=[games.variant("treasure", "small")])
    path = save_checkpoint(tmp_path / "sb3", ck.sb3_policy_state(a), meta)
    state, _ = load_checkpoint(path, game="treasure", algorithm="sb3-ppo")
    assert ck.load_sb3_policy(b, state) is b
    assert torch.equal(probs(a), probs(b))
    np.testing.assert_array_equal(a.predict(batch, deterministic=True)[0], b.predict(batch, deterministic=True)[0])

    c = sb3.PPO("MultiInputPolicy", a.get_env(), device="cpu", policy_kwargs={"net_arch": [8]}, verbose=0)
    with pytest.raises(CheckpointError, match="shape differs"):
        ck.load_sb3_policy(c, state)
