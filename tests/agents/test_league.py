"""The league: frozen snapshots of the network in training move the other players of the
``self`` slots, each trial drawing its snapshot, their memory cleared at trial starts only."""

import numpy as np
import pytest
import torch

from metarena.agents.league import League
from metarena.agents.ppo import RL2Config, RL2Envs, train_rl2
from metarena.agents.rl2 import RL2Net, RL2NetSpec
from metarena.games.tiles import NUM_CHANNELS
from metarena.games.trial import TRIAL_FEATURES

SPEC = RL2NetSpec(hidden=(16,), memory=8, episodes=2)


def _always(action: int) -> RL2Net:
    """A network whose policy picks ``action`` with probability ~1 whatever it sees."""
    torch.manual_seed(0)
    net = RL2Net(SPEC)
    with torch.no_grad():
        net.policy.weight.zero_()
        net.policy.bias.fill_(-50.0)
        net.policy.bias[action] = 50.0
    return net


def _cfg(**kw) -> RL2Config:
    base = dict(variant="small", envs=8, chunk=8, episodes=2, pool_size=8, total_steps=64, players=2,
                others="scripted,self", hidden=(16,), memory=8, torch_threads=1)
    return RL2Config(**{**base, **kw})


def test_snapshots_are_frozen_copies_kept_in_a_ring():
    net = _always(1)
    league = League(net, size=2, seed=0)
    with torch.no_grad():
        net.policy.bias.zero_()  # training goes on: the snapshot does not follow
    assert league.nets[0].policy.bias[1].item() == 50.0
    assert not any(p.requires_grad for p in league.nets[0].parameters())
    second, third = _always(2), _always(3)
    league.add(second)
    league.add(third)  # full: replaces the oldest
    assert len(league.nets) == 2
    assert [int(n.policy.bias.argmax()) for n in league.nets] == [3, 2]
    with pytest.raises(ValueError, match="at least one snapshot"):
        League(net, size=0, seed=0)


def test_self_slots_are_moved_by_the_snapshots():
    """In the ``self`` slots the env takes both players' actions and player 1 plays what the
    league's snapshot chose (here always ``right``); the scripted slots keep one learner."""
    cfg = _cfg()
    league = League(_always(4), size=2, seed=0)
    envs = RL2Envs(cfg, league)
    try:
        assert [(e.env.learners, e.batch) for e in envs.envs] == [(1, 4), (2, 4)]
        assert envs.seats[0] is None and envs.seats[1] is not None
        envs.reset()
        for _ in range(3):
            envs.step(np.zeros(cfg.envs, dtype=np.int64))
            np.testing.assert_array_equal(envs.envs[1].env.state.last_action[:, 1], 4)
            np.testing.assert_array_equal(envs.envs[1].env.state.last_action[:, 0], 0)
    finally:
        envs.close()
    with pytest.raises(ValueError, match="pass the league"):
        RL2Envs(cfg)


def test_memory_is_cleared_and_snapshots_drawn_at_trial_starts_only():
    league = League(_always(1), size=3, seed=5)
    league.add(_always(2))
    league.add(_always(3))
    seats = league.seats(slots=6, players=1)
    n, v = 6, 5
    grid = np.zeros((n, 1, v, v, NUM_CHANNELS), np.uint8)
    scalars = np.zeros((n, 1, 4), np.float32)
    trial = np.zeros((n, 1, TRIAL_FEATURES), np.float32)
    first = np.ones(n, dtype=bool)
    acts = seats.act(grid, scalars, trial, first)
    picks = seats.pick.copy()
    assert set(picks) <= {0, 1, 2} and len(set(picks)) > 1  # drawn among the snapshots
    np.testing.assert_array_equal(acts[:, 0], picks + 1)  # snapshot k always plays k + 1
    assert (seats.h.abs().sum(1) > 0).all()  # the memory moved
    first[:] = False
    first[2] = True  # a new trial in slot 2 only
    seats.h[2] = 7.0
    seats.act(grid, scalars, trial, first)
    np.testing.assert_array_equal(np.delete(seats.pick, 2), np.delete(picks, 2))
    fresh = league.nets[seats.pick[2]].step(*(torch.as_tensor(x[2:3, 0]) for x in (grid, scalars, trial)),
                                            league.nets[0].initial_state(1))[2]
    torch.testing.assert_close(seats.h[2:3], fresh)  # slot 2 started from a cleared memory


def test_a_run_in_company_of_itself_trains():
    cfg = _cfg(total_steps=3 * 64, league=2, league_every=1)
    net, rows = train_rl2(cfg)
    assert len(rows) == 3 and all(np.isfinite(r["policy_loss"]) for r in rows)
    with pytest.raises(ValueError, match="unknown policy 'selfish'.*self"):
        _cfg(others="selfish").validate()
