"""Tournament throughput (``metarena bench tournament``): batched matches beside one-at-a-time play.

The arena plays a tournament's matches as slots of one batched engine per seating
(:func:`metarena.arenas.tournament.play_group`). The peer is how Kaggle-style runners play:
one match at a time through a PettingZoo ``ParallelEnv``, each agent asked for one action per
player per step. Both play the same matches (the same seatings and levels, the same agents,
made the same way) and the figure is matches per second, agent loading included.
"""

from __future__ import annotations

import time

import numpy as np

from metarena.agents.base import Context, Observation
from metarena.agents.registry import make_agent
from metarena.games.bench import machine
from metarena.games.pz_env import parallel_env
from metarena.games.trial import TrialFeatures

from .tournament import Spec, derived_seed, play_group, schedule


def bench_tournament(game: str, agents: list[str], variant: str | None = None, levels: int = 64,
                     episodes: int = 4, batch: int = 64, seed: int = 0, peer_matches: int = 8) -> dict:
    """Matches per second of a round-robin of ``agents`` (2 players, ``levels`` levels per
    seating, ``episodes`` per match), and of ``peer_matches`` of the same matches played one at
    a time through the PettingZoo env."""
    spec = Spec(game=game, agents=tuple(agents), players=2, levels=levels, episodes=episodes, seed=seed,
                variant=variant, batch=batch)
    groups = schedule(spec)
    started = time.perf_counter()
    matches = 0
    for group in groups:
        records, _ = play_group(spec, group)
        matches += len(records)
    batched_s = time.perf_counter() - started

    started = time.perf_counter()
    played = 0
    for group in groups:
        for level in group.levels:
            if played == peer_matches:
                break
            play_pettingzoo(spec, group.seats, level, derived_seed(seed, group.index))
            played += 1
    peer_s = time.perf_counter() - started
    rate, peer = matches / batched_s, played / peer_s if played else None
    return {"benchmark": "tournament", "game": game, "agents": list(agents), "levels": levels, "episodes": episodes,
            "batch": batch, "matches": matches, "seconds": round(batched_s, 3), "matches_per_s": rate,
            "pettingzoo": {"matches": played, "seconds": round(peer_s, 3), "matches_per_s": peer},
            "speedup": None if peer is None else rate / peer, "machine": machine()}


def play_pettingzoo(spec: Spec, seats: tuple[str, ...], level: int, seed: int) -> list[list[float]]:
    """One match the way a Kaggle-style runner plays it: a PettingZoo ParallelEnv on the level,
    each agent made afresh and asked for one player's action every step (with the trial
    features a runner keeps for it). Returns every player's return by episode."""
    env = parallel_env(spec.game, spec.variant, players=len(seats), split=spec.split, pool_size=spec.levels,
                       episodes=spec.episodes, seed=seed)
    agents = [make_agent(name, spec.game, seed=seed + p) for p, name in enumerate(seats)]
    memory = [a.begin_trial(1) for a in agents]
    features = TrialFeatures(1, len(seats), spec.episodes)
    trial = features.reset()
    obs, _ = env.reset(options={"level": level})
    names = env.possible_agents
    returns: list[list[float]] = []
    while len(returns) < spec.episodes:
        score = np.zeros(len(seats))
        while env.agents:
            actions = np.zeros((1, len(seats)), dtype=np.int64)
            for p, agent in enumerate(agents):
                o = obs[names[p]]
                seen = Observation(o["grid"][None], o["scalars"][None], trial[:, p])
                act, memory[p] = agent.act(seen, memory[p], Context(env.benv.engine, env.benv.state, p))
                actions[0, p] = int(np.asarray(act).reshape(-1)[0])
            obs, rewards, terms, truncs, infos = env.step({names[p]: int(actions[0, p]) for p in range(len(seats))})
            score += [rewards[a] for a in names]
            done = np.array([not env.agents])
            trial = features.update(actions, np.array([[rewards[a] for a in names]], dtype=np.float32), done,
                                    done & (len(returns) + 1 == spec.episodes))
        returns.append([float(x) for x in score])
        memory = [a.end_episode(m, np.array([0])) for a, m in zip(agents, memory)]
        if len(returns) < spec.episodes:
            obs, _ = env.reset()
    env.close()
    return returns
