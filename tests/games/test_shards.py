"""ShardedBatchEnv: the same results as plain BatchEnvs over the same shards, across processes."""

import numpy as np
import pytest

from metarena import games
from metarena.games.batch import BatchEnv
from metarena.games.shards import ShardedBatchEnv


def test_shards_match_plain_batch_envs():
    v = games.variant("coinrush", "small")
    batch, seed = 24, 11
    with ShardedBatchEnv("coinrush", v, batch=batch, shards=2, players=2, seed=seed, pool_size=16,
                         episodes=2) as sharded:
        plain = [BatchEnv(games.get("coinrush"), v, batch=12, players=2, pool_size=16, episodes=2)
                 for _ in range(2)]
        g, s = sharded.reset()
        for i, env in enumerate(plain):
            pg, ps = env.reset(seed=np.random.SeedSequence([seed, i]))
            np.testing.assert_array_equal(g[12 * i:12 * (i + 1)], pg)
            np.testing.assert_array_equal(s[12 * i:12 * (i + 1)], ps)
        rng = np.random.default_rng(0)
        ended = 0
        for step in range(80):
            if step == 30:  # new trials in a few slots of each shard
                g, s = sharded.new_trials(np.array([0, 5, 13, 20]))
                outs = [env.new_trials(np.array(slots)) for env, slots in zip(plain, ([0, 5], [1, 8]))]
                np.testing.assert_array_equal(g, np.concatenate([o[0] for o in outs]))
                np.testing.assert_array_equal(s, np.concatenate([o[1] for o in outs]))
            actions = rng.integers(0, 5, (batch, 2))
            g, s, r, term, trunc, info = sharded.step(actions)
            outs = [env.step(actions[12 * i:12 * (i + 1)]) for i, env in enumerate(plain)]
            np.testing.assert_array_equal(g, np.concatenate([o[0] for o in outs]))
            np.testing.assert_array_equal(r, np.concatenate([o[2] for o in outs]))
            np.testing.assert_array_equal(trunc, np.concatenate([o[4] for o in outs]))
            if "final" in info:
                ended += len(info["final"]["slots"])
                want = np.concatenate([o[5]["final"]["score"] for o in outs if "final" in o[5]])
                np.testing.assert_array_equal(info["final"]["score"], want)
        assert ended >= batch, "every slot finished at least one episode"


def test_shards_validate_and_close():
    v = games.variant("treasure", "small")
    with pytest.raises(ValueError, match="shards"):
        ShardedBatchEnv("treasure", v, batch=2, shards=3)
    env = ShardedBatchEnv("treasure", v, batch=4, shards=2, pool_size=8, seed=0)
    env.reset()
    env.step(np.zeros((4, 1), dtype=int))
    procs = list(env._procs)
    env.close()
    env.close()  # twice is fine
    assert not any(p.is_alive() for p in procs)
