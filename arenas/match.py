"""One match: agents play a trial of K episodes on one level, optionally drawn frame by frame."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from metarena import games
from metarena.agents.base import Context, Observation
from metarena.games.batch import BatchEnv
from metarena.games.render import Renderer, hud_text
from metarena.games.trial import TrialFeatures

from .viewer import ViewerClosed

#: ``on_frame(frame, final)``: an (H, W, 3) RGB frame; ``final`` marks an episode's last frame.
#: Returning False stops the match.
FrameCallback = Callable[[np.ndarray, bool], "bool | None"]


def run_match(game: str, variant: str | None, agents: Sequence, seed: int = 0, episodes: int = 1, *,
              on_frame: FrameCallback | None = None, tile: int = 32) -> dict:
    """Play ``agents`` (one per player) for ``episodes`` episodes on level ``seed`` of ``game``.

    Returns ``{"game", "variant", "seed", "players", "agents", "episodes", "returns"
    (per episode, per player), "lengths", "completed", "frames"}``; ``completed`` is False
    when ``on_frame`` returned False or the window closed before the end.
    """
    env = BatchEnv(games.get(game), games.variant(game, variant), batch=1, players=len(agents),
                   learners=len(agents), episodes=episodes, seeds=[seed], seed=seed)
    grid, scalars = env.reset(levels=np.zeros(1, dtype=np.int64))
    renderer = Renderer(env.engine, tile) if on_frame is not None else None
    out = {"game": game, "variant": env.variant.name, "seed": seed, "players": len(agents),
           "agents": [getattr(a, "name", type(a).__name__) for a in agents], "episodes": episodes,
           "returns": [], "lengths": [], "completed": False, "frames": 0}
    stop = False

    def emit(final: bool) -> None:
        nonlocal stop
        if renderer is not None and not stop:
            hud = hud_text(env.engine, env.state, 0, episodes)
            out["frames"] += 1
            stop = on_frame(renderer.frame(env.state, 0, hud), final) is False

    env.on_final = lambda state, slots: emit(True)
    features = TrialFeatures(1, len(agents), episodes)
    trial = features.reset()
    memory = [a.begin_trial(1) for a in agents]
    emit(False)
    try:
        while len(out["returns"]) < episodes and not stop:
            actions = np.empty((1, len(agents)), dtype=np.int64)
            for i, agent in enumerate(agents):
                act, memory[i] = agent.act(Observation(grid[:, i], scalars[:, i], trial[:, i]), memory[i],
                                           Context(env.engine, env.state, i))
                actions[0, i] = int(np.asarray(act).reshape(-1)[0])
            grid, scalars, rewards, terminated, truncated, info = env.step(actions)
            final = info.get("final")
            trial_end = np.zeros(1, dtype=bool) if final is None else final["trial_end"]
            trial = features.update(actions, rewards, terminated | truncated, trial_end)
            if final is not None:
                out["returns"].append([float(x) for x in final["score"][0]])
                out["lengths"].append(int(final["length"][0]))
                memory = [a.end_episode(m, final["slots"]) for a, m in zip(agents, memory)]
                if len(out["returns"]) == episodes:
                    break
            emit(False)
    except ViewerClosed:
        pass
    out["completed"] = len(out["returns"]) == episodes
    return out
