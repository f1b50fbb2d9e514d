"""How often an agent is paid each amount, by episode of the trial: what it does, not only how much.

    python scripts/reward_counts.py --agent AGENT --game G [--variant V] [--levels 300] [--episodes 4] [--seed 0]
        [--sequences N [--seen TILE]] [--by-start K]

On rules the amounts are the roles (+0.5 a paying object, -0.5 a costly one, -1 the trap, +3
the open exit): the table shows how often an agent springs the trap or leaves by the exit in
each episode, per trial. ``AGENT`` is anything ``metarena eval --agent`` takes (a reference
agent, a ceiling planner, ``rl2``, a run directory or checkpoint). Solo, test levels
``0 .. levels-1``. ``--sequences N`` also prints the N most common orders of the first
episode's rewards, with their share of the trials (rules: ``-0.5, -1`` is a costly kind, then
the trap; ``-0.5, +3`` a costly kind, then the exit, which it opened). ``--seen TILE`` (a
channel name: ``exit``, ``chest``, ...) splits those orders by whether a tile of that name had
been in the player's view before its first reward (rules, ``--seen exit``: did it know where the
exit was when it took its first kind?). ``--by-start K`` groups the trials by the first K
rewards of their first episode and prints each group's return by episode and what its second
episode was paid (rules, ``--by-start 1``: after springing the trap first, does the next
episode still find the exit?).
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from metarena.agents.registry import make_agent
from metarena.agents.rollout import Hooks, play
from metarena.games.batch import BatchEnv
from metarena.games.registry import get, variant
from metarena.games.tiles import CHANNEL_NAMES


class RewardCounts(Hooks):
    """Counts the non-zero rewards of player 0 by (episode index, amount), and keeps each slot's
    first-episode rewards in order (``first``); with a ``seen`` channel, also whether player 0
    had that channel in view before its first reward (``seen_first``)."""

    def __init__(self, n: int, seen: int | None = None, episodes: int = 4):
        self.returns = np.zeros((n, episodes))  # each slot's return by episode
        self.by_slot: list[Counter] = [Counter() for _ in range(n)]  # (episode, amount) -> count
        self.first: list[list[float]] = [[] for _ in range(n)]
        self.episode = np.zeros(n, np.int64)  # the episode each slot's next step belongs to
        self._next = np.zeros(n, np.int64)
        self.seen = seen
        self.in_view = np.zeros(n, bool)  # seen so far in episode 1
        self.seen_first = np.zeros(n, bool)  # seen before the first reward of episode 1

    @property
    def counts(self) -> Counter:
        """(episode, amount) -> how often, over every slot."""
        return sum(self.by_slot, Counter())

    def _look(self, grid) -> None:
        if self.seen is not None:
            view = np.asarray(grid)[:, 0, ..., self.seen].reshape(len(self.episode), -1).any(axis=1)
            self.in_view |= view & (self.episode == 0)

    def on_start(self, env) -> None:
        self._look(env.engine.observe(env.state)[0])

    def on_step(self, env, actions, step) -> None:
        reward = np.asarray(step.rewards).reshape(len(self.episode), -1)[:, 0]
        playing = self.episode < self.returns.shape[1]  # a slot past its last episode adds nothing
        self.returns[np.flatnonzero(playing), self.episode[playing]] += reward[playing]
        for i in np.flatnonzero(reward != 0):
            amount = round(float(reward[i]), 4)
            self.by_slot[i][(int(self.episode[i]), amount)] += 1
            if self.episode[i] == 0:
                if not self.first[i]:
                    self.seen_first[i] = self.in_view[i]
                self.first[i].append(amount)
        self.episode[:] = self._next  # the step that ended an episode still counts for it
        self._look(step.grid)

    def on_episode_end(self, memories, slots, episodes) -> None:
        self._next[slots] = episodes + 1


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", required=True)
    ap.add_argument("--game", required=True)
    ap.add_argument("--variant", default=None)
    ap.add_argument("--levels", type=int, default=300)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sequences", type=int, default=0, metavar="N",
                    help="also print the N most common orders of the first episode's rewards")
    ap.add_argument("--seen", default=None, metavar="TILE", choices=CHANNEL_NAMES[:-1],
                    help="with --sequences: split the orders by whether a TILE was in view before the "
                         "first reward (a channel name, e.g. exit)")
    ap.add_argument("--by-start", type=int, default=0, metavar="K",
                    help="group the trials by the first K rewards of their first episode: each group's "
                         "return by episode, and what its second episode was paid")
    args = ap.parse_args(argv)
    if args.levels < 1 or args.episodes < 1:
        ap.error("--levels and --episodes must be at least 1")
    if args.sequences < 0:
        ap.error(f"--sequences must be 0 or more, got {args.sequences}")
    if args.by_start < 0:
        ap.error(f"--by-start must be 0 or more, got {args.by_start}")
    if args.by_start and args.episodes < 2:
        ap.error("--by-start shows what the later episodes do: give --episodes 2 or more")
    if args.seen and not args.sequences:
        ap.error("--seen splits the orders that --sequences prints: give --sequences N too")
    n = args.levels
    try:
        env = BatchEnv(get(args.game), variant(args.game, args.variant), batch=n, players=1, pool_size=n,
                       seed=args.seed, split="test", episodes=args.episodes)
        agent = make_agent(args.agent, game=args.game, seed=args.seed)
    except (KeyError, ValueError) as e:  # an unknown game, variant or agent: say which, exit 2
        ap.error(str(e).strip("'\""))
    hooks = RewardCounts(n, None if args.seen is None else CHANNEL_NAMES.index(args.seen), args.episodes)
    play(env, [agent], levels=np.arange(n), seed=args.seed, hooks=hooks)
    counts = hooks.counts
    amounts = sorted({a for _, a in counts})
    print(f"{args.agent} on {args.game}/{env.variant.name}: rewards of each amount per trial, {n} test levels")
    print("| episode | " + " | ".join(f"{a:+g}" for a in amounts) + " |")
    print("|---|" + "---|" * len(amounts))
    for e in range(args.episodes):
        print(f"| {e + 1} | " + " | ".join(f"{counts[(e, a)] / n:.2f}" for a in amounts) + " |")
    if args.sequences:
        print(f"\nepisode 1, its rewards in order: the {args.sequences} most common, share of the trials")
        print(f"| share | rewards | {args.seen} seen before the first |\n|---|---|---|" if args.seen
              else "| share | rewards |\n|---|---|")
        # without --seen nothing is looked at and every seen_first is False: orders alone
        orders = Counter(zip(map(tuple, hooks.first), hooks.seen_first.tolist()))
        for (order, seen), count in orders.most_common(args.sequences):
            print(f"| {count / n:.3f} | " + (", ".join(f"{a:+g}" for a in order) or "none") + " |"
                  + ((" yes |" if seen else " no |") if args.seen else ""))

    if args.by_start:
        print_by_start(hooks, args.by_start, amounts, args.episodes)


def print_by_start(hooks: RewardCounts, k: int, amounts: list[float], episodes: int) -> None:
    """The trials grouped by the first ``k`` rewards of their first episode, the largest group
    first: its share, its mean return by episode, and its second episode's rewards of each amount
    per trial."""
    n = len(hooks.first)
    groups: dict[tuple, list[int]] = {}
    for i, first in enumerate(hooks.first):
        groups.setdefault(tuple(first[:k]), []).append(i)
    print(f"\nby the first {k} reward(s) of episode 1: return by episode, and episode 2's rewards per trial")
    columns = ["episode 1 began", "share", *(f"return {e + 1}" for e in range(episodes)),
               *(f"ep. 2 {a:+g}" for a in amounts)]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for start, slots in sorted(groups.items(), key=lambda g: -len(g[1])):
        paid = [sum(hooks.by_slot[i][(1, a)] for i in slots) / len(slots) for a in amounts]
        cells = [", ".join(f"{a:+g}" for a in start) or "nothing", f"{len(slots) / n:.3f}",
                 *(f"{r:.2f}" for r in hooks.returns[slots].mean(axis=0)), *(f"{p:.2f}" for p in paid)]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
