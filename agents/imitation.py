"""What the game's window-only ceiling planner would do, at the steps of a trainer's own trials.

``--set imitate=W`` (:class:`metarena.agents.ppo.RL2Config`) adds an auxiliary loss to RL²'s PPO
update: the cross-entropy of the policy towards the action ``window-recall`` (the planner that
sees what the agent sees and forgets nothing within a trial) would take at the same step, with
weight ``W``. Only on the first ``imitate_episodes`` episodes of each trial, only in a share of
the env slots (``imitate_share``), and only on the games whose planner can follow the agent
(:func:`follows`: every game but cycles): the later episodes, the other slots and the other games are
plain RL².

The agent plays its own actions (the planner labels the steps the agent's policy reaches, as
DAgger does); so the planner must play on from whatever actions were taken: it reads its previous
action from the trial features (a planner class says so with ``follows = True``). It plans, each
step, only for the labelled slots still in a labelled episode of a trial it has seen from the
start.
"""

from __future__ import annotations

import numpy as np

from metarena.games.trial import EPISODE_INDEX

from .base import Context, Observation
from .evaluate import CEILING, ceiling_planner
from .planners import PLANNERS


def follows(game: str) -> bool:
    """Whether ``game``'s window-only ceiling planner can label another player's steps (it reads
    its previous action from the trial features: ``follows = True`` on its class)."""
    return bool(getattr(PLANNERS[CEILING].get(game), "follows", False))


def imitated_games(games: tuple[str, ...], chosen: str = "") -> list[str]:
    """The games of ``games`` whose steps are labelled: those named in ``chosen`` (comma-separated),
    or, where it is empty, every one whose planner :func:`follows`."""
    return [g.strip() for g in chosen.split(",") if g.strip()] if chosen.strip() else [g for g in games if follows(g)]


def check_imitation(games: tuple[str, ...], chosen: str = "") -> None:
    """A ValueError unless some game is labelled, and each one named in ``chosen`` is trained on
    and has a planner that follows another player's actions (:func:`follows`)."""
    able = ", ".join(sorted(g for g in PLANNERS[CEILING] if follows(g)))
    for g in imitated_games(games, chosen):
        if g not in games:
            raise ValueError(f"imitate_games names {g!r}, which this run does not train on ({', '.join(games)})")
        if not follows(g):
            raise ValueError(f"imitate_games names {g!r}, whose window-only ceiling planner cannot label another "
                             f"player's steps; games that have one: {able}")
    if not imitated_games(games, chosen):
        raise ValueError(f"imitate: no game of {', '.join(games)} has a window-only ceiling planner that can "
                         f"label another player's steps; games that have one: {able}. Drop --set imitate or "
                         "train on one of those too")


def _rows(memory: dict, n: int) -> list[str]:
    """The keys of ``memory`` that hold one row per slot."""
    return [k for k, v in memory.items() if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == n]


class Imitation:
    """Labels for ``slots`` (global slot indices, one array per env of an
    :class:`~metarena.agents.ppo.RL2Envs`): per env, the game's ceiling planner and its memory
    of those slots. :meth:`labels` is called with every observation the slots see, in order."""

    def __init__(self, games: list[str], engines: list, slots: list[np.ndarray], episodes: int, trial_episodes: int):
        self.planners = [ceiling_planner(g) for g in games]
        self.engines, self.slots = engines, slots
        self.memory = [p.begin_trial(len(s)) for p, s in zip(self.planners, slots)]
        #: per env: whether the planner has seen the slot's trial from its first step
        self.followed = [np.zeros(len(s), dtype=bool) for s in slots]
        self.episodes, self.trial_episodes = episodes, trial_episodes

    def labels(self, grid: np.ndarray, scalars: np.ndarray, trial: np.ndarray, first: np.ndarray) -> np.ndarray:
        """(B,) int64: the planner's action for each slot it labels this step, -1 elsewhere.
        ``grid``, ``scalars``, ``trial`` (B, ...) are every slot's observation; ``first`` (B,) bool
        marks the first observation of a trial."""
        out = np.full(len(first), -1, dtype=np.int64)
        for i, (planner, slots) in enumerate(zip(self.planners, self.slots)):
            followed = self.followed[i]
            followed |= first[slots]
            k = np.rint(trial[slots, EPISODE_INDEX] * self.trial_episodes).astype(np.int64)
            rows = np.flatnonzero(followed & (k < self.episodes))
            if not len(rows):
                continue
            memory, n = self.memory[i], len(slots)
            whole = not _rows(memory, n)  # the first call makes the memory: plan for every slot
            pick = np.arange(n) if whole else rows
            g = slots[pick]
            ctx = Context(self.engines[i], None, 0)
            if whole:
                action, memory = planner.act(Observation(grid[g], scalars[g], trial[g]), memory, ctx)
                self.memory[i] = memory
                out[slots[rows]] = action[rows]
                continue
            keys = _rows(memory, n)
            part = {k: (v[pick] if k in keys else v) for k, v in memory.items()}
            action, part = planner.act(Observation(grid[g], scalars[g], trial[g]), part, ctx)
            for k in keys:
                memory[k][pick] = part[k]
            out[g] = action
        return out
