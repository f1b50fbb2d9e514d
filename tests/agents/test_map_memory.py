"""The explicit spatial memory of RL2Net (``map > 0``): it holds the map the player has seen,
in the right cells, and where it was paid; it is cleared at trial starts only; the rollout and
the PPO epochs read it alike; and a network with it trains, saves and plays."""

import heapq

import numpy as np
import pytest
import torch

from metarena import games
from metarena.agents.base import Observation
from metarena.agents.ppo import Carry, RL2Config, RL2Envs, collect, setup_torch
from metarena.agents.registry import algorithm, load_agent, make_agent
from metarena.agents.rl2 import MapMemory, RL2Agent, RL2Net, RL2NetSpec, map_threads, set_map_threads, trial_starts
from metarena.agents.rollout import play
from metarena.games import tiles as T
from metarena.games.batch import BatchEnv
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_ACTION, PREV_REWARD, make_trial_env


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


class TorchMap:
    """The map's step written with torch tensor operations (how it was first written, before the
    compiled loop of ``agents/_map_kernels.py``): the reference the kernel must equal, targets by
    Manhattan distance."""

    def __init__(self, mem: MapMemory):
        self.mem = m = mem
        r, k, pad = m.radius, m.reach, m.pad
        dy, dx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
        self.window = (dy * pad + dx).reshape(-1)
        dy, dx = torch.meshgrid(torch.arange(-k, k + 1), torch.arange(-k, k + 1), indexing="ij")
        dy, dx = dy.reshape(-1), dx.reshape(-1)
        self.read_at = dy * pad + dx
        self.block = ((dy + k) // m.BLOCK) * m.blocks + (dx + k) // m.BLOCK
        rows, cols = torch.meshgrid(torch.arange(m.side), torch.arange(m.side), indexing="ij")
        self.rows, self.cols = rows.reshape(-1).float(), cols.reshape(-1).float()
        self.codes = torch.arange(m.tiles, dtype=torch.float32)
        self.moves = torch.as_tensor(m._moves)
        self.sort, self.item = torch.as_tensor(m._sort), torch.as_tensor(m._item)

    def own(self, x):
        m = self.mem
        return x[:, : m.cells].view(-1, m.pad, m.pad)[:, m.margin:m.margin + m.side, m.margin:m.margin + m.side].reshape(
            x.shape[0], -1)

    def centre(self, x):
        m = self.mem
        n, k, r = 2 * m.reach + 1, m.reach, m.radius
        return x.view(-1, n, n)[:, k - r:k + r + 1, k - r:k + r + 1].reshape(x.shape[0], -1)

    def bound(self, code, slots, old, new):
        m = self.mem
        full = code[slots, : m.cells].view(-1, m.pad, m.pad)
        own = full[:, m.margin:m.margin + m.side, m.margin:m.margin + m.side]
        rows = torch.arange(m.side)
        lim = torch.maximum(rows[:, None], rows[None, :])
        own.copy_(torch.where(lim <= new[:, None, None], torch.where(lim <= old[:, None, None], own, float(m.unseen)),
                              float(m.WALL)))
        code[slots, : m.cells] = full.reshape(len(slots), -1)

    def step(self, grid, scalars, trial, state):
        m = self.mem
        code, stood, paid, kind, aux = m._parts(state)
        trash = m.cells
        row, col = scalars[:, 2].float(), scalars[:, 3].float()
        moved = torch.maximum((row - aux[:, 3]).abs(), (col - aux[:, 4]).abs())
        inside = trial[:, EPISODE_START] < 0.5
        ok = (aux[:, 3] >= 0) & inside & (moved > 1e-6)
        scale = torch.maximum(aux[:, 2], torch.where(ok, torch.round(1.0 / moved.clamp_min(1e-6)), 0.0))
        known = scale > 0
        grow = torch.nonzero(scale > aux[:, 2]).squeeze(1)
        if len(grow):
            self.bound(code, grow, aux[grow, 2], scale[grow])
        r = torch.round(row * scale).clamp(0, m.side - 1).long() + m.margin
        c = torch.round(col * scale).clamp(0, m.side - 1).long() + m.margin
        here = torch.where(known, r * m.pad + c, trash)
        reward = trial[:, PREV_REWARD].float()
        last = aux[:, 0].long() * m.pad + aux[:, 1].long()
        led = last + (trial[:, PREV_ACTION].float() @ self.moves).long()
        led = torch.where(code.gather(1, led.clamp(0, trash)[:, None])[:, 0] == m.WALL, last, led)
        at = torch.where(reward != 0, torch.where(inside, here, torch.where(aux[:, 0] >= 0, led, trash)), trash)
        item = code.gather(1, at[:, None])[:, 0].long()
        item = torch.where((at != trash) & self.item[item], item, m.kinds)
        kind.scatter_(1, item[:, None], reward[:, None])
        paid.scatter_(1, at[:, None], reward[:, None])
        window = torch.where(known[:, None], here[:, None] + self.window, trash)
        seen = (grid.flatten(1, 2)[..., : m.tiles].float() * self.codes).sum(-1)
        code.scatter_(1, window, seen)
        stamp = 1.0 + trial[:, EPISODE_INDEX].float()
        stood.scatter_(1, here[:, None], stamp[:, None])
        aux[:, 0] = torch.where(known, r.float(), aux[:, 0])
        aux[:, 1] = torch.where(known, c.float(), aux[:, 1])
        aux[:, 2] = scale
        aux[:, 3], aux[:, 4] = row, col
        return self.read(state, r, c, stamp, known), state

    def read(self, state, r, c, stamp, known):
        m = self.mem
        code, stood, paid, kind, _ = m._parts(state)
        b = code.shape[0]
        idx = (r * m.pad + c)[:, None] + self.read_at
        got_code, got_stood, got_paid = code.gather(1, idx), (stood.gather(1, idx) > 0).float(), paid.gather(1, idx)
        pays = kind.gather(1, self.centre(got_code).long())
        fine = torch.stack([self.centre(got_stood), self.centre(got_paid), pays], 2)
        nb, per, sorts = m.blocks ** 2, float(m.BLOCK ** 2), len(m.SORTS)
        block = self.block.expand(b, -1)
        sort = self.sort.expand(b, -1).gather(1, got_code.long())
        hist = torch.zeros(b, nb * sorts).scatter_add_(1, block * sorts + sort, torch.ones_like(got_code))
        sums = [torch.zeros(b, nb).scatter_add_(1, block, x)
                for x in (got_stood, got_paid.clamp_min(0), got_paid.clamp_max(0))]
        coarse = torch.cat([hist.view(b, nb, sorts) / per, sums[0][..., None] / per,
                            sums[1][..., None], sums[2][..., None]], 2)
        in_code, in_stood, in_paid = (self.own(x) for x in (code, stood, paid))
        fresh = (in_stood - stamp[:, None]).abs() > 1e-4
        wanted = (in_paid > 0) & fresh, kind.gather(1, in_code.long()) > 0, in_code == m.unseen
        dr = self.rows - (r - m.margin).float()[:, None]
        dc = self.cols - (c - m.margin).float()[:, None]
        dist = dr.abs() + dc.abs()
        side, far = float(m.unit), float(4 * m.side)
        targets = []
        for mask in wanted:
            best, at = torch.where(mask, dist, far).min(1)
            found = best < far
            targets.append(torch.stack([dr.gather(1, at[:, None])[:, 0] / side, dc.gather(1, at[:, None])[:, 0] / side,
                                        best / (2 * side), torch.ones_like(best)], 1) * found[:, None])
        flag = known[:, None].float()
        return torch.cat([fine.reshape(b, -1), coarse.reshape(b, -1), *targets, flag], 1) * flag


@pytest.mark.parametrize("game,side,unit", [("treasure", 13, 0), ("treasure", 21, 0), ("coinrush", 9, 0),
                                            ("rules", 13, 0), ("drift", 13, 0), ("cycles", 13, 0),
                                            ("treasure", 21, 13)])
def test_the_compiled_step_equals_the_tensor_step(game, side, unit):
    """The compiled map step writes the same state and reads the same features as the same
    step written with tensor operations, over trials of random play (new levels included)."""
    mem = MapMemory(side, unit=unit)
    ref = TorchMap(mem)
    batch = 16
    env = make_trial_env(game, batch=batch, episodes=2, split="test", seed=3)
    grid, scalars, trial = env.reset()
    mine, theirs = mem.initial_state(batch), mem.initial_state(batch)
    rng = np.random.default_rng(1)
    body = torch.ones(mem.size, dtype=torch.bool)
    body[mem.cells] = False  # the scratch cell of the tile codes takes writes that no read sees
    for t in range(120):
        new = torch.as_tensor(trial_starts(trial[:, 0]))
        mine[new], theirs[new] = mem.initial_state(int(new.sum())), mem.initial_state(int(new.sum()))
        args = torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0])
        got, mine = mem.step(*args, mine)
        want, theirs = ref.step(*args, theirs)
        assert torch.equal(got, want), f"step {t}: the features differ"
        assert torch.equal(mine[:, body], theirs[:, body]), f"step {t}: the states differ"
        out = env.step(rng.integers(0, 5, size=(batch, 1)))
        grid, scalars, trial = out.grid, out.scalars, out.trial
    assert (mine[:, -3] > 0).all(), "every slot learnt its scale"


@pytest.mark.parametrize("game", ["rules", "drift"])
def test_the_map_steps_alike_on_several_threads(game):
    """Split over threads (``set_map_threads``), the map step writes the same state and reads
    the same features as on one, for a state that is a slice of a wider one, as a network's is."""
    mem = MapMemory(13, route=True, controls=True, steer=True, items=True, sample=True, per_kind=True,
                    careful=True, tally=True, avoid_wind=True)
    batch = 2 * MapMemory.SLOTS_PER_THREAD + 5
    env = make_trial_env(game, batch=batch, episodes=2, split="test", seed=2)
    grid, scalars, trial = env.reset()
    wide = torch.zeros(2, batch, 7 + mem.size)
    states = [w[:, 7:] for w in wide]  # views, as RL2Net keeps the map after the GRU state
    for st in states:
        st.copy_(mem.initial_state(batch))
    rng = np.random.default_rng(0)
    before = map_threads()
    try:
        for t in range(60):
            args = torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0])
            read = []
            for threads, st in zip((1, 3), states):
                set_map_threads(threads)
                read.append(mem.step(*args, st)[0])
            assert torch.equal(read[0], read[1]), f"step {t}: the features differ"
            assert torch.equal(wide[0], wide[1]), f"step {t}: the states differ"
            out = env.step(rng.integers(0, 5, size=(batch, 1)))
            grid, scalars, trial = out.grid, out.scalars, out.trial
    finally:
        set_map_threads(before)
    assert (read[0][:, -1] == 1).all(), "every slot learnt its scale: the reads were not all zeros"
    with pytest.raises(ValueError, match="at least one thread"):
        set_map_threads(0)


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
            features = net.features(chunk.grid, chunk.scalars, chunk.trial, extra)
            torch.testing.assert_close(features, chunk.features)  # what the rollout read, kept for the epochs
            assert torch.equal(features[..., -extra.shape[-1]:], extra)  # the map's reading last
            with torch.no_grad():
                logits, value, h_end = net.unroll_features(chunk.features, chunk.first, chunk.h0)
            torch.testing.assert_close(h_end, carry.h[:, :net.spec.memory])
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


@pytest.mark.parametrize("game", ["coinrush", "treasure"])
def test_a_wider_map_measured_in_the_narrow_side_reads_the_same_on_the_levels_that_fit(game):
    """A 21-cell map whose targets are measured in 13 cells reads exactly what a 13-cell map reads
    on levels 13 cells wide (the cells beyond the level are walls in both), and the plain 21-cell
    map reads other offsets: this is what lets an agent trained on a narrow map play with a wide
    one (scripts/widen_map.py)."""
    narrow, wide, plain = MapMemory(13, route=True), MapMemory(21, route=True, unit=13), MapMemory(21, route=True)
    batch = 8
    env = make_trial_env(game, batch=batch, episodes=2, split="test", seed=5)
    assert games.variant(game, None).params["size"] == 13
    grid, scalars, trial = env.reset()
    states = [m.initial_state(batch) for m in (narrow, wide, plain)]
    rng = np.random.default_rng(2)
    differ = False
    for t in range(100):
        args = torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0])
        (a, states[0]), (b, states[1]), (c, states[2]) = (m.step(*args, s) for m, s in
                                                          zip((narrow, wide, plain), states))
        assert torch.equal(a, b), f"step {t}: the widened map reads otherwise"
        differ |= not torch.equal(a, c)
        out = env.step(rng.integers(0, 5, size=(batch, 1)))
        grid, scalars, trial = out.grid, out.scalars, out.trial
    assert differ, "the plain wide map measures its targets in its own side"


def test_the_adapter_network_refuses_a_map():
    from metarena.agents.finetune import FineTuneConfig

    with pytest.raises(ValueError, match="map=9.*leave map at 0"):
        FineTuneConfig(map=9).validate()


def test_the_map_memory_needs_a_side():
    with pytest.raises(ValueError, match="side >= 1"):
        MapMemory(0)
    for unit in (-1, 14):
        with pytest.raises(ValueError, match="unit is a side in cells from 1 to its own side 13"):
            MapMemory(13, unit=unit)
    assert MapMemory(13).unit == 13 and MapMemory(21, unit=13).unit == 13
    assert RL2NetSpec().map == 0 and RL2Net(RL2NetSpec()).state_size == RL2NetSpec().memory
    with pytest.raises(ValueError, match="route = true needs a map"):
        RL2Config(route=True).validate()
    with pytest.raises(ValueError, match="controls_decay = 0.8 needs the controls' counts"):
        RL2Config(map=9, controls_decay=0.8).validate()
    with pytest.raises(ValueError, match="controls_decay"):
        RL2Config(map=9, controls=True, controls_decay=1.5).validate()
    spec = RL2Config(map=9, controls=True, controls_decay=0.8).net_spec()
    assert RL2Net(spec).map.decay == np.float32(0.8)


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


def _bfs(open_: np.ndarray, start: tuple[int, int], stop: np.ndarray | None = None) -> np.ndarray:
    """Steps from ``start`` to every cell of a square over the ``open_`` cells (-1: none); a
    ``stop`` cell ends a walk, none lies on one."""
    side = open_.shape[0]
    dist = np.full(open_.shape, -1)
    dist[start] = 0
    frontier = [start]
    while frontier:
        nxt = []
        for i, j in frontier:
            if stop is not None and stop[i, j] and (i, j) != start:
                continue
            for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
                if 0 <= a < side and 0 <= b < side and dist[a, b] < 0 and open_[a, b]:
                    dist[a, b] = dist[i, j] + 1
                    nxt.append((a, b))
        frontier = nxt
    return dist


def _bfs_round(open_: np.ndarray, start: tuple[int, int], stop: np.ndarray | None, wind: np.ndarray) -> np.ndarray:
    """As :func:`_bfs`, crossing a ``wind`` cell only to reach what no walk round the wind
    reaches: first every cell reached with the wind cells ending walks, then the rest by the
    fewest steps on from the wind cells so reached (a search by steps, heap-ordered)."""
    held = wind.copy()
    held[start] = False
    near = _bfs(open_, start, held if stop is None else (stop | held))
    dist = near.copy()
    heap = [(int(near[i, j]), i, j) for i, j in zip(*np.nonzero(held & (near >= 0)))]
    heapq.heapify(heap)
    while heap:
        d, i, j = heapq.heappop(heap)
        if stop is not None and stop[i, j] and near[i, j] < 0:
            continue
        for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= a < open_.shape[0] and 0 <= b < open_.shape[1] and dist[a, b] < 0 and open_[a, b]:
                dist[a, b] = d + 1
                heapq.heappush(heap, (d + 1, a, b))
    return dist


@pytest.mark.parametrize("game,players,items,give_way,sample,per_kind,careful,wind,fallback", [
    ("treasure", 1, False, False, False, False, False, False, False),
    ("coinrush", 1, False, False, False, False, False, False, False),
    ("treasure", 2, False, False, False, False, False, False, False),
    ("treasure", 1, True, False, False, False, False, False, False),
    ("drift", 1, True, False, False, False, False, False, False),
    ("rules", 2, True, False, False, False, False, False, False),
    ("treasure", 2, False, True, False, False, False, False, False),
    ("rules", 2, True, True, False, False, False, False, False),
    ("rules", 1, False, False, True, False, False, False, False),
    ("coinrush", 1, True, False, True, False, False, False, False),
    ("rules", 2, True, True, True, False, False, False, False),
    ("rules", 1, False, False, True, True, False, False, False),
    ("coinrush", 1, True, False, True, True, False, False, False),
    ("rules", 2, True, True, True, True, False, False, False),
    ("rules", 1, True, False, True, True, True, False, False),
    ("coinrush", 1, False, False, True, True, True, False, False),
    ("drift", 1, True, False, False, False, False, True, False),
    ("rules", 1, True, False, True, True, True, False, True),
    ("rules", 2, True, True, True, True, True, False, True)])
def test_route_targets_are_the_nearest_by_walk_and_their_first_move_is_on_a_shortest_walk(game, players, items,
                                                                                         give_way, sample, per_kind,
                                                                                         careful, wind, fallback):
    """With ``route``, each target is a cell of its kind at the fewest steps over the cells not
    known to block (unseen cells open) and where no other player stands in view, and its first
    move leads to a cell one step nearer. With ``items`` a fourth target is the nearest item
    seen and not spent (drift's goal, a closed chest, an object). With ``give_way`` a target
    kind that the players in view cut off is the nearest by the walks through them, flagged;
    every other target reads as without it, its flag 0. With ``sample`` two more targets are the
    nearest item of a kind that has paid nothing yet and of the kind that cost least, each
    target reads what its kind pays, and no walk passes over an item of a kind that has cost.
    With ``per_kind`` every kind of item has a target of its own after these, in code order.
    With ``careful`` no walk passes over an item of a kind that has paid nothing yet either.
    With ``avoid_wind`` a walk crosses wind only to reach what no walk round it reaches.
    With ``fallback`` a target no careful walk reaches is the nearest by the walks over the kinds
    not tried yet (never over one that has cost), flagged after the give-way flag."""
    mem = MapMemory(13, route=True, items=items, give_way=give_way, sample=sample, per_kind=per_kind,
                    careful=careful, avoid_wind=wind, fallback=fallback)
    kinds = np.flatnonzero(mem._item) if per_kind else []
    plain = MapMemory(13)
    width = 8 + sample + give_way + fallback  # per target: offsets, distance, found, first move (, its pay) (, cut
    # off) (, over an untried kind)
    assert mem.features == plain.features + (width - 4) * len(mem.TARGETS) + width * (items + 2 * sample + len(kinds))
    batch = 16 if give_way else 8
    # the scripted planner never gives way: it meets the uninformed one nose to nose more often
    env = make_trial_env(game, batch=batch, episodes=4, split="test", seed=0, players=players, learners=1,
                         others="scripted" if give_way else "uninformed",
                         **({"pool_size": 400} if fallback else {}))
    # the planner tries every kind it meets: the fallback's walks are met where the shipped agent
    # plays levels whose exit lies behind objects nobody has tried (test levels 90, 260, 332, 337)
    driver = make_agent("rl2", game=game, seed=0) if fallback else None
    driven = driver.begin_trial(batch) if fallback else None
    grid, scalars, trial = env.reset(levels=np.resize([90, 260, 332, 337], batch)) if fallback else env.reset()
    state = mem.initial_state(batch)
    rng = np.random.default_rng(0)
    ctx_env = env.env
    blocks = np.isin(np.arange(mem.kinds), [T.WALL, T.TRAIL, T.TRAP])
    checked = moves = busy = found_items = cut = rerouted = bold = 0
    found = np.zeros(6 + len(kinds), int)
    for _ in range(60):
        new = trial_starts(trial[:, 0])
        state[torch.as_tensor(new)] = mem.initial_state(int(new.sum()))
        feats, state = mem.step(torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0]), state)
        code, stood, paid, aux, kind = _cells(mem, state)
        row, col = ctx_env.engine.rowcol(ctx_env.state)
        stamp = 1.0 + trial[:, 0, EPISODE_INDEX]
        for b in np.flatnonzero(aux[:, 2] > 0):
            me = (row[b, 0], col[b, 0])
            codes = code[b].astype(int)
            through = ~blocks[codes]
            open_ = through.copy()
            pays = kind[b][codes]
            stop = mem._item[codes] & ((pays < 0) | (careful & (pays == 0))) if sample else None
            stop_costs = mem._item[codes] & (pays < 0) if sample else None  # the fallback's walks
            costs = kind[b][:-1][mem._item[:-1] & (kind[b][:-1] < 0)]
            for p in range(1, players):  # another player in view blocks the way
                dy, dx = row[b, p] - me[0], col[b, p] - me[1]
                if max(abs(dy), abs(dx)) <= mem.radius:
                    open_[row[b, p], col[b, p]] = False
                    busy += 1
            windy = codes == T.WIND
            search = (lambda cells, at, ends: _bfs_round(cells, at, ends, windy)) if wind else _bfs
            dist, dist_through = search(open_, me, stop), search(through, me, stop)
            dist_over = search(open_, me, stop_costs) if fallback else None
            masks = ((paid[b] > 0) & (np.abs(stood[b] - stamp[b]) > 1e-4), pays > 0,
                     code[b] == mem.unseen) + ((mem._item[codes],) if items else ())
            if sample:
                masks += (mem._item[codes] & (pays == 0), mem._item[codes] & (pays == (costs.max() if len(costs) else 9)))
            masks += tuple(codes == k for k in kinds)
            for t, mask in enumerate(masks):
                got = feats[b, -1 - width * (len(masks) - t):-1 - width * (len(masks) - 1 - t)].numpy()
                found_items += t == 3 and items and bool(got[3])
                found[t] += bool(got[3])
                reach, stop_t = mask & (dist >= 0), stop
                is_over = fallback and not reach.any() and (mask & (dist_over >= 0)).any()
                is_cut = give_way and not reach.any() and not is_over and (mask & (dist_through >= 0)).any()
                if give_way:
                    assert got[8 + sample] == float(is_cut)
                if fallback:
                    assert got[8 + sample + give_way] == float(is_over)
                if is_cut:  # read by the walks through the players
                    reach, dist, walkable = mask & (dist_through >= 0), dist_through, through
                    cut += 1
                elif is_over:  # read by the walks over the kinds not tried yet
                    reach, dist, walkable, stop_t = mask & (dist_over >= 0), dist_over, open_, stop_costs
                    bold += 1
                else:
                    walkable = open_
                assert got[3] == float(reach.any())
                if not reach.any():
                    continue
                r, c = me[0] + round(got[0] * 13), me[1] + round(got[1] * 13)
                assert mask[r, c] and dist[r, c] == dist[reach].min()
                assert round(got[2] * 26) == dist[r, c]
                rerouted += wind and dist[r, c] > _bfs(walkable, me, stop_t)[reach].min()
                if sample:  # what the kind pays; the paid target: what its cell paid
                    assert got[8] == (paid[b][r, c] if t == 0 else pays[r, c])
                onehot = got[4:8]
                assert onehot.sum() == (dist[r, c] > 0)
                if dist[r, c] > 0:
                    dy, dx = ((-1, 0), (1, 0), (0, -1), (0, 1))[int(onehot.argmax())]
                    to_target = _bfs(walkable, (r, c), stop_t)
                    if wind:  # a walk of dist[r, c] steps starts with it (round the wind: maybe not a shortest)
                        assert 0 <= to_target[me[0] + dy, me[1] + dx] <= dist[r, c] - 1
                    else:
                        assert to_target[me[0] + dy, me[1] + dx] == dist[r, c] - 1
                    assert stop_t is None or dist[r, c] == 1 or not stop_t[me[0] + dy, me[1] + dx]
                    moves += 1
                checked += 1
                dist = search(open_, me, stop)
        if fallback:
            actions, driven = driver.act(Observation(grid[:, 0], scalars[:, 0], trial[:, 0]), driven)
            actions = actions[:, None]
        else:
            actions = ctx_env.game.policy("uninformed", ctx_env.engine, ctx_env.state, 0, grid[:, 0], rng)[:, None]
        out = env.step(actions)
        grid, scalars, trial = out.grid, out.scalars, out.trial
    assert checked > 300 and moves > 200
    assert (busy > 20) == (players > 1)
    assert (found_items > 100) == items
    assert (cut > 5) == give_way, cut
    assert (rerouted > 5) == wind, rerouted  # the way round the wind is longer, where there is one
    assert (bold > 5) == fallback, bold  # some targets lie behind objects nobody has tried
    if sample:  # both kinds of target are met: untried kinds, and a kind that has cost
        assert found[3 + items] > 50 and found[4 + items] > 20, found
    if per_kind:  # the game's own kinds are found, and no other
        mine = {"rules": [T.EXIT, T.OBJECT_A, T.OBJECT_B, T.OBJECT_C], "coinrush": list(T.COINS)}[game]
        assert all((found[5 + items + i] > 20) == (k in mine) for i, k in enumerate(kinds)), found
    with pytest.raises(ValueError, match="needs route"):
        MapMemory(13, give_way=True)
    with pytest.raises(ValueError, match="sample.*needs route"):
        MapMemory(13, sample=True)
    with pytest.raises(ValueError, match="sample = true reads its targets by route"):
        RL2Config(map=13, sample=True).validate()
    assert RL2Net(RL2Config(map=13, route=True, sample=sample).net_spec()).map.sample == sample
    with pytest.raises(ValueError, match="per_kind.*needs sample"):
        MapMemory(13, route=True, per_kind=True)
    with pytest.raises(ValueError, match="per_kind = true reads its targets as sample's"):
        RL2Config(map=13, route=True, per_kind=True).validate()
    with pytest.raises(ValueError, match="careful.*needs sample"):
        MapMemory(13, route=True, careful=True)
    with pytest.raises(ValueError, match="careful = true walks round the kinds sample has not tried"):
        RL2Config(map=13, route=True, careful=True).validate()
    with pytest.raises(ValueError, match="fallback.*needs careful"):
        MapMemory(13, route=True, sample=True, fallback=True)
    with pytest.raises(ValueError, match="fallback = true reads the routes careful finds none for"):
        RL2Config(map=13, route=True, sample=True, fallback=True).validate()
    spec = RL2Config(map=13, route=True, sample=True, careful=True, fallback=fallback).net_spec()
    assert RL2Net(spec).map.fallback == fallback
    with pytest.raises(ValueError, match="avoid_wind.*needs route"):
        MapMemory(13, avoid_wind=True)
    with pytest.raises(ValueError, match="avoid_wind = true is a way of finding routes"):
        RL2Config(map=13, avoid_wind=True).validate()


def test_the_controls_show_the_hidden_permutation_of_drift():
    """On drift every level scrambles the four moves: after a random walk, the move each
    action was followed by most often is the move the level's permutation gives it (slips,
    walls and wind only blur the shares); without ``controls`` nothing of it is read."""
    from metarena.games.drift import dynamics_of

    mem = MapMemory(13, route=True, controls=True)
    assert mem.features == MapMemory(13, route=True).features + 4 * 5
    batch = 16
    env = make_trial_env("drift", batch=batch, episodes=64, split="test", seed=0)
    grid, scalars, trial = env.reset()
    state = mem.initial_state(batch)
    rng = np.random.default_rng(0)
    for _ in range(150):
        feats, state = mem.step(torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0]), state)
        out = env.step(rng.integers(0, 5, size=(batch, 1)))
        grid, scalars, trial = out.grid, out.scalars, out.trial
        assert not out.trial_done.any()
    shares = feats[:, -21:-1].reshape(batch, 4, 5).numpy()
    assert np.allclose(shares.sum(-1), 1.0, atol=1e-5)
    perm = dynamics_of(env.env.engine).perm[env.env.state.level]  # (B, 5): the move of each action
    right = shares[:, :, 1:].argmax(-1) + 1 == perm[:, 1:]
    assert right.mean() > 0.9, right
    counts = state[:, -25:].reshape(batch, 5, 5)
    assert counts[:, 0, 1:].sum() == 0, "a stay never moves the player by itself (only the wind does)"


@pytest.mark.parametrize("game", ["drift", "treasure"])
def test_steering_reads_each_route_as_the_action_that_makes_its_first_move(game):
    """With ``steer`` each target's first move is also read as the action to press. On drift,
    after a random walk, that action makes the move by the level's hidden permutation (slips,
    walls and wind blur the counts); where the controls are as named (treasure) it is the first
    move itself, at every step. Steering needs routes and controls. Without the first moves
    (``moves=False``) the targets read the same, less the world's directions."""
    from metarena.games.drift import dynamics_of

    with pytest.raises(ValueError, match="route and controls"):
        MapMemory(13, route=True, steer=True)
    with pytest.raises(ValueError, match="steer"):
        RL2Config(map=13, route=True, steer=True).validate()
    with pytest.raises(ValueError, match="needs steer"):
        MapMemory(13, route=True, controls=True, moves=False)
    mem = MapMemory(13, route=True, controls=True, steer=True)
    plain = MapMemory(13, route=True, controls=True)
    only = MapMemory(13, route=True, controls=True, steer=True, moves=False)
    assert mem.features == plain.features + 4 * len(mem.TARGETS) == only.features + 4 * len(mem.TARGETS)
    # per target: offsets, distance, found, first move, action; then the controls and the flag
    batch, per, ctl = 16, 12, 4 * 5 + 1
    env = make_trial_env(game, batch=batch, episodes=64, split="test", seed=0)
    grid, scalars, trial = env.reset()
    state, state_plain, state_only = mem.initial_state(batch), plain.initial_state(batch), only.initial_state(batch)
    rng = np.random.default_rng(0)
    pressed = agree = 0
    for step in range(151):
        args = torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0])
        feats, state = mem.step(*args, state)
        feats_plain, state_plain = plain.step(*args, state_plain)
        feats_only, state_only = only.step(*args, state_only)
        front = feats.shape[1] - ctl - per * len(mem.TARGETS)
        moves_at = [front + per * t + 4 + m for t in range(len(mem.TARGETS)) for m in range(4)]
        assert np.array_equal(np.delete(feats.numpy(), moves_at, axis=1), feats_only.numpy())
        targets = feats[:, front:front + per * len(mem.TARGETS)].reshape(batch, len(mem.TARGETS), per).numpy()
        kept = np.delete(feats.numpy(), np.s_[front:front + per * len(mem.TARGETS)], axis=1)
        kept_plain = np.delete(feats_plain.numpy(), np.s_[front:front + 8 * len(mem.TARGETS)], axis=1)
        assert np.array_equal(kept, kept_plain), "steering adds values and changes none"
        plain_targets = feats_plain[:, front:front + 8 * len(mem.TARGETS)].numpy()
        assert np.array_equal(targets[..., :8].reshape(batch, -1), plain_targets)
        first, press = targets[..., 4:8], targets[..., 8:12]
        assert np.array_equal(first.sum(-1), press.sum(-1)), "an action exactly where there is a first move"
        if game == "treasure":
            assert np.array_equal(first, press)
        elif step >= 100:
            perm = dynamics_of(env.env.engine).perm[env.env.state.level]  # (B, 5): the move of each action
            has = first.sum(-1) > 0
            moves = first.argmax(-1) + 1
            makes = np.take_along_axis(perm, press.argmax(-1) + 1, axis=1)
            pressed, agree = pressed + int(has.sum()), agree + int((makes == moves)[has].sum())
        out = env.step(rng.integers(0, 5, size=(batch, 1)))
        grid, scalars, trial = out.grid, out.scalars, out.trial
        assert not out.trial_done.any()
    if game == "drift":
        assert pressed > 500 and agree > 0.9 * pressed, (agree, pressed)


def test_controls_that_decay_follow_a_change_of_the_controls():
    """On drift/shift the controls are redrawn at an unannounced episode. Forty steps into the
    new dynamics, counts that decay (``decay`` 0.8) show the new permutation where counts of the
    whole trial still mostly show the old one."""
    from metarena.games.drift import dynamics_of

    with pytest.raises(ValueError, match="decay"):
        MapMemory(13, controls=True, decay=0.0)
    batch, after = 48, 40
    env = make_trial_env("drift", "shift", batch=batch, episodes=4, split="test", seed=0)
    grid, scalars, trial = env.reset()
    mems = {d: MapMemory(13, route=True, controls=True, decay=d) for d in (1.0, 0.8)}
    states = {d: m.initial_state(batch) for d, m in mems.items()}
    hid, level = dynamics_of(env.env.engine), env.env.state.level.copy()
    new = hid.perm[len(env.env.levels) + level]  # each level's moves after its change
    since = np.full(batch, -1)
    right = {d: np.zeros((batch, 4), bool) for d in mems}
    rng = np.random.default_rng(0)
    while not (since > after).all():
        for d, mem in mems.items():
            feats, states[d] = mem.step(torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]),
                                        torch.tensor(trial[:, 0]), states[d])
            now = since == after
            picked = feats[:, -21:-1].reshape(batch, 4, 5).numpy()[:, :, 1:].argmax(-1) + 1
            right[d][now] = picked[now] == new[now, 1:]
        since = np.where(env.env.state.episode >= hid.change[level], since + 1, -1)
        out = env.step(rng.integers(0, 5, size=(batch, 1)))
        grid, scalars, trial = out.grid, out.scalars, out.trial
        assert not out.trial_done.any()
    assert right[0.8].mean() > 0.9 and right[1.0].mean() < 0.6, {d: r.mean() for d, r in right.items()}


def test_the_tally_counts_the_kinds_that_paid_and_that_cost():
    """With ``tally`` the reading holds, before the controls and the scale flag, how many kinds
    of item have paid and how many have cost so far in the trial: on rules, after a walk of the
    uninformed planner, the counts equal the kinds the memory holds as paying and costing, and
    some slots know a kind of each."""
    mem = MapMemory(13, route=True, sample=True, tally=True)
    assert mem.features == MapMemory(13, route=True, sample=True).features + 2
    env = make_trial_env("rules", batch=16, episodes=4, split="test", seed=0)
    grid, scalars, trial = env.reset()
    state = mem.initial_state(16)
    rng = np.random.default_rng(0)
    both = 0
    for _ in range(80):
        new = trial_starts(trial[:, 0])
        state[torch.as_tensor(new)] = mem.initial_state(int(new.sum()))
        feats, state = mem.step(torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0]), state)
        kind = mem._parts(state)[3].numpy()[:, :-1]
        items = mem._item[:-1]
        known = feats[:, -1].numpy() > 0
        np.testing.assert_array_equal(feats[known, -3].numpy(), ((kind > 0) & items).sum(1)[known])
        np.testing.assert_array_equal(feats[known, -2].numpy(), ((kind < 0) & items).sum(1)[known])
        both += int(((feats[:, -3] > 0) & (feats[:, -2] > 0)).sum())
        ctx_env = env.env
        actions = ctx_env.game.policy("uninformed", ctx_env.engine, ctx_env.state, 0, grid[:, 0], rng)[:, None]
        out = env.step(actions)
        grid, scalars, trial = out.grid, out.scalars, out.trial
    assert both > 50, both
    with pytest.raises(ValueError, match="tally = true needs a map"):
        RL2Config(tally=True).validate()


def test_the_keys_read_the_kinds_taken_those_ruled_out_and_the_exit_tried():
    """With ``keys`` the reading holds, before the scale flag, per kind of item: taken this
    episode, ruled out as the exit's key, what it pays; then "the exit was found locked since the
    last kind first taken". On rules, with the uninformed planner (which samples kinds and tries
    the exit after each one that may be the key): the kinds taken are the engine's own (even
    before the map knows its scale: levels whose trap lies beside the start), the key kind is
    never ruled out while others are, and the flag is up wherever the player stands on the exit."""
    mem = MapMemory(13, route=True, sample=True, keys=True)
    codes = np.flatnonzero(mem._item[:-1])
    assert mem.features == MapMemory(13, route=True, sample=True).features + 3 * len(codes) + 1
    objects = [int(np.flatnonzero(codes == c)[0]) for c in (T.OBJECT_A, T.OBJECT_B, T.OBJECT_C)]
    batch = 16
    env = make_trial_env("rules", batch=batch, episodes=4, split="test", seed=0)
    grid, scalars, trial = env.reset()
    state = mem.initial_state(batch)
    rng = np.random.default_rng(0)
    ruled = tried = locked_tries = 0
    was_tried = np.zeros(batch, bool)
    for _ in range(200):
        new = trial_starts(trial[:, 0])
        state[torch.as_tensor(new)] = mem.initial_state(int(new.sum()))
        feats, state = mem.step(torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0]), state)
        known = feats[:, -1].numpy() > 0
        block = feats[:, -2 - 3 * len(codes):-2].numpy().reshape(batch, len(codes), 3)
        flag = feats[:, -2].numpy()
        ctx_env = env.env
        eng, st = ctx_env.engine, ctx_env.state
        touched = st.touched[:, 0][:, [T.OBJECT_A, T.OBJECT_B, T.OBJECT_C]]
        np.testing.assert_array_equal(block[known][:, objects, 0], touched[known].astype(np.float32))
        key = eng.item_tile[st.level, 1]  # item 1 of every rules level is an object of the key kind
        for b in np.flatnonzero(known):
            assert block[b, int(np.flatnonzero(codes == key[b])[0]), 1] == 0, "the key was ruled out"
        ruled += int(block[known][:, objects, 1].sum())
        row, col = eng.rowcol(st)
        on_exit = eng.levels.tiles[st.level, row[:, 0], col[:, 0]] == T.EXIT
        inside = trial[:, 0, EPISODE_START] < 0.5
        # standing on the exit inside an episode means it was locked: the flag is up
        assert (flag[known & on_exit & inside] == 1).all()
        locked_tries += int((known & on_exit & inside).sum())
        tried += int((flag[known] == 1).sum())
        assert (flag[~inside] == 0).all(), "an episode starts untried"
        actions = ctx_env.game.policy("uninformed", eng, st, 0, grid[:, 0], rng)[:, None]
        out = env.step(actions)
        grid, scalars, trial = out.grid, out.scalars, out.trial
    assert ruled > 20 and locked_tries > 5 and tried > locked_tries, (ruled, locked_tries, tried)
    with pytest.raises(ValueError, match="keys = true needs a map"):
        RL2Config(keys=True).validate()


def test_spare_reads_the_steps_left_less_the_route_and_the_route_on_to_the_exit():
    """With ``spare`` each routed target reads one more value, after its others: the steps left in
    the episode (the step limit learnt from the time left) less its route and, once an exit is
    mapped, less the route from it to the exit, in ``2 * side`` cells. Everything else reads as
    without it. On rules, with the uninformed planner: the limit learnt is the engine's, the
    value is the one a search over the mapped cells gives, and both signs are met (players that
    walk at random are late for some targets)."""
    flags = dict(route=True, sample=True, per_kind=True, careful=True, keys=True)
    mem, plain = MapMemory(13, spare=True, **flags), MapMemory(13, **flags)
    kinds = np.flatnonzero(mem._item)
    targets = len(mem.TARGETS) + 2 + len(kinds)
    wide = 9  # per target: offsets, distance, found, first move, its pay
    assert mem.features == plain.features + targets
    head = plain.features - wide * targets - (3 * len(kinds) + 1) - 1  # the window and the blocks
    batch = 8
    env = make_trial_env("rules", batch=batch, episodes=4, split="test", seed=0)
    grid, scalars, trial = env.reset()
    state, state_p = mem.initial_state(batch), plain.initial_state(batch)
    rng = np.random.default_rng(0)
    blocks = np.isin(np.arange(mem.kinds), [T.WALL, T.TRAIL, T.TRAP])
    checked = with_exit = late = 0
    for _ in range(150):
        new = torch.as_tensor(trial_starts(trial[:, 0]))
        state[new], state_p[new] = mem.initial_state(int(new.sum())), plain.initial_state(int(new.sum()))
        obs = (torch.tensor(grid[:, 0]), torch.tensor(scalars[:, 0]), torch.tensor(trial[:, 0]))
        feats, state = mem.step(*obs, state)
        feats_p, state_p = plain.step(*obs, state_p)
        feats, feats_p = feats.numpy(), feats_p.numpy()
        read = feats[:, head:head + (wide + 1) * targets].reshape(batch, targets, wide + 1)
        np.testing.assert_array_equal(feats[:, :head], feats_p[:, :head])
        np.testing.assert_array_equal(read[..., :wide].reshape(batch, -1), feats_p[:, head:head + wide * targets])
        np.testing.assert_array_equal(feats[:, head + (wide + 1) * targets:], feats_p[:, head + wide * targets:])
        ctx_env = env.env
        eng, st = ctx_env.engine, ctx_env.state
        limit = state[:, -1].numpy()
        inside = trial[:, 0, EPISODE_START] < 0.5
        assert ((limit == eng.limit) | ((limit == 0) & ~inside)).all(), limit
        code, _, _, aux, kind = _cells(mem, state)
        row, col = eng.rowcol(st)
        for b in np.flatnonzero(aux[:, 2] > 0):
            me = (row[b, 0], col[b, 0])
            codes = code[b].astype(int)
            pays = kind[b][codes]
            stop = mem._item[codes] & (pays <= 0)  # careful: round the kinds that cost or are untried
            open_ = ~blocks[codes]
            dist = _bfs(open_, me, stop)
            exits = (codes == T.EXIT) & (dist >= 0)
            on = None
            if exits.any():
                nearest = np.argwhere(exits)[np.argmin(dist[exits])]
                on = _bfs(open_, tuple(nearest), stop)
                with_exit += 1
            left = eng.limit - int(st.t[b])
            for t in np.flatnonzero(read[b, :, 3] > 0):
                r, c = me[0] + round(read[b, t, 0] * 13), me[1] + round(read[b, t, 1] * 13)
                steps = dist[r, c]
                after = 0 if on is None else (on[r, c] if on[r, c] >= 0 else 4 * 13)
                assert read[b, t, wide] == pytest.approx((left - steps - after) / 26, abs=1e-5), (b, t)
                late += read[b, t, wide] < 0
                checked += 1
        actions = ctx_env.game.policy("uninformed", eng, st, 0, grid[:, 0], rng)
        actions[batch // 2:] = rng.integers(0, 5, batch - batch // 2)  # half walk at random: late in their episodes
        out = env.step(actions[:, None])
        grid, scalars, trial = out.grid, out.scalars, out.trial
    assert checked > 500 and with_exit > 100 and 0 < late < checked, (checked, with_exit, late)
    with pytest.raises(ValueError, match="spare.*needs route"):
        MapMemory(13, spare=True)
    with pytest.raises(ValueError, match="spare = true reads the steps left"):
        RL2Config(map=13, spare=True).validate()
    assert RL2Net(RL2Config(map=13, route=True, spare=True).net_spec()).map.spare
