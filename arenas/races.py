"""Races: agents play the same levels side by side, batched; who wins each episode, and how often
they stand each other off.

A race plays one trial of K episodes on each of ``levels`` levels of a split, every agent in
its own seat, all slots at once (the batched twin of a tournament's matches, for
measurement). For every episode index it reports each seat's win rate (the highest return of
the episode, strictly: a tie is a draw) and mean return, and how many episodes end in a
**stand-off**: every player stood still (the same cell as the step before) for ``still`` steps
in a row or more, while the episode went on. The issue that counts: agents trained alone
freeze nose to nose in a corridor when they meet another player.

Seats: agent ``i`` plays player ``i`` in every slot. With ``swap=True`` each level is raced
twice, once with the seats reversed, so that no agent owns the better start cell; results
are by agent, not seat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from metarena import games
from metarena.agents.rollout import Hooks, play
from metarena.games.batch import BatchEnv
from metarena.text import grid, wrapped

STILL = 10  #: steps every player stands still, in a row, that make a stand-off


class _StandOffs(Hooks):
    """Counts, per slot and episode, the longest run of steps in which no player moved."""

    def __init__(self, env: BatchEnv, still: int, progress: Callable[[int], None] | None):
        # progress(n): n more episodes of the race were played
        n = env.batch
        self.still, self.progress = still, progress
        self.run = np.zeros(n, dtype=np.int64)
        self.longest = np.zeros((n, env.episodes), dtype=np.int64)
        self.over = np.zeros(n, dtype=bool)
        self.pos: np.ndarray | None = None

    def on_start(self, env: BatchEnv):
        self.pos = env.state.pos.copy()

    def on_step(self, env: BatchEnv, actions: np.ndarray, step) -> None:
        st = env.state
        ended = step.episode_done
        frozen = (st.pos == self.pos).all(1) & ~ended
        self.run = np.where(frozen, self.run + 1, 0)
        # the episode a slot is in: for the slots that just ended one, the one that ended
        ep = np.where(ended, (st.episode - 1) % env.episodes, st.episode)
        rows = np.flatnonzero(~self.over)  # a slot past its trial plays on, uncounted
        self.longest[rows, ep[rows]] = np.maximum(self.longest[rows, ep[rows]], self.run[rows])
        if self.progress is not None:
            self.progress(int((ended & ~self.over).sum()))
        self.over |= ended & (ep == env.episodes - 1)
        self.pos = st.pos.copy()


@dataclass
class RaceResult:
    names: list[str]
    game: str
    variant: str
    levels: int
    episodes: int
    still: int
    returns: np.ndarray  # (matches, K, agents): each agent's return, by agent (seats undone)
    standoff: np.ndarray  # (matches, K) bool: the episode had a stand-off

    def to_dict(self) -> dict:
        best = self.returns.max(2, keepdims=True)
        unique = (self.returns == best).sum(2) == 1
        wins = (self.returns == best) & unique[..., None]  # (M, K, A)
        return {
            "game": self.game, "variant": self.variant, "levels": self.levels, "episodes": self.episodes,
            "matches": int(self.returns.shape[0]), "still": self.still,
            "agents": [{"name": n, "win_rate": wins[..., i].mean(0).round(4).tolist(),
                        "mean_return": self.returns[..., i].mean(0).round(4).tolist()}
                       for i, n in enumerate(self.names)],
            "draw_rate": (~unique).mean(0).round(4).tolist(),
            "standoff_rate": self.standoff.mean(0).round(4).tolist(),
            "matches_with_standoff": round(float(self.standoff.any(1).mean()), 4),
        }


def race(agents: Sequence, names: Sequence[str], game: str, variant: str | None = None, *, levels: int = 500,
         episodes: int = 4, split: str = "test", seed: int = 0, still: int = STILL, swap: bool = True,
         progress: Callable[[int], None] | None = None) -> RaceResult:
    """Race ``agents`` (one per seat, their ``names``) on the first ``levels`` levels of
    ``split``: see the module docstring. ``progress(n)`` hears of every ``n`` episodes played
    (``levels x episodes`` per seating)."""
    if still < 1:
        raise ValueError(f"still must be >= 1 step, got {still}")
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    g = games.get(game)
    v = games.variant(game, variant)
    players = len(agents)
    if not g.spec.min_players <= players <= g.spec.max_players:
        raise ValueError(f"{game} takes {g.spec.min_players}-{g.spec.max_players} players, got {players} agents")
    orders = [list(range(players))]
    if swap and players > 1:
        orders.append(list(reversed(orders[0])))
    returns, standoff = [], []
    for order in orders:
        env = BatchEnv(g, v, batch=levels, players=players, split=split, pool_size=levels, episodes=episodes,
                       seed=seed)
        hooks = _StandOffs(env, still, progress)
        stats = play(env, [agents[i] for i in order], levels=np.arange(levels), seed=seed, hooks=hooks)
        by_agent = np.empty_like(stats.returns)
        by_agent[..., order] = stats.returns  # seat s holds agent order[s]
        returns.append(by_agent)
        standoff.append(hooks.longest >= still)
    return RaceResult(list(names), game, v.name, levels, episodes, still, np.concatenate(returns),
                      np.concatenate(standoff))


def format_race(result: dict, width: int | None = None) -> str:
    """The race as a table: one row per episode index. ``width`` (a terminal's): a wider table is
    split by columns, each part led by the episode."""
    names = [a["name"] for a in result["agents"]]
    head = ["ep", *[f"{n} wins" for n in names], "draws", *[f"{n} return" for n in names], "stand-offs"]
    rows = []
    for k in range(result["episodes"]):
        rows.append([str(k + 1), *[f"{a['win_rate'][k]:.3f}" for a in result["agents"]],
                     f"{result['draw_rate'][k]:.3f}", *[f"{a['mean_return'][k]:.3f}" for a in result["agents"]],
                     f"{result['standoff_rate'][k]:.3f}"])
    seatings = result["matches"] // result["levels"]
    how = f"{result['levels']} levels" + (f" x {seatings} seatings" if seatings > 1 else "")
    lines = [f"{' vs '.join(names)} on {result['game']}/{result['variant']}: {result['matches']} matches "
             f"({how}) of {result['episodes']} episodes; share of matches by episode:",
             *grid(head, rows, width)]
    lines.append(f"stand-off: every player still for >= {result['still']} steps in a row while the episode "
                 f"goes on; matches with one: {result['matches_with_standoff']:.3f}")
    return "\n".join(wrapped(lines, width))
