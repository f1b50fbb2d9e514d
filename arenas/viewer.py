"""The live window: shows frames, keeps the clock, reads the keyboard; and the spectator's controls.

:class:`Viewer` owns a resizable pygame window. Frames (RGB arrays or pygame
surfaces) are scaled to fit it with their aspect kept (smooth scaling; black
bars where the shapes differ), with a footer line of text under them. It pumps
the event queue whenever it shows or waits, so the window stays responsive, and
it closes on the window's close button or Esc::

    viewer = Viewer("metarena: treasure", fps=FPS)
    while viewer.show(frame):
        ...
    viewer.close()

:class:`Spectator` drives a watched match through a viewer (``run_match``'s
``on_snapshot``): it keeps the match's snapshots and answers the keys of
:data:`WATCH_KEYS`: space pauses, the arrows step forward and back while paused
(back redraws earlier snapshots), ``+`` / ``-`` change the speed from 1/8x to
32x, ``h`` shows the hidden factor, ``v`` the players' windows, Esc quits. The
match's summary stays until a key is pressed.
"""

from __future__ import annotations

import os
import time
from fractions import Fraction
from typing import TYPE_CHECKING, Callable

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on import
import pygame  # noqa: E402

from metarena.games.render import FPS, Type  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from .board import Board, Snapshot

#: keys a person plays with: action index (0 stay, 1 up, 2 down, 3 left, 4 right) per key
KEY_ACTIONS: dict[int, int] = {
    pygame.K_UP: 1, pygame.K_w: 1,
    pygame.K_DOWN: 2, pygame.K_s: 2,
    pygame.K_LEFT: 3, pygame.K_a: 3,
    pygame.K_RIGHT: 4, pygame.K_d: 4,
    pygame.K_SPACE: 0, pygame.K_PERIOD: 0, pygame.K_KP_PERIOD: 0,
}
#: the footer shown while a person plays
PLAY_KEYS = "arrows / WASD: move    space / . : stay    v: views    Esc: quit"
#: the footer shown while watching
WATCH_KEYS = "space: pause   left / right: step   + / -: speed   h: hidden   v: views   1-4: drive   Esc: quit"
#: speeds of a watched match, as multiples of its steps per second
SPEEDS = tuple(Fraction(2) ** e for e in range(-3, 6))  # 1/8x .. 32x
HOLD_S = 1.0  #: how long an episode's last frame stays up at 1x (window and recordings)
MAX_DRAW_FPS = 60  #: a fast match draws at most this many frames per second and skips the rest

FOOTER_BG = (16, 18, 24)
FOOTER_TEXT = (170, 176, 192)
FOOTER_STATUS = (255, 214, 64)
FOOTER_SIZE = 24


class ViewerClosed(Exception):
    """The person closed the window or pressed Esc."""


def action_for_key(key: int) -> int | None:
    """The action a key stands for, or None if it is not a play key."""
    return KEY_ACTIONS.get(key)


def fit(content: tuple[int, int], window: tuple[int, int]) -> pygame.Rect:
    """Where content of size ``content`` goes in a window of size ``window``: as large as it
    fits with its aspect kept, centred."""
    cw, ch = content
    ww, wh = window
    f = min(ww / cw, wh / ch)
    w, h = max(1, round(cw * f)), max(1, round(ch * f))
    return pygame.Rect((ww - w) // 2, (wh - h) // 2, w, h)


class Viewer:
    """A resizable pygame window that shows frames at ``fps`` frames per second.

    ``footer`` is a line of text drawn under every frame (e.g. :data:`PLAY_KEYS`), with an
    optional ``status`` at its left (:meth:`set_footer`); ``key_repeat`` makes a held key
    repeat at about ``fps`` (for play). ``scale`` sets the window's first size as a multiple
    of the frame's (default: 1, made smaller where the screen is smaller). ``on_key``, if set,
    sees every key but Esc first and returns True for the keys it handled itself.
    """

    def __init__(self, title: str = "metarena", fps: float = FPS, footer: str = "", key_repeat: bool = False,
                 scale: float | None = None):
        if scale is not None and not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.title, self.fps, self.key_repeat, self.scale = title, fps, key_repeat, scale
        self.footer, self.status = footer, ""
        self.closed = False
        self.on_key: Callable[[int], bool] | None = None
        self._window: pygame.Surface | None = None
        self._canvas: pygame.Surface | None = None  # frame + footer at their own size
        self._footer: pygame.Surface | None = None
        self._frame_size: tuple[int, int] | None = None
        self._resized = False  # the person changed the window's size
        self._keys: list[int] = []
        self._clock: pygame.time.Clock | None = None
        self._type: Type | None = None

    @property
    def is_open(self) -> bool:
        return self._window is not None and not self.closed

    @property
    def window_size(self) -> tuple[int, int] | None:
        return self._window.get_size() if self._window is not None else None

    @property
    def canvas_size(self) -> tuple[int, int] | None:
        """The frame and footer at their own size (the window scales them when its size differs)."""
        return self._canvas.get_size() if self._canvas is not None else None

    # -- window ------------------------------------------------------------------------------
    def _first_size(self, w: int, h: int) -> tuple[int, int]:
        if self.scale is not None:
            return max(1, round(w * self.scale)), max(1, round(h * self.scale))
        try:
            sw, sh = pygame.display.get_desktop_sizes()[0]
        except (pygame.error, IndexError):
            return w, h
        f = min(1.0, 0.92 * sw / w, 0.88 * sh / h)
        return max(1, round(w * f)), max(1, round(h * f))

    def _open(self, width: int, height: int) -> None:
        """Lay out a canvas for frames of ``width`` x ``height``; open the window on the first
        frame (and size it again for frames of another size, unless the person resized it)."""
        if not pygame.display.get_init():
            pygame.display.init()
        if self._type is None:
            self._type = Type()
        first = self._window is None
        self._layout(width, height)
        if first or not self._resized:
            self._window = pygame.display.set_mode(self._first_size(*self._canvas.get_size()), pygame.RESIZABLE)
            pygame.display.set_caption(self.title)
            if self.key_repeat:
                step = int(1000 / self.fps) if self.fps and self.fps > 0 else 100
                pygame.key.set_repeat(max(150, 2 * step), max(30, step))
        self._clock = self._clock or pygame.time.Clock()

    def _layout(self, width: int, height: int) -> None:
        """The footer bar and the canvas (frame over footer); the frame drawn so far is kept."""
        self._frame_size = (width, height)
        self._footer = self._footer_bar(width)
        size = (width, height + (self._footer.get_height() if self._footer else 0))
        if self._canvas is None or self._canvas.get_size() != size:
            old, self._canvas = self._canvas, pygame.Surface(size)
            self._canvas.fill((0, 0, 0))
            if old is not None:
                self._canvas.blit(old, (0, 0), (0, 0, width, min(height, old.get_height())))

    def _footer_bar(self, width: int) -> pygame.Surface | None:
        if not (self.footer or self.status):
            return None
        t = self._type
        h = t.size("Ag", FOOTER_SIZE)[1] + 10
        bar = pygame.Surface((width, h))
        bar.fill(FOOTER_BG)
        x = 8
        if self.status:
            img = t.render(self.status, FOOTER_SIZE, FOOTER_STATUS)
            bar.blit(img, (x, 5))
            x += img.get_width() + 20
        if self.footer:
            size = t.fit(self.footer, FOOTER_SIZE, width - x - 8, smallest=12)
            img = t.render(self.footer, size, FOOTER_TEXT)
            bar.blit(img, (max(x, width - 8 - img.get_width()), (h - img.get_height()) // 2 + 1))
        return bar

    def set_footer(self, footer: str | None = None, status: str | None = None) -> None:
        """Change the footer's text and/or its status (left, highlighted) and redraw."""
        changed = (footer is not None and footer != self.footer) or (status is not None and status != self.status)
        if footer is not None:
            self.footer = footer
        if status is not None:
            self.status = status
        if changed and self._window is not None:
            self._layout(*self._frame_size)
            self._redraw()

    def _redraw(self) -> None:
        if self._window is None or self._canvas is None:
            return
        if self._footer is not None:
            self._canvas.blit(self._footer, (0, self._frame_size[1]))
        ws, cs = self._window.get_size(), self._canvas.get_size()
        if ws == cs:
            self._window.blit(self._canvas, (0, 0))
        else:
            dest = fit(cs, ws)
            self._window.fill((0, 0, 0))
            self._window.blit(pygame.transform.smoothscale(self._canvas, dest.size), dest)
        pygame.display.flip()

    # -- events ------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Handle every pending event: close, Esc, resizes, redraws, other keys (queued)."""
        if self._window is None:
            return
        for ev in pygame.event.get():
            if ev.type == pygame.QUIT:
                self.closed = True
            elif ev.type == pygame.KEYDOWN:
                if ev.key == pygame.K_ESCAPE:
                    self.closed = True
                elif self.on_key is None or not self.on_key(ev.key):
                    self._keys.append(ev.key)
            elif ev.type == pygame.VIDEORESIZE:
                self._resized = True
                if self._window.get_size() != tuple(ev.size):  # SDL2 resizes the surface itself; dummy drivers don't
                    self._window = pygame.display.set_mode(ev.size, pygame.RESIZABLE)
                self._redraw()
            elif ev.type in (pygame.WINDOWEXPOSED, pygame.VIDEOEXPOSE, pygame.WINDOWSIZECHANGED):
                self._redraw()

    def poll_keys(self) -> list[int]:
        """Keys pressed since the last call (pygame key codes, oldest first); pumps events."""
        self._pump()
        keys, self._keys = self._keys, []
        return keys

    def clear_keys(self) -> None:
        """Forget every key pressed so far (pending in the event queue or kept here), e.g. the
        keys typed ahead while an episode ended. Window events are still handled."""
        self._pump()
        self._keys = []

    def wait_key(self, timeout: float | None = None) -> int | None:
        """The next key pressed (pumps events meanwhile); None when ``timeout`` seconds passed
        first or the window was closed."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._pump()
            if self.closed or self._window is None:
                return None
            if self._keys:
                return self._keys.pop(0)
            if end is not None and time.monotonic() >= end:
                return None
            time.sleep(0.01 if end is None else max(0.0, min(0.01, end - time.monotonic())))

    def latest_action(self) -> int | None:
        """The action of the last play key pressed since the last call, or None."""
        acts = [a for a in map(action_for_key, self.poll_keys()) if a is not None]
        return acts[-1] if acts else None

    def wait_action(self) -> int:
        """Block until a play key is pressed and return its action; keeps the window alive.
        Raises :class:`ViewerClosed` when the window is closed or Esc is pressed."""
        while True:
            self._pump()
            if self.closed or self._window is None:
                raise ViewerClosed("the window was closed")
            while self._keys:
                act = action_for_key(self._keys.pop(0))
                if act is not None:
                    return act
            self._clock.tick(60)

    # -- frames ------------------------------------------------------------------------------
    def show(self, frame: np.ndarray | pygame.Surface, tick: bool = True) -> bool:
        """Show an (H, W, 3) uint8 RGB frame or a pygame surface, pump events and (with
        ``tick``) wait for the next tick of the clock at ``fps``. Returns False once the
        window was closed or Esc pressed."""
        if self.closed:
            return False
        if isinstance(frame, pygame.Surface):
            w, h = frame.get_size()
            image = frame
        else:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            h, w = frame.shape[:2]
            image = pygame.image.frombuffer(frame, (w, h), "RGB")
        if self._window is None or self._frame_size != (w, h):
            self._open(w, h)
        self._canvas.blit(image, (0, 0))
        self._redraw()
        self._pump()
        if tick and self.fps and self.fps > 0:
            self._clock.tick(self.fps)
        return not self.closed

    def pause(self, seconds: float) -> bool:
        """Keep the window responsive for ``seconds``; False if it was closed meanwhile."""
        end = time.monotonic() + seconds
        while not self.closed and time.monotonic() < end:
            self._pump()
            time.sleep(min(0.02, max(0.0, end - time.monotonic())))
        return not self.closed

    def screenshot(self, path: str) -> None:
        """Save what the window shows (frame and footer, as scaled) as an image file."""
        if self._window is not None:
            pygame.image.save(self._window, path)

    def close(self) -> None:
        """Close the window (safe to call more than once)."""
        if self._window is not None:
            self._window = None
            pygame.display.quit()
        self.closed = True

    def __enter__(self) -> "Viewer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def speed_text(speed: Fraction) -> str:
    """``"1/8x"``, ``"1x"``, ``"32x"``."""
    return f"{speed}x"


#: take-over keys: the player (0-3) each hands to the keyboard, and back
TAKE_OVER_KEYS = {pygame.K_1: 0, pygame.K_2: 1, pygame.K_3: 2, pygame.K_4: 3}
#: the keys a person drives a taken-over player with (the arrows step through the match)
DRIVE_KEYS = {pygame.K_w: 1, pygame.K_s: 2, pygame.K_a: 3, pygame.K_d: 4}


class TakeOver:
    """An agent whose player a spectator can take over: while :attr:`Spectator.driving` names
    this player, the person's move (:attr:`Spectator.move`, WASD; stay when none) is played
    instead of the agent's. The agent is still asked every step, so that its memory follows
    the match, and plays on when the person hands the player back."""

    def __init__(self, agent, spectator: "Spectator", player: int):
        self.agent, self.spectator, self.player, self.name = agent, spectator, player, agent.name

    def begin_trial(self, n: int):
        return self.agent.begin_trial(n)

    def act(self, obs, memory, ctx):
        action, memory = self.agent.act(obs, memory, ctx)
        if self.spectator.driving == self.player:
            action = np.full(len(obs.grid), self.spectator.move, dtype=np.int64)
            self.spectator.move = 0  # one step per key press
        return action, memory

    def end_episode(self, memory, slots):
        return self.agent.end_episode(memory, slots)


class Spectator:
    """Watching controls over a :class:`Viewer`; pass it as ``run_match(on_snapshot=...)``.

    Every snapshot of the match is kept (they are small), so stepping back redraws earlier
    moments, with the overlays chosen now. While playing, snapshots are shown ``fps`` x
    speed per second (at most :data:`MAX_DRAW_FPS` drawn, the others skipped; an
    episode's last frame is always drawn and held :data:`HOLD_S` / speed seconds). While
    paused, right shows the next snapshot (the match plays one step when there is none
    yet) and left the one before. With ``wait_at_end`` the summary stays until a key other
    than left / right / h / v / + / - is pressed.

    Setting :attr:`stopped` ends the match on screen (``run_match`` stops at its next
    snapshot, or the summary ends) and leaves the window open; :meth:`_tick` runs whenever
    the spectator waits (every 10-50 ms), for subclasses that watch something else meanwhile.
    """

    def __init__(self, viewer: Viewer, *, reveal: bool = False, views: bool = False, speed: float = 1,
                 hold: float = HOLD_S, wait_at_end: bool = True):
        self.viewer, self.reveal, self.views, self.hold, self.wait_at_end = viewer, reveal, views, hold, wait_at_end
        self.snapshots: list[Snapshot] = []
        self.board: Board | None = None
        self.index = -1  # the snapshot on screen
        self.paused = False
        self.speed = min(SPEEDS, key=lambda s: abs(float(s) - speed))
        self._step = False  # right was pressed while paused: show one more
        self._next = 0.0  # when the next snapshot is due (time.monotonic)
        self._drawn = float("-inf")  # when the last one was drawn
        self._shown = -1  # the snapshot drawn last
        self.stopped = False
        #: the player a person drives (take-over: keys 1-4), or None; and the move they chose
        self.driving: int | None = None
        self.move = 0
        self._status()

    def _going(self) -> bool:
        return not (self.viewer.closed or self.stopped)

    def _tick(self) -> None:
        """Called whenever the spectator waits; nothing here."""

    # -- run_match's on_snapshot -------------------------------------------------------------
    def __call__(self, snap: Snapshot, board: Board) -> bool:
        self.board = board
        self.snapshots.append(snap)
        if self.stopped:
            return False
        if snap.summary:
            return self._summary()
        return self._catch_up()

    @property
    def steps_per_s(self) -> float:
        return float(self.viewer.fps or FPS) * float(self.speed)

    def _catch_up(self) -> bool:
        """Show snapshots up to the newest as the controls say; True when the match may go on."""
        while self._going():
            self._tick()
            self._keys(self.viewer.poll_keys())
            last = len(self.snapshots) - 1
            if self.paused and not self._step:
                key = self.viewer.wait_key(0.05)
                if key is not None:
                    self._keys([key])
                continue
            if self.index >= last:
                return True  # the match plays the next step
            self._step = False
            self.index += 1
            self._present()
        return False

    def _present(self) -> None:
        """Show the snapshot at ``index``: at once while paused, else when it is due."""
        snap = self.snapshots[self.index]
        if self.paused:
            self._draw()
            return
        now = time.monotonic()
        period = 1.0 / self.steps_per_s
        if now - self._next > 0.25:  # far behind (the agents think slowly, or we were paused): start afresh
            self._next = now
        if snap.final or now - self._drawn >= 1.0 / MAX_DRAW_FPS:
            self._draw()
            self._drawn = time.monotonic()
        self._next += period
        if snap.final:
            self._next += self.hold / max(1.0, float(self.speed))
        self._wait(self._next)

    def _wait(self, until: float) -> None:
        """Wait until ``until`` (time.monotonic), answering keys; ends early on pause or close."""
        while self._going() and not self.paused:
            self._tick()
            self._keys(self.viewer.poll_keys())
            left = until - time.monotonic()
            if left <= 0 or self.paused:
                return
            time.sleep(min(left, 0.01))

    def _draw(self) -> None:
        self._status(done=self.snapshots[-1].summary)
        snap = self.snapshots[self.index]
        self.viewer.show(self.board.surface(snap, reveal=self.reveal, views=self.views), tick=False)
        self._shown = self.index

    def _summary(self) -> bool:
        """Show the summary; with ``wait_at_end``, until a key that is not a control is pressed
        (left / right look back through the match meanwhile)."""
        self.index = len(self.snapshots) - 1
        self._draw()
        if not self.wait_at_end:
            return not self.viewer.closed
        self.paused = True
        self._status(done=True)
        while self._going():
            self._tick()
            key = self.viewer.wait_key(0.05)
            if key is None:
                continue
            if not self._keys([key], browsing=True):
                return True
        return False

    # -- keys --------------------------------------------------------------------------------
    def _keys(self, keys: list[int], browsing: bool = False) -> bool:
        """Answer control keys; False as soon as one is not a control (only when ``browsing``)."""
        for key in keys:
            if key in (pygame.K_SPACE, pygame.K_p) and not browsing:
                self.paused = not self.paused
                self._step = False
                self._next = time.monotonic()
                if self.paused and self.index >= 0 and self._shown != self.index:
                    self._draw()  # at high speed the screen may lag the match: show where it is
            elif key in (pygame.K_RIGHT, pygame.K_LEFT):
                self.paused = True
                if key == pygame.K_LEFT:
                    if self.index > 0:
                        self.index -= 1
                        self._draw()
                elif self.index < len(self.snapshots) - 1:
                    self.index += 1
                    self._draw()
                elif not browsing:
                    self._step = True  # none yet: let the match play a step
            elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS, pygame.K_RIGHTBRACKET):
                self.speed = SPEEDS[min(len(SPEEDS) - 1, SPEEDS.index(self.speed) + 1)]
            elif key in (pygame.K_MINUS, pygame.K_KP_MINUS, pygame.K_UNDERSCORE, pygame.K_LEFTBRACKET):
                self.speed = SPEEDS[max(0, SPEEDS.index(self.speed) - 1)]
            elif key in TAKE_OVER_KEYS and not browsing:  # take a player over, or hand it back
                player = TAKE_OVER_KEYS[key]
                self.driving = None if self.driving == player else player
                self.move = 0
            elif key in DRIVE_KEYS and self.driving is not None and not browsing:
                self.move = DRIVE_KEYS[key]
            elif key in (pygame.K_h, pygame.K_v):
                if key == pygame.K_h:
                    self.reveal = not self.reveal
                else:
                    self.views = not self.views
                if self.index >= 0:
                    self._draw()
            elif browsing:
                return False
        self._status(done=browsing)
        return True

    def _status(self, done: bool = False) -> None:
        """The footer: what the keys do, and where the match is."""
        rate = f"{speed_text(self.speed)} ({self.steps_per_s:g} steps/s)"
        if done:
            status = "match over: any key closes"
            footer = "left / right: look back    h: hidden    v: views"
        else:
            status = f"paused  {rate}" if self.paused else rate
            if self.driving is not None:
                status += f"  you drive P{self.driving + 1}: WASD"
            footer = WATCH_KEYS
        self.viewer.set_footer(footer, status)
