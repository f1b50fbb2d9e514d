"""Guarded play: an agent that raises, hangs or answers nonsense forfeits, and the others play on.

:class:`GuardedAgent` wraps any agent behind the same protocol, for the ``n`` slots of a
trial, and keeps a status per slot:

==========  ===========================================================================
``ok``      the agent has played this slot by the rules so far
``error``   ``begin_trial``, ``act``, ``end_episode`` (or ``reset_memory``) raised
``timeout`` a call ran past its deadline (below)
``invalid`` ``act`` returned actions that are not an ``(n,)`` integer numpy array with
            values in ``[0, 5)``: the slots holding a value out of range, or every slot
            when the shape or dtype is wrong (or ``act`` did not return a pair)
==========  ===========================================================================

A slot that is not ``ok`` plays action 0 (stay) for the rest of the trial and the agent's
answers for it are ignored. After an ``error`` or a ``timeout`` the agent is not called
again in that trial at all; after ``invalid`` it is still called for the batch (its memory
holds every slot) while any slot is ``ok``. Nothing the agent does makes :meth:`act` raise.
``errors`` keeps the first message of each kind; ``time_used`` the seconds spent in the
agent's calls; each ``begin_trial`` starts a trial afresh (all ``ok``, a full bank).

**Time.** Every call (``begin_trial``, ``act`` for the whole batch, ``end_episode``) has a
budget, ``step_budget`` seconds (default 1 s). Time over the budget is drawn from a bank of
``time_bank`` seconds (default 10 s) shared by all the calls of one trial; a call's deadline
is the budget plus what is left in the bank, and a call that empties the bank times out.
Where the deadline is enforced depends on the agent:

- an agent in this process (the project's own agents, trusted) cannot be interrupted: it is
  timed when its call returns, and a call past its deadline counts as a timeout then;
- :class:`ProcessAgent` runs an external agent (``FILE.py:Class``, ``module:Class``) in a
  worker process, and the worker is killed at the deadline: a hung agent costs its
  deadline, not the match. Starting the worker has a timeout of its own (``start_timeout``,
  default 30 s) and never counts against the budget.

:func:`guard` makes either from an agent name, as the tournament does.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import signal
import sys
import time
import traceback
import types
import weakref
from typing import Any, Protocol, runtime_checkable

import numpy as np

from metarena.agents.base import Context, Observation
from metarena.agents.external import is_external, make_external
from metarena.agents.rollout import reset_memory
from metarena.games.engine import NUM_ACTIONS

STATUSES = ("ok", "error", "timeout", "invalid")
STEP_BUDGET = 1.0  #: seconds each call of an agent may take (all its slots at once)
TIME_BANK = 10.0  #: seconds over the budget an agent may use in one trial, all calls together
START_TIMEOUT = 30.0  #: seconds a worker process may take to start and load its agent
#: the longest reply a worker may send (bytes): actions of a big batch, or an error's traceback
MAX_REPLY = 1 << 24
MAX_MESSAGE = 20_000  #: characters of an error message kept


class AgentTimeout(Exception):
    """A call ran past its deadline (the worker that ran it was stopped)."""


class AgentError(Exception):
    """A call failed in a worker process: the agent raised (the message is its traceback), or
    the worker died."""


class InvalidActions(Exception):
    """``act`` returned something that is not a numpy array of actions."""


class AgentStartError(ValueError):
    """A worker process could not start its agent (the spec does not load, or it took too long)."""


@runtime_checkable
class Interruptible(Protocol):
    """An agent that can be stopped while it runs (:class:`ProcessAgent`)."""

    def ready(self) -> None:
        """Make sure the agent can take calls (start it again after it was stopped); not timed.
        Raises :class:`AgentStartError`."""

    def call(self, method: str, args: tuple, timeout: float | None) -> Any:
        """``method`` (``begin_trial``, ``act``, ``end_episode``, ``reset_memory``) with the
        protocol's ``args``, its result as the protocol's method returns it. Raises
        :class:`AgentTimeout` past ``timeout`` seconds (None: no limit), :class:`AgentError`
        when the agent raised, :class:`InvalidActions` when ``act`` returned no array."""


@runtime_checkable
class Closes(Protocol):
    """An agent that holds something to let go of (a worker process)."""

    def close(self) -> None:
        """Release it; calling it again does nothing."""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE // 2] + "\n...\n" + text[-MAX_MESSAGE // 2:]


# ---------------------------------------------------------------------------------------------
# the guard


class GuardedAgent:
    """``agent`` behind the agent protocol, with the statuses and deadlines of the module
    docstring. ``step_budget``: seconds per call; ``time_bank``: seconds over the budget, per
    trial. Read ``status`` (one per slot), ``errors`` (kind -> first message) and
    ``time_used`` after the trial; ``close()`` (or ``with``) stops a worker process."""

    def __init__(self, agent, step_budget: float = STEP_BUDGET, time_bank: float = TIME_BANK):
        if not step_budget > 0:
            raise ValueError(f"step_budget must be > 0 seconds, got {step_budget}")
        if not time_bank >= 0:
            raise ValueError(f"time_bank must be >= 0 seconds, got {time_bank}")
        self.agent, self.name = agent, agent.name
        self.step_budget, self.time_bank = float(step_budget), float(time_bank)
        self.status: list[str] = []
        self.errors: dict[str, str] = {}
        self.time_used = 0.0  #: seconds the agent spent in its calls this trial
        self.bank_left = self.time_bank  #: seconds left in the bank this trial
        self.n = 0

    # -- bookkeeping ---------------------------------------------------------------------------
    @property
    def live(self) -> bool:
        """Whether any slot is still ``ok`` (the agent is still called)."""
        return "ok" in self.status

    def _fail(self, kind: str, message: str, slots: np.ndarray | None = None) -> None:
        """The ``ok`` slots among ``slots`` (default: all) fail with ``kind``."""
        chosen = range(self.n) if slots is None else slots
        hit = [i for i in chosen if self.status[i] == "ok"]
        for i in hit:
            self.status[i] = kind
        if hit:
            self.errors.setdefault(kind, _clip(message))

    def _charge(self, elapsed: float) -> bool:
        """Count ``elapsed`` seconds of one call; False when the call ran out of time."""
        self.time_used += elapsed
        over = elapsed - self.step_budget
        if over <= 0:
            return True
        if over >= self.bank_left:
            self.bank_left = 0.0
            return False
        self.bank_left -= over
        return True

    def _call(self, method: str, args: tuple, local) -> tuple[bool, Any]:
        """``(True, result)`` of one guarded call, or ``(False, None)`` after recording its failure.
        ``local`` runs the call in this process."""
        deadline = self.step_budget + self.bank_left
        began = time.perf_counter()
        try:
            if isinstance(self.agent, Interruptible):
                result = self.agent.call(method, args, deadline)
            else:
                result = local(*args)
        except AgentTimeout as exc:
            self._charge(time.perf_counter() - began)
            self._fail("timeout", f"{method}: {exc}")
            return False, None
        except InvalidActions as exc:
            self._charge(time.perf_counter() - began)
            self._fail("invalid", f"{method}: {exc}")
            return False, None
        except AgentError as exc:
            self._charge(time.perf_counter() - began)
            self._fail("error", f"{method}: {exc}")
            return False, None
        except Exception:  # an agent in this process raised
            self._charge(time.perf_counter() - began)
            self._fail("error", f"{method} raised:\n{traceback.format_exc()}")
            return False, None
        elapsed = time.perf_counter() - began
        if not self._charge(elapsed):
            self._fail("timeout", f"{method} took {elapsed:.3f} s, past its deadline of {deadline:.3f} s "
                                  f"(budget {self.step_budget:g} s + {deadline - self.step_budget:.3f} s left "
                                  "in the bank)")
            return False, None
        return True, result

    # -- the agent protocol ----------------------------------------------------------------------
    def begin_trial(self, n: int) -> Any:
        self.n = int(n)
        self.status = ["ok"] * self.n
        self.errors = {}
        self.time_used, self.bank_left = 0.0, self.time_bank
        if isinstance(self.agent, Interruptible):
            try:
                self.agent.ready()  # (re)starting a worker is not timed
            except AgentStartError as exc:
                self._fail("error", f"start: {exc}")
                return None
        ok, memory = self._call("begin_trial", (self.n,), self.agent.begin_trial)
        return memory if ok else None

    def act(self, obs: Observation, memory: Any, ctx: Context) -> tuple[np.ndarray, Any]:
        n = len(obs.grid)
        actions = np.zeros(n, dtype=np.int64)
        if not self.live:
            return actions, memory
        ok, result = self._call("act", (obs, memory, ctx), self.agent.act)
        if not ok:
            return actions, memory
        if not (isinstance(result, tuple) and len(result) == 2):
            self._fail("invalid", f"act must return (actions, memory), got {type(result).__name__}")
            return actions, memory
        action, memory = result
        problem = _wrong_array(action, n)
        if problem:
            self._fail("invalid", f"act returned {problem}; expected an ({n},) integer numpy array")
            return actions, memory
        out = np.flatnonzero((action < 0) | (action >= NUM_ACTIONS))
        if len(out):
            shown = ", ".join(f"slot {i}: {action[i]}" for i in out[:5])
            self._fail("invalid", f"act returned actions outside [0, {NUM_ACTIONS}) ({shown})", out)
        playing = np.array([s == "ok" for s in self.status])
        actions[playing] = action[playing]
        return actions, memory

    def end_episode(self, memory: Any, slots: np.ndarray) -> Any:
        if not self.live:
            return memory
        ok, result = self._call("end_episode", (memory, slots), self.agent.end_episode)
        return result if ok else memory

    def reset_memory(self, memory: Any, slots: np.ndarray) -> Any:
        """The ``--memory-reset`` ablation, guarded like the other calls (see
        :func:`metarena.agents.rollout.reset_memory`)."""
        if not self.live:
            return memory
        ok, result = self._call("reset_memory", (memory, slots),
                                lambda m, s: reset_memory(self.agent, m, s, self.n))
        return result if ok else memory

    def close(self) -> None:
        """Stop the wrapped agent's worker process, if it has one."""
        if isinstance(self.agent, Closes):
            self.agent.close()

    def __enter__(self) -> "GuardedAgent":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _wrong_array(action: Any, n: int) -> str | None:
    """What is wrong with ``action`` as the (n,) integer actions of a batch, or None."""
    if not isinstance(action, np.ndarray):
        return f"a {type(action).__name__}"
    if action.dtype.kind not in "iu":
        return f"an array of dtype {action.dtype}"
    if action.shape != (n,):
        return f"an array of shape {action.shape}"
    return None


# ---------------------------------------------------------------------------------------------
# external agents in a worker process
#
# The parent sends (method, *args) tuples (pickled: the worker trusts its parent); the worker
# answers in plain bytes, ``TAG\nPAYLOAD``, so that the parent unpickles nothing the agent made:
#   ready\nNAME | done\n | act\nJSON HEADER\nRAW ARRAY BYTES | bad\nTEXT | error\nTRACEBACK


def _reply(conn, tag: bytes, payload: bytes | str = b"") -> None:
    conn.send_bytes(tag + b"\n" + (payload.encode("utf-8", "replace") if isinstance(payload, str) else payload))


def _actions_reply(conn, action: Any) -> None:
    if not isinstance(action, np.ndarray) or action.dtype.kind not in "biuf":
        kind = type(action).__name__ if not isinstance(action, np.ndarray) else f"array of dtype {action.dtype}"
        _reply(conn, b"bad", f"a {kind}")
        return
    header = json.dumps({"dtype": action.dtype.str, "shape": list(action.shape)}).encode("ascii")
    _reply(conn, b"act", header + b"\n" + np.ascontiguousarray(action).tobytes())


def _serve(conn, spec: str, seed: int | None) -> None:
    """The worker: load the agent, then answer calls until told to close or the pipe breaks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        agent = make_external(spec, seed)
    except Exception as exc:
        cause = exc.__cause__
        detail = "" if cause is None else "\n" + "".join(traceback.format_exception(cause))
        _reply(conn, b"error", _clip(f"{exc}{detail}"))
        return
    _reply(conn, b"ready", str(agent.name))
    memory, n = None, 0
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        method = message[0]
        if method == "close":
            return
        try:
            if method == "begin_trial":
                n = message[1]
                memory = agent.begin_trial(n)
            elif method == "act":
                _, grid, scalars, trial, player = message
                result = agent.act(Observation(grid, scalars, trial), memory, Context(None, None, player))
                if not (isinstance(result, tuple) and len(result) == 2):
                    _reply(conn, b"bad", f"act must return (actions, memory), got {type(result).__name__}")
                    continue
                action, memory = result
                _actions_reply(conn, action)
                continue
            elif method == "end_episode":
                memory = agent.end_episode(memory, message[1])
            elif method == "reset_memory":
                memory = reset_memory(agent, memory, message[1], n)
            else:
                raise ValueError(f"unknown call '{method}'")
        except Exception:
            _reply(conn, b"error", _clip(traceback.format_exc()))
            continue
        _reply(conn, b"done")


def _stop(process, conn) -> None:
    """Close the pipe and end the worker: terminate, then kill; always reaped (no zombie)."""
    try:
        conn.close()
    except OSError:
        pass
    if process.is_alive():
        process.terminate()
        process.join(0.5)
        if process.is_alive():
            process.kill()
    process.join(5.0)


@contextlib.contextmanager
def _main_hidden():
    """Start a worker without the parent's ``__main__``: "spawn" and "forkserver" import it again
    in every worker (the ``metarena`` command's imports torch: seconds per worker), and the worker
    needs nothing from it (its agent is loaded by spec, its entry point lives here)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


class ProcessAgent:
    """An external agent (``FILE.py:Class`` or ``module:Class``) run in a worker process.

    The worker loads the class by its spec (:func:`metarena.agents.external.make_external`)
    and keeps the agent and its memory; this object speaks the agent protocol and forwards
    each call over a pipe: the observation's arrays (grid, scalars, trial features) and the
    player index. The agent gets ``Context(engine=None, state=None, player)``: no privileged
    information. Its memory stays in the worker (the memory this object returns is None).

    Each call waits at most ``timeout`` seconds (None: no limit; :class:`GuardedAgent` passes
    its own deadlines); past it the worker is stopped (terminate, then kill) and
    :class:`AgentTimeout` raised. An exception in the agent comes back as :class:`AgentError`
    holding its traceback. The worker starts now, within ``start_timeout`` seconds, or
    :class:`AgentStartError` (a ValueError) says why not; a stopped worker starts again at the
    next trial (:meth:`ready`). ``context``: the multiprocessing start method, ``"spawn"``
    (default) or ``"forkserver"``; the worker does not import the parent's ``__main__``.

    Call :meth:`close` (or use ``with``) when done; a forgotten worker is stopped when this
    object is garbage-collected, and the worker is a daemon, ended when Python exits.
    """

    def __init__(self, spec: str, seed: int | None = None, *, start_timeout: float = START_TIMEOUT,
                 timeout: float | None = None, context: str = "spawn"):
        if not is_external(spec):
            raise ValueError(f"'{spec}' is not an external agent: write FILE.py:Class or module.name:Class")
        if context not in ("spawn", "forkserver"):
            raise ValueError(f"context must be 'spawn' or 'forkserver', got '{context}'")
        self.spec, self.seed = spec, seed
        self.start_timeout, self.timeout = start_timeout, timeout
        self._context = multiprocessing.get_context(context)
        self._process = None
        self._conn = None
        self._finalizer = None
        self.name = spec.rpartition(":")[2]
        self.start()

    # -- the worker ------------------------------------------------------------------------------
    @property
    def process(self):
        """The worker process (a ``multiprocessing`` Process), or None before the first start."""
        return self._process

    @property
    def alive(self) -> bool:
        return self._process is not None and self._conn is not None and self._process.is_alive()

    def start(self) -> None:
        """Start a worker (stopping any old one) and wait until its agent is loaded."""
        self._halt()
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_serve, args=(child, self.spec, self.seed), daemon=True,
                                        name=f"metarena agent {self.spec}")
        with _main_hidden():
            process.start()
        child.close()
        self._process, self._conn = process, parent
        self._finalizer = weakref.finalize(self, _stop, process, parent)
        if not parent.poll(self.start_timeout):
            self._halt()
            raise AgentStartError(f"agent '{self.spec}': its worker did not load it within "
                                  f"{self.start_timeout:g} s (start_timeout)")
        tag, payload = self._receive("start")
        if tag == b"ready":
            self.name = payload.decode("utf-8", "replace")
            return
        self._halt()
        raise AgentStartError(payload.decode("utf-8", "replace"))

    def ready(self) -> None:
        if not self.alive:
            self.start()

    def _halt(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs _stop once
        self._process, self._conn, self._finalizer = None, None, None

    def close(self) -> None:
        """Ask the worker to finish, then make sure it has (kill if need be); idempotent."""
        if self._conn is not None:
            try:
                self._conn.send(("close",))
                self._process.join(0.5)
            except (OSError, ValueError):
                pass
        self._halt()

    def __enter__(self) -> "ProcessAgent":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _receive(self, method: str) -> tuple[bytes, bytes]:
        try:
            data = self._conn.recv_bytes(MAX_REPLY)
        except (EOFError, OSError) as exc:
            if self._process is not None:
                self._process.join(1.0)  # a worker that died: its exit code
            code = self._process.exitcode if self._process is not None else None
            self._halt()
            why = "sent a reply too long" if isinstance(exc, OSError) else f"exited (exit code {code})"
            raise AgentError(f"the worker of '{self.spec}' {why} during {method}") from None
        tag, _, payload = data.partition(b"\n")
        return tag, payload

    # -- calls -----------------------------------------------------------------------------------
    def call(self, method: str, args: tuple, timeout: float | None) -> Any:
        if not self.alive:
            raise AgentError(f"the worker of '{self.spec}' is not running (stopped after an earlier failure)")
        if method == "act":
            obs, _, ctx = args
            message = ("act", np.asarray(obs.grid), np.asarray(obs.scalars), np.asarray(obs.trial), int(ctx.player))
        elif method == "begin_trial":
            message = ("begin_trial", int(args[0]))
        elif method in ("end_episode", "reset_memory"):
            message = (method, np.asarray(args[1], dtype=np.int64))
        else:
            raise ValueError(f"unknown call '{method}'")
        try:
            self._conn.send(message)
        except (OSError, ValueError):
            self._halt()
            raise AgentError(f"the worker of '{self.spec}' is gone (its pipe broke during {method})") from None
        if not self._conn.poll(timeout):
            self._halt()
            raise AgentTimeout(f"no answer within {timeout:.3f} s; the worker was stopped")
        tag, payload = self._receive(method)
        if tag == b"error":
            raise AgentError(payload.decode("utf-8", "replace"))
        if tag == b"bad":
            raise InvalidActions(payload.decode("utf-8", "replace"))
        if method != "act":
            return None  # the memory lives in the worker
        return _decode_actions(payload), None

    def begin_trial(self, n: int) -> None:
        self.ready()
        return self.call("begin_trial", (n,), self.timeout)

    def act(self, obs: Observation, memory: Any, ctx: Context) -> tuple[np.ndarray, None]:
        return self.call("act", (obs, memory, ctx), self.timeout)

    def end_episode(self, memory: Any, slots: np.ndarray) -> None:
        return self.call("end_episode", (memory, slots), self.timeout)

    def reset_memory(self, memory: Any, slots: np.ndarray) -> None:
        return self.call("reset_memory", (memory, slots), self.timeout)


def _decode_actions(payload: bytes) -> np.ndarray:
    head, _, raw = payload.partition(b"\n")
    try:
        header = json.loads(head)
        dtype = np.dtype(header["dtype"])
        shape = tuple(int(s) for s in header["shape"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AgentError(f"a garbled reply from the worker ({exc})") from None
    if dtype.kind not in "biuf" or int(np.prod(shape)) * dtype.itemsize != len(raw):
        raise AgentError(f"a garbled reply from the worker (dtype {dtype}, shape {shape}, {len(raw)} bytes)")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


# ---------------------------------------------------------------------------------------------


def guard(name: str, game: str | None = None, *, seed: int | None = None, step_budget: float = STEP_BUDGET,
          time_bank: float = TIME_BANK, start_timeout: float = START_TIMEOUT) -> GuardedAgent:
    """The agent ``name`` behind a :class:`GuardedAgent`: an external spec runs in a
    :class:`ProcessAgent`, any other name is made in this process by
    :func:`metarena.agents.registry.make_agent` (for ``game``). Raises ValueError when the
    agent cannot be made."""
    if is_external(name):
        agent = ProcessAgent(name, seed, start_timeout=start_timeout)
    else:
        from metarena.agents.registry import make_agent  # torch and the trainers: only when needed

        agent = make_agent(name, game, seed=seed)
    return GuardedAgent(agent, step_budget=step_budget, time_bank=time_bank)


__all__ = ["STATUSES", "STEP_BUDGET", "TIME_BANK", "START_TIMEOUT", "GuardedAgent", "ProcessAgent", "guard",
           "AgentTimeout", "AgentError", "AgentStartError", "InvalidActions", "Interruptible", "Closes"]
