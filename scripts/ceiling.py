"""What a perfect in-context learner could score: the ceiling planners of a game, side by side.

    python scripts/ceiling.py --game treasure|coinrush|rules|drift [--planner recall|window-recall|both]
        [--variant V] [--levels 500] [--episodes 4] [--seed 0] [--json]

The planners are agents (``metarena.agents.planners``; ``metarena eval --agent window-recall``
measures one); this prints both tables at once, measured by the same `evaluate` as
`metarena eval` (same levels, oracle and random).
"""

from __future__ import annotations

import argparse
import json

from metarena.agents.evaluate import evaluate, format_table
from metarena.agents.planners import PLANNERS, make_planner


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", required=True, choices=sorted(PLANNERS["recall"]))
    ap.add_argument("--planner", choices=[*PLANNERS, "both"], default="both",
                    help="which planner to measure (default: both, one table each)")
    ap.add_argument("--variant", default=None, help="the game's variant (default: the game's default)")
    ap.add_argument("--levels", type=int, default=500)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true",
                    help="print the result in metarena eval's JSON schema (both: a list of two)")
    args = ap.parse_args(argv)
    names = list(PLANNERS) if args.planner == "both" else [args.planner]
    # each table shows the window-recall ceiling beside its planner, as `metarena eval` does
    results = [evaluate(make_planner(k, args.game), args.game, args.variant, levels=args.levels,
                        episodes=args.episodes, seed=args.seed, ceiling=True) for k in names]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    else:
        print("\n\n".join(format_table(r) for r in results))


if __name__ == "__main__":
    main()
