"""metarena agents: one protocol, reference and ceiling agents, meta-learners and their training.

Every agent is batched: it acts for n slots at once and keeps its memory explicit, so that
scripted, random, oracle, ceiling, human and learned agents are interchangeable in every
command. :mod:`metarena.agents.base` states the protocol, :func:`metarena.agents.rollout.play`
is the one loop that plays trials, and :mod:`metarena.agents.registry` turns any agent or
algorithm name into real objects.
"""

from .base import Agent, Context, EpisodeStats, Observation
from .reference import REFERENCE_AGENTS, ReferenceAgent
from .rollout import Hooks, play

__all__ = ["Agent", "Context", "Observation", "REFERENCE_AGENTS", "ReferenceAgent", "EpisodeStats", "Hooks", "play"]
