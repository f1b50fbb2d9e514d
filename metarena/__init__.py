"""metarena: grid games as a task distribution, agents that adapt, and an arena to watch them.

One import package with three parts, each a folder at the top of the repository:

- :mod:`metarena.games`: the batched engine, the games, their variants and interfaces
  (Gymnasium, PettingZoo, trials);
- :mod:`metarena.agents`: the agent protocol, reference and ceiling agents, meta-learners,
  trainers, checkpoints and the shipped agents;
- :mod:`metarena.arenas`: matches, the live viewer, human play and the ``metarena`` command.

>>> from metarena import games
>>> games.names()
['treasure', 'coinrush', 'rules', 'drift', 'cycles']
"""

__version__ = "0.1.0"
