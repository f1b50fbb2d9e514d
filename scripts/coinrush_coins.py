"""Which coins an agent takes on coinrush, by episode of the trial: paying ones against costing ones.

    python scripts/coinrush_coins.py [--agent rl2] [--variant V] [--levels 500] [--episodes 4] [--seed 0]

Plays one trial on each of the first N test levels (as `metarena eval` does) and prints, per
episode index, the mean number of paying and costing coins taken and what each group paid. An
agent that adapts takes fewer costing coins in later episodes; the paying coins it takes show
how well it collects.
"""

from __future__ import annotations

import argparse

import numpy as np

from metarena import games
from metarena.agents import make_agent
from metarena.agents.base import Context, Observation
from metarena.games.batch import BatchEnv
from metarena.games.trial import TrialEnv


def count_coins(agent, variant: str | None = None, levels: int = 500, episodes: int = 4, seed: int = 0) -> dict:
    """One trial of ``agent`` on each of the first ``levels`` test levels; (levels, episodes) arrays
    of the paying and costing coins taken ("paying", "costing") and what they paid ("paid", "cost")."""
    n, k = levels, episodes
    env = TrialEnv(BatchEnv(games.get("coinrush"), games.variant("coinrush", variant), batch=n, split="test",
                            pool_size=n, episodes=k, seed=seed))
    grid, scalars, trial = env.reset(seed=seed, levels=np.arange(n))
    memory = agent.begin_trial(n)
    episode, done = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    out = {key: np.zeros((n, k)) for key in ("paying", "costing", "paid", "cost")}
    while not done.all():
        ctx = Context(env.env.engine, env.env.state, 0)  # read by the reference agents only
        action, memory = agent.act(Observation(grid[:, 0], scalars[:, 0], trial[:, 0]), memory, ctx)
        step = env.step(action[:, None])
        grid, scalars, trial = step.grid, step.scalars, step.trial
        live = np.flatnonzero(~done)
        r, e = step.rewards[live, 0], episode[live]
        out["paid"][live, e] += np.maximum(r, 0)
        out["cost"][live, e] += np.minimum(r, 0)
        out["paying"][live, e] += r > 0
        out["costing"][live, e] += r < 0
        if step.episode_done.any():
            memory = agent.end_episode(memory, np.flatnonzero(step.episode_done))
        done |= step.trial_done
        episode = np.where(step.episode_done & ~step.trial_done, episode + 1, episode)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", default="rl2",
                    help="rl2 (the shipped agent), a reference agent (oracle, uninformed, ...) or a checkpoint")
    ap.add_argument("--variant", default=None, help="coinrush variant (default: the game's default)")
    ap.add_argument("--levels", type=int, default=500)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    agent = make_agent(args.agent, seed=args.seed, game="coinrush")
    c = {key: a.mean(0) for key, a in count_coins(agent, args.variant, args.levels, args.episodes, args.seed).items()}
    print(f"{args.agent} on coinrush, test split, {args.levels} levels x {args.episodes} episodes, seed {args.seed}")
    print("ep  paying coins  paid   costing coins  cost    return")
    for e in range(args.episodes):
        print(f"{e + 1:>2}  {c['paying'][e]:>12.2f}  {c['paid'][e]:>+5.2f}  {c['costing'][e]:>13.2f}  "
              f"{c['cost'][e]:>+5.2f}  {c['paid'][e] + c['cost'][e]:>+7.3f}")


if __name__ == "__main__":
    main()
