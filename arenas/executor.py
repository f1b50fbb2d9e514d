"""Where a tournament's groups of matches are played: here, in local worker processes, or as
Ray tasks on a cluster.

Every backend hands back ``fn(item)`` for every item, in the order of the items, so the
driver writes the same journal whatever the backend or the worker count; only the driver
writes. Each task is a whole group of matches (tens to hundreds of matches side by side):
tasks much shorter than that gain nothing from being spread out.

Ray (``pip install "metarena[ray]"``): without ``address``, a local cluster is started on
loopback only, with no dashboard and no usage reporting, and nothing it starts reaches
another host; with ``address`` (``"ray://host:10001"``, ``"host:6379"`` or ``"auto"``) an
existing cluster is joined, wherever it is, and shut down for this process at the end.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Callable, Iterator, Sequence

BACKENDS = ("local", "ray")


def run(fn: Callable[[Any], Any], items: Sequence[Any], *, backend: str = "local", workers: int = 1,
        address: str | None = None) -> Iterator[tuple[Any, Any]]:
    """``(item, fn(item))`` for every item, in order. ``fn`` must be a module-level function
    (it is sent to the workers by reference)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; choose from {', '.join(BACKENDS)}")
    if backend == "ray":
        yield from _ray(fn, items, workers, address)
    elif workers <= 1 or len(items) <= 1:
        for item in items:
            yield item, fn(item)
    else:
        yield from _processes(fn, items, workers)


def _one_thread() -> None:
    """A worker's torch runs on one thread: the workers share the cores between them."""
    import torch

    torch.set_num_threads(1)


def _processes(fn, items, workers: int):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_one_thread) as pool:
        futures = [pool.submit(fn, item) for item in items]
        for item, future in zip(items, futures):
            yield item, future.result()


def _in_worker(fn, item):
    _one_thread()
    return fn(item)


def _ray(fn, items, workers: int, address: str | None):
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ValueError('--backend ray needs Ray core: pip install "metarena[ray]"')
    with _started(address, workers) as ray:
        task = ray.remote(max_retries=1)(_in_worker)
        refs = [task.remote(fn, item) for item in items]
        for item, ref in zip(items, refs):
            yield item, ray.get(ref)


@contextlib.contextmanager
def _started(address: str | None, workers: int):
    """Ray, initialised as the module docstring says, shut down on exit."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # with it, a local cluster binds 127.0.0.1
    import ray

    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as scratch:
        kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        if address is None:
            home = os.environ.get("HOME")
            with open(os.path.join(scratch, "ray_bootstrap_config.yaml"), "w") as fh:
                fh.write("{}\n")  # with it in HOME, a local start probes no cloud metadata address
            os.environ["HOME"] = scratch
            try:
                ray.init(num_cpus=max(1, workers), _temp_dir=os.path.join(scratch, "t"), **kwargs)
            finally:
                if home is None:
                    os.environ.pop("HOME", None)
                else:
                    os.environ["HOME"] = home
        else:
            ray.init(address=address, **kwargs)
        try:
            yield ray
        finally:
            ray.shutdown()
