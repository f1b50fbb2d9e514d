"""Speed measurements of the engine and the renderer (``metarena bench``).

``bench_env`` steps a batch with uniformly random actions for a wall-clock
budget. The figure counts agent-steps (slots x players per step) and
includes everything a training loop pays for: observations of every player,
autoresets (final observations included) and new levels drawn from the pool
at their natural rate. Level generation happens once, before the clock
starts, and is reported apart.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from .batch import BatchEnv
from .engine import NUM_ACTIONS
from .shards import ShardedBatchEnv


def machine() -> dict:
    return {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__}


def bench_env(game: str, variant_spec: str | None = None, batch: int = 4096, seconds: float = 5.0,
              players: int = 1, shards: int | None = None, pool_size: int = 1024, seed: int = 0) -> dict:
    """Random-action throughput of ``batch`` slots over ``shards`` processes (default: one per core)."""
    from .registry import get, variant

    v = variant(game, variant_spec)
    shards = shards or min(os.cpu_count() or 1, batch)
    t0 = time.perf_counter()
    if shards == 1:
        env = BatchEnv(get(game), v, batch=batch, players=players, pool_size=pool_size, seed=seed)
    else:
        env = ShardedBatchEnv(game, v, batch=batch, shards=shards, players=players, pool_size=pool_size,
                              seed=seed)
    try:
        env.reset(seed=seed)
        setup = time.perf_counter() - t0
        rng = np.random.default_rng(seed)
        actions = rng.integers(0, NUM_ACTIONS, size=(64, batch, players))
        for i in range(10):  # warm up caches and page in the buffers
            env.step(actions[i])
        steps = episodes = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for i in range(32):
                final = env.step(actions[(steps + i) % 64])[5].get("final")
                if final is not None:
                    episodes += len(final["slots"])
            steps += 32
    finally:
        if shards > 1:
            env.close()
    agent_steps = steps * batch * players
    return {
        "benchmark": "env", "game": game, "variant": v.name, "batch": batch, "players": players,
        "shards": shards, "seconds": round(elapsed, 3), "batch_steps": steps, "agent_steps": agent_steps,
        "steps_per_s": agent_steps / elapsed, "episodes_per_s": episodes / elapsed,
        "setup_s": round(setup, 3), "pool_size": pool_size, "machine": machine(),
    }


def bench_render(game: str, variant_spec: str | None = None, frames: int = 300, tile: int = 32,
                 seed: int = 0) -> dict:
    """Milliseconds per ``rgb_array`` frame while a scripted player moves."""
    from .registry import get, variant
    from .render import Renderer

    v = variant(game, variant_spec)
    env = BatchEnv(get(game), v, batch=1, pool_size=8, seed=seed)
    env.reset(seed=seed)
    renderer = Renderer(env.engine, tile=tile)
    rng = np.random.default_rng(seed)
    frame = renderer.frame(env.state, 0, "warm-up")
    times = []
    for i in range(frames):
        env.step(rng.integers(0, NUM_ACTIONS, size=(1, 1)))
        t = time.perf_counter()
        frame = renderer.frame(env.state, 0, f"{game} step {i}")
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1e3
    return {
        "benchmark": "render", "game": game, "variant": v.name, "map": list(env.engine.levels.shape),
        "frame": list(frame.shape), "tile": tile, "frames": frames, "ms_median": float(np.median(ms)),
        "ms_p95": float(np.percentile(ms, 95)), "fps": float(1e3 / np.median(ms)), "machine": machine(),
    }
