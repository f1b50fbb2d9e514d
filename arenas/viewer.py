"""The live window: shows RGB frames, keeps the clock and reads the keyboard.

Frames come from :class:`metarena.games.render.Renderer` (or anything that makes
``(H, W, 3)`` uint8 arrays); the viewer only blits them. It pumps the event
queue on every frame so the window stays responsive, and it stops on the
window's close button or Esc::

    viewer = Viewer("metarena: treasure", fps=10)
    while viewer.show(frame):
        ...
    viewer.close()
"""

from __future__ import annotations

import os
import time

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on import
import pygame  # noqa: E402

#: keys a person plays with: action index (0 stay, 1 up, 2 down, 3 left, 4 right) per key
KEY_ACTIONS: dict[int, int] = {
    pygame.K_UP: 1, pygame.K_w: 1,
    pygame.K_DOWN: 2, pygame.K_s: 2,
    pygame.K_LEFT: 3, pygame.K_a: 3,
    pygame.K_RIGHT: 4, pygame.K_d: 4,
    pygame.K_SPACE: 0, pygame.K_PERIOD: 0, pygame.K_KP_PERIOD: 0,
}
#: the footer shown while a person plays
PLAY_KEYS = "arrows / WASD: move    space / . : stay    Esc: quit"

FOOTER_BG = (16, 18, 24)
FOOTER_TEXT = (170, 176, 192)


class ViewerClosed(Exception):
    """The person closed the window or pressed Esc."""


def action_for_key(key: int) -> int | None:
    """The action a key stands for, or None if it is not a play key."""
    return KEY_ACTIONS.get(key)


class Viewer:
    """A pygame window that shows frames at ``fps`` frames per second.

    ``footer`` is a line of text drawn under every frame (e.g. :data:`PLAY_KEYS`);
    ``key_repeat`` makes a held key repeat (for play).
    """

    def __init__(self, title: str = "metarena", fps: float = 10, footer: str = "", key_repeat: bool = False):
        self.title, self.fps, self.footer, self.key_repeat = title, fps, footer, key_repeat
        self.closed = False
        self._window: pygame.Surface | None = None
        self._frame_size: tuple[int, int] | None = None
        self._footer: pygame.Surface | None = None
        self._last: pygame.Surface | None = None
        self._keys: list[int] = []
        self._clock: pygame.time.Clock | None = None

    @property
    def is_open(self) -> bool:
        return self._window is not None and not self.closed

    # -- window ------------------------------------------------------------------------------
    def _open(self, width: int, height: int) -> None:
        if not pygame.display.get_init():
            pygame.display.init()
        if not pygame.font.get_init():
            pygame.font.init()
        self._footer = self._footer_bar(width) if self.footer else None
        extra = self._footer.get_height() if self._footer else 0
        self._window = pygame.display.set_mode((width, height + extra))
        pygame.display.set_caption(self.title)
        if self.key_repeat:
            pygame.key.set_repeat(220, 90)
        self._frame_size = (width, height)
        self._clock = self._clock or pygame.time.Clock()

    def _footer_bar(self, width: int) -> pygame.Surface:
        size = 22
        while True:
            text = pygame.font.Font(None, size).render(self.footer, True, FOOTER_TEXT)
            if text.get_width() <= width - 8 or size <= 12:
                break
            size -= 2
        bar = pygame.Surface((width, text.get_height() + 10))
        bar.fill(FOOTER_BG)
        bar.blit(text, ((width - text.get_width()) // 2, 5))
        return bar

    def _redraw(self) -> None:
        if self._window is None or self._last is None:
            return
        self._window.blit(self._last, (0, 0))
        if self._footer is not None:
            self._window.blit(self._footer, (0, self._frame_size[1]))
        pygame.display.flip()

    # -- events ------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Handle every pending event: close, Esc, play keys, redraws."""
        if self._window is None:
            return
        for ev in pygame.event.get():
            if ev.type == pygame.QUIT:
                self.closed = True
            elif ev.type == pygame.KEYDOWN:
                if ev.key == pygame.K_ESCAPE:
                    self.closed = True
                else:
                    self._keys.append(ev.key)
            elif ev.type in (pygame.WINDOWEXPOSED, pygame.VIDEOEXPOSE):
                self._redraw()

    def poll_keys(self) -> list[int]:
        """Keys pressed since the last call (pygame key codes, oldest first); pumps events."""
        self._pump()
        keys, self._keys = self._keys, []
        return keys

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
    def show(self, frame: np.ndarray) -> bool:
        """Blit an (H, W, 3) uint8 RGB frame, pump events and wait for the next tick of the
        clock. Returns False once the window was closed or Esc pressed."""
        if self.closed:
            return False
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        h, w = frame.shape[:2]
        if self._window is None or self._frame_size != (w, h):
            self._open(w, h)
        self._last = pygame.image.frombuffer(frame, (w, h), "RGB").copy()
        self._redraw()
        self._pump()
        if self.fps and self.fps > 0:
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
        """Save what the window shows (frame and footer) as an image file."""
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
