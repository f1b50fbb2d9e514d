"""The explicit spatial memory of RL2Net (``map > 0``): it holds the map the player has seen,
in the right cells, and where it was paid; it is cleared at trial starts only; the rollout and
the PPO epochs read it alike; and a network with it trains, saves and plays."""

import numpy as np
import pytest
import torch

from metarena import games
from metarena.agents.ppo import Carry, RL2Config, RL2Envs, collect, setup_torch
from metarena.agents.registry import algorithm, load_agent
from metarena.agents.rl2 import MapMemory, RL2Agent, RL2Net, RL2NetSpec, trial_starts
from metarena.agents.rollout import play
from metarena.games import tiles as T
from metarena.games.batch import BatchEnv
from metarena.games.trial import EPISODE_INDEX, make_trial_env


def _walk(game: str, policy: str, steps: int, batch: int = 12, episodes: int = 64, side: int = 13):
    """Play ``steps`` steps of a reference policy, writing every observation into a map memory;
    returns the memory, its state and the env."""
    mem = MapMemory(side)
    env = make_trial_env(game, batch=batch, episodes=episodes, split="test", seed=0)
    grid, scalars, trial = env.reset()
    state = mem.initial_state(batch)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        _, state = mem.step(torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0]), state)
        if policy == "random":
            actions = rng.integers(0, 5, size=(batch, 1))
        else:
            ctx_env = env.env
            actions = ctx_env.game.policy(policy, ctx_env.engine, ctx_env.state, 0, grid[:, 0], rng)[:, None]
        out = env.step(actions)
        grid, scalars, trial = out.grid, out.scalars, out.trial
        assert not out.trial_done.any(), "the walk must stay inside one trial"
    _, state = mem.step(torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0]), state)
    return mem, state, env


def _cells(mem: MapMemory, state: torch.Tensor):
    code, stood, paid, kind, aux = mem._parts(state)
    m, s, n = mem.margin, mem.side, mem.cells

    def square(x):
        return x[:, :n].reshape(-1, mem.pad, mem.pad)[:, m:m + s, m:m + s].numpy()

    return square(code), square(stood), square(paid), aux.numpy(), kind.numpy()


@pytest.mark.parametrize("game", ["treasure", "coinrush", "rules"])
def test_the_map_holds_the_walls_where_they_are(game):
    mem, state, env = _walk(game, "random", 40, side=17)  # a memory wider than the map
    code, stood, _, aux, _ = _cells(mem, state)
    be = env.env
    size = be.engine.height
    assert (aux[:, 2] == size - 1).all(), "the scale is learnt from the player's moves"
    seen = walls = 0
    for b in range(env.batch):
        tiles = be.engine.levels.tiles[be.state.level[b]]
        assert (code[b, size:, :] == T.WALL).all() and (code[b, :, size:] == T.WALL).all()  # beyond the map
        known = code[b, :size, :size] != mem.unseen
        seen += known.sum()
        walls += ((code[b, :size, :size] == T.WALL) != (tiles == T.WALL))[known].sum()
        row, col = be.engine.rowcol(be.state)
        assert stood[b, row[b, 0], col[b, 0]] > 0  # where the player stands now
    assert seen > 40 * env.batch and walls == 0


def test_the_map_marks_where_the_treasure_paid():
    """The oracle opens the treasure, which ends its episode; the treasure's cell holds the
    reward, and no other cell does (the reward reaches the map as the previous reward of the
    next episode's first observation, and is placed where the last move led)."""
    mem, state, env = _walk("treasure", "oracle", 51)
    _, _, paid, aux, _ = _cells(mem, state)
    levels = env.env.engine.levels
    # where the treasure is one step from the start, every step starts an episode: the player
    # never moves inside one, so the scale, and every cell, stays unknown
    known = np.flatnonzero(aux[:, 2] > 0)
    assert len(known) >= env.batch - 2
    for b in known:
        lv = env.env.state.level[b]
        treasure = levels.item_pos[lv][levels.item_value[lv].argmax()]
        assert paid[b, treasure[0], treasure[1]] > 0
        assert (paid[b] > 0).sum() == 1


def test_network_with_a_map_reads_it_alike_in_rollouts_and_epochs():
    """The memory is cleared where a trial starts; re-unrolling a chunk from its first state,
    with the map recomputed (as the epochs read it), gives the rollout's log-probabilities,
    values and final state."""
    cfg = RL2Config(variant="small", envs=6, chunk=30, episodes=2, pool_size=8, torch_threads=1, seed=1, map=9)
    setup_torch(cfg)
    net = RL2Net(cfg.net_spec())
    envs = RL2Envs(cfg)
    try:
        carry = Carry(envs, net, torch.device("cpu"))
        sampler = torch.Generator().manual_seed(0)
        for _ in range(3):
            chunk = collect(net, envs, carry, cfg.chunk, sampler)
            extra, after = net.memory_inputs(chunk.grid, chunk.scalars, chunk.trial, chunk.first, chunk.h0)
            torch.testing.assert_close(extra, chunk.extra)  # what the rollout read, kept for the epochs
            with torch.no_grad():
                logits, value, h_end = net.unroll(chunk.grid, chunk.scalars, chunk.trial, chunk.first, chunk.h0,
                                                  extra=extra)
            logp = torch.log_softmax(logits, -1).gather(2, chunk.action[..., None]).squeeze(2)
            torch.testing.assert_close(logp, chunk.logp)
            torch.testing.assert_close(value, chunk.value)
            torch.testing.assert_close(after, carry.h[:, net.spec.memory:])
        blank = net.map.initial_state(1)
        fresh = net.memory_inputs(chunk.grid[:1], chunk.scalars[:1], chunk.trial[:1], torch.ones(1, cfg.envs),
                                  carry.h)[1]
        first_write = net.map.step(chunk.grid[0], chunk.scalars[0], chunk.trial[0], blank.repeat(cfg.envs, 1))[1]
        torch.testing.assert_close(fresh, first_write)  # a trial start wipes the map
    finally:
        envs.close()


def test_a_map_network_trains_saves_and_plays(tmp_path):
    cfg = RL2Config(variant="small", envs=16, chunk=16, episodes=2, pool_size=16, total_steps=512,
                    torch_threads=1, map=9, hidden=(32,), memory=16)
    rl2 = algorithm("rl2")
    net, rows = rl2.train(cfg)
    assert len(rows) == 2 and all(np.isfinite(r["policy_loss"]) for r in rows)
    path = rl2.save(tmp_path / "ckpt", net, cfg, rows[-1]["steps"], {})
    agent = load_agent(str(path), game="treasure")
    assert isinstance(agent, RL2Agent) and agent.net.spec.map == 9
    for a, b in zip(agent.net.state_dict().values(), net.state_dict().values()):
        torch.testing.assert_close(a, b)
    memory = agent.begin_trial(3)
    assert memory["h"].shape == (3, net.state_size)
    env = BatchEnv(games.get("treasure"), games.variant("treasure", "small"), batch=3, episodes=2, split="test",
                   pool_size=3)
    result = play(env, [agent], levels=np.arange(3), seed=0)
    assert result.returns.shape[:2] == (3, 2) and np.isfinite(result.returns).all()


def test_the_adapter_network_refuses_a_map():
    from metarena.agents.finetune import FineTuneConfig

    with pytest.raises(ValueError, match="map=9.*leave map at 0"):
        FineTuneConfig(map=9).validate()


def test_the_map_memory_needs_a_side():
    with pytest.raises(ValueError, match="side >= 1"):
        MapMemory(0)
    assert RL2NetSpec().map == 0 and RL2Net(RL2NetSpec()).state_size == RL2NetSpec().memory


def test_the_map_learns_what_each_kind_pays():
    """coinrush's hidden factor is the value of each coin colour: every colour the map has a
    value for is the level's value of that colour, and the uninformed planner, which samples
    each colour, has taught it some."""
    mem, state, env = _walk("coinrush", "uninformed", 40)
    *_, kind = _cells(mem, state)
    levels = env.env.engine.levels
    learnt = 0
    for b in range(env.batch):
        lv = env.env.state.level[b]
        tiles = levels.tiles[lv]
        for pos, value in zip(levels.item_pos[lv], levels.item_value[lv]):
            got = kind[b, tiles[pos[0], pos[1]]]
            assert got in (0.0, value)
            learnt += got != 0
        assert kind[b, T.FLOOR] == 0 and kind[b, T.WALL] == 0 and kind[b, mem.unseen] == 0
    assert learnt > 0


def test_the_paid_target_leads_back_to_the_treasure():
    """After the oracle's first episode, the map's "paid" target points from the player to the
    treasure it opened (the player has not stood there in the new episode); the "unseen"
    target points at a cell the map holds as never seen."""
    mem = MapMemory(13)
    env = make_trial_env("treasure", batch=8, episodes=4, split="test", seed=0)
    grid, scalars, trial = env.reset()
    state = mem.initial_state(env.batch)
    rng = np.random.default_rng(0)
    ctx_env = env.env
    checked = 0
    for _ in range(40):
        new = trial_starts(trial[:, 0])
        state[torch.as_tensor(new)] = mem.initial_state(int(new.sum()))  # a new level: a new map
        feats, state = mem.step(torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0]), state)
        paid_t = feats[:, -13:-9]  # the "paid" target: dy, dx, distance, found
        unseen_t = feats[:, -5:-1]
        code, _, paid, aux, _ = _cells(mem, state)
        for b in np.flatnonzero((trial[:, 0, EPISODE_INDEX] > 0) & (aux[:, 2] > 0)):
            lv = ctx_env.state.level[b]
            levels = ctx_env.engine.levels
            treasure = levels.item_pos[lv][levels.item_value[lv].argmax()]
            row, col = ctx_env.engine.rowcol(ctx_env.state)
            side = float(mem.side)
            if (row[b, 0], col[b, 0]) != tuple(treasure) and paid[b, treasure[0], treasure[1]] > 0:
                assert paid_t[b, 3] == 1
                assert round(float(paid_t[b, 0]) * side) == treasure[0] - row[b, 0]
                assert round(float(paid_t[b, 1]) * side) == treasure[1] - col[b, 0]
                checked += 1
            if unseen_t[b, 3] == 1:
                r, c = row[b, 0] + round(float(unseen_t[b, 0]) * side), col[b, 0] + round(float(unseen_t[b, 1]) * side)
                assert code[b, r, c] == mem.unseen
        actions = ctx_env.game.policy("oracle", ctx_env.engine, ctx_env.state, 0, grid[:, 0], rng)[:, None]
        out = env.step(actions)
        grid, scalars, trial = out.grid, out.scalars, out.trial
    assert checked > 10


def test_a_step_in_place_is_the_step():
    """The agent's and the rollout's step of a map network writes its state where it is; the
    result is the plain step's."""
    net = RL2Net(RL2NetSpec(hidden=(32,), memory=16, map=9))
    env = make_trial_env("coinrush", "small", batch=6, episodes=2, split="test", seed=0)
    grid, scalars, trial = (torch.tensor(x[:, 0]) for x in env.reset())
    h = net.initial_state(6)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for _ in range(12):
            logits, value, plain = net.step(grid, scalars, trial, h)
            mine = h.clone()
            logits2, value2, same = net.step(grid, scalars, trial, mine, inplace=True)
            assert same.data_ptr() == mine.data_ptr()
            torch.testing.assert_close(same, plain)
            torch.testing.assert_close(logits2, logits)
            torch.testing.assert_close(value2, value)
            h = plain
            out = env.step(rng.integers(0, 5, size=(6, 1)))
            grid, scalars, trial = (torch.tensor(x[:, 0]) for x in (out.grid, out.scalars, out.trial))
