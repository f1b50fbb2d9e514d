"""Arena speed: tournament throughput (``metarena bench tournament``) and the live viewer's
frame rate (``metarena bench viewer``).

The viewer's figure is frames per second of the path a watched match takes: the board drawn
around the map (:meth:`~metarena.arenas.board.Board.surface`) and shown in the window
(:meth:`~metarena.arenas.viewer.Viewer.show`: blitted, scaled to the window when the frame
does not fit the screen, flipped, events pumped), as the spectator does, over snapshots of a
real match taken beforehand (the agents' thinking is not counted). Without a display (the
dummy video driver) it measures the drawing alone and says so.

The arena plays a tournament's matches as slots of one batched engine per seating
(:func:`metarena.arenas.tournament.play_group`). The peer is how Kaggle-style runners play:
one match at a time through a PettingZoo ``ParallelEnv``, each agent asked for one action per
player per step. Both play the same matches (the same seatings and levels, the same agents,
made the same way) and the figure is matches per second, agent loading included.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from metarena.agents.base import Context, Observation
from metarena.agents.registry import make_agent
from metarena.games.bench import machine
from metarena.games.pz_env import parallel_env
from metarena.games.trial import TrialFeatures

from .tournament import Spec, derived_seed, play_group, schedule

VIEWER_SIZE = 33  #: the map side of ``bench viewer`` without --variant
VIEWER_TARGET_FPS = 60  #: the frame rate the live viewer aims at (reported beside the figure)


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


def viewer_variant(game: str, size: int = VIEWER_SIZE):
    """The game's ``large`` variant with a map of ``size`` (a TOML file in a temporary folder:
    ``base = "large"``, ``size = ...``)."""
    from metarena import games

    with tempfile.TemporaryDirectory(prefix="metarena-bench") as folder:
        path = Path(folder) / f"large{size}.toml"
        path.write_text(f'base = "large"\nsize = {size}\n', encoding="utf-8")
        return games.variant(game, str(path))


def bench_viewer(game: str = "treasure", variant=None, players: int = 4, frames: int = 300, tile: int = 32,
                 seed: int = 0) -> dict:
    """Frames per second of the live viewer: ``frames`` snapshots of a match of ``players``
    scripted agents on level ``seed`` (``variant``: default :func:`viewer_variant`), each drawn
    by the board and shown in a window as the spectator does; with no display, drawn only."""
    import pygame

    from .match import run_match
    from .viewer import WATCH_KEYS, Viewer
    from .watch import has_display

    variant = viewer_variant(game) if variant is None else variant
    snaps, boards = [], []

    def keep(snap, board):
        snaps.append(snap)
        boards.append(board)
        return len(snaps) < frames  # enough: the match stops

    agents = [make_agent("scripted", game, seed=seed + p) for p in range(players)]
    run_match(game, variant, agents, seed, episodes=1, tile=tile, on_snapshot=keep)
    board = boards[0]
    shown = has_display()
    viewer = Viewer(f"metarena bench viewer: {game}", fps=0, footer=WATCH_KEYS) if shown else None
    if viewer is not None:
        viewer.set_footer(status="1x (8 steps/s)")  # the footer a watched match has
    if not pygame.display.get_init():
        pygame.display.init()
    try:
        if viewer is not None:
            viewer.show(board.surface(snaps[0]), tick=False)  # the window opens
            board.surface(snaps[-1])  # so that the first timed frame is drawn afresh
        times = []
        started = time.perf_counter()
        for i in range(frames):
            t = time.perf_counter()
            surface = board.surface(snaps[i % len(snaps)])
            if viewer is not None:
                viewer.show(surface, tick=False)
            times.append(time.perf_counter() - t)
        seconds = time.perf_counter() - started
        window = list(viewer.window_size) if viewer is not None else None
        scaled = viewer is not None and viewer.window_size != viewer.canvas_size
        driver = pygame.display.get_driver()
    finally:
        if viewer is not None:
            viewer.close()
    ms = np.array(times) * 1e3
    return {"benchmark": "viewer", "game": game, "variant": variant.name,
            "map": [board.engine.height, board.engine.width], "players": players, "tile": tile,
            "frame": list(board.size), "window": window, "scaled": scaled, "driver": driver, "shown": shown,
            "measures": "draw + show" if shown else "draw only (no display: nothing shown)",
            "frames": frames, "snapshots": len(snaps), "seconds": round(seconds, 4), "fps": frames / seconds,
            "ms_median": float(np.median(ms)), "ms_p95": float(np.percentile(ms, 95)),
            "target_fps": VIEWER_TARGET_FPS, "machine": machine()}
