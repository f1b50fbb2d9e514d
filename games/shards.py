"""ShardedBatchEnv: a BatchEnv whose slots are split over processes.

numpy runs on one core; a machine has more. The slots are cut into
contiguous shards: the calling process steps the first shard itself while
one worker process per other shard steps its own, each a plain
:class:`~metarena.games.batch.BatchEnv` that writes observations, rewards and
end-of-episode data straight into shared memory.

Hand-over costs microseconds, not the hundreds that waking a sleeping
process can take on a virtual machine: a command is a counter bumped in
shared memory, which a worker watches for ``spin`` seconds after each step
before it falls asleep on its pipe (then the caller wakes it with one byte).
``shards`` = number of cores keeps every core busy.

It offers the stepping half of BatchEnv (``reset``, ``step``, ``new_trials``, ``close``);
the engine state lives in the workers, so agents that read it (the oracle,
the uninformed planner) need a plain BatchEnv.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from multiprocessing import shared_memory

import numpy as np

from . import engine as E
from . import tiles as T
from .variant import Variant

RESET, STEP, CLOSE, NEW_TRIALS = 1, 2, 3, 4
FINAL_KEYS = ("grid", "scalars", "score", "length", "trial_end", "level", "episode")


def _layout(batch: int, players: int, learners: int, view: int, shards: int) -> dict[str, tuple]:
    grid = (batch, players, view, view, T.NUM_CHANNELS)
    scal = (batch, players, len(E.SCALAR_NAMES))
    return {
        # control words, one per shard: [command counter, command, done counter, asleep]
        "control": ((shards, 4), np.int64), "seed": ((1,), np.int64),
        "actions": ((batch, learners), np.int64), "new_trials": ((batch,), bool),
        "grid": (grid, np.uint8), "scalars": (scal, np.float32),
        "rewards": ((batch, players), np.float32),
        "terminated": ((batch,), bool), "truncated": ((batch,), bool),
        "final_grid": (grid, np.uint8), "final_scalars": (scal, np.float32),
        "final_score": ((batch, players), np.float32), "final_length": ((batch,), np.int32),
        "final_trial_end": ((batch,), bool), "final_level": ((batch,), np.int64),
        "final_episode": ((batch,), np.int32),
    }


def _views(shm: shared_memory.SharedMemory, layout: dict) -> dict[str, np.ndarray]:
    out, offset = {}, 0
    for name, (shape, dtype) in layout.items():
        arr = np.ndarray(shape, dtype=dtype, buffer=shm.buf, offset=offset)
        out[name] = arr
        offset += -(-arr.nbytes // 64) * 64
    return out


def _size(layout: dict) -> int:
    return sum(-(-int(np.prod(s)) * np.dtype(d).itemsize // 64) * 64 for s, d in layout.values())


def _store(buf: dict[str, np.ndarray], lo: int, hi: int, rew, term, trunc, info: dict) -> None:
    """Write one shard's step results into the shared arrays."""
    buf["rewards"][lo:hi] = rew
    buf["terminated"][lo:hi] = term
    buf["truncated"][lo:hi] = trunc
    final = info.get("final")
    if final is not None:
        s = final["slots"] + lo
        for key in FINAL_KEYS:
            buf["final_" + key][s] = final[key]


def _shard_env(buf: dict[str, np.ndarray], lo: int, hi: int, game: str, variant: Variant, kwargs: dict):
    from .registry import get
    from .batch import BatchEnv

    out = {"grid": buf["grid"][lo:hi], "scalars": buf["scalars"][lo:hi]}
    return BatchEnv(get(game), variant, batch=hi - lo, out=out, **kwargs)


def _shard_seed(seed: int, shard: int):
    return None if seed < 0 else np.random.SeedSequence([seed, shard])


def _worker(conn, shm_name: str, layout: dict, shard: int, lo: int, hi: int, game: str,
            variant: Variant, kwargs: dict, spin: float) -> None:
    # Ctrl-C reaches the whole process group: the parent decides (it saves and closes the shards)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shm = shared_memory.SharedMemory(name=shm_name)
    buf = _views(shm, layout)
    ctl = buf["control"][shard]
    try:
        env = _shard_env(buf, lo, hi, game, variant, kwargs)
        seen = 0
        ctl[2] = seen
        conn.send_bytes(b"ok")
        while True:
            deadline = time.perf_counter() + spin
            while ctl[0] == seen and time.perf_counter() < deadline:
                pass
            if ctl[0] == seen:  # idle for a while: sleep until woken
                ctl[3] = 1
                if ctl[0] == seen:
                    conn.recv_bytes()
                ctl[3] = 0
                continue
            seen = int(ctl[0])
            cmd = int(ctl[1])
            if cmd == CLOSE:
                break
            if cmd == RESET:
                env.reset(seed=_shard_seed(int(buf["seed"][0]), shard))
            elif cmd == NEW_TRIALS:
                env.new_trials(np.flatnonzero(buf["new_trials"][lo:hi]))
            else:
                _store(buf, lo, hi, *env.step(buf["actions"][lo:hi])[2:])
            ctl[2] = seen  # grid and scalars were written in place
    finally:
        del buf, ctl
        shm.close()
        conn.close()


class ShardedBatchEnv:
    """``batch`` slots split over ``shards`` processes; the stepping API of BatchEnv.

    Arrays returned by ``reset``/``step`` live in shared memory and are overwritten by the
    next call: copy what you keep. ``spin``: seconds a worker watches for the next command
    before it sleeps (keeps hand-over fast while stepping; costs nothing when idle).
    """

    def __init__(self, game: str, variant: Variant, *, batch: int, shards: int = 2, players: int = 1,
                 learners: int | None = None, seed: int | None = None, view: int = E.VIEW,
                 spin: float = 0.05, **kwargs):
        if shards < 1 or shards > batch:
            raise ValueError(f"shards must be in [1, batch={batch}], got {shards}")
        learners = players if learners is None else learners
        self.batch, self.players, self.learners, self.shards = batch, players, learners, shards
        self._layout = _layout(batch, players, learners, view, shards)
        self._shm = shared_memory.SharedMemory(create=True, size=_size(self._layout))
        self._buf = _views(self._shm, self._layout)
        self._ctl = self._buf["control"]
        self._ctl[:] = 0
        self._count = 0
        self._conns, self._procs = [], []
        self._bounds = bounds = np.linspace(0, batch, shards + 1).astype(int)
        ctx = mp.get_context("spawn")
        kwargs = dict(kwargs, players=players, learners=learners, view=view)
        for i in range(1, shards):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, daemon=True, args=(
                child, self._shm.name, self._layout, i, int(bounds[i]), int(bounds[i + 1]), game, variant,
                kwargs, spin))
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self._local = _shard_env(self._buf, 0, int(bounds[1]), game, variant, kwargs)
        self._seed = -1 if seed is None else int(seed)
        for conn in self._conns:  # wait until every worker has built its levels
            self._recv(conn)

    def _recv(self, conn) -> None:
        try:
            conn.recv_bytes()
        except EOFError:
            self.close()
            raise RuntimeError("a worker process of ShardedBatchEnv died; see its error above") from None

    def _call(self, cmd: int, local=None) -> None:
        """Give every worker ``cmd``, run ``local()`` meanwhile, wait for every worker."""
        self._count += 1
        for i, conn in enumerate(self._conns, start=1):
            ctl = self._ctl[i]
            ctl[1] = cmd
            ctl[0] = self._count
            if ctl[3]:
                conn.send_bytes(b"!")
        if local is not None:
            local()
        last_check = time.perf_counter()
        for i, (conn, proc) in enumerate(zip(self._conns, self._procs), start=1):
            while self._ctl[i, 2] != self._count:
                now = time.perf_counter()
                if now - last_check > 0.01:
                    last_check = now
                    if self._ctl[i, 3]:  # it fell asleep without seeing the command: wake it again
                        conn.send_bytes(b"!")
                    if not proc.is_alive():
                        self.close()
                        raise RuntimeError("a worker process of ShardedBatchEnv died; see its error above")

    def reset(self, seed: int | None = None):
        seed = self._seed if seed is None else int(seed)
        self._buf["seed"][0] = seed
        self._call(RESET, lambda: self._local.reset(seed=_shard_seed(seed, 0)))
        return self._buf["grid"], self._buf["scalars"]

    def step(self, actions: np.ndarray):
        b, hi = self._buf, int(self._bounds[1])
        b["actions"][:] = np.asarray(actions).reshape(self.batch, self.learners)
        self._call(STEP, lambda: _store(b, 0, hi, *self._local.step(b["actions"][:hi])[2:]))
        done = b["terminated"] | b["truncated"]
        info: dict = {}
        if done.any():
            s = np.flatnonzero(done)
            info["final"] = {k: b["final_" + k][s] for k in FINAL_KEYS}
            info["final"]["slots"] = s
        return b["grid"], b["scalars"], b["rewards"], b["terminated"], b["truncated"], info

    def new_trials(self, slots: np.ndarray):
        """As :meth:`BatchEnv.new_trials <games.batch.BatchEnv.new_trials>`: new trials in ``slots``."""
        b, hi = self._buf, int(self._bounds[1])
        b["new_trials"][:] = False
        b["new_trials"][np.asarray(slots, dtype=np.int64)] = True
        self._call(NEW_TRIALS, lambda: self._local.new_trials(np.flatnonzero(b["new_trials"][:hi])))
        return b["grid"], b["scalars"]

    def close(self) -> None:
        if self._shm is None:
            return
        self._count += 1
        for i, conn in enumerate(self._conns, start=1):
            self._ctl[i, 1] = CLOSE
            self._ctl[i, 0] = self._count
            try:
                conn.send_bytes(b"!")
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        for conn in self._conns:
            conn.close()
        self._buf, self._ctl, self._local = {}, None, None
        self._shm.close()
        self._shm.unlink()
        self._shm = None

    def __enter__(self) -> "ShardedBatchEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
