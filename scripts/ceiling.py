"""What a perfect in-context learner could score: planners with a perfect memory of the trial.

    python scripts/ceiling.py --game treasure|coinrush [--planner recall|window-recall|both]
        [--variant V] [--levels 500] [--episodes 4] [--seed 0] [--json]

Each game's planners live beside this script, in ``treasure_ceiling.py`` and
``coinrush_ceiling.py`` (their docstrings say how they play): ``recall`` knows the map,
``window-recall`` sees only what a learned agent sees. Both forget nothing within a trial, and
both are measured by the same `evaluate` as `metarena eval` (same levels, oracle and random),
one table each.
"""

from __future__ import annotations

import argparse
import json

import coinrush_ceiling  # beside this script (its folder is the first on the import path)
import treasure_ceiling

from metarena.agents.evaluate import evaluate, format_table

PLANNERS = {"treasure": treasure_ceiling.PLANNERS, "coinrush": coinrush_ceiling.PLANNERS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", required=True, choices=list(PLANNERS))
    ap.add_argument("--planner", choices=["recall", "window-recall", "both"], default="both",
                    help="which planner to measure (default: both, one table each)")
    ap.add_argument("--variant", default=None, help="the game's variant (default: the game's default)")
    ap.add_argument("--levels", type=int, default=500)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true",
                    help="print the result in metarena eval's JSON schema (both: a list of two)")
    args = ap.parse_args()
    planners = PLANNERS[args.game]
    names = list(planners) if args.planner == "both" else [args.planner]
    results = [evaluate(planners[k](), args.game, args.variant, levels=args.levels, episodes=args.episodes,
                        seed=args.seed) for k in names]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    else:
        print("\n\n".join(format_table(r) for r in results))


if __name__ == "__main__":
    main()
