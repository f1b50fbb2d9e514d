"""What a teacher would do, at the steps of a trainer's own trials.

``--set imitate=W`` (:class:`metarena.agents.ppo.RL2Config`) adds an auxiliary loss to RL²'s PPO
update: the cross-entropy of the policy towards the action a teacher would take at the same step,
with weight ``W``. The teacher (``--set teacher=``) is, by default, the game's window-only ceiling
planner ``window-recall`` (it sees what the agent sees and forgets nothing within a trial); any
agent that follows another player's steps can teach, such as the shipped per-game agents
(``teacher=rl2``: a network for every game distilled from one per game). Only on the first
``imitate_episodes`` episodes of each trial, only in a share of the env slots (``imitate_share``),
and only on the games whose teacher can follow the agent (:func:`follows`; ``window-recall``:
every game but cycles): the later episodes, the other slots and the other games are plain RL².

The agent plays its own actions (the teacher labels the steps the agent's policy reaches, as
DAgger does); so the teacher must play on from whatever actions were taken: it reads its previous
action from the trial features (its class says so with ``follows = True``). A teacher that
samples its actions gives labels whose cross-entropy is, in expectation, the cross-entropy towards
its whole distribution. It acts, each step, only for the labelled slots still in a labelled
episode of a trial it has seen from the start.

A step's labels depend only on what the slots saw, never on what the agent does with it, so the
teachers can work beside the trainer (``beside=True``, :meth:`Imitation.submit`): one thread of
their own takes the steps in order while the trainer's network plays on, and the labels are the
same as on the caller's thread.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from metarena.games.trial import EPISODE_INDEX

from .base import Context, Observation
from .evaluate import CEILING, ceiling_planner
from .planners import PLANNERS


def follows(game: str, teacher: str = CEILING) -> bool:
    """Whether ``teacher`` can label another player's steps on ``game``: the window-only ceiling
    planner where it reads its previous action from the trial features (``follows = True`` on its
    class); any other teacher is an agent, checked when it is made (:class:`Imitation`)."""
    return teacher != CEILING or bool(getattr(PLANNERS[CEILING].get(game), "follows", False))


def imitated_games(games: tuple[str, ...], chosen: str = "", teacher: str = CEILING) -> list[str]:
    """The games of ``games`` whose steps are labelled: those named in ``chosen`` (comma-separated),
    or, where it is empty, every one whose teacher :func:`follows`."""
    if chosen.strip():
        return [g.strip() for g in chosen.split(",") if g.strip()]
    return [g for g in games if follows(g, teacher)]


def check_imitation(games: tuple[str, ...], chosen: str = "", teacher: str = CEILING) -> None:
    """A ValueError unless some game is labelled, and each one named in ``chosen`` is trained on
    and has a teacher that follows another player's actions (:func:`follows`)."""
    able = ", ".join(sorted(g for g in PLANNERS[CEILING] if follows(g)))
    for g in imitated_games(games, chosen, teacher):
        if g not in games:
            raise ValueError(f"imitate_games names {g!r}, which this run does not train on ({', '.join(games)})")
        if not follows(g, teacher):
            raise ValueError(f"imitate_games names {g!r}, whose window-only ceiling planner cannot label another "
                             f"player's steps; games that have one: {able} (or --set teacher=rl2)")
    if not imitated_games(games, chosen, teacher):
        raise ValueError(f"imitate: no game of {', '.join(games)} has a window-only ceiling planner that can "
                         f"label another player's steps; games that have one: {able}. Drop --set imitate, "
                         "train on one of those too, or choose another teacher (--set teacher=rl2)")


def _rows(memory: dict, n: int) -> list[str]:
    """The keys of ``memory`` that hold one row per slot."""
    return [k for k, v in memory.items() if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == n]


def ceiling_teachers(games: list[str]) -> list:
    """A window-only ceiling planner for each of ``games``: the default teachers."""
    return [ceiling_planner(g) for g in games]


class Imitation:
    """Labels for ``slots`` (global slot indices, one array per env of an
    :class:`~metarena.agents.ppo.RL2Envs`): per env, a teacher (an agent of that env's game, such
    as :func:`ceiling_teachers`) and its memory of those slots. :meth:`labels` (or :meth:`submit`) is
    called with every observation the slots see, in order.

    ``beside``: :meth:`submit` hands each step to a thread of the teachers' own, which labels the
    steps one after another while the caller goes on (a second core's worth of work: the trainer
    asks for it where it learns on more than one thread)."""

    def __init__(self, teachers: list, engines: list, slots: list[np.ndarray], episodes: int, trial_episodes: int,
                 beside: bool = False):
        for t in teachers:
            if not getattr(t, "follows", False):
                raise ValueError(f"imitate: the teacher {getattr(t, 'name', t)!r} cannot label another player's "
                                 "steps (it does not read its previous action from the trial features); choose "
                                 "window-recall or a trained rl2 agent")
        self.teachers = teachers
        self.engines, self.slots = engines, slots
        self.memory = [p.begin_trial(len(s)) for p, s in zip(self.teachers, slots)]
        #: per env: whether the teacher has seen the slot's trial from its first step
        self.followed = [np.zeros(len(s), dtype=bool) for s in slots]
        self.episodes, self.trial_episodes = episodes, trial_episodes
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metarena-teachers") if beside else None

    def submit(self, grid: np.ndarray, scalars: np.ndarray, trial: np.ndarray, first: np.ndarray) -> Future:
        """:meth:`labels` of this step as a future: worked out on the teachers' thread (after the
        steps submitted before it) where ``beside``, else here and now. The arrays are copied:
        the caller may reuse them."""
        if self._thread is None:
            done: Future = Future()
            done.set_result(self.labels(grid, scalars, trial, first))
            return done
        return self._thread.submit(self.labels, *(np.array(x) for x in (grid, scalars, trial, first)))

    def close(self) -> None:
        """Stop the teachers' thread (where ``beside``), dropping the steps it has not begun."""
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)

    def labels(self, grid: np.ndarray, scalars: np.ndarray, trial: np.ndarray, first: np.ndarray) -> np.ndarray:
        """(B,) int64: the teacher's action for each slot it labels this step, -1 elsewhere.
        ``grid``, ``scalars``, ``trial`` (B, ...) are every slot's observation; ``first`` (B,) bool
        marks the first observation of a trial."""
        out = np.full(len(first), -1, dtype=np.int64)
        for i, (teacher, slots) in enumerate(zip(self.teachers, self.slots)):
            followed = self.followed[i]
            followed |= first[slots]
            k = np.rint(trial[slots, EPISODE_INDEX] * self.trial_episodes).astype(np.int64)
            rows = np.flatnonzero(followed & (k < self.episodes))
            if not len(rows):
                continue
            memory, n = self.memory[i], len(slots)
            # the first call makes the memory: act for every slot; so where every slot is labelled
            whole = len(rows) == n or not _rows(memory, n)
            pick = np.arange(n) if whole else rows
            g = slots[pick]
            ctx = Context(self.engines[i], None, 0)
            if whole:
                action, memory = teacher.act(Observation(grid[g], scalars[g], trial[g]), memory, ctx)
                self.memory[i] = memory
                out[slots[rows]] = action[rows]
                continue
            keys = _rows(memory, n)
            part = {k: (v[pick] if k in keys else v) for k, v in memory.items()}
            action, part = teacher.act(Observation(grid[g], scalars[g], trial[g]), part, ctx)
            for k in keys:
                memory[k][pick] = part[k]
            out[g] = action
        return out
