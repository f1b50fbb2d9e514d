"""metarena agents: one protocol, reference agents, and (later) learners.

Every agent is batched: it acts for n slots at once and keeps its memory
explicit, so that scripted, random, oracle, human and learned agents are
interchangeable in every command.
"""

from .base import Agent, Context, Observation
from .reference import REFERENCE_AGENTS, ReferenceAgent, make_agent
from .rollout import EpisodeStats, play_episodes, reference_scores

__all__ = [
    "Agent", "Context", "Observation", "REFERENCE_AGENTS", "ReferenceAgent", "make_agent",
    "EpisodeStats", "play_episodes", "reference_scores",
]
