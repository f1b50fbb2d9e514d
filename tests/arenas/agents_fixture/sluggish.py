"""A slow but honest agent for the tournament's kill-and-resume test: random moves from its own
generator, 3 ms a step (loaded by path, never collected by pytest)."""

import time

import numpy as np


class Sluggish:
    name = "sluggish"

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def begin_trial(self, n):
        return None

    def act(self, obs, memory, ctx):
        time.sleep(0.003)
        return self.rng.integers(0, 5, size=len(obs.grid)), memory

    def end_episode(self, memory, slots):
        return memory
