"""How often an agent is paid each amount, by episode of the trial: what it does, not only how much.

    python scripts/reward_counts.py --agent AGENT --game G [--variant V] [--levels 300] [--episodes 4] [--seed 0]
        [--sequences N [--seen TILE]]

On rules the amounts are the roles (+0.5 a paying object, -0.5 a costly one, -1 the trap, +3
the open exit): the table shows how often an agent springs the trap or leaves by the exit in
each episode, per trial. ``AGENT`` is anything ``metarena eval --agent`` takes (a reference
agent, a ceiling planner, ``rl2``, a run directory or checkpoint). Solo, test levels
``0 .. levels-1``. ``--sequences N`` also prints the N most common orders of the first
episode's rewards, with their share of the trials (rules: ``-0.5, -1`` is a costly kind, then
the trap; ``-0.5, +3`` a costly kind, then the exit, which it opened). ``--seen TILE`` (a
channel name: ``exit``, ``chest``, ...) splits those orders by whether a tile of that name had
been in the player's view before its first reward (rules, ``--seen exit``: did it know where the
exit was when it took its first kind?).
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

    def __init__(self, n: int, seen: int | None = None):
        self.counts: Counter = Counter()
        self.first: list[list[float]] = [[] for _ in range(n)]
        self.episode = np.zeros(n, np.int64)  # the episode each slot's next step belongs to
        self._next = np.zeros(n, np.int64)
        self.seen = seen
        self.in_view = np.zeros(n, bool)  # seen so far in episode 1
        self.seen_first = np.zeros(n, bool)  # seen before the first reward of episode 1

    def _look(self, grid) -> None:
        if self.seen is not None:
            view = np.asarray(grid)[:, 0, ..., self.seen].reshape(len(self.episode), -1).any(axis=1)
            self.in_view |= view & (self.episode == 0)

    def on_start(self, env) -> None:
        self._look(env.engine.observe(env.state)[0])

    def on_step(self, env, actions, step) -> None:
        reward = np.asarray(step.rewards).reshape(len(self.episode), -1)[:, 0]
        for i in np.flatnonzero(reward != 0):
            amount = round(float(reward[i]), 4)
            self.counts[(int(self.episode[i]), amount)] += 1
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
    args = ap.parse_args(argv)
    if args.levels < 1 or args.episodes < 1:
        ap.error("--levels and --episodes must be at least 1")
    if args.sequences < 0:
        ap.error(f"--sequences must be 0 or more, got {args.sequences}")
    if args.seen and not args.sequences:
        ap.error("--seen splits the orders that --sequences prints: give --sequences N too")
    n = args.levels
    try:
        env = BatchEnv(get(args.game), variant(args.game, args.variant), batch=n, players=1, pool_size=n,
                       seed=args.seed, split="test", episodes=args.episodes)
        agent = make_agent(args.agent, game=args.game, seed=args.seed)
    except (KeyError, ValueError) as e:  # an unknown game, variant or agent: say which, exit 2
        ap.error(str(e).strip("'\""))
    hooks = RewardCounts(n, None if args.seen is None else CHANNEL_NAMES.index(args.seen))
    play(env, [agent], levels=np.arange(n), seed=args.seed, hooks=hooks)
    amounts = sorted({a for _, a in hooks.counts})
    print(f"{args.agent} on {args.game}/{env.variant.name}: rewards of each amount per trial, {n} test levels")
    print("| episode | " + " | ".join(f"{a:+g}" for a in amounts) + " |")
    print("|---|" + "---|" * len(amounts))
    for e in range(args.episodes):
        print(f"| {e + 1} | " + " | ".join(f"{hooks.counts[(e, a)] / n:.2f}" for a in amounts) + " |")
    if args.sequences:
        print(f"\nepisode 1, its rewards in order: the {args.sequences} most common, share of the trials")
        print(f"| share | rewards | {args.seen} seen before the first |\n|---|---|---|" if args.seen
              else "| share | rewards |\n|---|---|")
        # without --seen nothing is looked at and every seen_first is False: orders alone
        orders = Counter(zip(map(tuple, hooks.first), hooks.seen_first.tolist()))
        for (order, seen), count in orders.most_common(args.sequences):
            print(f"| {count / n:.3f} | " + (", ".join(f"{a:+g}" for a in order) or "none") + " |"
                  + ((" yes |" if seen else " no |") if args.seen else ""))


if __name__ == "__main__":
    main()
