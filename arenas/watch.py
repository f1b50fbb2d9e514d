"""Watch agents play (live window and/or a GIF/MP4 file), or play yourself."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from metarena.agents.registry import make_agent

from .human import HumanAgent
from .match import run_match
from .viewer import PLAY_KEYS, Viewer

HOLD_S = 0.8  # how long an episode's last frame stays up (window and GIF)


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
    """Writes frames to ``path``: a GIF (``.gif``) or an MP4 (``.mp4``), by extension."""

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path, self.fps = Path(path), float(fps)
        self.kind = self.path.suffix.lower().lstrip(".")
        if self.kind not in ("gif", "mp4"):
            raise ValueError(f"can record .gif or .mp4, not '{self.path.suffix or self.path.name}'")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self._gif: list[np.ndarray] = []
        self._durations: list[float] = []
        self._mp4 = None

    def append(self, frame: np.ndarray, final: bool = False) -> None:
        self.frames += 1
        if self.kind == "gif":
            self._gif.append(frame)
            step_ms = 1000.0 / self.fps
            self._durations.append(max(step_ms, HOLD_S * 1000.0) if final else step_ms)
            return
        if self._mp4 is None:
            import imageio.v2 as imageio

            self._mp4 = imageio.get_writer(self.path, fps=self.fps, codec="libx264", quality=7,
                                           macro_block_size=2, ffmpeg_log_level="error")
        h, w = frame.shape[:2]
        if h % 2 or w % 2:  # yuv420p needs even sides
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        self._mp4.append_data(frame)

    def _write_gif(self) -> None:
        """One palette for the whole file, made from a few frames spread over it, then every
        frame mapped onto it without dithering: fast, small and stable from frame to frame."""
        from PIL import Image

        frames, n = self._gif, len(self._gif)
        sample = np.concatenate([frames[i] for i in np.linspace(0, n - 1, min(n, 8)).round().astype(int)])
        palette = Image.fromarray(sample).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
        images[0].save(self.path, format="GIF", save_all=True, append_images=images[1:],
                       duration=[int(round(d)) for d in self._durations], loop=0)
        self._gif, self._durations = [], []

    def close(self) -> None:
        if self.kind == "gif" and self._gif:
            self._write_gif()
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None


def watch(game: str, variant: str | None = None, agent_names: Sequence[str] = ("scripted",), seed: int = 0,
          episodes: int = 1, record: str | None = None, headless: bool = False, fps: int = 10, *,
          tile: int = 32) -> dict:
    """Play a match of the named agents on level ``seed``; show it live when a display exists
    (and not ``headless``), and write ``record`` (.gif / .mp4) if given. Headless with no
    ``record`` writes ``watch-<game>-<seed>.gif``. Returns the match results plus
    ``"record"`` (the file written, or None)."""
    agents = [make_agent(name, game, seed=seed + i) for i, name in enumerate(agent_names)]
    live = not headless and has_display()
    if not live and record is None:
        record = f"watch-{game}-{seed}.gif"
        print(f"no window ({'headless' if headless else 'no display'}): recording to {record}")
    recorder = Recorder(record, fps) if record else None
    viewer = Viewer(f"metarena: {game} level {seed}: "
                    + " vs ".join(f"P{i + 1} {n}" for i, n in enumerate(agent_names)), fps) if live else None

    def on_frame(frame: np.ndarray, final: bool) -> bool:
        if recorder is not None:
            recorder.append(frame, final)
        if viewer is not None:
            return viewer.show(frame) and (not final or viewer.pause(HOLD_S))
        return True

    try:
        result = run_match(game, variant, agents, seed, episodes, on_frame=on_frame, tile=tile)
    finally:
        if recorder is not None:
            recorder.close()
        if viewer is not None:
            viewer.close()
    result["record"] = str(record) if record else None
    return result


def play(game: str, variant: str | None = None, seed: int = 0, episodes: int = 3, fps: int = 30, *,
         opponents: Sequence[str] = (), tile: int = 32) -> dict:
    """A person plays player 1 in a window (turn-based: each step waits for a key), alone or
    against the named ``opponents``. Raises :class:`NoDisplayError` without a display."""
    if not has_display():
        raise NoDisplayError(
            "playing needs a window, and no display was found (SDL_VIDEODRIVER is 'dummy' or neither "
            "DISPLAY nor WAYLAND_DISPLAY is set). Run it from a desktop session; to see agents play "
            "without a display, use watch(..., record='match.gif') instead.")
    names = ["human", *opponents]
    viewer = Viewer(f"metarena: {game} level {seed}: " + " vs ".join(f"P{i + 1} {n}" for i, n in enumerate(names)),
                    fps, footer=PLAY_KEYS, key_repeat=True)
    agents = [HumanAgent(viewer)] + [make_agent(n, game, seed=seed + i + 1) for i, n in enumerate(opponents)]

    def on_frame(frame: np.ndarray, final: bool) -> bool:
        return viewer.show(frame) and (not final or viewer.pause(HOLD_S))

    try:
        return run_match(game, variant, agents, seed, episodes, on_frame=on_frame, tile=tile)
    finally:
        viewer.close()
