"""TrialEnv: trial features at trial starts, episode starts and in between."""

import numpy as np
import pytest

from metarena import games
from metarena.games.batch import BatchEnv
from metarena.games.trial import (EPISODE_INDEX, EPISODE_START, PREV_ACTION, PREV_REWARD, TRIAL_FEATURES, TrialEnv,
                         make_trial_env)


def _env(batch=16, episodes=3, game="treasure", **kw):
    return TrialEnv(BatchEnv(games.get(game), games.variant(game, "small"), batch=batch, pool_size=8,
                             episodes=episodes, seed=3, **kw))


def test_reset_features():
    env = _env()
    grid, scalars, trial = env.reset(seed=1)
    assert trial.shape == (16, 1, TRIAL_FEATURES) and trial.dtype == np.float32
    assert grid.shape[:2] == scalars.shape[:2] == (16, 1)
    np.testing.assert_array_equal(trial[..., EPISODE_START], 1.0)
    trial = trial.copy()
    trial[..., EPISODE_START] = 0.0
    np.testing.assert_array_equal(trial, 0.0)


def test_features_follow_the_trial():
    k, batch = 3, 16
    env = _env(batch=batch, episodes=k)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    episode = np.zeros(batch, dtype=int)
    trials_done = episodes_done = 0
    for _ in range(300):
        a = rng.integers(0, 5, (batch, 1))
        out = env.step(a)
        tr = out.trial[:, 0]
        done = out.terminated | out.truncated
        np.testing.assert_array_equal(out.episode_done, done)
        np.testing.assert_array_equal(tr[:, EPISODE_START], done.astype(np.float32))
        final = out.info.get("final")
        want_trial_end = np.zeros(batch, dtype=bool)
        if final is not None:
            want_trial_end[final["slots"]] = final["trial_end"]
            np.testing.assert_array_equal(final["episode"], episode[final["slots"]])
        np.testing.assert_array_equal(out.trial_done, want_trial_end)
        inside = ~out.trial_done
        # previous action and reward: this step's, except where a trial just ended
        onehot = np.eye(5, dtype=np.float32)[a[:, 0]]
        np.testing.assert_array_equal(tr[inside][:, PREV_ACTION], onehot[inside])
        np.testing.assert_array_equal(tr[inside][:, PREV_REWARD], out.rewards[inside, 0])
        np.testing.assert_array_equal(tr[out.trial_done][:, :EPISODE_START], 0.0)
        episode = np.where(out.trial_done, 0, episode + done)
        np.testing.assert_allclose(tr[:, EPISODE_INDEX], episode / k)
        trials_done += out.trial_done.sum()
        episodes_done += (done & inside).sum()
    assert trials_done > 0 and episodes_done > 0


def test_episode_start_carries_the_last_reward():
    """In treasure the only reward comes on the last step: the next episode's first
    observation shows it."""
    env = _env(batch=64, episodes=4)
    env.reset(seed=2)
    rng = np.random.default_rng(1)
    seen = False
    for _ in range(400):
        out = env.step(rng.integers(0, 5, (64, 1)))
        paid = out.episode_done & ~out.trial_done & (out.rewards[:, 0] > 0)
        if paid.any():
            np.testing.assert_array_equal(out.trial[paid, 0, PREV_REWARD], out.rewards[paid, 0])
            seen = True
    assert seen


def test_other_players_and_sharded_env():
    env = _env(batch=8, episodes=2, game="coinrush", players=2, learners=1)
    _, _, trial = env.reset(seed=0)
    assert trial.shape == (8, 2, TRIAL_FEATURES)
    out = env.step(np.full((8, 1), 3))
    np.testing.assert_array_equal(out.trial[:, 0, 3], 1.0)  # "left" for the learner
    np.testing.assert_array_equal(out.trial[:, 1, PREV_ACTION], 0.0)  # the env's own player
    with make_trial_env("treasure", "small", batch=8, episodes=2, shards=2, pool_size=8, seed=0) as sh:
        assert sh.episodes == 2
        _, _, trial = sh.reset()
        out = sh.step(np.zeros((8, 1), dtype=int))
        assert out.trial.shape == (8, 1, TRIAL_FEATURES)


def test_new_trials_start_fresh_in_the_chosen_slots_only():
    env = _env(batch=6, episodes=3, game="coinrush")
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(30):  # into the trial's first episode, past its start
        out = env.step(rng.integers(0, 5, (6, 1)))
    before = out.trial.copy(), out.scalars.copy()
    grid, scalars, trial = env.new_trials(np.array([1, 4]))
    st, eng = env.env.state, env.env.engine
    want_grid, want_scalars = eng.first_observation(st.level[[1, 4]])
    np.testing.assert_array_equal(grid[[1, 4]], want_grid)
    np.testing.assert_array_equal(scalars[[1, 4]], want_scalars)
    np.testing.assert_array_equal(st.t[[1, 4]], 0)
    np.testing.assert_array_equal(st.episode[[1, 4]], 0)
    np.testing.assert_array_equal(trial[[1, 4], 0, EPISODE_START], 1.0)
    np.testing.assert_array_equal(trial[[1, 4], 0, EPISODE_INDEX], 0.0)
    np.testing.assert_array_equal(trial[[1, 4], 0, PREV_ACTION], 0.0)
    others = [0, 2, 3, 5]
    np.testing.assert_array_equal(trial[others], before[0][others])
    np.testing.assert_array_equal(scalars[others], before[1][others])
    np.testing.assert_array_equal(st.t[others], 30)
    out = env.step(np.zeros((6, 1), dtype=int))  # and the trial goes on from there
    np.testing.assert_array_equal(st.t, [31, 1, 31, 31, 1, 31])
    np.testing.assert_array_equal(out.trial[:, 0, EPISODE_START], 0.0)


def test_episodes_must_match():
    env = BatchEnv(games.get("treasure"), games.variant("treasure", "small"), batch=2, pool_size=4, episodes=2)
    with pytest.raises(ValueError, match="episodes"):
        TrialEnv(env, episodes=3)
