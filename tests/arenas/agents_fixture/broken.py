"""Deliberately broken agents for the guard's tests (loaded by path, never collected by pytest).

Each one plays by the protocol except in the one way its name says.
"""

import time

import numpy as np


class _Base:
    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def begin_trial(self, n):
        return None

    def end_episode(self, memory, slots):
        return memory


class Raises(_Base):
    name = "raises"

    def act(self, obs, memory, ctx):
        raise RuntimeError("boom: this agent always fails")


class RaisesInBeginTrial(_Base):
    name = "raises-in-begin-trial"

    def begin_trial(self, n):
        raise KeyError("no memory for you")

    def act(self, obs, memory, ctx):
        return np.ones(len(obs.grid), dtype=np.int64), memory


class Sleeper(_Base):
    """Hangs in its first act: only a worker process that is killed gets past it."""

    name = "sleeper"

    def act(self, obs, memory, ctx):
        time.sleep(3600)
        return np.zeros(len(obs.grid), dtype=np.int64), memory


class OutOfRange(_Base):
    """Action 7 (there are 5) in slot 0, a fine move everywhere else."""

    name = "out-of-range"

    def act(self, obs, memory, ctx):
        action = self.rng.integers(1, 5, size=len(obs.grid))
        action[0] = 7
        return action, memory


class Negative(_Base):
    name = "negative"

    def act(self, obs, memory, ctx):
        action = np.full(len(obs.grid), 2, dtype=np.int64)
        action[-1] = -1
        return action, memory


class WrongShape(_Base):
    name = "wrong-shape"

    def act(self, obs, memory, ctx):
        return np.ones((len(obs.grid), 1), dtype=np.int64), memory


class FloatActions(_Base):
    name = "float-actions"

    def act(self, obs, memory, ctx):
        return np.ones(len(obs.grid), dtype=np.float32), memory


class ListActions(_Base):
    name = "list-actions"

    def act(self, obs, memory, ctx):
        return [1] * len(obs.grid), memory


class NoPair(_Base):
    name = "no-pair"

    def act(self, obs, memory, ctx):
        return np.ones(len(obs.grid), dtype=np.int64)


class PeeksAtContext(_Base):
    """Raises unless the context hides the engine and the state (as a worker's must)."""

    name = "peeks"

    def act(self, obs, memory, ctx):
        if ctx.engine is not None or ctx.state is not None:
            raise RuntimeError("privileged information reached an external agent")
        return np.full(len(obs.grid), ctx.player, dtype=np.int64), memory


class Exits(_Base):
    """Kills its own process in act (as a crash in native code would)."""

    name = "exits"

    def act(self, obs, memory, ctx):
        import os

        os._exit(3)
