"""What a meta-update has to work with: how the fine-tuning steps of different levels agree.

    python scripts/finetune_steps.py --agent RUN [RUN ...] [--game treasure] [--strategy all]
        [--adapt-lr 3e-4] [--levels 256] [--episodes 4] [--seed 1]

For each finetune or reptile checkpoint: plays one trial with fine-tuning on each of the first N
training levels (as a meta-iteration of `metarena train --algo reptile` does) and prints

- the size of a level's step (the L2 norm of adapted weights minus the start's), the size of
  the mean step (what Reptile moves toward) as a share of it, and the cosine between the steps
  of two levels (mean, and the 5-95% range), also within the levels whose first episode
  returned > 0 and within the others;
- the start's policy entropy on the states of random walks on test levels (log 5 = 1.609 is
  uniform): a start that averages conflicting steps gets vaguer, one pushed to a few levels'
  paths gets surer.

Steps that point every way (cosine near 0) average to little: a meta-update built from them
(Reptile's mean, FOMAML's mean gradient) is mostly what the levels share, not what helps each.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from metarena import games
from metarena.agents.finetune import AdaptConfig, FineTuneAgent, KeepAdapted
from metarena.agents.registry import load_net
from metarena.agents.rollout import play
from metarena.games.batch import BatchEnv

WALK_STEPS = 40


def step_agreement(net, game: str, strategy: str, lr: float, levels: int, episodes: int, seed: int) -> dict:
    """One fine-tuning trial on each of ``levels`` training levels from ``net``: step sizes and
    the pairwise cosines of the levels' steps (all, and within the two groups of levels)."""
    env = BatchEnv(games.get(game), games.variant(game, None), batch=levels, split="train", pool_size=levels,
                   episodes=episodes, seed=seed)
    agent = FineTuneAgent(net, AdaptConfig(strategy=strategy, lr=lr), seed=seed)
    keep = KeepAdapted(agent, levels, episodes, "reptile")
    stats = play(env, [agent], levels=np.arange(levels), seed=seed, hooks=keep)
    start = dict(net.named_parameters())
    steps = torch.cat([(keep.final[k] - start[k].detach()).flatten(1) for k in agent.tuned], 1)
    norms = steps.norm(dim=1)
    unit = steps / norms.clamp(min=1e-12)[:, None]
    cos = unit @ unit.T

    def pairs(rows: torch.Tensor) -> torch.Tensor:
        c = cos[rows][:, rows]
        return c[~torch.eye(len(c), dtype=torch.bool)]

    found = torch.as_tensor(stats.returns[:, 0, 0] > 0)
    every = pairs(torch.ones(levels, dtype=torch.bool))
    return {"step": float(norms.mean()), "mean_step_share": float(steps.mean(0).norm() / norms.mean()),
            "cosine": float(every.mean()), "cosine_5_95": (float(every.quantile(0.05)), float(every.quantile(0.95))),
            "found": int(found.sum()), "cosine_found": float(pairs(found).mean()) if found.sum() > 1 else None,
            "cosine_not_found": float(pairs(~found).mean()) if (~found).sum() > 1 else None}


def entropy_on_walks(net, game: str, levels: int, seed: int) -> float:
    """Mean entropy of the start's policy over the states of random walks on test levels."""
    env = BatchEnv(games.get(game), games.variant(game, None), batch=levels, seeds=games.split_seeds("test", levels),
                   seed=seed)
    grid, scalars = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    with torch.no_grad():
        for _ in range(WALK_STEPS):
            logits, _ = net(torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]))
            out.append(float(torch.distributions.Categorical(logits=logits).entropy().mean()))
            grid, scalars, *_ = env.step(rng.integers(0, 5, size=(levels, 1)))
    return float(np.mean(out))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", nargs="+", required=True, help="finetune or reptile checkpoints or run directories")
    ap.add_argument("--game", default="treasure", choices=games.names())
    ap.add_argument("--strategy", default="all", choices=("adapter", "discriminative", "all"))
    ap.add_argument("--adapt-lr", type=float, default=3e-4)
    ap.add_argument("--levels", type=int, default=256)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.levels < 2 or args.episodes < 2:
        ap.error("--levels must be >= 2 (pairs of levels) and --episodes >= 2 (a fine-tuning step)")
    torch.set_num_threads(1)
    try:  # every start first: a wrong path fails before any measuring
        nets = [load_net(path, args.game, algorithms=("finetune", "reptile"))[0] for path in args.agent]
    except ValueError as exc:  # a missing checkpoint, one of another algorithm
        ap.error(str(exc))
    print(f"{args.game}, strategy {args.strategy}, lr {args.adapt_lr:g}, {args.levels} training levels x "
          f"{args.episodes} episodes, seed {args.seed}")
    for path, net in zip(args.agent, nets):
        a = step_agreement(net, args.game, args.strategy, args.adapt_lr, args.levels, args.episodes, args.seed)
        lo, hi = a["cosine_5_95"]
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        print(f"{path}: step {a['step']:.4f}, mean step {a['mean_step_share']:.3f} of it; cosine of two levels' "
              f"steps {a['cosine']:.3f} (5-95%: {lo:.3f} .. {hi:.3f}), within the {a['found']} levels episode 1 "
              f"returned > 0 {fmt(a['cosine_found'])}, within the others {fmt(a['cosine_not_found'])}; policy "
              f"entropy on random walks {entropy_on_walks(net, args.game, args.levels, args.seed):.3f}")


if __name__ == "__main__":
    main()
