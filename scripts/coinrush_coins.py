"""Which coins an agent takes on coinrush, by episode of the trial: paying ones against costing ones.

    python scripts/coinrush_coins.py [--agent rl2] [--variant V] [--levels 500] [--episodes 4] [--seed 0]

Plays one trial on each of the first N test levels (as `metarena eval` does) and prints, per
episode index, the mean number of paying and costing coins taken and what each group paid
(:func:`metarena.agents.evaluate.reward_breakdown`). An agent that adapts takes fewer costing
coins in later episodes; the paying coins it takes show how well it collects.
"""

from __future__ import annotations

import argparse

from metarena.agents.evaluate import reward_breakdown
from metarena.agents.registry import make_agent


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", default="rl2",
                    help="rl2 (the shipped agent), a reference or ceiling agent (oracle, window-recall, ...) "
                         "or a checkpoint")
    ap.add_argument("--variant", default=None, help="coinrush variant (default: the game's default)")
    ap.add_argument("--levels", type=int, default=500)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        agent = make_agent(args.agent, "coinrush", seed=args.seed)
    except ValueError as exc:  # an unknown agent, a missing or unfit checkpoint
        ap.error(str(exc))
    counts = reward_breakdown(agent, "coinrush", args.variant, levels=args.levels, episodes=args.episodes,
                              seed=args.seed)
    c = {key: a.mean(0) for key, a in counts.items()}
    print(f"{args.agent} on coinrush, test split, {args.levels} levels x {args.episodes} episodes, seed {args.seed}")
    print("ep  paying coins  paid   costing coins  cost    return")
    for e in range(args.episodes):
        print(f"{e + 1:>2}  {c['paying'][e]:>12.2f}  {c['paid'][e]:>+5.2f}  {c['costing'][e]:>13.2f}  "
              f"{c['cost'][e]:>+5.2f}  {c['paid'][e] + c['cost'][e]:>+7.3f}")


if __name__ == "__main__":
    main()
