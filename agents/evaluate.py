"""The adaptation benchmark: how an agent's score grows over the episodes of a trial.

:func:`evaluate` plays ONE trial of ``episodes`` episodes on each of the first
``levels`` levels of a split, all levels side by side in one :class:`BatchEnv`
(one slot per level, the pool is exactly those levels, in split order), then
plays the oracle, the random agent and the uninformed planner on the same
levels in the same order for the same number of episodes. For every level ``i``
and episode index ``k`` the normalized score is::

    (R[i, k] - R_random[i, k]) / (R_oracle[i, k] - R_random[i, k])

A (level, episode) where the oracle does not beat random (by more than
``1e-6``) has no normalized score: it is left out of the normalized mean and
counted in ``excluded``. Returns, success rates and lengths use every level.

Success: an episode succeeds when its return is ``> 0``. For games whose
episodes terminate at a goal (``spec.terminates``, e.g. ``treasure``) that
means the goal was reached; for the others (``coinrush``: collect until the
step limit) it means a positive net return. The rule is the same for every
game and is recorded in the result as ``"success_rule"``.

``memory_reset=True`` is the ablation that shows how much of the score comes
from adaptation: every episode starts from a fresh memory (the agent's
``begin_trial`` rows for the slots that start an episode, see
:func:`metarena.agents.rollout.reset_memory`), so nothing learned in earlier episodes
of the trial can help. The gap between the normal and the reset run in the
later episodes is what the agent gains by adapting; a memory-less agent (the
reference agents) scores the same either way.

With ``players > 1`` the agent plays player 0 and the env moves the other
players by the reference policy ``others``; the references play player 0
against the same ``others``. Returns are player 0's.

Result schema (``"schema": 1``), plain JSON types only (a statistic that is
undefined, e.g. a confidence interval of fewer than two values, is ``null``)::

    {
      "schema": 1,
      "game": str, "variant": str (resolved name), "split": "train" | "test",
      "levels": int, "episodes": int (K), "seed": int, "memory_reset": bool,
      "players": int, "others": str (policy of players 1..P-1),
      "agent": str (the agent's name),
      "terminates": bool (the game's spec.terminates),
      "success_rule": "return > 0",
      "excluded": [int] * K     levels per episode where the oracle does not beat random,
      "per_episode": BLOCK      the agent,
      "reference": {"oracle": BLOCK, "uninformed": BLOCK, "random": BLOCK},
      "timing": {"setup_s", "agent_s", "reference_s", "total_s": float seconds,
                 "agent_steps": int (env steps of the agent's run, all slots),
                 "agent_steps_per_s": float}
    }

    BLOCK (every list has one entry per episode index k = 0 .. K-1):
      "return": [float]         mean return over all levels
      "return_ci": [float]      95% CI half-width of the mean return
      "success": [float]        fraction of levels whose return is > 0
      "length": [float]         mean episode length in steps
      "normalized": [float]     mean normalized score over the levels not excluded
      "normalized_ci": [float]  95% CI half-width: 1.96 * std / sqrt(n), std with ddof=1
      "normalized_n": [int]     levels in the normalized mean (levels - excluded[k])
      "normalized_of_means": [float]  (mean R - mean R_random) / (mean R_oracle - mean R_random)
                                over the same levels: robust to a level where random comes
                                within a hair of the oracle (one such level can pull the
                                per-level mean far below 0)
      "gain": float             normalized[K-1] - normalized[0]: what the trial adds

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

from .base import EpisodeStats, LevelLearner
from .reference import ReferenceAgent
from .rollout import Hooks, play

SCHEMA = 1
REFERENCES = ("oracle", "uninformed", "random")
SUCCESS_RULE = "return > 0"
Z95 = 1.96  #: normal approximation of the 95% confidence interval
MARGIN = 1e-6  #: the oracle must beat random by more than this for a normalized score
#: most levels played side by side: a longer evaluation plays its levels in chunks of this many
#: (memory stays bounded; the results of an evaluation of up to CHUNK levels do not depend on it)
CHUNK = 4096


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


def summarize(returns: np.ndarray, oracle: np.ndarray, random: np.ndarray,
              lengths: np.ndarray | None = None, margin: float = MARGIN) -> dict:
    """The per-episode BLOCK of the result schema for ``returns`` (levels, K), given the
    oracle's and random's returns on the same levels and episodes (same shape). ``lengths``
    (levels, K) gives the mean episode length (null entries without it)."""
    returns, oracle, random = (np.asarray(a, dtype=np.float64) for a in (returns, oracle, random))
    if returns.ndim != 2:
        raise ValueError(f"returns must be (levels, episodes), got shape {returns.shape}")
    norm = normalized_scores(returns, oracle, random, margin)
    k = returns.shape[1]
    block: dict[str, Any] = {key: [] for key in ("return", "return_ci", "success", "length", "normalized",
                                                 "normalized_ci", "normalized_n", "normalized_of_means")}
    for e in range(k):
        mean, ci, _ = mean_ci(returns[:, e])
        block["return"].append(mean)
        block["return_ci"].append(ci)
        block["success"].append(float((returns[:, e] > 0).mean()))
        block["length"].append(None if lengths is None else float(np.mean(lengths[:, e])))
        mean, ci, n = mean_ci(norm[:, e])
        block["normalized"].append(mean)
        block["normalized_ci"].append(ci)
        block["normalized_n"].append(n)
        ok = ~np.isnan(norm[:, e])
        span = float(np.mean(oracle[ok, e] - random[ok, e])) if n else 0.0
        gap = float(np.mean(returns[ok, e] - random[ok, e])) if n else 0.0
        block["normalized_of_means"].append(gap / span if span > 0 else None)
    first, last = block["normalized"][0], block["normalized"][-1]
    block["gain"] = None if first is None or last is None else last - first
    return block


def excluded_levels(oracle: np.ndarray, random: np.ndarray, margin: float = MARGIN) -> list[int]:
    """Per episode index: how many levels have no normalized score (oracle <= random + margin)."""
    span = np.asarray(oracle, dtype=np.float64) - np.asarray(random, dtype=np.float64)
    return [int(x) for x in (~(span > margin)).sum(axis=0)]


# ---------------------------------------------------------------------------------------------
# the benchmark


def evaluate(agent, game: str, variant: str | None = None, split: str = "test", levels: int = 100,
             episodes: int = 4, seed: int = 0, memory_reset: bool = False, players: int = 1,
             others: str = "random", progress: Callable[[int, int], None] | None = None) -> dict:
    """Play one trial of ``episodes`` episodes on each of the first ``levels`` levels of
    ``split`` with ``agent`` (an agent, or a reference agent's name; the registry,
    :func:`metarena.agents.registry.make_agent`, makes any other agent from its name), and the oracle,
    uninformed planner and random on the same levels; the result dict is described in the
    module docstring (schema 1).

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
    counter = _Counter(levels * episodes * (1 + len(REFERENCES)), progress)
    setup_s = agent_s = reference_s = 0.0
    if learner:
        began = time.perf_counter()
        stats = agent.play(game, variant, split, levels, episodes, seed)
        agent_s += time.perf_counter() - began
        counter.add(levels * episodes)
    parts: dict[str, list[EpisodeStats]] = {k: [] for k in ("agent", *REFERENCES)}
    for lo in range(0, levels, CHUNK):  # slot i of a chunk plays level lo + i of the split
        began = time.perf_counter()
        chunk = seeds[lo:lo + CHUNK]
        env = BatchEnv(g, v, batch=len(chunk), players=players, learners=1, others=others, seeds=chunk,
                       episodes=episodes, seed=seed)
        order = np.arange(len(chunk))
        played = time.perf_counter()
        setup_s += played - began
        if not learner:
            parts["agent"].append(play(env, [agent], levels=order, seed=seed, memory_reset=memory_reset,
                                       hooks=counter))
            agent_s += time.perf_counter() - played
            played = time.perf_counter()
        for k in REFERENCES:
            parts[k].append(play(env, [ReferenceAgent(k, seed)], levels=order, seed=seed, hooks=counter))
        reference_s += time.perf_counter() - played
    if not learner:
        stats = _joined(parts["agent"])
    refs = {k: _joined(parts[k]) for k in REFERENCES}
    done = time.perf_counter()

    oracle, random = refs["oracle"].returns[..., 0], refs["random"].returns[..., 0]
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
        "excluded": excluded_levels(oracle, random),
        "per_episode": summarize(stats.returns[..., 0], oracle, random, stats.lengths),
        "reference": {k: summarize(r.returns[..., 0], oracle, random, r.lengths) for k, r in refs.items()},
        "timing": {
            "setup_s": setup_s,
            "agent_s": agent_s,
            "reference_s": reference_s,
            "total_s": done - start,
            "agent_steps": int(stats.steps),
            "agent_steps_per_s": stats.steps / agent_s if agent_s > 0 else None,
        },
    }


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
                     kinds: Sequence[str] = ("oracle", "uninformed", "scripted", "random")) -> dict:
    """Mean first-episode return of each reference agent (solo) on ``levels`` levels of
    ``split``, and the normalized score ``(R - R_random) / (R_oracle - R_random)`` per level."""
    env = BatchEnv(game, variant, batch=levels, split=split, pool_size=levels, seed=seed)
    order = np.arange(levels)
    raw = {k: play(env, [ReferenceAgent(k, seed)], levels=order, seed=seed).returns[:, 0, 0] for k in kinds}
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


def format_table(result: dict) -> str:
    """A plain-text table of a result: one row per episode, the agent beside the references."""
    k = result["episodes"]
    refs = result["reference"]
    head = (f"{result['agent']} on {result['game']}/{result['variant']}, {result['split']} split, "
            f"{result['levels']} levels x {k} episodes, seed {result['seed']}"
            + (", memory reset every episode" if result["memory_reset"] else ""))
    cols = ["ep", "normalized", "of means", "success", "return", "length", "uninformed norm.",
            "oracle ret.", "random ret.", "excluded"]
    rows = []
    a = result["per_episode"]
    for e in range(k):
        ci = a["normalized_ci"][e]
        norm = _fmt(a["normalized"][e]) + ("" if ci is None else f" ± {_fmt(ci)}")
        rows.append([str(e + 1), norm, _fmt(a["normalized_of_means"][e]), _fmt(a["success"][e], 2),
                     _fmt(a["return"][e]), _fmt(a["length"][e], 1),
                     _fmt(refs["uninformed"]["normalized"][e]), _fmt(refs["oracle"]["return"][e]),
                     _fmt(refs["random"]["return"][e]), str(result["excluded"][e])])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, widths))

    t = result["timing"]
    foot = f"gain (last - first episode): {_fmt(a['gain'])}; {t['total_s']:.2f} s in all"
    return "\n".join([head, line(cols), *(line(r) for r in rows), foot])


def _band(block: dict) -> tuple[np.ndarray, np.ndarray]:
    mean = np.array([np.nan if x is None else x for x in block["normalized"]], dtype=float)
    ci = np.array([0.0 if x is None else x for x in block["normalized_ci"]], dtype=float)
    return mean, ci


def plot_adaptation(result: dict, path: str, others: Sequence[dict] = ()) -> str:
    """Save a PNG of normalized score against episode index: the agent with its 95% CI band,
    the uninformed planner (dashed, with its band), the oracle at 1 and random at 0.
    ``others`` adds further results on the same levels (e.g. the memory-reset run). Returns
    ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = result["episodes"]
    x = np.arange(1, k + 1)
    fig = Figure(figsize=(7.0, 5.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.axhline(1.0, color="tab:green", lw=1.5, label="oracle (= 1)")
    ax.axhline(0.0, color="tab:gray", lw=1.2, ls=":", label="random (= 0)")
    mean, ci = _band(result["reference"]["uninformed"])
    ax.plot(x, mean, color="tab:orange", ls="--", marker="s", ms=4, label="uninformed planner")
    ax.fill_between(x, mean - ci, mean + ci, color="tab:orange", alpha=0.15, lw=0)
    colors = ["tab:blue", "tab:purple", "tab:red", "tab:brown", "tab:cyan"]
    lows, highs = [0.0, *(mean - ci)], [1.0, *(mean + ci)]
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
    excl = max(result["excluded"]) if result["excluded"] else 0
    ax.set_title(f"Adaptation of {result['agent']} on {result['game']} / {result['variant']}\n"
                 f"{result['split']} split, {result['levels']} levels, one trial each; bands: 95% CI"
                 + (f"; {excl} levels excluded" if excl else ""), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


__all__ = ["SCHEMA", "REFERENCES", "evaluate", "reference_scores", "reward_breakdown", "summarize", "normalized_scores", "mean_ci",
           "excluded_levels", "format_table", "plot_adaptation"]
