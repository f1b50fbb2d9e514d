"""The batched engine core: movement, collisions, observations, episodes, determinism."""

import numpy as np
import pytest

from metarena import games
from metarena.games import tiles as T
from metarena.games.engine import VIEW, Engine, Level, LevelBatch

STAY, UP, DOWN, LEFT, RIGHT = range(5)


def open_level(size=7, spawn=((1, 1), (1, 3), (3, 1), (3, 3)), items=((5, 5),), values=(1.0,), tile=T.CHEST):
    """A hand-made level: an empty room framed by walls."""
    tiles = np.full((size, size), T.FLOOR, dtype=np.uint8)
    tiles[0, :] = tiles[-1, :] = tiles[:, 0] = tiles[:, -1] = T.WALL
    items = np.array(items)
    tiles[items[:, 0], items[:, 1]] = tile
    return Level("treasure", "hand", 0, tiles, np.array(spawn), items, np.array(values, dtype=np.float32))


def engine_for(level, players=1, game="treasure", batch=1):
    g = games.get(game)
    return Engine(g, games.variant(game, "small"), LevelBatch.stack([level]), batch, players)


def rowcol(eng, st):
    r, c = eng.rowcol(st)
    return list(zip(r[0].tolist(), c[0].tolist()))


def test_walls_block_moves():
    eng = engine_for(open_level())
    st = eng.new_state(np.zeros(1, dtype=int))
    eng.step(st, np.array([[UP]]))
    assert rowcol(eng, st) == [(1, 1)]
    eng.step(st, np.array([[RIGHT]]))
    assert rowcol(eng, st) == [(1, 2)]


def test_players_never_share_a_cell():
    # players at (1,1) and (1,3) both move into (1,2): both cancelled
    eng = engine_for(open_level(), players=2)
    st = eng.new_state(np.zeros(1, dtype=int))
    eng.step(st, np.array([[RIGHT, LEFT]]))
    assert rowcol(eng, st) == [(1, 1), (1, 3)]
    # a swap is cancelled too
    eng.step(st, np.array([[RIGHT, STAY]]))
    assert rowcol(eng, st) == [(1, 2), (1, 3)]
    eng.step(st, np.array([[RIGHT, LEFT]]))
    assert rowcol(eng, st) == [(1, 2), (1, 3)]
    # following a player who leaves is allowed
    eng.step(st, np.array([[RIGHT, RIGHT]]))
    assert rowcol(eng, st) == [(1, 3), (1, 4)]
    # moving into a player who stays is cancelled
    eng.step(st, np.array([[RIGHT, STAY]]))
    assert rowcol(eng, st) == [(1, 3), (1, 4)]


def test_cancellations_cascade():
    # a chain: p0 (1,1) -> (1,2) <- p1 (1,3) conflict; p2 at (2,2)... use a line instead:
    # p1 at (1,3) wants (1,2), p0 at (1,1) wants (1,2): both cancelled; p2 at (1,4) follows p1 -> cancelled
    lv = open_level(spawn=((1, 1), (1, 3), (1, 4), (5, 1)))
    eng = engine_for(lv, players=3)
    st = eng.new_state(np.zeros(1, dtype=int))
    eng.step(st, np.array([[RIGHT, LEFT, LEFT]]))
    assert rowcol(eng, st) == [(1, 1), (1, 3), (1, 4)]


def test_observation_is_egocentric_one_hot():
    eng = engine_for(open_level(items=((3, 2),)), players=2)
    st = eng.new_state(np.zeros(1, dtype=int))
    grid, scalars = eng.observe(st)
    assert grid.shape == (1, 2, VIEW, VIEW, T.NUM_CHANNELS) and grid.dtype == np.uint8
    # every cell has exactly one tile channel, plus the player channel where another player stands
    assert (grid[..., : T.NUM_TILES].sum(-1) == 1).all()
    c = VIEW // 2
    me = grid[0, 0]
    assert me[c, c, T.NUM_CHANNELS - 1] == 0, "the observer is not marked at the centre"
    assert me[c, c + 2, T.NUM_CHANNELS - 1] == 1, "player 2 stands two cells to the right"
    assert me[c - 1, c, T.WALL] == 1 and me[0, 0, T.WALL] == 1, "walls and outside-the-map are walls"
    assert me[c + 2, c + 1, T.CHEST] == 1 and grid[0, 1, c + 2, c - 1, T.CHEST] == 1
    assert grid[0, :, :, :, T.CHEST].sum() == 2
    assert scalars.shape == (1, 2, 4)
    assert scalars[0, 0, 0] == 1.0 and scalars[0, 0, 1] == 0.0
    assert scalars[0, 0, 2] == pytest.approx(1 / 6) and scalars[0, 1, 3] == pytest.approx(3 / 6)


@pytest.mark.parametrize("game,players", [("treasure", 1), ("coinrush", 4), ("cycles", 2), ("cycles", 1)])
def test_the_compiled_observation_is_the_numpy_one(game, players):
    """observe() copies one-hot words in a compiled loop; its numpy path gives the same grid."""
    env = games.make_batch_env(game, "small", batch=16, players=players, seed=1, pool_size=8)
    env.reset(seed=1)
    eng, st = env.engine, env.state
    assert eng._words is not None, "the compiled path is the one every game takes"
    rng = np.random.default_rng(1)
    for _ in range(30):
        env.step(rng.integers(0, 5, (16, players)))
        fast = [a.copy() for a in eng.observe(st)]
        words, eng._words = eng._words, None
        try:
            slow = eng.observe(st)
        finally:
            eng._words = words
        np.testing.assert_array_equal(fast[0], slow[0])
        np.testing.assert_array_equal(fast[1], slow[1])
        assert (fast[0][..., : T.NUM_TILES].sum(-1) == 1).all()
        assert fast[0][:, :, VIEW // 2, VIEW // 2, T.NUM_CHANNELS - 1].sum() == 0  # the observer is not marked


def test_treasure_reward_and_termination():
    eng = engine_for(open_level(items=((1, 3), (3, 1)), values=(0.0, 1.0)))
    st = eng.new_state(np.zeros(1, dtype=int))
    r, term, trunc = eng.step(st, np.array([[RIGHT]]))
    r, term, trunc = eng.step(st, np.array([[RIGHT]]))  # opens the empty chest
    assert r[0, 0] == 0 and not term[0]
    grid, _ = eng.observe(st)
    assert st.cells[0].reshape(-1)[st.pos[0, 0] - eng._base[0]] == T.CHEST_OPEN  # alone: no PLAYER bit
    for a in (LEFT, LEFT, DOWN, DOWN):
        r, term, trunc = eng.step(st, np.array([[a]]))
    assert term[0] and not trunc[0]
    assert r[0, 0] == pytest.approx(1 - 0.9 * 6 / eng.limit)


def test_restart_resets_everything():
    """Nothing from an earlier episode shows in the observation of the next one."""
    env = games.make_batch_env("treasure", "small", batch=8, seed=3, episodes=3, pool_size=16)
    first = [a.copy() for a in env.reset(seed=3)]
    rng = np.random.default_rng(0)
    restarted = {}
    for _ in range(500):
        grid, scalars, _, _, _, info = env.step(rng.integers(0, 5, (8, 1)))
        final = info.get("final")
        if final is not None:
            for s, ep in zip(final["slots"], final["episode"]):
                if ep == 0 and s not in restarted:
                    restarted[s] = (grid[s].copy(), scalars[s].copy())
        if len(restarted) == 8:
            break
    assert len(restarted) == 8
    for s, (g, sc) in restarted.items():
        np.testing.assert_array_equal(g, first[0][s])
        np.testing.assert_array_equal(sc, first[1][s])


def test_coinrush_values_and_respawn():
    lv = open_level(items=((1, 2), (1, 3), (1, 4)), values=(1.0, -1.0, 0.5), tile=T.COIN_RED)
    lv.tiles[1, 3], lv.tiles[1, 4] = T.COIN_GREEN, T.COIN_BLUE
    lv.game = "coinrush"
    g = games.get("coinrush")
    v = games.variant("coinrush", "small")
    eng = Engine(g, v, LevelBatch.stack([lv]), 1, 1)
    st = eng.new_state(np.zeros(1, dtype=int))
    rewards = [float(eng.step(st, np.array([[RIGHT]]))[0][0, 0]) for _ in range(3)]
    assert rewards == [1.0, -1.0, 0.5]
    assert not st.alive[0].any()
    back = {}
    for t in range(4, 4 + v.respawn + 2):  # the player stays on the third coin's cell
        eng.step(st, np.array([[STAY]]))
        for k in np.flatnonzero(st.alive[0]):
            back.setdefault(int(k), t)
    # a coin taken at step t is back at step t + respawn; the one under the player waits
    assert back == {0: 1 + v.respawn, 1: 2 + v.respawn}
    r, _, _ = eng.step(st, np.array([[LEFT]]))  # leaves the third coin's cell, takes the second again
    assert r[0, 0] == -1.0
    assert st.alive[0].tolist() == [True, False, True]


def test_levels_are_pure_functions_of_seed():
    for name in games.names():
        a, b, c = games.level(name, None, 7), games.level(name, None, 7), games.level(name, None, 8)
        np.testing.assert_array_equal(a.tiles, b.tiles)
        np.testing.assert_array_equal(a.item_value, b.item_value)
        assert not (np.array_equal(a.tiles, c.tiles) and np.array_equal(a.item_value, c.item_value))


def test_no_global_random_state():
    np.random.seed(1234)
    before = np.random.get_state()[1].copy()
    for name in games.names():
        env = games.make_batch_env(name, "small", batch=4, players=2, learners=1, others="scripted", seed=0,
                                   pool_size=8)
        env.reset()
        for _ in range(30):
            env.step(np.zeros((4, 1), dtype=int))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_same_seed_same_rollout():
    def rollout(seed):
        env = games.make_batch_env("coinrush", "small", batch=16, players=3, learners=1, others="random",
                                   seed=seed, pool_size=32)
        env.reset()
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(40):
            grid, scalars, rew, *_ = env.step(rng.integers(0, 5, (16, 1)))
            out.append((grid.copy(), rew.copy()))
        return out

    a, b, c = rollout(1), rollout(1), rollout(2)
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="players"):
        games.make_batch_env("treasure", batch=1, players=5)
    with pytest.raises(ValueError, match="policy"):
        games.make_batch_env("treasure", batch=1, players=2, learners=1, others="genius")
    env = games.make_batch_env("treasure", "small", batch=2, pool_size=4)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((2, 1), dtype=int))
    env.reset()
    with pytest.raises(ValueError, match="learner"):
        env.step(np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="stay, up, down, left, right"):
        env.step(np.full((2, 1), 5))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        env.step(np.full((2, 1), -1))
