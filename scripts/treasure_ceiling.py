"""What a perfect in-context learner could score on treasure: a planner with a perfect memory.

    python scripts/treasure_ceiling.py [--variant medium] [--levels 500] [--episodes 4] [--json]

The planner knows the map but not where the treasure is. In the first episode it plays as the
uninformed planner (the nearest closed chest, again and again). In every later episode of the
trial it walks straight to the treasure if an earlier episode found it; otherwise it opens the
nearest chest that no earlier episode found empty. It is the adaptation benchmark's ceiling for
an agent that explores as well as a map-knowing planner and forgets nothing, measured by the
same `evaluate` as `metarena eval` (same levels, oracle and random).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from agents.evaluate import evaluate, format_table


class RecallPlanner:
    """Uninformed planner + a memory of the trial: chests found empty, and the treasure once found."""

    name = "recall"

    def begin_trial(self, n: int) -> dict:
        return {}

    def act(self, obs, memory: dict, ctx):
        eng, st = ctx.engine, ctx.state
        value = eng.levels.item_value[st.level]  # (B, chests): 1 for the treasure
        if not memory:
            memory.update(empty=np.zeros(value.shape, bool), found=np.zeros(st.batch, bool),
                          episode=st.episode.copy(), t=st.t.copy())
        # one player, so an episode that ended before the step limit ended on the treasure
        ended = st.episode != memory["episode"]
        memory["found"] |= ended & (memory["t"] + 1 < eng.limit)
        memory["episode"], memory["t"] = st.episode.copy(), st.t.copy()
        memory["empty"] |= ~st.alive & (value == 0)
        dist = eng.item_distance(st, ctx.player, eng.levels.dist).astype(np.int64)
        dist = np.where(st.alive & ~memory["empty"], dist, np.iinfo(np.int64).max)
        target = np.where(memory["found"], value.argmax(1), dist.argmin(1))
        return eng.descend(st, ctx.player, eng.levels.dist, target), memory

    def end_episode(self, memory: dict, slots: np.ndarray) -> dict:
        return memory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default=None, help="treasure variant (default: the game's default)")
    ap.add_argument("--levels", type=int, default=500)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the result in metarena eval's JSON schema")
    args = ap.parse_args()
    result = evaluate(RecallPlanner(), "treasure", args.variant, levels=args.levels, episodes=args.episodes,
                      seed=args.seed)
    print(json.dumps(result, indent=2) if args.json else format_table(result))


if __name__ == "__main__":
    main()
