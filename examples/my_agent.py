"""An agent of your own: steps toward the nearest chest or coin in view, else wanders.

Any class with ``begin_trial``, ``act`` and ``end_episode`` (metarena/agents/base.py) plays
wherever an agent name is taken, named ``FILE.py:Class``::

    metarena eval --agent examples/my_agent.py:MyAgent --game treasure
    metarena tournament --game treasure --agents rl2,scripted,examples/my_agent.py:MyAgent --out runs/t1

In a tournament it runs in a worker process of its own: if it raises or is too slow, it
forfeits its matches and the others play on.
"""

import numpy as np

from metarena.games import tiles as T

DY, DX = np.array([0, -1, 1, 0, 0]), np.array([0, 0, 0, -1, 1])  # stay, up, down, left, right


class MyAgent:
    name = "my-agent"

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)  # its own randomness, never np.random.*

    def begin_trial(self, n):  # a new level in each of n slots; the memory: a heading per slot
        return self.rng.integers(1, 5, size=n)

    def act(self, obs, heading, ctx):  # obs.grid: (n, 5, 5, channels) one-hot, the agent in the middle
        n, c = len(heading), obs.grid.shape[1] // 2
        wall_ahead = obs.grid[np.arange(n), c + DY[heading], c + DX[heading], T.WALL] > 0
        heading = np.where(wall_ahead, self.rng.integers(1, 5, size=n), heading)  # turn at walls
        seen = obs.grid[..., [T.CHEST, *T.COINS]].any(-1)  # (n, 5, 5): a chest or a coin
        seen[:, c, c] = False
        actions = heading.copy()
        for i, (ys, xs) in enumerate(np.nonzero(s) for s in seen):  # step toward the nearest one
            if len(ys):
                k = np.argmin(abs(ys - c) + abs(xs - c))
                dy, dx = ys[k] - c, xs[k] - c
                actions[i] = (1 if dy < 0 else 2) if abs(dy) >= abs(dx) else (3 if dx < 0 else 4)
        return actions, heading

    def end_episode(self, heading, slots):  # those slots start their next episode, same level
        return heading
