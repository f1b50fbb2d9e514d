"""The adaptation benchmark: how an agent's score grows over the episodes of a trial.

:func:`evaluate` plays ONE trial of ``episodes`` episodes on each of the first
``levels`` levels of a split, all levels side by side in one :class:`BatchEnv`
(one slot per level, the pool is exactly those levels, in split order), then
plays the oracle, the random agent and the uninformed planner on the same
levels in the same order for the same number of episodes, and with
``ceiling=True`` the game's ceiling planner (``window-recall``, see
:mod:`metarena.agents.planners`). Random plays ``random_rollouts`` trials per
level (default :data:`RANDOM_ROLLOUTS`, all in one batch: the level repeated in
that many slots, deterministic from ``seed``) and ``R_random`` below is their
mean, so that one lucky random episode cannot blow up a level's score. For
every level ``i`` and episode index ``k`` the normalized score is::

    (R[i, k] - R_random[i, k]) / (R_oracle[i, k] - R_random[i, k])

A (level, episode) where the oracle does not beat random (by more than
``1e-6``) has no normalized score: it is left out of the normalized mean and
counted in ``excluded``. Returns, success rates and lengths use every level.
Beside the mean of the per-level scores a block gives their median and the
normalized mean of means ``(mean R - mean R_random) / (mean R_oracle - mean R_random)``
over the same levels, which no single level can dominate.

Success: an episode succeeds when its return is ``> 0``. For games whose
episodes terminate at a goal (``spec.terminates``, e.g. ``treasure``) that
means the goal was reached; for the others (``coinrush``: collect until the
step limit) it means a positive net return. The rule is the same for every
game and is recorded in the result as ``"success_rule"``.

The ceiling is what an agent that sees only its window and forgets nothing within a
trial scores (the ``window-recall`` planner of the game); the agent's fraction of it is
``(mean R - mean R_random) / (mean R_ceiling - mean R_random)`` over the levels with a
normalized score (the ratio of the two normalized means of means). A game without a
ceiling planner (your own game) gets ``"ceiling": null`` and a ``"ceiling_note"``.

A game whose hidden factor changes within a trial (``Game.change_episode`` is not None,
e.g. ``drift/shift``) also gets ``"since_change"``: the same statistics grouped by the
episode index relative to the level's change episode (0: the episode the factor changes
in, 1: the one after, -1: the one before), over the levels whose factor changes within
the trial (change episode in ``1 .. K-1``), so that recovery can be measured.

``memory_reset=True`` is the ablation that shows how much of the score comes
from adaptation: every episode starts from a fresh memory (the agent's
``begin_trial`` rows for the slots that start an episode, see
:func:`metarena.agents.rollout.reset_memory`), so nothing learned in earlier episodes
of the trial can help. The gap between the normal and the reset run in the
later episodes is what the agent gains by adapting; a memory-less agent (the
reference agents) scores the same either way. The ceiling planner keeps its memory.

With ``players > 1`` the agent plays player 0 and the env moves the other
players by the reference policy ``others``; the references (and the ceiling) play
player 0 against the same ``others``. Returns are player 0's.

Result schema (``"schema": 2``), plain JSON types only (a statistic that is
undefined, e.g. a confidence interval of fewer than two values, is ``null``)::

    {
      "schema": 2,
      "game": str, "variant": str (resolved name), "split": "train" | "test",
      "levels": int, "episodes": int (K), "seed": int, "memory_reset": bool,
      "players": int, "others": str (policy of players 1..P-1),
      "agent": str (the agent's name),
      "terminates": bool (the game's spec.terminates),
      "success_rule": "return > 0",
      "random_rollouts": int    random trials per level; R_random is their mean
      "excluded": [int] * K     levels per episode where the oracle does not beat random,
      "per_episode": BLOCK      the agent,
      "reference": {"oracle": BLOCK, "uninformed": BLOCK, "random": BLOCK},
      "ceiling": null | {
          "planner": "window-recall",
          "per_episode": BLOCK,
          "agent_fraction": [float | null] * K   (mean R - mean R_random) / (mean R_ceiling - mean R_random)
                                                  over the levels not excluded (null: ceiling <= random)
      },
      "ceiling_note": null | str   why there is no ceiling (not asked for; no planner for the game)
      "since_change": null | {     only for games whose hidden factor changes within a trial
          "changed_levels": int    levels whose change episode is in 1 .. K-1 (the others are left out)
          "offsets": [int]         episode index minus the level's change episode, ascending
          "levels": [int]          levels with an episode at each offset
          "excluded": [int]        of those, where the oracle does not beat random
          "agent": SBLOCK, "reference": {"oracle", "uninformed", "random": SBLOCK},
          "ceiling": null | SBLOCK, "agent_fraction": null | [float | null]
      },
      "timing": {"setup_s", "agent_s", "reference_s", "ceiling_s", "total_s": float seconds,
                 "agent_steps": int (env steps of the agent's run, all slots),
                 "agent_steps_per_s": float}
    }

    BLOCK (every list has one entry per episode index k = 0 .. K-1):
      "return": [float]         mean return over all levels (random: over all its rollouts)
      "return_ci": [float]      95% CI half-width of the mean return (over levels)
      "success": [float]        fraction of levels (random: of rollouts) whose return is > 0
      "length": [float]         mean episode length in steps
      "normalized": [float]     mean normalized score over the levels not excluded
      "normalized_ci": [float]  95% CI half-width: 1.96 * std / sqrt(n), std with ddof=1
      "normalized_median": [float]  median normalized score over the same levels
      "normalized_n": [int]     levels in the normalized mean (levels - excluded[k])
      "normalized_of_means": [float]  (mean R - mean R_random) / (mean R_oracle - mean R_random)
                                over the same levels: robust to a level where random comes
                                within a hair of the oracle (one such level can pull the
                                per-level mean far below 0)
      "gain": float             normalized[K-1] - normalized[0]: what the trial adds

    SBLOCK: a BLOCK without "length" and "gain", one entry per offset.

Schema 1 had no ``random_rollouts`` (one random rollout per level),
``normalized_median``, ``ceiling``, ``ceiling_note``, ``since_change`` or ``timing.ceiling_s``.

Everything except ``timing`` is a pure function of the arguments (and of the
agent, if it is stochastic with its own generator).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from metarena import games
from metarena.games.batch import BatchEnv
from metarena.text import grid, wrapped

from .base import EpisodeStats, LevelLearner
from .reference import ReferenceAgent
from .rollout import Hooks, play

SCHEMA = 2
REFERENCES = ("oracle", "uninformed", "random")
SUCCESS_RULE = "return > 0"
Z95 = 1.96  #: normal approximation of the 95% confidence interval
MARGIN = 1e-6  #: the oracle must beat random by more than this for a normalized score
#: random trials per level; R_random is their mean (one rollout lets a lucky episode blow up a level)
RANDOM_ROLLOUTS = 16
#: the planner whose score is the ceiling of adaptation from the real observation
CEILING = "window-recall"
#: most levels played side by side: a longer evaluation plays its levels in chunks of this many
#: (memory stays bounded; the results of an evaluation of up to CHUNK levels do not depend on it)
CHUNK = 4096
#: most slots of one batch of random rollouts (levels x rollouts); the random reference of up to
#: ``RANDOM_SLOTS // random_rollouts`` levels is played in one batch
RANDOM_SLOTS = 8192


# ---------------------------------------------------------------------------------------------
# pure statistics


def normalized_scores(returns: np.ndarray, oracle: np.ndarray, random: np.ndarray,
                      margin: float = MARGIN) -> np.ndarray:
    """``(R - R_random) / (R_oracle - R_random)`` elementwise, NaN where the oracle does not
    beat random by more than ``margin``. All arrays have the same shape, e.g. (levels, K)."""
    returns, oracle, random = (np.asarray(a, dtype=np.float64) for a in (returns, oracle, random))
    if not returns.shape == oracle.shape == random.shape:
        raise ValueError(f"shapes differ: returns {returns.shape}, oracle {oracle.shape}, random {random.shape}")
    span = oracle - random
    ok = span > margin
    return np.where(ok, (returns - random) / np.where(ok, span, 1.0), np.nan)


def mean_ci(values: np.ndarray) -> tuple[float | None, float | None, int]:
    """``(mean, 95% CI half-width, n)`` of the non-NaN values: ``1.96 * std / sqrt(n)`` with the
    sample standard deviation (ddof=1). The mean is None when n = 0, the half-width when n < 2."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        return None, None, 0
    if n == 1:
        return float(v[0]), None, 1
    return float(v.mean()), float(Z95 * v.std(ddof=1) / math.sqrt(n)), n


def _per_level(a: np.ndarray) -> np.ndarray:
    """(levels, K) from (levels, K) or (levels, rollouts, K): the mean over the rollouts."""
    a = np.asarray(a, dtype=np.float64)
    return a.mean(axis=1) if a.ndim == 3 else a


STATS = ("return", "return_ci", "success", "normalized", "normalized_ci", "normalized_median", "normalized_n",
         "normalized_of_means")


def _stats(returns: np.ndarray, oracle: np.ndarray, random: np.ndarray, margin: float = MARGIN) -> dict:
    """The statistics of one episode index over levels: ``returns`` (n,) or (n, rollouts) (the
    rollouts' mean is the level's return; success counts every rollout), ``oracle`` and
    ``random`` (n,) (random: the mean of its rollouts)."""
    returns = np.asarray(returns, dtype=np.float64)
    level = returns.mean(axis=1) if returns.ndim == 2 else returns
    oracle, random = np.asarray(oracle, dtype=np.float64), np.asarray(random, dtype=np.float64)
    norm = normalized_scores(level, oracle, random, margin)
    out: dict[str, Any] = {}
    out["return"], out["return_ci"], _ = mean_ci(level)
    out["success"] = float((returns > 0).mean()) if returns.size else None
    out["normalized"], out["normalized_ci"], n = mean_ci(norm)
    out["normalized_median"] = float(np.median(norm[~np.isnan(norm)])) if n else None
    out["normalized_n"] = n
    out["normalized_of_means"] = _of_means(level, oracle, random, ~np.isnan(norm))
    return out


def _of_means(returns: np.ndarray, top: np.ndarray, random: np.ndarray, ok: np.ndarray) -> float | None:
    """``(mean R - mean R_random) / (mean R_top - mean R_random)`` over the levels ``ok``; None
    where no level is left or ``top`` does not beat random on average."""
    if not ok.any():
        return None
    span = float(np.mean(top[ok] - random[ok]))
    return float(np.mean(returns[ok] - random[ok])) / span if span > MARGIN else None


def summarize(returns: np.ndarray, oracle: np.ndarray, random: np.ndarray,
              lengths: np.ndarray | None = None, margin: float = MARGIN) -> dict:
    """The per-episode BLOCK of the result schema for ``returns`` (levels, K), given the
    oracle's and random's returns on the same levels and episodes (same shape). ``returns``,
    ``random`` and ``lengths`` may also be (levels, rollouts, K): several trials per level,
    whose mean is the level's return (success and length count every rollout). ``lengths``
    gives the mean episode length (null entries without it)."""
    returns = np.asarray(returns, dtype=np.float64)
    oracle, random = _per_level(oracle), _per_level(random)
    if returns.ndim not in (2, 3):
        raise ValueError(f"returns must be (levels, episodes) or (levels, rollouts, episodes), got shape "
                         f"{returns.shape}")
    if not _per_level(returns).shape == oracle.shape == random.shape:
        raise ValueError(f"shapes differ: returns {returns.shape}, oracle {oracle.shape}, random {random.shape}")
    k = returns.shape[-1]
    block: dict[str, Any] = {key: [] for key in (*STATS, "length")}
    for e in range(k):
        for key, value in _stats(returns[..., e], oracle[:, e], random[:, e], margin).items():
            block[key].append(value)
        block["length"].append(None if lengths is None else float(np.mean(np.asarray(lengths)[..., e])))
    first, last = block["normalized"][0], block["normalized"][-1]
    block["gain"] = None if first is None or last is None else last - first
    return {key: block[key] for key in ("return", "return_ci", "success", "length", "normalized", "normalized_ci",
                                         "normalized_median", "normalized_n", "normalized_of_means", "gain")}


def excluded_levels(oracle: np.ndarray, random: np.ndarray, margin: float = MARGIN) -> list[int]:
    """Per episode index: how many levels have no normalized score (oracle <= random + margin)."""
    span = _per_level(oracle) - _per_level(random)
    return [int(x) for x in (~(span > margin)).sum(axis=0)]


def fraction_of(returns: np.ndarray, top: np.ndarray, oracle: np.ndarray, random: np.ndarray,
                margin: float = MARGIN) -> list[float | None]:
    """Per episode index: ``(mean R - mean R_random) / (mean R_top - mean R_random)`` over the
    levels where the oracle beats random (e.g. the agent's fraction of the ceiling). All
    arrays (levels, K); ``random`` may be (levels, rollouts, K)."""
    returns, top, oracle, random = (_per_level(a) for a in (returns, top, oracle, random))
    ok = oracle - random > margin
    return [_of_means(returns[:, e], top[:, e], random[:, e], ok[:, e]) for e in range(returns.shape[1])]


def relative_episodes(change: np.ndarray, episodes: int) -> tuple[list[int], list[tuple[np.ndarray, np.ndarray]]]:
    """Group (level, episode) pairs by episode index relative to each level's change episode
    ``change`` (N,): ``(offsets, groups)``, one ``(rows, episode indices)`` per offset, over the
    levels whose change episode is in ``1 .. episodes-1`` (a change at episode 0 is no change
    within the trial, one at or after K none the trial shows)."""
    change = np.asarray(change, dtype=np.int64)
    valid = (change >= 1) & (change < episodes)
    if not valid.any():
        return [], []
    offsets = list(range(-int(change[valid].max()), episodes - int(change[valid].min())))
    groups = []
    for d in offsets:
        e = change + d
        rows = np.flatnonzero(valid & (e >= 0) & (e < episodes))
        groups.append((rows, e[rows]))
    return offsets, groups


def since_change(change: np.ndarray, episodes: int, agent: np.ndarray, oracle: np.ndarray, random: np.ndarray,
                 uninformed: np.ndarray, ceiling: np.ndarray | None = None, margin: float = MARGIN) -> dict | None:
    """The ``since_change`` block of the result schema from each level's change episode
    ``change`` (N,) and the returns (levels, K) (``random``: (levels, rollouts, K) or (levels, K)).
    None when no level changes within the trial."""
    offsets, groups = relative_episodes(change, episodes)
    if not offsets:
        return None
    rnd = np.asarray(random, dtype=np.float64)
    rnd = rnd if rnd.ndim == 3 else rnd[:, None, :]
    mean_rnd = rnd.mean(axis=1)
    oracle = np.asarray(oracle, dtype=np.float64)

    def block(returns) -> dict:
        returns = np.asarray(returns, dtype=np.float64)
        out: dict[str, list] = {key: [] for key in STATS}
        for rows, e in groups:
            picked = returns[rows, :, e] if returns.ndim == 3 else returns[rows, e]
            for key, value in _stats(picked, oracle[rows, e], mean_rnd[rows, e], margin).items():
                out[key].append(value)
        return out

    fraction = None
    if ceiling is not None:
        ceiling = np.asarray(ceiling, dtype=np.float64)
        agent_ = np.asarray(agent, dtype=np.float64)
        fraction = [_of_means(agent_[rows, e], ceiling[rows, e], mean_rnd[rows, e],
                              oracle[rows, e] - mean_rnd[rows, e] > margin) for rows, e in groups]
    change = np.asarray(change, dtype=np.int64)
    return {
        "changed_levels": int(((change >= 1) & (change < episodes)).sum()),
        "offsets": offsets,
        "levels": [int(len(rows)) for rows, _ in groups],
        "excluded": [int((~(oracle[rows, e] - mean_rnd[rows, e] > margin)).sum()) for rows, e in groups],
        "agent": block(agent),
        "reference": {"oracle": block(oracle), "uninformed": block(uninformed), "random": block(rnd)},
        "ceiling": None if ceiling is None else block(ceiling),
        "agent_fraction": fraction,
    }


def ceiling_planner(game: str):
    """A fresh ceiling planner (``window-recall``) of ``game``, or None if the game has none."""
    from .planners import PLANNERS

    cls = PLANNERS[CEILING].get(game)
    return None if cls is None else cls()


# ---------------------------------------------------------------------------------------------
# the benchmark


def evaluate(agent, game: str, variant: str | None = None, split: str = "test", levels: int = 100,
             episodes: int = 4, seed: int = 0, memory_reset: bool = False, players: int = 1,
             others: str = "random", progress: Callable[[int, int], None] | None = None,
             ceiling: bool = False, random_rollouts: int = RANDOM_ROLLOUTS) -> dict:
    """Play one trial of ``episodes`` episodes on each of the first ``levels`` levels of
    ``split`` with ``agent`` (an agent, or a reference agent's name; the registry,
    :func:`metarena.agents.registry.make_agent`, makes any other agent from its name), and the oracle,
    uninformed planner and random (``random_rollouts`` trials per level) on the same levels;
    the result dict is described in the module docstring (schema 2).

    ``ceiling=True`` also plays the game's ceiling planner (``window-recall``) on the same
    levels (``metarena eval`` does unless ``--no-ceiling``); a game without one gets
    ``"ceiling": null`` and a note, no error.
    ``memory_reset=True`` wipes the agent's memory at the start of every episode: compare
    with the normal run to see how much of the score comes from adaptation across episodes.
    ``players > 1`` puts the agent in seat 0 and moves the others by ``others``.
    ``progress(done, total)`` hears after every batch of finished episodes (the agent's and
    the reference agents' together) how many of ``total`` are played.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if random_rollouts < 1:
        raise ValueError(f"random_rollouts must be >= 1, got {random_rollouts}")
    start = time.perf_counter()
    if isinstance(agent, str):
        agent = ReferenceAgent(agent, seed)
    g = games.get(game)
    v = games.variant(game, variant)
    seeds = games.split_seeds(split, levels)  # raises on an unknown split
    learner = isinstance(agent, LevelLearner)
    if learner and (memory_reset or players != 1):
        raise ValueError(f"{agent.name} learns each level from nothing: it plays solo, and there is no "
                         "memory to reset (its weights are what it learns)")
    top = ceiling_planner(g.spec.name) if ceiling else None
    note = None
    if not ceiling:
        note = "ceiling not played"
    elif top is None:
        note = f"no ceiling: '{g.spec.name}' has no {CEILING} planner"
    # the agent is the ceiling planner itself: its run is the ceiling's
    same = top is not None and not learner and not memory_reset and type(agent) is type(top)
    plays = 1 + len(REFERENCES) - 1 + random_rollouts + (top is not None and not same)
    counter = _Counter(levels * episodes * plays, progress)
    setup_s = agent_s = reference_s = ceiling_s = 0.0
    if learner:
        began = time.perf_counter()
        stats = agent.play(game, variant, split, levels, episodes, seed)
        agent_s += time.perf_counter() - began
        counter.add(levels * episodes)
    parts: dict[str, list[EpisodeStats]] = {k: [] for k in ("agent", "ceiling", *REFERENCES)}
    change: list[np.ndarray] | None = []
    for lo in range(0, levels, CHUNK):  # slot i of a chunk plays level lo + i of the split
        began = time.perf_counter()
        chunk = seeds[lo:lo + CHUNK]
        env = BatchEnv(g, v, batch=len(chunk), players=players, learners=1, others=others, seeds=chunk,
                       episodes=episodes, seed=seed)
        order = np.arange(len(chunk))
        changes = g.change_episode(env.levels)
        change = None if changes is None or change is None else [*change, np.asarray(changes, dtype=np.int64)]
        played = time.perf_counter()
        setup_s += played - began
        if not learner:
            parts["agent"].append(play(env, [agent], levels=order, seed=seed, memory_reset=memory_reset,
                                       hooks=counter))
            agent_s += time.perf_counter() - played
            played = time.perf_counter()
        for k in ("oracle", "uninformed"):
            parts[k].append(play(env, [ReferenceAgent(k, seed)], levels=order, seed=seed, hooks=counter))
        parts["random"].append(_random_rollouts(g, v, chunk, players, others, episodes, seed, random_rollouts,
                                                counter))
        reference_s += time.perf_counter() - played
        if top is not None and not same:
            played = time.perf_counter()
            parts["ceiling"].append(play(env, [type(top)()], levels=order, seed=seed, hooks=counter))
            ceiling_s += time.perf_counter() - played
    if not learner:
        stats = _joined(parts["agent"])
    refs = {k: _joined(parts[k]) for k in ("oracle", "uninformed")}
    rnd = _joined(parts["random"])  # returns (levels, rollouts, K, players)
    done = time.perf_counter()

    oracle, random = refs["oracle"].returns[..., 0], rnd.returns[..., 0]
    returns = stats.returns[..., 0]
    top_returns = None
    ceiling_block = None
    if top is not None:
        top_stats = stats if same else _joined(parts["ceiling"])
        top_returns = top_stats.returns[..., 0]
        ceiling_block = {"planner": CEILING, "per_episode": summarize(top_returns, oracle, random, top_stats.lengths),
                         "agent_fraction": fraction_of(returns, top_returns, oracle, random)}
    reference = {k: summarize(r.returns[..., 0], oracle, random, r.lengths) for k, r in refs.items()}
    reference["random"] = summarize(random, oracle, random, rnd.lengths)
    return {
        "schema": SCHEMA,
        "game": g.spec.name,
        "variant": v.name,
        "split": split,
        "levels": int(levels),
        "episodes": int(episodes),
        "seed": int(seed),
        "memory_reset": bool(memory_reset),
        "players": int(players),
        "others": others,
        "agent": str(agent.name),
        "terminates": bool(g.spec.terminates),
        "success_rule": SUCCESS_RULE,
        "random_rollouts": int(random_rollouts),
        "excluded": excluded_levels(oracle, random),
        "per_episode": summarize(returns, oracle, random, stats.lengths),
        "reference": reference,
        "ceiling": ceiling_block,
        "ceiling_note": note,
        "since_change": None if change is None else since_change(
            np.concatenate(change), episodes, returns, oracle, random, refs["uninformed"].returns[..., 0],
            top_returns),
        "timing": {
            "setup_s": setup_s,
            "agent_s": agent_s,
            "reference_s": reference_s,
            "ceiling_s": ceiling_s,
            "total_s": done - start,
            "agent_steps": int(stats.steps),
            "agent_steps_per_s": stats.steps / agent_s if agent_s > 0 else None,
        },
    }


def _random_rollouts(g, v, seeds: np.ndarray, players: int, others: str, episodes: int, seed: int,
                     rollouts: int, hooks: Hooks | None = None) -> EpisodeStats:
    """``rollouts`` trials of the random agent on each level of ``seeds``, the levels repeated
    side by side in one engine (batches of at most :data:`RANDOM_SLOTS` slots): stats whose
    returns are (levels, rollouts, K, players) and lengths (levels, rollouts, K)."""
    per = max(1, RANDOM_SLOTS // rollouts)
    parts = []
    for lo in range(0, len(seeds), per):
        chunk = seeds[lo:lo + per]
        env = BatchEnv(g, v, batch=len(chunk) * rollouts, players=players, learners=1, others=others, seeds=chunk,
                       episodes=episodes, seed=seed)
        s = play(env, [ReferenceAgent("random", seed)], levels=np.repeat(np.arange(len(chunk)), rollouts),
                 seed=seed, hooks=hooks)
        n = len(chunk)
        parts.append(EpisodeStats(s.returns.reshape(n, rollouts, *s.returns.shape[1:]),
                                  s.lengths.reshape(n, rollouts, -1), s.finished.reshape(n, rollouts, -1), s.steps))
    return _joined(parts)


class _Counter(Hooks):
    """Counts finished episodes for :func:`evaluate`'s ``progress`` callback."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None):
        self.total, self.done, self.progress = total, 0, progress

    def add(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)

    def on_episode_end(self, memories: list, slots: np.ndarray, episodes: np.ndarray) -> None:
        self.add(len(slots))


def _joined(parts: list[EpisodeStats]) -> EpisodeStats:
    """The stats of consecutive chunks of levels as one."""
    if len(parts) == 1:
        return parts[0]
    return EpisodeStats(np.concatenate([p.returns for p in parts]), np.concatenate([p.lengths for p in parts]),
                        np.concatenate([p.finished for p in parts]), sum(p.steps for p in parts))


def reference_scores(game, variant, split: str = "test", levels: int = 500, seed: int = 0,
                     kinds: Sequence[str] = ("oracle", "uninformed", "scripted", "random"),
                     random_rollouts: int = RANDOM_ROLLOUTS) -> dict:
    """Mean first-episode return of each reference agent (solo) on ``levels`` levels of
    ``split``, and the normalized score ``(R - R_random) / (R_oracle - R_random)`` per level
    (``R_random``: the mean of ``random_rollouts`` random episodes on the level)."""
    g = games.get(game) if isinstance(game, str) else game
    v = games.variant(g.spec.name, variant) if variant is None or isinstance(variant, str) else variant
    env = BatchEnv(g, v, batch=levels, split=split, pool_size=levels, seed=seed)
    order = np.arange(levels)
    raw = {k: play(env, [ReferenceAgent(k, seed)], levels=order, seed=seed).returns[:, 0, 0]
           for k in kinds if k != "random"}
    rnd = _random_rollouts(g, v, env.levels.seeds, 1, "random", 1, seed, random_rollouts).returns[:, :, 0, 0]
    raw["random"] = rnd.mean(axis=1)
    out = {}
    for k in kinds:
        norm = normalized_scores(raw[k], raw["oracle"], raw["random"])
        out[k] = {"return": float(raw[k].mean()), "normalized": float(np.nanmean(norm))}
    return out


def reward_breakdown(agent, game: str, variant: str | None = None, split: str = "test", levels: int = 100,
                     episodes: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Where an agent's return comes from, on the levels :func:`evaluate` plays: (levels,
    episodes) arrays of the steps that paid (``"paying"``) and cost (``"costing"``), and what
    they paid (``"paid"``, >= 0) and cost (``"cost"``, <= 0). In coinrush a step pays or costs
    by taking a coin, so an agent that adapts takes fewer costing coins in later episodes."""
    env = BatchEnv(games.get(game), games.variant(game, variant), batch=levels, seeds=games.split_seeds(split, levels),
                   episodes=episodes, seed=seed)
    out = {key: np.zeros((levels, episodes)) for key in ("paying", "costing", "paid", "cost")}

    class Count(Hooks):
        def __init__(self):
            self.episode = np.zeros(levels, dtype=np.int64)
            self.done = np.zeros(levels, dtype=bool)

        def on_step(self, env, actions, step):
            live = np.flatnonzero(~self.done)
            r, e = step.rewards[live, 0], self.episode[live]
            out["paid"][live, e] += np.maximum(r, 0)
            out["cost"][live, e] += np.minimum(r, 0)
            out["paying"][live, e] += r > 0
            out["costing"][live, e] += r < 0
            self.done |= step.trial_done
            self.episode = np.where(step.episode_done & ~step.trial_done, self.episode + 1, self.episode)

    play(env, [agent], levels=np.arange(levels), seed=seed, hooks=Count())
    return out


# ---------------------------------------------------------------------------------------------
# presentation


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _norm_cells(block: dict, i: int) -> list[str]:
    """Mean ± CI, median and mean of means of a block's normalized score at index ``i``."""
    ci = block["normalized_ci"][i]
    mean = _fmt(block["normalized"][i]) + ("" if ci is None else f" ± {_fmt(ci)}")
    return [mean, _fmt(block.get("normalized_median", [None] * (i + 1))[i]), _fmt(block["normalized_of_means"][i])]


def format_table(result: dict, width: int | None = None) -> str:
    """A plain-text table of a result: one row per episode, the agent beside the ceiling and
    the references; for a game whose hidden factor changes within a trial, a second table by
    episode relative to the change. ``width`` (a terminal's): wider tables are split by columns."""
    k = result["episodes"]
    refs = result["reference"]
    top = result.get("ceiling")
    rollouts = result.get("random_rollouts", 1)
    head = (f"{result['agent']} on {result['game']}/{result['variant']}, {result['split']} split, "
            f"{result['levels']} levels x {k} episodes, seed {result['seed']}"
            + (", memory reset every episode" if result["memory_reset"] else "")
            + f"; random: mean of {rollouts} rollout{'s' if rollouts != 1 else ''} per level")
    cols = ["ep", "normalized", "median", "of means", "success", "return", "length"]
    cols += ["ceiling norm.", "of ceiling"] if top else []
    cols += ["uninformed norm.", "oracle ret.", "random ret.", "excluded"]
    rows = []
    a = result["per_episode"]
    for e in range(k):
        row = [str(e + 1), *_norm_cells(a, e), _fmt(a["success"][e], 2), _fmt(a["return"][e]), _fmt(a["length"][e], 1)]
        if top:
            row += [_fmt(top["per_episode"]["normalized"][e]), _fmt(top["agent_fraction"][e])]
        row += [_fmt(refs["uninformed"]["normalized"][e]), _fmt(refs["oracle"]["return"][e]),
                _fmt(refs["random"]["return"][e]), str(result["excluded"][e])]
        rows.append(row)
    out = [head, *grid(cols, rows, width)]
    if top:
        out.append(f"ceiling: {top['planner']}; of ceiling: "
                   "(mean R - mean R_random) / (mean R_ceiling - mean R_random)")
    elif result.get("ceiling_note"):
        out.append(result["ceiling_note"])
    change = result.get("since_change")
    if change:
        out.append(f"by episode relative to the hidden change (0: the episode it changes in), "
                   f"{change['changed_levels']} levels that change within the trial:")
        ccols = ["rel", "levels", "normalized", "median", "of means", "success", "return"]
        ccols += ["ceiling norm.", "of ceiling"] if change["ceiling"] else []
        ccols += ["uninformed norm.", "excluded"]
        crows = []
        ag = change["agent"]
        for i, d in enumerate(change["offsets"]):
            row = [f"{d:+d}" if d else "0", str(change["levels"][i]), *_norm_cells(ag, i),
                   _fmt(ag["success"][i], 2), _fmt(ag["return"][i])]
            if change["ceiling"]:
                row += [_fmt(change["ceiling"]["normalized"][i]), _fmt(change["agent_fraction"][i])]
            row += [_fmt(change["reference"]["uninformed"]["normalized"][i]), str(change["excluded"][i])]
            crows.append(row)
        out += grid(ccols, crows, width)
    t = result["timing"]
    spent = f"{t['total_s']:.2f} s in all" + (f", the ceiling {t['ceiling_s']:.2f} s" if t.get("ceiling_s") else "")
    out.append(f"gain (last - first episode): {_fmt(a['gain'])}; {spent}")
    return "\n".join(wrapped(out, width))  # the grids fit already; the sentences are wrapped


def _band(block: dict) -> tuple[np.ndarray, np.ndarray]:
    mean = np.array([np.nan if x is None else x for x in block["normalized"]], dtype=float)
    ci = np.array([0.0 if x is None else x for x in block["normalized_ci"]], dtype=float)
    return mean, ci


def plot_adaptation(result: dict, path: str, others: Sequence[dict] = ()) -> str:
    """Save a PNG of normalized score against episode index: the agent with its 95% CI band,
    the ceiling planner (dashed), the uninformed planner (dashed, with its band), the oracle
    at 1 and random at 0; the title counts the excluded levels of each episode. ``others``
    adds further results on the same levels (e.g. the memory-reset run). Returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = result["episodes"]
    x = np.arange(1, k + 1)
    fig = Figure(figsize=(7.0, 5.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.axhline(1.0, color="tab:green", lw=1.5, label="oracle (= 1)")
    ax.axhline(0.0, color="tab:gray", lw=1.2, ls=":", label="random (= 0)")
    lows, highs = [0.0], [1.0]
    top = result.get("ceiling")
    if top:
        mean, ci = _band(top["per_episode"])
        ax.plot(x, mean, color="black", ls="--", lw=1.5, marker="^", ms=4, label=f"ceiling ({top['planner']})")
        lows += list(mean - ci)
        highs += list(mean + ci)
    mean, ci = _band(result["reference"]["uninformed"])
    ax.plot(x, mean, color="tab:orange", ls="--", marker="s", ms=4, label="uninformed planner")
    ax.fill_between(x, mean - ci, mean + ci, color="tab:orange", alpha=0.15, lw=0)
    lows, highs = lows + list(mean - ci), highs + list(mean + ci)
    colors = ["tab:blue", "tab:purple", "tab:red", "tab:brown", "tab:cyan"]
    for i, res in enumerate([result, *others]):
        mean, ci = _band(res["per_episode"])
        label = res["agent"] + (" (memory reset)" if res["memory_reset"] else "")
        c = colors[i % len(colors)]
        ax.plot(x, mean, color=c, marker="o", lw=2, label=label)
        ax.fill_between(x, mean - ci, mean + ci, color=c, alpha=0.2, lw=0)
        lows += list(mean - ci)
        highs += list(mean + ci)
    lo, hi = np.nanmin(lows), np.nanmax(highs)
    ax.set_ylim(min(-0.1, lo - 0.05), max(1.1, hi + 0.05))
    ax.set_xticks(x)
    ax.set_xlim(0.75, k + 0.25)
    ax.set_xlabel("episode of the trial")
    ax.set_ylabel("normalized score (random = 0, oracle = 1)")
    rollouts = result.get("random_rollouts", 1)
    excluded = " / ".join(str(n) for n in result["excluded"])
    ax.set_title(f"Adaptation of {result['agent']} on {result['game']} / {result['variant']}, "
                 f"{result['split']} split, {result['levels']} levels\n"
                 f"one trial each; random: mean of {rollouts} rollouts per level; bands: 95% CI\n"
                 f"levels excluded (oracle does not beat random) by episode: {excluded}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


__all__ = ["SCHEMA", "REFERENCES", "RANDOM_ROLLOUTS", "CEILING", "evaluate", "reference_scores", "reward_breakdown",
           "summarize", "normalized_scores", "mean_ci", "excluded_levels", "fraction_of", "relative_episodes",
           "since_change", "ceiling_planner", "format_table", "plot_adaptation"]
