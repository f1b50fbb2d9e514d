"""Watch agents play (live window and/or a GIF/MP4 file), or play yourself."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from metarena.agents.registry import make_agent
from metarena.games.render import FPS

from .board import Board, Leaderboard, Snapshot
from .human import HumanAgent
from .match import run_match
from .viewer import HOLD_S, PLAY_KEYS, Spectator, TakeOver, Viewer

__all__ = ["EPISODES", "FPS", "HOLD_S", "SUMMARY_HOLD_S", "NoDisplayError", "Recorder", "Viewer", "has_display",
           "play", "spectate", "watch"]

EPISODES = 4  #: episodes of a watched or played match by default (as `metarena eval`)
SUMMARY_HOLD_S = 4.0  #: how long a recording's last frame (the match's summary) stays up


class NoDisplayError(RuntimeError):
    """Human play needs a window, and there is no display to open one on."""


def has_display() -> bool:
    """True when a window can be shown: not the dummy video driver and, on Linux,
    an X11 or Wayland display in the environment."""
    if os.environ.get("SDL_VIDEODRIVER", "") == "dummy":
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Recorder:
    """Writes frames to ``path``: a GIF (``.gif``) or an MP4 (``.mp4``), by extension.

    A frame appended with ``final`` stays up :data:`HOLD_S` seconds (an episode's end), the
    last frame of the file :data:`SUMMARY_HOLD_S` (a match's summary); in an MP4 a held
    frame is repeated.
    """

    def __init__(self, path: str | os.PathLike, fps: float = FPS):
        self.path, self.fps = Path(path), float(fps)
        self.kind = self.path.suffix.lower().lstrip(".")
        if self.kind not in ("gif", "mp4"):
            raise ValueError(f"can record .gif or .mp4, not '{self.path.suffix or self.path.name}'")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self._gif: list[np.ndarray] = []
        self._durations: list[float] = []
        self._mp4 = None
        self._pending: tuple[np.ndarray, float] | None = None  # the newest MP4 frame and its hold

    def append(self, frame: np.ndarray, final: bool = False) -> None:
        self.frames += 1
        step_s = 1.0 / self.fps
        hold = max(step_s, HOLD_S) if final else step_s
        if self.kind == "gif":
            self._gif.append(frame)
            self._durations.append(hold * 1000.0)
            return
        self._flush()
        self._pending = (np.array(frame, copy=True), hold)

    def _flush(self, hold: float | None = None) -> None:
        """Write the pending MP4 frame, repeated for its hold (or ``hold``)."""
        if self._pending is None:
            return
        frame, held = self._pending
        self._pending = None
        if self._mp4 is None:
            import imageio.v2 as imageio

            self._mp4 = imageio.get_writer(self.path, fps=self.fps, codec="libx264", quality=7,
                                           macro_block_size=2, ffmpeg_log_level="error")
        h, w = frame.shape[:2]
        if h % 2 or w % 2:  # yuv420p needs even sides
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        for _ in range(max(1, round((held if hold is None else hold) * self.fps))):
            self._mp4.append_data(frame)

    def _write_gif(self) -> None:
        """One palette for the whole file, made from a few frames spread over it, then every
        frame mapped onto it without dithering: fast, small and stable from frame to frame."""
        from PIL import Image

        frames, n = self._gif, len(self._gif)
        self._durations[-1] = max(self._durations[-1], SUMMARY_HOLD_S * 1000.0)
        sample = np.concatenate([frames[i] for i in np.linspace(0, n - 1, min(n, 8)).round().astype(int)])
        palette = Image.fromarray(sample).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
        images[0].save(self.path, format="GIF", save_all=True, append_images=images[1:],
                       duration=[int(round(d)) for d in self._durations], loop=0)
        self._gif, self._durations = [], []

    def close(self) -> None:
        if self.kind == "gif" and self._gif:
            self._write_gif()
        if self._pending is not None:
            self._flush(max(self._pending[1], SUMMARY_HOLD_S))
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None


def spectate(game: str, variant, agents: Sequence, seed: int, episodes: int, *, names: Sequence[str] | None = None,
             record: str | None = None, live: bool = True, fps: float = FPS, tile: int = 32,
             scale: float | None = None, reveal: bool = False, views: bool = False, title: str | None = None,
             spectator: Spectator | None = None, leaderboard: Leaderboard | None = None,
             take_over: bool = False) -> dict:
    """Play a match of ``agents`` shown live in a window (when ``live``) and/or recorded to
    ``record``: the one path of ``watch`` (and of any command that shows a match). In the
    window the spectator's keys work (:class:`~metarena.arenas.viewer.Spectator`) and the
    summary stays until a key is pressed; ``reveal`` / ``views`` are how it starts (and what
    the recording shows). With ``spectator`` the match is shown through it and its viewer,
    which stays open (several matches in one window), instead of a new window; a
    ``leaderboard`` is drawn beside the match. With ``take_over`` a person can drive any
    player from the keyboard and hand it back (:class:`~metarena.arenas.viewer.TakeOver`). Returns
    :func:`~metarena.arenas.match.run_match`'s result plus ``"record"``."""
    names = [a.name for a in agents] if names is None else list(names)
    recorder = Recorder(record, fps) if record else None
    viewer = None  # a window of our own, closed at the end
    if live and spectator is None:
        caption = title or f"metarena: {game} level {seed}: " + " vs ".join(
            f"P{i + 1} {n}" for i, n in enumerate(names))
        viewer = Viewer(caption, fps, scale=scale)
        spectator = Spectator(viewer, reveal=reveal, views=views)

    if take_over and spectator is not None:
        agents = [TakeOver(a, spectator, p) for p, a in enumerate(agents)]

    def on_frame(frame: np.ndarray, final: bool) -> None:
        recorder.append(frame, final)

    try:
        result = run_match(game, variant, agents, seed, episodes, tile=tile, names=names, reveal=reveal,
                           views=views, on_frame=on_frame if recorder is not None else None, on_snapshot=spectator,
                           leaderboard=leaderboard)
    finally:
        if recorder is not None:
            recorder.close()
        if viewer is not None:
            viewer.close()
    result["record"] = str(record) if record else None
    return result


def watch(game: str, variant: str | None = None, agent_names: Sequence[str] = ("scripted",), seed: int = 0,
          episodes: int = EPISODES, record: str | None = None, headless: bool = False, fps: float = FPS, *,
          tile: int = 32, scale: float | None = None, reveal: bool = False, views: bool = False) -> dict:
    """Play a match of the named agents on level ``seed``; show it live when a display exists
    (and not ``headless``), and write ``record`` (.gif / .mp4) if given. Headless with no
    ``record`` writes ``watch-<game>-<seed>.gif``. ``fps`` is the speed at 1x in steps per
    second, ``scale`` the window's first size relative to the frame, ``reveal`` / ``views``
    show the hidden factor / the players' windows from the start (keys h / v toggle them).
    Returns the match results plus ``"record"`` (the file written, or None)."""
    agents = [make_agent(name, game, seed=seed + i) for i, name in enumerate(agent_names)]
    live = not headless and has_display()
    if not live and record is None:
        record = f"watch-{game}-{seed}.gif"
        print(f"no window ({'headless' if headless else 'no display'}): recording to {record}")
    return spectate(game, variant, agents, seed, episodes, names=list(agent_names), record=record, live=live,
                    fps=fps, tile=tile, scale=scale, reveal=reveal, views=views, take_over=True)


class _PlayScreen:
    """What a person playing sees: every snapshot at once (the game waits for their keys),
    each episode's end held with its message and the keys typed meanwhile dropped, the
    summary until a key is pressed; ``v`` shows the players' windows."""

    def __init__(self, viewer: Viewer, hold: float = HOLD_S):
        self.viewer, self.hold, self.views = viewer, hold, False
        self.board: Board | None = None
        self.snap: Snapshot | None = None
        viewer.on_key = self._key

    def _key(self, key: int) -> bool:
        import pygame

        if key != pygame.K_v:
            return False
        self.views = not self.views
        if self.snap is not None:
            self.viewer.show(self.board.surface(self.snap, views=self.views), tick=False)
        return True

    def __call__(self, snap: Snapshot, board: Board) -> bool:
        self.board, self.snap = board, snap
        if not self.viewer.show(board.surface(snap, views=self.views)):
            return False
        if snap.summary:
            self.viewer.clear_keys()
            self.viewer.set_footer("", "match over: any key closes")
            self.viewer.wait_key()
        elif snap.final:
            ok = self.viewer.pause(self.hold)
            self.viewer.clear_keys()  # keys typed while the episode ended do not spill into the next
            return ok
        return not self.viewer.closed


def play(game: str, variant: str | None = None, seed: int = 0, episodes: int = EPISODES, fps: float = FPS, *,
         opponents: Sequence[str] = (), tile: int = 32, scale: float | None = None) -> dict:
    """A person plays player 1 in a window (turn-based: each step waits for a key, a held key
    repeats at about ``fps``), alone or against the named ``opponents``. Raises
    :class:`NoDisplayError` without a display."""
    if not has_display():
        raise NoDisplayError(
            "playing needs a window, and no display was found (SDL_VIDEODRIVER is 'dummy' or neither "
            "DISPLAY nor WAYLAND_DISPLAY is set). Run it from a desktop session; to see agents play "
            "without a display, use watch(..., record='match.gif') instead.")
    names = ["you", *opponents]
    viewer = Viewer(f"metarena: {game} level {seed}: " + " vs ".join(f"P{i + 1} {n}" for i, n in enumerate(names)),
                    fps, footer=PLAY_KEYS, key_repeat=True, scale=scale)
    agents = [HumanAgent(viewer)] + [make_agent(n, game, seed=seed + i + 1) for i, n in enumerate(opponents)]
    try:
        return run_match(game, variant, agents, seed, episodes, tile=tile, names=names,
                         on_snapshot=_PlayScreen(viewer))
    finally:
        viewer.close()
