"""`metarena train` from the command line: bad input exits 2 with a message and leaves nothing on
disk, --resume refuses what it cannot honour, Ctrl-C / SIGTERM save the last finished update,
and the files a run writes follow the umask."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from metarena.agents import ppo
from metarena.agents.checkpoint import load_checkpoint
from metarena.agents.rundir import latest_checkpoint, read_metrics
from metarena.arenas.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
ENVS, CHUNK = 8, 8
PER_UPDATE = ENVS * CHUNK
#: a run small enough to train in a second: its settings as train's options
TINY = ["--variant", "small", "--envs", str(ENVS), "--set", f"chunk={CHUNK}", "--set", "pool_size=16",
        "--set", "hidden=[16]", "--set", "memory=8", "--set", "minibatches=2", "--set", "torch_threads=1",
        "--set", "episodes=2"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def train(capsys, out, *argv, steps=PER_UPDATE):
    return run(capsys, "train", "--algo", "rl2", "--game", "treasure", "--steps", steps, "--out", out, *argv)


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes: to see that nothing changed."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def done_run(tmp_path_factory):
    """A finished two-update run (copied by the tests that change it)."""
    out = tmp_path_factory.mktemp("done") / "run"
    assert main(["train", "--algo", "rl2", "--game", "treasure", "--steps", str(2 * PER_UPDATE), "--out", str(out),
                 *TINY]) == 0
    return out


# ---------------------------------------------------------------------------------------------
# bad input: exit 2, a message, nothing written


@pytest.mark.parametrize("argv,needle", [
    (["--set", "lr=abc"], "RL2Config.lr = 'abc': expected a number > 0"),
    (["--set", "hidden=abc"], "RL2Config.hidden = 'abc'"),
    (["--set", "chunk=0"], "RL2Config.chunk = 0: expected an integer >= 1"),
    (["--set", "lr=-1"], "expected a number > 0"),
    (["--set", "lrr=0.1"], "unknown RL2Config setting 'lrr' (did you mean 'lr'?)"),
    (["--set", "seed=3"], "seed is set by its own option, --seed"),
    (["--set", "progress=false"], "unknown RL2Config setting 'progress'"),  # a train() argument, not a setting
    (["--set", "lr=0.1", "--set", "lr=0.2"], "--set lr is given twice"),
    (["--set", "lr"], "--set expects KEY=VALUE"),
    (["--variant", "huge"], "no built-in variant 'huge'"),
    (["--game", "chess"], "unknown game 'chess'"),
    (["--envs", "9", "--set", "minibatches=2"], "envs (9) must be a multiple of minibatches (2)"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, needle):
    out = tmp_path / "new" / "run"
    code, _, err = train(capsys, out, *argv)
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert not (tmp_path / "new").exists()


def test_bad_init_and_missing_options_exit_2(tmp_path, capsys, done_run):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--algo", "reptile", "--game", "treasure", "--steps", 10, "--out", out,
                       "--set", f"init={tmp_path / 'nothing'}")
    assert code == 2 and "no such checkpoint" in err and not out.exists()
    code, _, err = run(capsys, "train", "--algo", "reptile", "--game", "treasure", "--steps", 10, "--out", out,
                       "--set", f"init={done_run}")  # an rl2 run is no pretrained backbone
    assert code == 2 and "expected finetune or reptile" in err and not out.exists()
    code, _, err = run(capsys, "train", "--algo", "rl2", "--game", "treasure")
    assert code == 2 and "required: --steps, --out" in err
    (tmp_path / "afile").write_text("mine")
    code, _, err = train(capsys, tmp_path / "afile" / "run", *TINY)
    assert code == 2 and "cannot write the run directory" in err and "Traceback" not in err
    assert (tmp_path / "afile").read_text() == "mine"
    for argv in (["--eval-every", "-1"], ["--minutes", "0"], ["--steps", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["train", "--algo", "rl2", "--game", "treasure", "--steps", "10", "--out", str(out), *argv])
        assert exc.value.code == 2
    assert not out.exists()


def test_a_failure_before_the_first_update_removes_the_new_run(tmp_path, capsys, monkeypatch):
    def no_levels(cfg, league=None):
        raise ValueError("no levels today")

    monkeypatch.setattr(ppo, "RL2Envs", no_levels)
    out = tmp_path / "a" / "run"
    code, _, err = train(capsys, out, *TINY)
    assert code == 2 and "no levels today" in err and not (tmp_path / "a").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = train(capsys, empty, *TINY)
    assert code == 2 and empty.is_dir() and not any(empty.iterdir())  # the folder stays, empty


@pytest.mark.parametrize("columns", ["80", "200"])  # one block per setting; a table
def test_set_help_lists_every_setting(capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    code, out, err = run(capsys, "train", "--algo", "rl2", "--set", "help")
    assert code == 0 and "Traceback" not in err
    for name in ("--set lr=VALUE", "--set chunk=VALUE", "--set hidden=VALUE", "--set controls_decay=VALUE",
                 "--seed"):
        assert name in out
    assert "0.002" in out and "a number > 0" in out
    assert max(map(len, out.splitlines())) <= int(columns)
    code, out, _ = run(capsys, "bench", "train", "--game", "treasure", "--set", "help")
    assert code == 0 and "--set memory=VALUE" in out


def test_every_train_option_says_its_default():
    parser = build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    for action in train_parser._actions:
        if action.dest == "help":
            continue
        assert action.help and ("default" in action.help or "required" in action.help), action.option_strings
    assert "--set help lists every KEY" in " ".join(train_parser.format_help().split())


# ---------------------------------------------------------------------------------------------
# --resume


def test_resume_of_a_missing_or_empty_directory_exits_2(tmp_path, capsys):
    code, _, err = train(capsys, tmp_path / "nosuchdir", "--resume")
    assert code == 2 and "does not exist" in err and "drop --resume to start a new run" in err
    assert not (tmp_path / "nosuchdir").exists()
    (tmp_path / "empty").mkdir()
    code, _, err = train(capsys, tmp_path / "empty", "--resume")
    assert code == 2 and "is empty" in err and "drop --resume" in err


def test_resume_refuses_other_settings_and_changes_nothing(capsys, done_run, monkeypatch):
    before = tree(done_run)
    monkeypatch.setattr(ppo, "RL2Envs", None)  # nothing below may build levels
    code, _, err = train(capsys, done_run, "--resume", "--game", "coinrush", "--variant", "medium", "--seed", "3",
                         "--envs", "16", "--set", "lr=0.01", "--set", "chunk=8", steps=10 * PER_UPDATE)
    assert code == 2 and "Traceback" not in err
    for item in ('--game: saved ["treasure"], given ["coinrush"]', '--variant: saved "small", given "medium"',
                 "--envs: saved 8, given 16", "--set lr: saved 0.002, given 0.01", "--seed: saved 0, given 3"):
        assert item in err, err
    assert "--set chunk" not in err  # the same value as saved changes nothing
    for argv, needle in ((["--set", "lr=abc"], "RL2Config.lr = 'abc'"),
                         (["--set", "lrr=1"], "unknown RL2Config setting 'lrr'"),
                         (["--set", "seed=1"], "--seed"),
                         (["--algo", "ppo"], "a run of --algo rl2")):
        code, _, err = run(capsys, "train", "--algo", "rl2", "--steps", 10 * PER_UPDATE, "--out", done_run,
                           "--resume", *argv)
        assert code == 2 and needle in err and "Traceback" not in err, err
    # at (or past) the target: said at once, nothing built, nothing written
    code, _, err = train(capsys, done_run, "--resume", *TINY, "--seed", "0", "--set", "lr=0.002",
                         steps=2 * PER_UPDATE - 1)
    assert code == 0 and "Traceback" not in err
    assert f"already at {2 * PER_UPDATE} env steps (target {2 * PER_UPDATE - 1}): nothing to do; raise --steps" in err
    # without --steps: the saved target, which the run has reached
    code, _, err = run(capsys, "train", "--algo", "rl2", "--out", done_run, "--resume")
    assert code == 0 and f"already at {2 * PER_UPDATE} env steps (target {2 * PER_UPDATE}): nothing to do" in err
    assert tree(done_run) == before
    # a new run still needs its target
    code, _, err = run(capsys, "train", "--algo", "rl2", "--game", "treasure", "--out", done_run.parent / "new")
    assert code == 2 and "required: --steps" in err and not (done_run.parent / "new").exists()


def test_resume_applies_the_new_target_and_device(tmp_path, capsys, done_run):
    out = tmp_path / "run"
    out.mkdir()
    for name, data in tree(done_run).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    code, _, err = run(capsys, "train", "--algo", "rl2", "--steps", 3 * PER_UPDATE + 1, "--out", out, "--resume",
                       "--device", "cpu", "--set", "bf16=true")
    assert code == 0 and "Traceback" not in err
    assert 'resuming with --device "cpu" (saved: "auto")' in err
    assert "resuming with --set bf16 true (saved: false)" in err, err
    assert f"rounds up to 2 more updates of {PER_UPDATE} env steps" in err
    assert f"{4 * PER_UPDATE}/{4 * PER_UPDATE}" in err  # the bar's total: the steps the run takes
    assert [r["update"] for r in read_metrics(out)] == [1, 2, 3, 4]


def test_steps_round_up_to_a_whole_update_and_say_so(tmp_path, capsys):
    code, _, err = train(capsys, tmp_path / "run", *TINY, steps=10)
    assert code == 0
    assert f"--steps 10 rounds up to 1 update of {PER_UPDATE} env steps (envs 8 x chunk 8)" in err
    assert f"{PER_UPDATE}/{PER_UPDATE} steps" in err and "/10 steps" not in err


# ---------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal delivers it. A test runner started in the background
    of a shell inherits SIGINT ignored, and training keeps a signal that the process ignores
    ignored (as a background job should)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(out: Path, pool: int = 16) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    args = [a if a != "pool_size=16" else f"pool_size={pool}" for a in TINY]
    return subprocess.Popen([sys.executable, "-m", "metarena", "train", "--algo", "rl2", "--game", "treasure",
                             "--steps", str(10 ** 6), "--checkpoint-every", "1000", "--out", str(out), *args],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def _wait_for(proc: subprocess.Popen, ready) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"training exited early: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("training showed no update within 60 s")
        time.sleep(0.01)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_the_last_finished_update(tmp_path, capsys, sig, code):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for(proc, lambda: len(read_metrics(out)) >= 1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"interrupted by {sig.name}: saved update" in err and "--resume" in err
    rows = read_metrics(out)
    update = rows[-1]["update"]  # every update with a row is saved
    ckpt = out / "checkpoints" / f"update_{update:06d}"
    assert latest_checkpoint(out) == ckpt and json.loads((out / "latest").read_text())["update"] == update
    _, meta = load_checkpoint(ckpt, algorithm="rl2")
    assert meta.extra["update"] == update and meta.steps == update * PER_UPDATE
    opt, _ = load_checkpoint(ckpt / "optimizer.safetensors", algorithm="rl2-optimizer")
    assert {float(v) for k, v in opt.items() if k.endswith(".step")} == {float(update * 2 * 2)}  # not mid-update

    code, _, err = run(capsys, "train", "--algo", "rl2", "--out", out, "--resume", "--steps", (update + 1) * PER_UPDATE)
    assert code == 0 and f"resuming {out} at update {update}" in err
    assert [r["update"] for r in read_metrics(out)] == list(range(1, update + 2))


def test_a_signal_before_the_first_update_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, pool=8192)  # the pool takes a second to build: the signal lands before any update ends
    _wait_for(proc, lambda: (out / "config.json").exists())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "before the first update" in err
    assert not out.exists()


def test_a_signal_inside_an_import_is_sent_again_after_it(tmp_path, monkeypatch):
    """Raised inside Python's import machinery (or the kernels' compiler), the interruption
    could leave a module's lock held and the exit waiting for ever; the handler sends the signal
    again a moment later."""
    from metarena.agents import train as train_module

    (tmp_path / "frame_in_an_import.py").write_text("import sys\nFRAME = sys._getframe()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "frame_in_an_import", raising=False)
    import frame_in_an_import

    sent = []
    handler = train_module._Signals()
    monkeypatch.setattr(handler, "_later", sent.append)
    handler._handle(signal.SIGINT, frame_in_an_import.FRAME)
    assert sent == [signal.SIGINT] and handler.signum == signal.SIGINT
    with pytest.raises(train_module.Interrupted):
        handler._handle(signal.SIGINT, sys._getframe())
    assert sent == [signal.SIGINT]


# ---------------------------------------------------------------------------------------------
# what a run leaves on disk


def test_run_files_follow_the_umask(tmp_path):
    from metarena.agents.train import train as train_api

    out = tmp_path / "run"
    before = os.umask(0o027)
    try:
        train_api("rl2", ["treasure"], "small", steps=2 * PER_UPDATE, out=out, envs=ENVS, chunk=CHUNK,
                  pool_size=16, hidden=(16,), memory=8, minibatches=2, torch_threads=1, episodes=2,
                  checkpoint_every=1, eval_every=2, eval_levels=2, progress=False)
    finally:
        os.umask(before)
    files = {str(p.relative_to(out)): p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    for name in ("config.json", "metrics.csv", "latest", "curve.png", "evals.jsonl",
                 "checkpoints/update_000002/weights.safetensors", "checkpoints/update_000002/meta.json",
                 "checkpoints/update_000002/optimizer.safetensors", "checkpoints/update_000002/optimizer.meta.json"):
        assert name in files
    assert {name: mode for name, mode in files.items() if mode != 0o640} == {}
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_sb3_training_leaves_no_folder_in_the_temp_directory(tmp_path, capsys, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    code, _, err = run(capsys, "train", "--algo", "ppo", "--game", "treasure", "--variant", "small", "--envs", 2,
                       "--steps", 32, "--out", tmp_path / "run", "--set", "n_steps=16", "--set", "batch_size=16",
                       "--set", "n_epochs=1", "--set", "pool_size=4", "--set", "episodes=2")
    assert code == 0, err
    assert sorted(p.name for p in temp.iterdir()) == []
