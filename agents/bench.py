"""Training throughput (``metarena bench train``): RL² beside Stable-Baselines3 on the same game.

Every trainer runs for a wall-clock budget on the same game and variant, and
the figure is env steps per second end to end (rollouts and updates). For
RL² the first update (warm-up: level pool, allocations) is left out of the
rate. The peers are SB3 PPO (``MultiInputPolicy``, no memory) and sb3-contrib
RecurrentPPO (``MultiInputLstmPolicy``), each over 8 copies of the
Gymnasium env with their default hyperparameters. RL² alone can also be measured on several
games (and variants) at once, as ``metarena train`` trains one network on them.
"""

from __future__ import annotations

import os
import time

from metarena.games.bench import machine
from metarena.games.variant import variant_list

PEERS = ("ppo", "recurrent-ppo")
ALGOS = ("rl2",) + PEERS


class _Budget(Exception):
    """Raised from the trainer's callback when the time budget is spent."""


def _names(game: str | list[str]) -> list[str]:
    """A game's name, or a list of them, as a list."""
    return [game] if isinstance(game, str) else list(game)


def bench_rl2(game: str | list[str], variant: str | None, seconds: float, envs: int = 1024, shards: int = 1,
              seed: int = 0, device: str = "auto", settings: dict | None = None) -> dict:
    """RL²'s rate on ``game`` (or a list of games, one network for all) with the default config,
    or with ``settings`` (fields of ``RL2Config``, as ``metarena train --set`` takes them) changed."""
    from .ppo import _device
    from .registry import algorithm, make_config

    # the pool's size does not change the speed
    cfg = make_config("rl2", _names(game), variant, 10 ** 12, envs, device, seed,
                      {"shards": shards, "pool_size": 1024, **(settings or {})})
    rows: list[dict] = []
    start = time.perf_counter()

    def stop_when_spent(row, net, opt) -> None:
        rows.append(row)
        if time.perf_counter() - start >= seconds and len(rows) >= 2:
            raise _Budget

    try:
        algorithm("rl2").loop(cfg, callback=stop_when_spent)
    except _Budget:
        pass
    first, last = rows[0], rows[-1]
    steps = last["steps"] - first["steps"]
    elapsed = last["time_s"] - first["time_s"]
    return {"algo": "rl2", "device": str(_device(device)), "envs": envs, "chunk": cfg.chunk, "shards": cfg.shards,
            "updates": len(rows), "timed_updates": len(rows) - 1,  # the times below leave out the first
            "network": f"MLP {'-'.join(map(str, cfg.hidden))} -> GRU {cfg.memory}", "epochs": cfg.epochs,
            "steps": steps, "seconds": round(elapsed, 2), "steps_per_s": steps / elapsed,
            "rollout_s": sum(r["rollout_s"] for r in rows[1:]), "update_s": sum(r["update_s"] for r in rows[1:])}


def bench_sb3(algo: str, game: str, variant: str | None, seconds: float, seed: int = 0) -> dict:
    import gymnasium
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from metarena.games.gym_env import env_id

    from .baselines import quiet_logger

    kwargs = {"variant": variant, "split": "train", "pool_size": 256}
    venv = make_vec_env(lambda: gymnasium.make(env_id(game), **kwargs), n_envs=8, seed=seed)

    class Timer(BaseCallback):
        def _on_training_start(self) -> None:
            self.t0 = time.perf_counter()

        def _on_step(self) -> bool:
            return time.perf_counter() - self.t0 < seconds

    if algo == "ppo":
        from stable_baselines3 import PPO

        model = PPO("MultiInputPolicy", venv, seed=seed, device="cpu", verbose=0)
    else:
        from sb3_contrib import RecurrentPPO

        model = RecurrentPPO("MultiInputLstmPolicy", venv, seed=seed, device="cpu", verbose=0)
    model.set_logger(quiet_logger())  # no SB3-* folder in the temp directory
    timer = Timer()
    t0 = time.perf_counter()
    model.learn(total_timesteps=10 ** 12, callback=timer)
    elapsed = time.perf_counter() - t0
    venv.close()
    return {"algo": algo, "device": "cpu", "envs": 8, "steps": int(model.num_timesteps), "seconds": round(elapsed, 2),
            "steps_per_s": model.num_timesteps / elapsed}


def bench_train(algo: str, game: str | list[str], variant: str | None = None, seconds: float = 60.0,
                peers: bool = True, envs: int = 1024, shards: int = 1, seed: int = 0, device: str = "auto",
                settings: dict | None = None) -> dict:
    """Steps/s of ``algo`` (and, with ``peers``, of SB3 PPO and RecurrentPPO) on ``game``.

    ``device`` is RL²'s torch device ("auto": cuda if available); the peers run on the CPU, as
    SB3 recommends for PPO with small networks. ``settings`` change RL²'s config (e.g.
    ``{"hidden": [256], "memory": 256}``); the peers keep their defaults. Several games (a list)
    or variants (comma-separated): RL² alone, ``peers`` False."""
    if settings and algo != "rl2":
        raise ValueError("settings (--set) apply to --algo rl2 only; the peers run with their defaults")
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm '{algo}'; choose from {', '.join(ALGOS)}")
    names = _names(game)
    several = len(names) > 1 or len(variant_list(variant)) > 1
    if several and (algo != "rl2" or peers):
        raise ValueError("several games or variants train one RL² network: measure it with --algo rl2 --no-peers "
                         "(the peers train on one game and one variant)")
    game = ",".join(names)
    import torch

    runs = []
    for name in [algo] + ([p for p in PEERS if p != algo] if peers else []):
        if name == "rl2":
            runs.append(bench_rl2(names, variant, seconds, envs=envs, shards=shards, seed=seed, device=device,
                                  settings=settings))
        else:
            torch.set_num_threads(os.cpu_count() or 1)  # the peers get every core too
            runs.append(bench_sb3(name, names[0], variant, seconds, seed=seed))
    main = runs[0]
    return {"benchmark": "train", "algo": algo, "game": game, "variant": variant, "seconds_each": seconds,
            "steps_per_s": main["steps_per_s"], "runs": runs, "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "machine": machine()}
