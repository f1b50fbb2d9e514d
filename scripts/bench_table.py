"""Print metarena's speed figures as a Markdown table (medians of repeated runs).

    python scripts/bench_table.py [--seconds 5] [--reps 3] [--batch 4096] [--pool-size 1024] [--json out.json]

Runs `metarena bench env` for every game (1 and 4 players) and `metarena bench render`,
the same functions the command uses, and prints the tables that docs/RESULTS.md quotes.
"""

from __future__ import annotations

import argparse
import json
import statistics

from metarena import games
from metarena.games.bench import bench_env, bench_render, machine


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--pool-size", type=int, default=1024,
                    help="levels built for each run before it is timed (default 1024)")
    ap.add_argument("--json", default=None, help="also write every run to this JSON file")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.reps < 1 or args.batch < 1 or args.pool_size < 1:
        ap.error("--seconds must be above 0, and --reps, --batch and --pool-size at least 1")
    runs, rows = [], []
    for name in games.names():
        for players in (1, 4):
            res = [bench_env(name, batch=args.batch, seconds=args.seconds, players=players,
                             pool_size=args.pool_size)
                   for _ in range(args.reps)]
            runs += res
            xs = [r["steps_per_s"] for r in res]
            rows.append(f"| `{name}` | {args.batch} x {players} | {res[0]['shards']} | "
                        f"{statistics.median(xs) / 1e6:.2f} M | {min(xs) / 1e6:.2f}-{max(xs) / 1e6:.2f} M |")
    print(f"agent-steps/s, random actions, observations and autoresets included ({args.reps} runs of "
          f"{args.seconds:g} s; {machine()})\n")
    print("| game | slots x players | processes | median | range |\n|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n| game | map | frame | ms per rgb_array frame (median) | p95 |\n|---|---|---|---|---|")
    for name in games.names():
        r = bench_render(name, "large")
        runs.append(r)
        print(f"| `{name}` (large) | {r['map'][0]}x{r['map'][1]} | {r['frame'][1]}x{r['frame'][0]} | "
              f"{r['ms_median']:.2f} | {r['ms_p95']:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(runs, fh, indent=2)


if __name__ == "__main__":
    main()
