"""The learning math on hand-computed numbers: GAE's ``done`` (a trial's end, never an
episode's), the PPO ratio clip and the value loss, and the recurrent memory's resets."""

import numpy as np
import pytest
import torch

from metarena.agents.evaluate import evaluate
from metarena.agents.ppo import (Carry, Chunk, RL2Config, RL2Envs, collect, gae, ppo_terms, ppo_update,
                                 setup_torch)
from metarena.agents.rl2 import RL2Agent, RL2Net, RL2NetSpec, trial_starts
from metarena.agents.base import Observation
from metarena.games.engine import NUM_ACTIONS, SCALAR_NAMES, VIEW
from metarena.games.tiles import NUM_CHANNELS
from metarena.games.trial import EPISODE_INDEX, EPISODE_START, PREV_ACTION, PREV_REWARD, TRIAL_FEATURES

GAMMA, LAM = 0.9, 0.8


def _tiny_net(episodes=2, seed=0):
    torch.manual_seed(seed)
    return RL2Net(RL2NetSpec(hidden=(16,), memory=8, episodes=episodes))


def _chunk(reward, value, done, next_value) -> Chunk:
    """A chunk of T steps x B slots with only what GAE reads filled in."""
    reward, value, done = (torch.tensor(x, dtype=torch.float32).T for x in (reward, value, done))
    T, B = reward.shape
    z = torch.zeros(T, B)
    return Chunk(grid=torch.zeros(T, B, VIEW, VIEW, NUM_CHANNELS, dtype=torch.uint8),
                 scalars=torch.zeros(T, B, len(SCALAR_NAMES)), trial=torch.zeros(T, B, TRIAL_FEATURES),
                 first=z.clone(), action=torch.zeros(T, B, dtype=torch.int64), logp=z.clone(), value=value,
                 reward=reward, done=done, h0=torch.zeros(B, 8),
                 next_value=torch.tensor(next_value, dtype=torch.float32),
                 episode_returns=(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)))


# ---------------------------------------------------------------------------------------------
# GAE


def test_gae_by_hand_bootstraps_across_episodes_and_stops_at_a_trial_end():
    """Two slots, four steps (rows below are slots). Slot 0: its first episode ends at step 1
    (reward 1) and the trial goes on: ``done`` stays 0 there, and the advantage of step 1
    bootstraps into the next episode's value. Slot 1: its trial ends at step 2 (``done`` 1):
    step 2 takes no value of step 3 (a new level), and the lambda-return stops there too."""
    reward = [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
    value = [[0.5, 0.4, 0.3, 0.2], [0.1, 0.2, 0.3, 0.7]]
    done = [[0, 0, 0, 0], [0, 0, 1, 0]]
    next_value = [0.6, 0.9]
    adv, returns = gae(_chunk(reward, value, done, next_value), GAMMA, LAM)
    g, gl = GAMMA, GAMMA * LAM
    # slot 0: one long meta-episode over the episode boundary, bootstrapped by next_value at the end
    d3, d2 = 0 + g * 0.6 - 0.2, 0 + g * 0.2 - 0.3
    d1, d0 = 1 + g * 0.3 - 0.4, 0 + g * 0.4 - 0.5
    a3 = d3
    a2 = d2 + gl * a3
    a1 = d1 + gl * a2
    a0 = d0 + gl * a1
    slot0 = [a0, a1, a2, a3]
    # slot 1: the trial ends at step 2; step 3 starts a new level
    e3, e2 = 0 + g * 0.9 - 0.7, 1 + 0.0 - 0.3
    e1, e0 = 0 + g * 0.3 - 0.2, 0 + g * 0.2 - 0.1
    b3 = e3
    b2 = e2  # no gl * b3: nothing after the trial's end flows back
    b1 = e1 + gl * b2
    b0 = e0 + gl * b1
    slot1 = [b0, b1, b2, b3]
    want = torch.tensor([slot0, slot1]).T
    torch.testing.assert_close(adv, want)
    torch.testing.assert_close(returns, want + torch.tensor(value).T)


@pytest.fixture(scope="module")
def rollout():
    """A real rollout of 100 steps on 4 slots: treasure "small" (40-step episodes), trials of 2."""
    cfg = RL2Config(variant="small", envs=4, chunk=100, episodes=2, pool_size=4, minibatches=1, seed=5,
                    torch_threads=1)
    setup_torch(cfg)
    net = _tiny_net()
    envs = RL2Envs(cfg)
    try:
        carry = Carry(envs, net, torch.device("cpu"))
        chunk = collect(net, envs, carry, cfg.chunk, torch.Generator().manual_seed(0))
        after = carry.trial.clone()
    finally:
        envs.close()
    return cfg, net, chunk, after


def test_rollout_done_marks_trial_ends_only(rollout):
    """``done`` of a step is 1 exactly where the next observation starts a trial, and 0 where
    it only starts an episode inside the trial."""
    _, _, chunk, after = rollout
    following = torch.cat([chunk.trial[1:], after[None]])  # (T, B, E) the observation after each step
    starts_trial = np.stack([trial_starts(tr.numpy()) for tr in following])
    starts_episode = following[..., EPISODE_START].numpy() > 0.5
    np.testing.assert_array_equal(chunk.done.numpy() > 0, starts_trial)
    inner = starts_episode & ~starts_trial
    assert inner.any() and starts_trial.any()  # both kinds of boundary happened
    assert (chunk.done.numpy()[inner] == 0).all()
    np.testing.assert_array_equal(chunk.episode_end.numpy() > 0, inner)  # what episode_discount reads


@pytest.mark.parametrize("d", [0.0, 0.5, 1.0])
def test_gae_episode_discount_by_hand(d):
    """One slot whose first episode ends at step 1 (reward 1), inside its trial. The bootstrap
    over that boundary, and the lambda-return flowing back over it, are scaled by ``d`` on top
    of gamma: 0 cuts the trial into episodes, 1 is the plain meta-episode."""
    reward, value, next_value = [[0.0, 1.0, 0.0, 2.0]], [[0.5, 0.4, 0.3, 0.2]], [0.6]
    chunk = _chunk(reward, value, [[0, 0, 0, 0]], next_value)
    chunk.episode_end = torch.tensor([[0.0], [1.0], [0.0], [0.0]])
    adv, _ = gae(chunk, GAMMA, LAM, episode_discount=d)
    g, gl = GAMMA, GAMMA * LAM
    a3 = 2 + g * 0.6 - 0.2
    a2 = 0 + g * 0.2 - 0.3 + gl * a3
    a1 = 1 + d * g * 0.3 - 0.4 + d * gl * a2
    a0 = 0 + g * 0.4 - 0.5 + gl * a1
    torch.testing.assert_close(adv[:, 0], torch.tensor([a0, a1, a2, a3]))
    if d == 1.0:
        torch.testing.assert_close(adv, gae(chunk, GAMMA, LAM)[0])


# ---------------------------------------------------------------------------------------------
# PPO


def test_ratio_clip_by_hand():
    """Uniform logits: every action has probability 0.2; ``logp_old`` sets each ratio. Past the
    clip in the direction the advantage pushes (ratio 1.5 with advantage +1, ratio 0.5 with
    advantage -1) the surrogate is constant: no gradient. Elsewhere it is ``-adv * ratio``."""
    clip = 0.2
    ratio = torch.tensor([1.5, 0.5, 1.5, 0.5, 1.1])
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0])
    action = torch.tensor([0, 1, 2, 3, 4])
    logits = torch.zeros(5, NUM_ACTIONS, requires_grad=True)
    logp_old = torch.log(torch.tensor(0.2)) - torch.log(ratio)
    zeros = torch.zeros(5)
    surrogate, value_loss, entropy, r, log_ratio = ppo_terms(logits, action, logp_old, adv, zeros, zeros, clip)
    torch.testing.assert_close(r, ratio)
    torch.testing.assert_close(log_ratio, torch.log(ratio))
    # max(-A r, -A clip(r)): 1.5, A=+1 -> -1.2; 0.5, A=-1 -> 0.8; 1.5, A=-1 -> 1.5; 0.5, A=+1 -> -0.5; 1.1 -> -1.1
    torch.testing.assert_close(surrogate, torch.tensor([-1.2, 0.8, 1.5, -0.5, -1.1]))
    torch.testing.assert_close(entropy, torch.full((5,), float(np.log(5))))
    surrogate.sum().backward()
    grad = logits.grad
    assert (grad[:2] == 0).all(), grad[:2]  # clipped: no gradient at all
    # unclipped: d(-A r)/dlogits = -A r (onehot(a) - p), p = 0.2 everywhere
    for i in (2, 3, 4):
        want = -adv[i] * ratio[i] * (torch.nn.functional.one_hot(action[i], NUM_ACTIONS) - 0.2)
        torch.testing.assert_close(grad[i], want)


def test_value_loss_is_plain_squared_error():
    """No value clipping: 0.5 (v - R)^2 however far v is from R, with gradient v - R."""
    value = torch.tensor([1.0, -2.0, 10.0, 0.3], requires_grad=True)
    returns = torch.tensor([0.5, 1.0, -10.0, 0.3])
    z = torch.zeros(4)
    _, value_loss, *_ = ppo_terms(torch.zeros(4, NUM_ACTIONS), torch.zeros(4, dtype=torch.int64), z, z,
                                  value, returns, 0.2)
    torch.testing.assert_close(value_loss, torch.tensor([0.125, 4.5, 200.0, 0.0]))
    value_loss.sum().backward()
    torch.testing.assert_close(value.grad, torch.tensor([0.5, -3.0, 20.0, 0.0]))


def test_ppo_update_reports_the_means_of_ppo_terms(rollout):
    """One epoch, one minibatch: the reported losses are the plain means of :func:`ppo_terms`
    over the chunk, with the advantages normalized over the minibatch, before the step. The
    old log-probabilities are moved off the rollout's, so that ratios differ from 1 and some
    are clipped."""
    cfg, net, chunk, _ = rollout
    import copy
    import dataclasses

    net = copy.deepcopy(net)
    cfg = dataclasses.replace(cfg, epochs=1, minibatches=1, gamma=GAMMA, gae_lambda=LAM)
    shift = 0.3 * torch.randn(chunk.logp.shape, generator=torch.Generator().manual_seed(1))
    chunk = dataclasses.replace(chunk, logp=chunk.logp + shift)
    adv, returns = gae(chunk, cfg.gamma, cfg.gae_lambda)
    with torch.no_grad():
        logits, value, _ = net.unroll(chunk.grid, chunk.scalars, chunk.trial, chunk.first, chunk.h0)
        a = (adv - adv.mean()) / (adv.std() + 1e-8)
        s, v, e, ratio, log_ratio = ppo_terms(logits, chunk.action, chunk.logp, a, value, returns, cfg.clip)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=1e-5)
    stats = ppo_update(net, opt, chunk, adv, returns, cfg, torch.Generator().manual_seed(0))
    clipped = ((ratio - 1).abs() > cfg.clip).float().mean()
    assert 0.05 < float(clipped) < 0.95 and abs(float(s.mean())) > 0.01
    assert stats["policy_loss"] == pytest.approx(float(s.mean()), rel=1e-4)  # slots in another order
    assert stats["value_loss"] == pytest.approx(float(v.mean()), rel=1e-5)
    assert stats["entropy"] == pytest.approx(float(e.mean()), rel=1e-5)
    assert stats["clipfrac"] == pytest.approx(float(clipped), rel=1e-5)
    assert stats["approx_kl"] == pytest.approx(float(((ratio - 1) - log_ratio).mean()), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# memory


def _features(start, index, prev_action=None, prev_reward=0.0):
    f = np.zeros(TRIAL_FEATURES, dtype=np.float32)
    if prev_action is not None:
        f[PREV_ACTION][prev_action] = 1.0
    f[PREV_REWARD], f[EPISODE_START], f[EPISODE_INDEX] = prev_reward, start, index
    return f


def test_rl2_agent_clears_its_state_at_a_trial_start_only():
    """Slot 0 starts a trial (episode-start 1, index 0): its GRU state is cleared. Slot 1
    starts the second episode of its trial (episode-start 1, index 1/2) and slot 2 is inside
    an episode: both keep theirs."""
    net = _tiny_net()
    agent = RL2Agent(net, greedy=True)
    rng = np.random.default_rng(0)
    n = 3
    grid = rng.integers(0, 2, size=(n, VIEW, VIEW, NUM_CHANNELS)).astype(np.uint8)
    scalars = rng.random((n, len(SCALAR_NAMES))).astype(np.float32)
    trial = np.stack([_features(1.0, 0.0), _features(1.0, 0.5, prev_action=2, prev_reward=1.0),
                      _features(0.0, 0.5, prev_action=3)])
    memory = agent.begin_trial(n)
    h_old = rng.normal(size=memory["h"].shape).astype(np.float32)
    memory["h"] = h_old.copy()
    _, memory = agent.act(Observation(grid, scalars, trial), memory)

    def step(h):
        with torch.no_grad():
            return net.step(torch.as_tensor(grid), torch.as_tensor(scalars), torch.as_tensor(trial),
                            torch.as_tensor(h))[2].numpy()

    cleared, kept = step(np.zeros_like(h_old)), step(h_old)
    assert not np.allclose(cleared, kept, atol=1e-4)  # the two can be told apart in every slot
    np.testing.assert_allclose(memory["h"][0], cleared[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(memory["h"][1:], kept[1:], rtol=1e-5, atol=1e-6)


class Recorder:
    """Walks the oracle's path (so episodes end and pay) and records every observation's
    trial features."""

    name = "recorder"

    def __init__(self):
        self.trials: list[np.ndarray] = []

    def begin_trial(self, n):
        return np.zeros(n)

    def act(self, obs, memory, ctx):
        self.trials.append(obs.trial.copy())
        return ctx.engine.game.oracle(ctx.engine, ctx.state, ctx.player), memory

    def end_episode(self, memory, slots):
        return memory


def _episode_starts(trials: list[np.ndarray]) -> np.ndarray:
    rows = np.concatenate(trials)
    return rows[rows[:, EPISODE_START] > 0.5]


def test_memory_reset_shows_every_episode_as_a_trials_first():
    """With ``memory_reset`` the first observation of every episode carries a trial start's
    features: no previous action or reward, episode index 0."""
    levels, k = 6, 3
    normal = Recorder()
    evaluate(normal, "treasure", "small", levels=levels, episodes=k)
    starts = _episode_starts(normal.trials)
    later = starts[starts[:, EPISODE_INDEX] > 0]
    # without the reset, later episodes start with the last step's action and reward (1: the treasure)
    assert len(later) >= levels * (k - 1) and (later[:, PREV_REWARD] > 0).all()

    wiped = Recorder()
    evaluate(wiped, "treasure", "small", levels=levels, episodes=k, memory_reset=True)
    starts = _episode_starts(wiped.trials)
    assert len(starts) >= levels * k
    np.testing.assert_array_equal(starts, np.broadcast_to(_features(1.0, 0.0), starts.shape))
    assert trial_starts(starts).all()
