"""Where an agent's gain over a trial comes from: levels its first episode solved, and the others.

    python scripts/gain_by_first_episode.py --agent RUN [--game treasure] [--strategy S]
        [--adapt-lr LR] [--levels 500] [--episodes 4] [--seed 0]

Plays one trial on each of the first N test levels (as `metarena eval` does) and splits the
levels by the first episode's return: > 0 (on treasure: it found the treasure) or not. For each
group it prints the share of levels and the mean return by episode, and how much of the trial's
gain (mean return of the last episode minus the first, over all levels) each group brings.

A learner that adapts by gradient (finetune, reptile) learns from what its episodes showed: where
the first episode found nothing, there is little to learn from. A meta-update that leaves the
first episode as it was can then only raise the other group's later episodes.
"""

from __future__ import annotations

import argparse

import numpy as np

from metarena import games
from metarena.agents.registry import make_agent
from metarena.agents.rollout import play
from metarena.games.batch import BatchEnv


def returns_by_episode(agent, game: str, levels: int, episodes: int, seed: int) -> np.ndarray:
    """(levels, episodes) returns of one trial per test level, slot i on level i of the split."""
    env = BatchEnv(games.get(game), games.variant(game, None), batch=levels, seeds=games.split_seeds("test", levels),
                   episodes=episodes, seed=seed)
    return play(env, [agent], levels=np.arange(levels), seed=seed).returns[:, :, 0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", required=True, help="a checkpoint or run directory, or any agent name eval takes")
    ap.add_argument("--game", default="treasure", choices=games.names())
    ap.add_argument("--strategy", default=None, help="finetune and reptile agents: adapter, discriminative or all")
    ap.add_argument("--adapt-lr", type=float, default=None, help="finetune and reptile agents: the fine-tuning lr")
    ap.add_argument("--levels", type=int, default=500)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.levels < 1 or args.episodes < 2:
        ap.error("--levels must be >= 1 and --episodes >= 2 (a gain needs two episodes)")
    try:
        agent = make_agent(args.agent, args.game, seed=args.seed, strategy=args.strategy, adapt_lr=args.adapt_lr)
    except ValueError as exc:  # an unknown agent, a missing or unfit checkpoint
        ap.error(str(exc))
    r = returns_by_episode(agent, args.game, args.levels, args.episodes, args.seed)
    first = r[:, 0] > 0
    gain = r[:, -1].mean() - r[:, 0].mean()
    print(f"{args.agent} on {args.game}, test split, {args.levels} levels x {args.episodes} episodes, "
          f"seed {args.seed}; mean return by episode")
    print("levels                 share  " + "  ".join(f"ep {e + 1:<3}" for e in range(args.episodes))
          + "  share of the gain")
    for name, rows in (("all", np.ones(len(r), bool)), ("episode 1 returned > 0", first),
                       ("episode 1 returned <= 0", ~first)):
        if not rows.any():
            continue
        part = (r[rows, -1] - r[rows, 0]).sum() / len(r)  # this group's part of the mean gain
        share = f"{part / gain:.2f}" if abs(gain) > 1e-9 else "-"
        print(f"{name:<23}{rows.mean():>5.2f}  " + "  ".join(f"{m:>6.3f}" for m in r[rows].mean(0)) + f"  {share:>17}")


if __name__ == "__main__":
    main()
