"""The guard: a broken agent forfeits (with the right status) and the others play on.

Every broken agent of ``agents_fixture/broken.py`` plays seat 0 of a small treasure race
against the scripted agent, through the one trial loop; the trial must finish, the scripted
agent must stay ``ok`` and its returns be recorded. Where the broken agent fails at its first
call, it stands still from the first step, so its opponent must score exactly what it scores
against the ``stay`` agent.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from metarena import games
from metarena.agents.external import make_external
from metarena.agents.reference import ReferenceAgent
from metarena.agents.rollout import Hooks, play
from metarena.arenas.guard import AgentStartError, GuardedAgent, ProcessAgent, guard

FIXTURE = Path(__file__).parent / "agents_fixture"
BROKEN = FIXTURE / "broken.py"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_agent.py"
N = 4


def spec(cls: str) -> str:
    return f"{BROKEN}:{cls}"


def env():
    return games.make_batch_env("treasure", "small", batch=N, players=2, episodes=2, pool_size=4)


class Actions(Hooks):
    def __init__(self):
        self.actions = []

    def on_step(self, env, actions, step):
        self.actions.append(actions.copy())


def match(agent, seed: int = 3, **kw):
    """Play ``agent`` (seat 0) against the guarded scripted agent; ``(stats, opponent)``."""
    opponent = GuardedAgent(ReferenceAgent("scripted", seed=1))
    stats = play(env(), [agent, opponent], seed=seed, **kw)
    assert stats.finished.all(), "the trial did not finish"
    assert opponent.status == ["ok"] * N and opponent.errors == {}
    return stats, opponent


@pytest.fixture(scope="module")
def against_stay():
    """The scripted agent's returns against an agent that never moves."""
    stats = play(env(), [ReferenceAgent("stay"), ReferenceAgent("scripted", seed=1)], seed=3)
    assert stats.returns[:, :, 1].sum() > 0  # the comparison means something: it scores
    return stats.returns[:, :, 1]


@pytest.fixture(autouse=True)
def hang_guard():
    """Fail, rather than hang, a test whose guard does not stop a hung agent (POSIX only)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def fail(signum, frame):
        raise TimeoutError("the test ran past 20 s: a hung agent was not stopped")

    before = signal.signal(signal.SIGALRM, fail)
    signal.setitimer(signal.ITIMER_REAL, 20.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists, zombies included (Linux: /proc)."""
    return Path(f"/proc/{pid}").exists()


def assert_reaped(process) -> None:
    assert process.exitcode is not None, "the worker was not joined"
    assert process not in multiprocessing.active_children()
    if Path("/proc").is_dir():
        assert not alive(process.pid), f"worker {process.pid} is still there (a zombie?)"


# ---------------------------------------------------------------------------------------------
# each broken agent, in this process


def test_an_agent_that_raises_forfeits_with_error(against_stay):
    broken = GuardedAgent(make_external(spec("Raises")))
    stats, _ = match(broken)
    assert broken.status == ["error"] * N
    assert "boom: this agent always fails" in broken.errors["error"] and "Traceback" in broken.errors["error"]
    np.testing.assert_array_equal(stats.returns[:, :, 1], against_stay)
    np.testing.assert_array_equal(stats.returns[:, :, 0], 0)


def test_an_agent_that_raises_in_begin_trial_is_never_asked_again(against_stay):
    inner = make_external(spec("RaisesInBeginTrial"))
    calls = []
    real_act = inner.act
    inner.act = lambda *a: calls.append(1) or real_act(*a)
    broken = GuardedAgent(inner)
    stats, _ = match(broken)
    assert broken.status == ["error"] * N and "KeyError" in broken.errors["error"]
    assert calls == []
    np.testing.assert_array_equal(stats.returns[:, :, 1], against_stay)


def test_an_out_of_range_action_makes_its_slot_invalid_only():
    broken = GuardedAgent(make_external(spec("OutOfRange"), seed=0))
    stats, _ = match(broken)
    assert broken.status == ["invalid", "ok", "ok", "ok"]
    assert "slot 0: 7" in broken.errors["invalid"]
    negative = GuardedAgent(make_external(spec("Negative")))
    match(negative)
    assert negative.status == ["ok", "ok", "ok", "invalid"]


class Recording(Hooks):
    def __init__(self):
        self.seat0 = []

    def on_step(self, env, actions, step):
        self.seat0.append(actions[:, 0].copy())


def test_an_invalid_slot_stays_still_while_the_others_play():
    broken = GuardedAgent(make_external(spec("OutOfRange"), seed=0))
    hooks = Recording()
    opponent = ReferenceAgent("scripted", seed=1)
    play(env(), [broken, opponent], seed=3, hooks=hooks)
    seat0 = np.stack(hooks.seat0)
    assert (seat0[:, 0] == 0).all()  # the invalid slot stays
    assert (seat0[:, 1:] > 0).any()  # the valid slots move as the agent says


@pytest.mark.parametrize("cls, shown", [("WrongShape", "shape (4, 1)"), ("FloatActions", "dtype float32"),
                                        ("ListActions", "a list"), ("NoPair", "(actions, memory)")])
def test_actions_of_the_wrong_shape_or_type_make_every_slot_invalid(cls, shown, against_stay):
    broken = GuardedAgent(make_external(spec(cls)))
    stats, _ = match(broken)
    assert broken.status == ["invalid"] * N
    assert shown in broken.errors["invalid"]
    np.testing.assert_array_equal(stats.returns[:, :, 1], against_stay)


# ---------------------------------------------------------------------------------------------
# time


class Slow:
    """Sleeps ``delay`` seconds in every act; counts its calls."""

    name = "slow"

    def __init__(self, delay: float):
        self.delay, self.calls = delay, 0

    def begin_trial(self, n):
        return None

    def act(self, obs, memory, ctx):
        self.calls += 1
        time.sleep(self.delay)
        return np.ones(len(obs.grid), dtype=np.int64), memory

    def end_episode(self, memory, slots):
        return memory


def test_an_in_process_agent_is_timed_after_each_call_and_draws_on_its_bank():
    inner = Slow(0.03)
    slow = GuardedAgent(inner, step_budget=0.01, time_bank=0.1)  # ~0.02 s over per call: ~5 calls
    match(slow)
    assert slow.status == ["timeout"] * N
    assert 2 <= inner.calls <= 8, inner.calls
    assert slow.bank_left == 0.0 and "past its deadline" in slow.errors["timeout"]
    assert slow.time_used >= inner.calls * 0.03


def test_an_agent_within_its_budget_stays_ok():
    inner = Slow(0.0)
    fine = GuardedAgent(inner, step_budget=0.5, time_bank=0.0)
    match(fine)
    assert fine.status == ["ok"] * N and inner.calls > 10 and fine.bank_left == 0.0


def test_each_trial_starts_afresh():
    broken = GuardedAgent(make_external(spec("Raises")))
    match(broken)
    assert broken.status == ["error"] * N
    broken.begin_trial(2)
    assert broken.status == ["ok", "ok"] and broken.errors == {} and broken.time_used < 0.5


def test_budgets_are_checked():
    with pytest.raises(ValueError, match="step_budget"):
        GuardedAgent(ReferenceAgent("stay"), step_budget=0)
    with pytest.raises(ValueError, match="time_bank"):
        GuardedAgent(ReferenceAgent("stay"), time_bank=-1)


# ---------------------------------------------------------------------------------------------
# external agents in a worker process


def test_a_hung_external_agent_is_killed_at_its_deadline(against_stay):
    began = time.perf_counter()
    with GuardedAgent(ProcessAgent(spec("Sleeper")), step_budget=0.2, time_bank=0.2) as hung:
        process = hung.agent.process
        started = time.perf_counter()
        stats, _ = match(hung)
        played = time.perf_counter() - started
        assert hung.status == ["timeout"] * N and "0.400 s" in hung.errors["timeout"]
        assert played < 2.0, f"the match took {played:.1f} s"
        assert not hung.agent.alive
        assert_reaped(process)
        np.testing.assert_array_equal(stats.returns[:, :, 1], against_stay)
        # the next trial starts a new worker (not timed), which hangs again
        hung.begin_trial(N)
        second = hung.agent.process
        assert hung.status == ["ok"] * N and second.pid != process.pid
    assert_reaped(second)
    assert time.perf_counter() - began < 6.0


def test_an_exception_in_the_worker_comes_back_as_its_traceback(against_stay):
    with GuardedAgent(ProcessAgent(spec("Raises"))) as broken:
        stats, _ = match(broken)
        assert broken.status == ["error"] * N
        message = broken.errors["error"]
        assert "Traceback" in message and "RuntimeError: boom: this agent always fails" in message
        assert "broken.py" in message  # the traceback points into the agent's file
        assert broken.agent.alive  # an exception does not cost the worker
    np.testing.assert_array_equal(stats.returns[:, :, 1], against_stay)


@pytest.mark.parametrize("cls, status", [("OutOfRange", ["invalid", "ok", "ok", "ok"]),
                                         ("WrongShape", ["invalid"] * N), ("ListActions", ["invalid"] * N),
                                         ("Exits", ["error"] * N)])
def test_a_worker_gets_the_same_statuses(cls, status):
    with GuardedAgent(ProcessAgent(spec(cls), seed=0)) as broken:
        process = broken.agent.process
        match(broken)
        assert broken.status == status
    if cls == "Exits":
        assert "exit code 3" in broken.errors["error"]
    assert_reaped(process)


def test_an_external_agent_in_a_worker_gets_no_privileged_information():
    with GuardedAgent(ProcessAgent(spec("PeeksAtContext"))) as peeks:
        hooks = Actions()
        opponent = GuardedAgent(make_external(spec("PeeksAtContext")))  # in this process: sees the engine
        stats = play(env(), [peeks, opponent], seed=0, hooks=hooks)
        assert stats.finished.all()
        assert peeks.status == ["ok"] * N
        assert opponent.status == ["error"] * N and "privileged information" in opponent.errors["error"]
        assert all((a[:, 0] == 0).all() for a in hooks.actions)  # player index 0 came through


@pytest.mark.parametrize("memory_reset", [False, True])
def test_an_honest_agent_plays_the_same_in_a_worker_as_in_this_process(memory_reset):
    name = f"{EXAMPLE}:MyAgent"
    runs = []
    for agent in (make_external(name, seed=5), ProcessAgent(name, seed=5)):
        guarded = GuardedAgent(agent)
        hooks = Actions()
        stats = play(env(), [guarded, ReferenceAgent("scripted", seed=1)], seed=2, hooks=hooks,
                     memory_reset=memory_reset)
        guarded.close()
        assert guarded.status == ["ok"] * N, guarded.errors
        runs.append((np.stack(hooks.actions), stats.returns))
    (a, ra), (b, rb) = runs
    assert a.shape == b.shape and (a[:, :, 0] != 0).any()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ra, rb)


def test_close_and_garbage_collection_leave_no_process():
    agent = ProcessAgent(f"{EXAMPLE}:MyAgent", seed=0)
    first = agent.process
    assert agent.alive and alive(first.pid)
    agent.close()
    agent.close()  # twice is fine
    assert_reaped(first)
    with ProcessAgent(f"{EXAMPLE}:MyAgent") as again:
        second = again.process
    assert_reaped(second)
    forgotten = ProcessAgent(f"{EXAMPLE}:MyAgent")
    third = forgotten.process
    del forgotten
    assert_reaped(third)


def test_a_worker_that_cannot_start_says_why_and_is_reaped():
    with pytest.raises(AgentStartError, match="this file cannot be imported"):
        ProcessAgent(f"{FIXTURE / 'bad_import.py'}:Anything")
    with pytest.raises(AgentStartError, match="no class 'Missing'"):
        ProcessAgent(spec("Missing"))
    began = time.perf_counter()
    with pytest.raises(AgentStartError, match="did not load it within 1 s"):
        ProcessAgent(f"{FIXTURE / 'slow_import.py'}:Never", start_timeout=1.0)
    assert time.perf_counter() - began < 3.0
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("metarena agent")]
    with pytest.raises(ValueError, match="not an external agent"):
        ProcessAgent("scripted")


def test_guard_makes_a_worker_for_external_agents_only():
    local = guard("scripted", "treasure", seed=0, step_budget=0.5, time_bank=2.0)
    assert isinstance(local.agent, ReferenceAgent) and local.step_budget == 0.5 and local.time_bank == 2.0
    local.close()
    with guard(f"{EXAMPLE}:MyAgent", "treasure", seed=0) as external:
        assert isinstance(external.agent, ProcessAgent) and external.name == "my-agent"
    with pytest.raises(ValueError, match="unknown agent"):
        guard("no-such-agent", "treasure")
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("metarena agent")]
