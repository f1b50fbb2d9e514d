"""One match: agents play a trial of K episodes on one level, optionally drawn frame by frame.

With ``on_frame`` or ``on_snapshot``, the match takes a :class:`~metarena.arenas.board.Snapshot`
after the reset, after every step and at every episode's end, and one more at the end of a
completed match (the summary: returns by episode, totals, the winner). ``on_frame`` gets
each drawn as an RGB array (for recordings), ``on_snapshot`` the snapshot itself and the
:class:`~metarena.arenas.board.Board` that draws it (for the live viewer, which draws only
what it shows, with the spectator's choice of overlays, and keeps the snapshots to step back).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from metarena import games
from metarena.agents.rollout import Hooks, play
from metarena.games import tiles as T
from metarena.games.batch import BatchEnv

from .board import Board, Leaderboard, Snapshot, copy_state
from .viewer import ViewerClosed

#: ``on_frame(frame, final)``: an (H, W, 3) RGB frame; ``final`` marks an episode's last frame
#: and the summary frame that follows the last episode. Returning False stops the match.
FrameCallback = Callable[[np.ndarray, bool], "bool | None"]
#: ``on_snapshot(snapshot, board)``: the same moments as snapshots, to draw with ``board``.
SnapshotCallback = Callable[[Snapshot, Board], "bool | None"]

MESSAGE_STEPS = 10  #: how many steps a message about an event stays up


def item_name(tile: int) -> str:
    """``"red coin"`` for ``coin_red``, ``"chest"`` for ``chest``: a tile's name for messages."""
    kind, _, detail = T.CHANNEL_NAMES[tile].partition("_")
    return f"{detail} {kind}" if kind == "coin" else " ".join(T.CHANNEL_NAMES[tile].split("_"))


class _Match(Hooks):
    """Records each episode's returns as it ends and, when the match is drawn, takes its
    snapshots (first frame, one after every step, each episode's last frame) with a message
    about what just happened."""

    def __init__(self, env: BatchEnv, names: Sequence[str], title: str, on_frame: FrameCallback | None,
                 on_snapshot: SnapshotCallback | None, tile: int, reveal: bool, views: bool,
                 leaderboard: Leaderboard | None = None):
        self.env, self.names = env, list(names)
        self.on_frame, self.on_snapshot, self.reveal, self.views = on_frame, on_snapshot, reveal, views
        drawn = on_frame is not None or on_snapshot is not None
        self.board = Board(env.engine, self.names, env.episodes, tile=tile, title=title,
                           leaderboard=leaderboard) if drawn else None
        self.returns: list[list[float]] = []
        self.lengths: list[int] = []
        self.frames = 0
        self.last: Snapshot | None = None
        self._scores = np.zeros(env.players, dtype=np.float64)  # at the previous snapshot
        self._message, self._message_left = "", 0

    # -- messages ----------------------------------------------------------------------------
    def _say(self, text: str, steps: int = MESSAGE_STEPS) -> None:
        self._message, self._message_left = text, steps

    def _who(self, p: int) -> str:
        return f"P{p + 1} {self.names[p]}"

    def _item_at(self, p: int) -> tuple[int, float] | None:
        """The tile and value of the item on player ``p``'s cell, if one is there."""
        eng, st = self.env.engine, self.env.state
        rows, cols = eng.rowcol(st)
        level = int(st.level[0])
        at = (eng.levels.item_pos[level] == (rows[0, p], cols[0, p])).all(1)
        if not at.any():
            return None
        k = int(np.argmax(at))
        return int(eng.item_tile[level, k]), float(eng.levels.item_value[level, k])

    def _gains(self) -> str:
        """What each player scored in the last step, and on what."""
        gain = self.env.state.score[0].astype(np.float64) - self._scores
        said = []
        for p in np.flatnonzero(np.abs(gain) > 1e-9).tolist():
            item = self._item_at(p)
            if item is not None and item[0] in (T.CHEST, T.CHEST_OPEN) and gain[p] > 0:
                said.append(f"{self._who(p)} found the treasure! {gain[p]:+.2f}")
            elif item is not None:
                name = item_name(item[0])
                said.append(f"{self._who(p)} took {'an' if name[0] in 'aeiou' else 'a'} {name}: {gain[p]:+.2f}")
            else:
                said.append(f"{self._who(p)} scored {gain[p]:+.2f}")
        return "; ".join(said)

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self, final: bool = False) -> Snapshot:
        st = self.env.state
        snap = Snapshot(state=copy_state(st, 0), episode=int(st.episode[0]), t=int(st.t[0]),
                        scores=tuple(float(x) for x in st.score[0]),
                        returns=tuple(tuple(r) for r in self.returns), final=final,
                        message=self._message if self._message_left > 0 else "", index=self.frames)
        self._message_left -= 1
        self._scores = st.score[0].astype(np.float64)
        return snap

    def send(self, snap: Snapshot) -> bool:
        """Hand a snapshot to the callbacks; False if one of them stops the match."""
        self.frames += 1
        self.last = snap
        go = True
        if self.on_frame is not None:
            go = self.on_frame(self.board.draw(snap, reveal=self.reveal, views=self.views), snap.final) is not False
        if go and self.on_snapshot is not None:
            go = self.on_snapshot(snap, self.board) is not False
        return go

    def summary(self) -> bool:
        """The end-of-match frame: the last episode's end under a card of the results."""
        last = self.last
        snap = Snapshot(state=last.state, episode=len(self.returns) - 1, t=last.t, scores=last.scores,
                        returns=tuple(tuple(r) for r in self.returns), final=True, summary=True,
                        message="match over", index=self.frames)
        return self.send(snap)

    # -- hooks -------------------------------------------------------------------------------
    def on_start(self, env):
        if self.board is None:
            return True
        self._say(f"episode 1 of {env.episodes}: go!")
        return self.send(self.snapshot())

    def on_final(self, env, slots):
        if self.board is None:
            return True
        st, k = env.state, int(env.state.episode[0]) + 1
        said = self._gains()
        if int(st.t[0]) >= env.engine.limit:
            said = f"time up: episode {k} of {env.episodes} is over" + (f" ({said})" if said else "")
        self._say(said or f"episode {k} of {env.episodes} is over")
        return self.send(self.snapshot(final=True))

    def on_step(self, env, actions, step):
        final = step.info.get("final")
        if final is not None:
            self.returns.append([float(x) for x in final["score"][0]])
            self.lengths.append(int(final["length"][0]))
        if self.board is None or step.trial_done[0]:  # after the last episode, its last frame was the final one
            return True
        if final is not None:
            self._scores[:] = 0.0
            self._say(f"episode {int(env.state.episode[0]) + 1} of {env.episodes}: go!")
        else:
            said = self._gains()
            if said:
                self._say(said)
        return self.send(self.snapshot())


def run_match(game: str, variant: str | None, agents: Sequence, seed: int = 0, episodes: int = 1, *,
              on_frame: FrameCallback | None = None, tile: int = 32, names: Sequence[str] | None = None,
              on_snapshot: SnapshotCallback | None = None, reveal: bool = False, views: bool = False,
              leaderboard: Leaderboard | None = None) -> dict:
    """Play ``agents`` (one per player) for ``episodes`` episodes on level ``seed`` of ``game``.

    ``names`` label the players in frames (default: the agents' names); ``on_frame`` frames
    show the hidden factor with ``reveal`` and the players' windows with ``views``; ``tile``
    is the side of a map cell in pixels; a ``leaderboard`` is drawn beside the match
    (:class:`~metarena.arenas.board.Leaderboard`). Returns ``{"game", "variant", "seed", "players",
    "agents", "episodes", "returns" (per episode, per player), "lengths", "completed",
    "frames"}``; ``completed`` is False when a callback returned False or the window closed
    before the end; ``frames`` counts the snapshots taken (the summary included).
    """
    env = BatchEnv(games.get(game), games.variant(game, variant), batch=1, players=len(agents),
                   learners=len(agents), episodes=episodes, seeds=[seed], seed=seed)
    names = [a.name for a in agents] if names is None else list(names)
    if len(names) != len(agents):
        raise ValueError(f"give one name per agent ({len(agents)}), got {len(names)}")
    title = f"{game} · {env.variant.name} · level {seed} ({games.seed_split(seed)})"
    match = _Match(env, names, title, on_frame, on_snapshot, tile, reveal, views, leaderboard)
    try:
        play(env, agents, levels=np.zeros(1, dtype=np.int64), hooks=match)
        if match.board is not None and len(match.returns) == episodes:
            match.summary()
    except ViewerClosed:
        pass
    return {"game": game, "variant": env.variant.name, "seed": seed, "players": len(agents),
            "agents": [a.name for a in agents], "episodes": episodes,
            "returns": match.returns, "lengths": match.lengths, "completed": len(match.returns) == episodes,
            "frames": match.frames}
