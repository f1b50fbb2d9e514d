"""Configs: one validation for every config dataclass, typed options, settings, JSON round-trips."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from metarena.agents import config
from metarena.agents.baselines import SB3Algo, SB3Config
from metarena.agents.config import Choice, from_dict, from_settings, settings_of, to_dict, validate
from metarena.agents.finetune import AdaptConfig, FineTuneConfig, ReptileConfig, Strategy
from metarena.agents.ppo import RL2Config
from metarena.arenas.cli import main

CONFIGS = (RL2Config, FineTuneConfig, ReptileConfig, AdaptConfig, SB3Config)
ZOO = Path(config.__file__).resolve().parent / "zoo"


# ---------------------------------------------------------------------------------------------
# every field: a type, a range, a doc


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_is_declared_with_a_doc_and_its_defaults_pass(cls):
    table = settings_of(cls)  # raises TypeError for a field declared without setting()
    assert list(table) == [f.name for f in dataclasses.fields(cls)]
    assert all(s.doc.strip() for s in table.values())
    cls().validate()


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_number_has_a_lower_bound(cls):
    from typing import get_type_hints

    hints = get_type_hints(cls)
    for name, s in settings_of(cls).items():
        if any(t in str(hints[name]) for t in ("int", "float")):
            assert s.ge is not None or s.gt is not None, f"{cls.__name__}.{name} has no lower bound"


def test_a_field_without_setting_is_a_programming_error():
    @dataclasses.dataclass
    class Bare:
        x: int = 1

    with pytest.raises(TypeError, match="Bare.x"):
        validate(Bare())


# ---------------------------------------------------------------------------------------------
# bad values name the config, the field, the value and what is allowed


@pytest.mark.parametrize("bad, message", [
    (dict(lr=-1), "RL2Config.lr = -1: expected a number > 0"),
    (dict(lr=0.0), "RL2Config.lr = 0.0: expected a number > 0"),
    (dict(lr=math.nan), "RL2Config.lr = nan"),
    (dict(chunk=0), "RL2Config.chunk = 0: expected an integer >= 1"),
    (dict(chunk=2.5), "RL2Config.chunk = 2.5: expected an integer"),
    (dict(gamma=3), "RL2Config.gamma = 3: expected a number in [0, 1]"),
    (dict(hidden="abc"), "RL2Config.hidden = 'abc': expected a list of integers >= 1"),
    (dict(hidden=(64, 0)), "RL2Config.hidden = (64, 0)"),
    (dict(chunk=True), "RL2Config.chunk = True: expected an integer"),  # a bool is not an int
    (dict(stagger=1), "RL2Config.stagger = 1: expected a boolean"),
    (dict(games=()), "RL2Config.games = (): expected a non-empty list"),
    (dict(games=("nope",)), "RL2Config.games = ('nope',): unknown game 'nope'; registered games: "),
    (dict(variant=""), "RL2Config.variant = '': expected a non-empty string, or None"),
    (dict(device="tpu0"), "RL2Config.device = 'tpu0': expected 'auto' or a torch device"),
    (dict(seed=-1), "RL2Config.seed = -1: expected an integer >= 0"),
    (dict(pool_size=2 ** 20 + 1), "RL2Config.pool_size = 1048577: expected an integer in [1, 1048576]"),
])
def test_rl2_config_rejects(bad, message):
    with pytest.raises(ValueError) as err:
        RL2Config(**bad).validate()
    assert message in str(err.value)


@pytest.mark.parametrize("cls", [FineTuneConfig, ReptileConfig, AdaptConfig], ids=lambda c: c.__name__)
def test_an_unknown_strategy_is_rejected(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.strategy = 'bogus': expected one of 'adapter', "
                                         r"'discriminative', 'all'"):
        cls(strategy="bogus").validate()
    cls(strategy="discriminative").validate()  # the plain string is accepted
    cls(strategy=Strategy.ALL).validate()


def test_sb3_config_rejects_an_unknown_algorithm():
    with pytest.raises(ValueError, match=r"SB3Config\.algo = 'ppo2': expected one of 'ppo', 'recurrent-ppo'"):
        SB3Config(algo="ppo2").validate()
    with pytest.raises(ValueError, match=r"SB3Config\.batch_size = 1: expected an integer >= 2, or None"):
        SB3Config(batch_size=1).validate()


def test_cross_field_checks_remain():
    with pytest.raises(ValueError, match="multiple of minibatches"):
        RL2Config(envs=6, minibatches=4).validate()
    with pytest.raises(ValueError, match="split evenly"):
        RL2Config(games=("treasure", "coinrush"), envs=5, minibatches=1).validate()


# ---------------------------------------------------------------------------------------------
# ranges: each inclusive bound passes, one step past it fails


@pytest.mark.parametrize("field, ok, bad", [
    ("gamma", 0.0, -1e-9), ("gamma", 1.0, 1.0 + 1e-9), ("gamma", 1, 2),  # an int is a number
    ("gae_lambda", 0.0, -1e-9), ("gae_lambda", 1.0, math.nextafter(1.0, 2.0)),
    ("chunk", 1, 0), ("envs", 1, 0), ("episodes", 1, 0), ("epochs", 1, 0),
    ("torch_threads", 0, -1), ("total_steps", 0, -1), ("ent_coef", 0.0, -1e-12),
    ("lr", 1e-12, 0.0), ("clip", math.nextafter(0.0, 1.0), 0.0),  # open bounds: > 0
])
def test_rl2_bounds(field, ok, bad):
    validate(RL2Config(**{field: ok}))
    with pytest.raises(ValueError, match=rf"RL2Config\.{field} = "):
        validate(RL2Config(**{field: bad}))


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_declared_bound_holds(cls):
    """For every bounded number of every config: the inclusive bound passes, one past it fails."""
    from typing import get_type_hints

    hints = get_type_hints(cls)
    default = cls()
    checked = 0
    for name, s in settings_of(cls).items():
        is_int, is_tuple = "int" in str(hints[name]), "tuple" in str(hints[name])

        def beside(x, direction):  # the next value past x towards direction (+1 or -1)
            return int(x) + direction if is_int else math.nextafter(x, direction * math.inf)

        for bound, is_open, up in ((s.ge, False, 1), (s.gt, True, 1), (s.le, False, -1), (s.lt, True, -1)):
            if bound is None:
                continue
            inside = beside(bound, up) if is_open else bound  # up: the side the values lie on
            outside = bound if is_open else beside(bound, -up)
            wrap = (lambda v: (v,)) if is_tuple else (lambda v: v)
            validate(dataclasses.replace(default, **{name: wrap(inside)}))
            with pytest.raises(ValueError, match=rf"{cls.__name__}\.{name} = "):
                validate(dataclasses.replace(default, **{name: wrap(outside)}))
            checked += 1
    assert checked >= 5


# ---------------------------------------------------------------------------------------------
# settings from the command line


def test_from_settings_builds_and_coerces():
    cfg = from_settings(FineTuneConfig, {"hidden": [32, 16], "strategy": "all", "adapt_lr": 1, "envs": 8},
                        games=["treasure"], seed=3)
    assert cfg.hidden == (32, 16) and isinstance(cfg.hidden, tuple)
    assert cfg.strategy is Strategy.ALL and cfg.games == ("treasure",) and cfg.seed == 3
    assert cfg.adapt_lr == 1.0 and isinstance(cfg.adapt_lr, float)
    assert cfg.lr == FineTuneConfig().lr  # the rest: defaults


def test_from_settings_names_a_typo_and_the_known_keys():
    with pytest.raises(ValueError) as err:
        from_settings(RL2Config, {"lrr": 0.1}, games=("treasure",))
    text = str(err.value)
    assert "'lrr'" in text and "did you mean 'lr'" in text and "known: " in text and "minibatches" in text
    with pytest.raises(ValueError, match=r"unknown RL2Config setting 'zzz'; known: "):
        from_settings(RL2Config, {"zzz": 1})
    with pytest.raises(ValueError, match=r"unknown RL2Config settings 'zzz', 'chunkk' \(did you mean 'chunk'\?\)"):
        from_settings(RL2Config, {"zzz": 1, "lr": 0.1, "chunkk": 8})


def test_from_settings_rejects_a_misplaced_key():
    with pytest.raises(ValueError, match=r"RL2Config\.seed is given by its own argument"):
        from_settings(RL2Config, {"seed": 1}, seed=0)
    with pytest.raises(ValueError, match=r"RL2Config\.device is given by its own argument"):
        from_settings(RL2Config, {"device": "cpu"}, reserved=("device",))
    with pytest.raises(ValueError, match=r"RL2Config\.lr = -1"):
        from_settings(RL2Config, {"lr": -1})
    with pytest.raises(ValueError, match="multiple of minibatches"):  # the config's own validate() runs
        from_settings(RL2Config, {"envs": 6})


# ---------------------------------------------------------------------------------------------
# JSON


def _varied(cls):
    """A config of ``cls`` with non-default enums, tuples and numbers."""
    extra = {
        RL2Config: dict(hidden=(32, 16), games=("treasure", "coinrush"), lr=1e-3, variant=None),
        FineTuneConfig: dict(strategy=Strategy.ALL, hidden=(8,), adapt_lr=1e-4),
        ReptileConfig: dict(strategy="discriminative", init="runs/pre", meta_lr=0.25),
        AdaptConfig: dict(strategy=Strategy.DISCRIMINATIVE, epochs=0, gamma=1.0),
        SB3Config: dict(algo=SB3Algo.RECURRENT_PPO, net_arch=(8, 8), n_steps=16, batch_size=None),
    }[cls]
    return cls(**extra)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_to_dict_and_from_dict_round_trip(cls):
    for cfg in (cls(), _varied(cls)):
        d = to_dict(cfg)
        text = json.dumps(d, allow_nan=False)
        back = from_dict(cls, json.loads(text))
        assert back == cfg and to_dict(back) == d
        for f in dataclasses.fields(cls):
            value = getattr(back, f.name)
            assert not isinstance(value, list), f.name  # lists back to tuples
            if isinstance(d[f.name], list):
                assert isinstance(value, tuple)
            assert type(d[f.name]) in (int, float, bool, str, list, type(None)), f.name  # plain JSON
    enum_fields = [k for k, v in vars(_varied(cls)).items() if isinstance(v, str) and k in ("strategy", "algo")]
    for k in enum_fields:
        assert isinstance(getattr(from_dict(cls, to_dict(_varied(cls))), k), Choice)


def test_the_methods_agree_with_the_functions():
    cfg = _varied(SB3Config)
    assert cfg.to_dict() == to_dict(cfg) and cfg.to_dict()["algo"] == "recurrent-ppo"
    assert SB3Config.from_dict(cfg.to_dict()) == cfg
    assert _varied(RL2Config).to_dict()["hidden"] == [32, 16]


def test_from_dict_rejects_unknown_keys_and_fills_missing_ones():
    d = to_dict(RL2Config(lr=1e-3))
    with pytest.raises(ValueError, match=r"unknown RL2Config key 'lrr' \(did you mean 'lr'\?\)"):
        from_dict(RL2Config, {**d, "lrr": 1})
    assert from_dict(RL2Config, {"algorithm": "rl2", **d}, ignore=("algorithm",)) == RL2Config(lr=1e-3)
    del d["stagger"]
    assert from_dict(RL2Config, d).stagger is RL2Config().stagger
    with pytest.raises(ValueError, match=r"RL2Config\.chunk = 0"):
        from_dict(RL2Config, {**d, "chunk": 0})


def test_shipped_agents_configs_still_load():
    metas = sorted(ZOO.glob("*/meta.json"))
    assert metas
    for path in metas:
        saved = json.loads(path.read_text(encoding="utf-8"))["extra"]["config"]
        got, default = to_dict(from_dict(RL2Config, saved)), to_dict(RL2Config())
        assert {k: got[k] for k in saved} == saved
        assert {k: got[k] for k in got if k not in saved} == {k: default[k] for k in got if k not in saved}


def test_choices_are_their_strings():
    assert Strategy.ALL == "all" and SB3Algo("recurrent-ppo") is SB3Algo.RECURRENT_PPO
    assert str(Strategy.ADAPTER) == f"{Strategy.ADAPTER}" == "adapter"
    assert json.dumps({"s": SB3Algo.PPO}) == '{"s": "ppo"}'
    assert {"recurrent-ppo": 1}[SB3Algo.RECURRENT_PPO] == 1


# ---------------------------------------------------------------------------------------------
# the command line


@pytest.mark.parametrize("pair, named", [("lrr=0.1", "lrr"), ("lr=-1", "lr"), ("strategy=all", "strategy")])
def test_train_rejects_a_bad_setting_and_writes_nothing(tmp_path, capsys, pair, named):
    run = tmp_path / "run"
    code = main(["train", "--algo", "rl2", "--game", "treasure", "--steps", "10", "--out", str(run),
                 "--set", pair])
    err = capsys.readouterr().err
    assert code == 2
    assert "metarena train: error:" in err and (f"'{named}'" in err or f".{named} = " in err)
    assert not run.exists() or not any(run.iterdir())
