"""SB3 PPO trains on a metarena env through gymnasium.make and predicts valid actions."""

from __future__ import annotations

import gymnasium
import numpy as np
import stable_baselines3 as sb3
import torch

from metarena.agents.baselines import quiet_logger
from metarena.games import gym_env  # noqa: F401  (registers the metarena/... Gymnasium ids)


def test_ppo_multi_input_policy_runs():
    torch.set_num_threads(1)
    env = gymnasium.make("metarena/Treasure-v0", variant="small", pool_size=16, seed=0)
    model = sb3.PPO("MultiInputPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=0, device="cpu",
                    policy_kwargs={"net_arch": [32, 32]}, verbose=0)
    model.set_logger(quiet_logger())  # SB3's default logger leaves an SB3-<date> folder in the temp directory
    model.learn(total_timesteps=2048)
    assert model.num_timesteps >= 2048
    obs, _ = env.reset(seed=1)
    for _ in range(20):
        action, _ = model.predict(obs, deterministic=False)
        assert env.action_space.contains(int(action))
        obs, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            obs, _ = env.reset()
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    actions, _ = model.predict(batch, deterministic=True)
    assert actions.shape == (2,) and ((actions >= 0) & (actions < 5)).all()
    env.close()
