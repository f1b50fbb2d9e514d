"""One match: agents play a trial of K episodes on one level, optionally drawn frame by frame."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from metarena import games
from metarena.agents.rollout import Hooks, play
from metarena.games.batch import BatchEnv
from metarena.games.render import Renderer, hud_text

from .viewer import ViewerClosed

#: ``on_frame(frame, final)``: an (H, W, 3) RGB frame; ``final`` marks an episode's last frame.
#: Returning False stops the match.
FrameCallback = Callable[[np.ndarray, bool], "bool | None"]


class _Match(Hooks):
    """Records each episode's returns as it ends and, with ``on_frame``, draws the match: its
    first frame, one after every step, and each episode's last frame."""

    def __init__(self, env: BatchEnv, on_frame: FrameCallback | None, tile: int):
        self.on_frame = on_frame
        self.renderer = Renderer(env.engine, tile) if on_frame is not None else None
        self.returns: list[list[float]] = []
        self.lengths: list[int] = []
        self.frames = 0

    def emit(self, env: BatchEnv, final: bool) -> bool:
        if self.renderer is None:
            return True
        self.frames += 1
        hud = hud_text(env.engine, env.state, 0, env.episodes)
        return self.on_frame(self.renderer.frame(env.state, 0, hud), final) is not False

    def on_start(self, env):
        return self.emit(env, False)

    def on_final(self, env, slots):
        return self.emit(env, True)

    def on_step(self, env, actions, step):
        final = step.info.get("final")
        if final is not None:
            self.returns.append([float(x) for x in final["score"][0]])
            self.lengths.append(int(final["length"][0]))
        if not step.trial_done[0]:  # after the last episode, its last frame was the final one
            return self.emit(env, False)


def run_match(game: str, variant: str | None, agents: Sequence, seed: int = 0, episodes: int = 1, *,
              on_frame: FrameCallback | None = None, tile: int = 32) -> dict:
    """Play ``agents`` (one per player) for ``episodes`` episodes on level ``seed`` of ``game``.

    Returns ``{"game", "variant", "seed", "players", "agents", "episodes", "returns"
    (per episode, per player), "lengths", "completed", "frames"}``; ``completed`` is False
    when ``on_frame`` returned False or the window closed before the end.
    """
    env = BatchEnv(games.get(game), games.variant(game, variant), batch=1, players=len(agents),
                   learners=len(agents), episodes=episodes, seeds=[seed], seed=seed)
    match = _Match(env, on_frame, tile)
    try:
        play(env, agents, levels=np.zeros(1, dtype=np.int64), hooks=match)
    except ViewerClosed:
        pass
    return {"game": game, "variant": env.variant.name, "seed": seed, "players": len(agents),
            "agents": [a.name for a in agents], "episodes": episodes,
            "returns": match.returns, "lengths": match.lengths, "completed": len(match.returns) == episodes,
            "frames": match.frames}
