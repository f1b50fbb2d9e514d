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
episode still find the exit?). ``--endings`` tells how each first episode ended: by a step that
ended it (its last reward: rules' exit +3 or trap -1) or out of steps, with the steps the player
stood still in it and, with ``--seen``, whether the tile was in view by its end; for the episodes
out of steps, the most common orders of their rewards, (rules) whether the key kind had
been taken and whether the exit had been found locked since the last kind new to the episode
(the step onto it paid nothing: the player knew the kinds it held do not open it), and the first
test levels of each order (rules, ``--endings --seen exit``: does the first episode run out of
time with the exit known?).
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from metarena.agents.registry import make_agent
from metarena.agents.rollout import Hooks, play
from metarena.games.batch import BatchEnv
from metarena.games.registry import get, variant
from metarena.games.rules import KEY_ITEM
from metarena.games.tiles import CHANNEL_NAMES, EXIT


LEVELS_SHOWN = 4  # test levels named per order of rewards (--endings)


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
        self.ended = np.zeros(n, bool)  # episode 1 was ended by a step (terminated), not cut at the step limit
        self.still = np.zeros(n, np.int64)  # steps of episode 1 that ended where they began
        self.key = np.zeros(n, bool)  # rules: episode 1 took an object of the key kind
        self.locked = np.zeros(n, bool)  # rules: episode 1 ended with the exit found locked since its last new kind
        self._pos: np.ndarray | None = None

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
        self._pos = env.state.pos[:, 0].copy()

    def on_final(self, env, slots) -> None:
        first = slots[self.episode[slots] == 0]
        state = env.state  # the episode's last frame
        if env.engine.game.spec.name == "rules":
            level = state.level[first]
            row, col = env.levels.item_pos[level, KEY_ITEM].T
            self.key[first] = state.touched[first, 0, env.levels.tiles[level, row, col]]
            self.locked[first] = state.touched[first, 0, EXIT]

    def on_step(self, env, actions, step) -> None:
        pos = env.state.pos[:, 0]  # where each slot's next step begins (a new episode's start, after an end)
        ends, first = np.asarray(step.episode_done), self.episode == 0
        self.still += first & ~ends & (pos == self._pos)
        self._pos = pos.copy()
        self.ended[ends & first] = np.asarray(step.terminated)[ends & first]
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
    ap.add_argument("--endings", type=int, default=0, metavar="N",
                    help="how each first episode ended (by a step that ended it, or out of steps), with the "
                         "steps stood still; for those out of steps, the N most common orders of their rewards")
    args = ap.parse_args(argv)
    if args.levels < 1 or args.episodes < 1:
        ap.error("--levels and --episodes must be at least 1")
    if args.sequences < 0:
        ap.error(f"--sequences must be 0 or more, got {args.sequences}")
    if args.by_start < 0:
        ap.error(f"--by-start must be 0 or more, got {args.by_start}")
    if args.by_start and args.episodes < 2:
        ap.error("--by-start shows what the later episodes do: give --episodes 2 or more")
    if args.endings < 0:
        ap.error(f"--endings must be 0 or more, got {args.endings}")
    if args.seen and not (args.sequences or args.endings):
        ap.error("--seen splits the orders that --sequences prints and the endings of --endings: give one of them")
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
    if args.endings:
        print_endings(hooks, args.endings, args.seen, args.game == "rules")


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


def print_endings(hooks: RewardCounts, n_orders: int, seen: str | None, rules: bool) -> None:
    """How each first episode ended, the largest group first: by a step that ended it (named by
    its last reward) or out of steps (cut at the step limit); each group's share and
    steps stood still, split by whether ``seen`` was in view by the end. Then the ``n_orders``
    most common orders of the rewards of the episodes out of steps (rules: and whether they had
    taken an object of the key kind, which opens the exit, and whether they ended with the exit found
    locked since their last new kind)."""
    n = len(hooks.first)
    how = ["out of steps" if not ended else f"ended, last reward {first[-1]:+g}" if first else "ended, unpaid"
           for ended, first in zip(hooks.ended.tolist(), hooks.first)]
    split = hooks.in_view.tolist() if seen else [None] * n
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(how, split)):
        groups.setdefault(key, []).append(i)
    print("\nepisode 1, how it ended: share of the trials, and steps it stood still (stayed or was blocked)")
    print(f"| ended | {seen} seen by then | share | steps still |\n|---|---|---|---|" if seen
          else "| ended | share | steps still |\n|---|---|---|")
    for (ending, was_seen), slots in sorted(groups.items(), key=lambda g: -len(g[1])):
        print(f"| {ending} | " + ((("yes" if was_seen else "no") + " | ") if seen else "")
              + f"{len(slots) / n:.3f} | {hooks.still[slots].mean():.1f} |")
    out = [i for i in range(n) if not hooks.ended[i]]
    if not out:
        return
    if rules:
        print(f"\nout of steps with the exit found locked since the last new kind: {hooks.locked[out].sum() / n:.3f}"
              f" of the trials; with the key kind taken: {hooks.key[out].sum() / n:.3f}")
    print(f"\nepisode 1 out of steps: the {n_orders} most common orders of its rewards, share of the trials,"
          f" and the first {LEVELS_SHOWN} test levels of each")
    print("| share | rewards | key kind taken | exit found locked | levels |\n|---|---|---|---|---|" if rules
          else "| share | rewards | levels |\n|---|---|---|")
    orders: dict[tuple, list[int]] = {}
    for i in out:  # a trial's slot is its test level (levels 0 .. n-1, one each)
        orders.setdefault((tuple(hooks.first[i]), bool(hooks.key[i]), bool(hooks.locked[i])), []).append(i)
    for (order, key, locked), slots in sorted(orders.items(), key=lambda g: -len(g[1]))[:n_orders]:
        named = ", ".join(map(str, slots[:LEVELS_SHOWN])) + (", ..." if len(slots) > LEVELS_SHOWN else "")
        print(f"| {len(slots) / n:.3f} | " + (", ".join(f"{a:+g}" for a in order) or "none") + " |"
              + (f" {'yes' if key else 'no'} | {'yes' if locked else 'no'} |" if rules else "") + f" {named} |")


if __name__ == "__main__":
    main()
