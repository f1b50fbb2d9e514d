"""Draw a game state as an RGB image, with pygame surfaces and no window.

The only module in ``games/`` that imports pygame. A :class:`Renderer` draws
every tile sprite procedurally once (no image files), caches the static
background of each level (walls and floor) and then, per frame, blits only the
cells that differ from that background, the players and, on request, overlays::

    r = Renderer(engine, tile=32)
    rgb = r.frame(state, slot=0, hud="treasure  level 7  episode 1/3")  # (H, W, 3) uint8
    surf = r.draw_map(state, 0, names=["oracle", "random"], reveal=True, views=True)

By default only what a player could see is drawn: every closed chest looks the
same and a coin shows its colour, never its value. ``reveal=True`` shows the
hidden factor to spectators (the treasure chest framed in gold, each coin's
value written on it); ``views=True`` outlines each player's observation window;
``names`` puts a name tag over each player. The arena's panels (scoreboard,
charts) are drawn by :mod:`metarena.arenas.board`; this module draws the map.
No display is needed; this works with ``SDL_VIDEODRIVER=dummy`` and touches no
global pygame state beyond ``pygame.font.init()``.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Sequence

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on import
import pygame  # noqa: E402

from . import tiles as T
from .engine import MAX_PLAYERS, Engine, State

# -- palette ----------------------------------------------------------------------------------
HUD_BG = (16, 18, 24)
HUD_LINE = (58, 64, 80)
HUD_TEXT = (238, 240, 245)
FLOOR = (40, 44, 56)
FLOOR_EDGE = (34, 37, 48)
WALL = (88, 96, 116)
WALL_LIGHT = (122, 131, 154)
WALL_DARK = (58, 64, 80)
WALL_MORTAR = (70, 77, 94)
CHEST_WOOD = (156, 98, 42)
CHEST_LID = (184, 120, 56)
CHEST_DARK = (72, 42, 18)
CHEST_GOLD = (246, 204, 72)
COIN_COLOURS = {  # fill, rim
    T.COIN_RED: ((232, 64, 64), (140, 28, 32)),
    T.COIN_GREEN: ((72, 204, 96), (28, 112, 48)),
    T.COIN_BLUE: ((72, 132, 255), (28, 58, 160)),
}
#: fill colour of players 1-4
PLAYER_COLOURS = ((64, 200, 255), (255, 96, 176), (255, 164, 40), (178, 128, 255))
#: colour of the opponent cycles (cycles' bots) 1-3
BOT_COLOURS = ((232, 64, 64), (120, 220, 80), (236, 236, 240))
OUTLINE = (14, 16, 22)
TREASURE_MARK = (255, 214, 64)
VALUE_GOOD = (120, 255, 150)
VALUE_BAD = (255, 120, 120)

#: steps per second wherever a match is shown at normal speed (watch, play, replay, human-mode envs)
FPS = 8

SS = 4  # supersampling factor for sprite drawing (smoothscaled down once)


def _canvas(tile: int, alpha: bool = False) -> pygame.Surface:
    size = (tile * SS, tile * SS)
    if alpha:
        s = pygame.Surface(size, pygame.SRCALPHA)
        s.fill((0, 0, 0, 0))
        return s
    return pygame.Surface(size)


def _down(surf: pygame.Surface, tile: int) -> pygame.Surface:
    return pygame.transform.smoothscale(surf, (tile, tile))


def _poly(s: pygame.Surface, colour, pts, n: int, width: int = 0) -> None:
    """Polygon with points given in cell fractions (0..1) of a canvas of side ``n``."""
    pygame.draw.polygon(s, colour, [(x * n, y * n) for x, y in pts], width)


class Type:
    """Crisp text in the bundled font (``pygame.font.Font(None, size)``).

    At the sizes of a frame, the font's hinting snaps glyphs to whole pixels and leaves
    gaps inside words ("l evel"). Text is therefore drawn at ``SS`` times the size and
    smoothscaled down once, which keeps the spacing even; rendered strings are cached.
    ``size`` is the size given to ``pygame.font.Font`` (the line is about 0.7 of it in pixels).
    """

    CACHE = 1024

    def __init__(self):
        if not pygame.font.get_init():
            pygame.font.init()
        self._fonts: dict[int, pygame.font.Font] = {}
        self._cache: OrderedDict[tuple, pygame.Surface] = OrderedDict()

    def font(self, size: int) -> pygame.font.Font:
        """The font at ``SS`` times ``size`` (measure with :meth:`size`)."""
        if size not in self._fonts:
            self._fonts[size] = pygame.font.Font(None, size * SS)
        return self._fonts[size]

    def size(self, text: str, size: int) -> tuple[int, int]:
        """``(width, height)`` in pixels of ``text`` drawn at ``size``."""
        w, h = self.font(size).size(text)
        return -(-w // SS), -(-h // SS)

    def fit(self, text: str, size: int, width: int, smallest: int = 12) -> int:
        """The largest size from ``size`` down to ``smallest`` at which ``text`` fits ``width``."""
        while size > smallest and self.size(text, size)[0] > width:
            size -= 1
        return size

    def render(self, text: str, size: int, colour) -> pygame.Surface:
        """``text`` in ``colour`` on a transparent surface (cached; do not draw on it)."""
        key = (text, size, tuple(colour))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        big = self.font(size).render(text or " ", True, colour)
        w, h = self.size(text or " ", size)
        surf = pygame.transform.smoothscale(big, (max(1, w), max(1, h)))
        self._cache[key] = surf
        if len(self._cache) > self.CACHE:
            self._cache.popitem(last=False)
        return surf


class Renderer:
    """Draws slots of an :class:`~metarena.games.engine.Engine` state as RGB arrays.

    ``tile`` is the side of a map cell in pixels. Sprites, fonts and the output
    surface are made once; level backgrounds are cached (the last 32 levels); the
    overlays (name tags, hidden-factor marks, view outlines) are made on first use
    and kept.

    The heads-up bar of :meth:`frame` has ``hud_lines`` lines (default: one when the
    frame is at least 24 text heights wide, else two). A newline in the ``hud`` text
    starts the second line; on a one-line bar the lines are joined.
    """

    BG_CACHE = 32

    def __init__(self, engine: Engine, tile: int = 32, hud_lines: int | None = None):
        if tile < 4:
            raise ValueError(f"tile must be >= 4 pixels, got {tile}")
        if not pygame.font.get_init():
            pygame.font.init()
        self.engine, self.tile = engine, int(tile)
        t = self.tile
        self.line_height = max(22, int(round(t * 0.8))) // 2 * 2
        self.width = engine.width * t
        self.map_height = engine.height * t
        if hud_lines is None:
            hud_lines = 1 if self.width >= 24 * self.line_height else 2
        if hud_lines not in (1, 2):
            raise ValueError(f"hud_lines must be 1 or 2, got {hud_lines}")
        self.hud_lines = hud_lines
        self.hud_height = hud_lines * self.line_height + 4
        self.height = self.map_height + self.hud_height
        self.sprites: list[pygame.Surface] = self._tile_sprites()
        self.player_sprites: list[pygame.Surface] = [self._player_sprite(p) for p in range(MAX_PLAYERS)]
        self.type = Type()
        self._hud_cache: OrderedDict[str, pygame.Surface] = OrderedDict()
        self._line_cache: OrderedDict[str, pygame.Surface] = OrderedDict()
        self._bg_cache: OrderedDict[int, tuple[pygame.Surface, np.ndarray]] = OrderedDict()
        self._overlays: dict[tuple, pygame.Surface | None] = {}
        self._surface = pygame.Surface((self.width, self.height))
        self._map = self._surface.subsurface((0, self.hud_height, self.width, self.map_height))
        # cell origins in pixels (map row/col -> x, y on the map surface)
        self._xs = np.arange(engine.width) * t
        self._ys = np.arange(engine.height) * t

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of a :meth:`frame` in pixels."""
        return self.width, self.height

    @property
    def map_size(self) -> tuple[int, int]:
        """``(width, height)`` of the map surface of :meth:`draw_map` in pixels."""
        return self.width, self.map_height

    # -- per frame ---------------------------------------------------------------------------
    def frame(self, state: State, slot: int = 0, hud: str = "", *, reveal: bool = False, views: bool = False,
              names: Sequence[str] | None = None) -> np.ndarray:
        """uint8 (H, W, 3) RGB image of slot ``slot``: a heads-up line (``hud`` text) at the top
        and the map under it (see :meth:`draw_map` for the other arguments). The array is a
        fresh copy."""
        self.draw_map(state, slot, reveal=reveal, views=views, names=names)
        self._surface.blit(self._hud(hud), (0, 0))
        return np.frombuffer(pygame.image.tobytes(self._surface, "RGB"), dtype=np.uint8).reshape(
            self.height, self.width, 3)

    def draw_map(self, state: State, slot: int = 0, *, reveal: bool = False, views: bool = False,
                 names: Sequence[str] | None = None) -> pygame.Surface:
        """Draw the map of slot ``slot`` and return its surface (``map_size``; owned by the
        renderer and drawn over by the next call).

        ``reveal`` shows the level's hidden factor (for spectators, never for players): the
        chest that holds the treasure framed in gold with a star, the value of each coin (any
        item other than a chest) written on it. ``views`` outlines each player's observation
        window in its colour. ``names`` (one per player) puts a name tag over each player.
        """
        eng, surf = self.engine, self._map
        t = self.tile
        level = int(state.level[slot])
        bg, bg_codes = self._background(level)
        surf.blit(bg, (0, 0))
        r = eng.radius
        codes = state.cells[slot, r:r + eng.height, r:r + eng.width] & T.TILE_MASK
        ys, xs = np.nonzero(codes != bg_codes)
        if len(ys):
            sprites, cx, cy = self.sprites, self._xs, self._ys
            surf.blits([(sprites[c], (cx[x], cy[y])) for c, y, x in zip(codes[ys, xs].tolist(), ys, xs)],
                       doreturn=False)
        decorations = getattr(eng.game, "decorations", None)  # cycles: trails, bots, wrecks
        marks = decorations(eng, state, slot) if decorations is not None else None
        if marks is not None:
            self._draw_trails(marks)
        if reveal:
            self._draw_hidden(state, slot, level)
        rows, cols = eng.rowcol(state)
        at = list(zip(rows[slot].tolist(), cols[slot].tolist()))
        if views:
            for p, (y, x) in enumerate(at):
                surf.blit(self._view_outline(p), ((x - r) * t, (y - r) * t))
        for p, (y, x) in enumerate(at):
            surf.blit(self.player_sprites[p], (x * t, y * t))
        if marks is not None:
            wreck = self._wreck_mark()
            surf.blits([(wreck, (at[p][1] * t, at[p][0] * t)) for p in marks.get("dead", ()) if p < len(at)],
                       doreturn=False)
        if names and t >= 12:
            for p, (y, x) in enumerate(at):
                if p < len(names) and names[p]:
                    self._draw_tag(p, str(names[p]), y, x)
        return surf

    def _draw_hidden(self, state: State, slot: int, level: int) -> None:
        """Marks of the hidden factor on every item still on the map."""
        eng, t = self.engine, self.tile
        pos, value, tiles = eng.levels.item_pos[level], eng.levels.item_value[level], eng.item_tile[level]
        marks = []
        for k in np.flatnonzero(state.alive[slot]).tolist():
            mark = self._hidden_mark(int(tiles[k]), float(value[k]))
            if mark is not None:
                marks.append((mark, (int(pos[k, 1]) * t, int(pos[k, 0]) * t)))
        arrows = getattr(eng.game, "reveal_arrows", None)  # drift: which way its wind tiles blow
        if arrows is not None:
            cells, direction = arrows(eng, level)
            arrow = self._arrow_mark(int(direction))
            marks += [(arrow, (int(x) * t, int(y) * t)) for y, x in cells]
        self._map.blits(marks, doreturn=False)

    def _draw_trails(self, marks: dict) -> None:
        """A game's decorations (``Game.decorations``, cycles): each trail cell in the colour of
        the cycle that left it (``owner``: player p, bot ``BOT_OWNER + j``), each bot's cycle,
        and a wreck mark on every crashed bot."""
        t = self.tile
        owner = marks.get("owner")
        blits = []
        if owner is not None:
            ys, xs = np.nonzero(owner >= 0)
            blits += [(self._trail_sprite(int(o)), (x * t, y * t)) for o, y, x in zip(owner[ys, xs].tolist(), ys, xs)]
        for j, (y, x, alive) in enumerate(marks.get("bots", ())):
            blits.append((self._bot_sprite(j), (x * t, y * t)))
            if not alive:
                blits.append((self._wreck_mark(), (x * t, y * t)))
        self._map.blits(blits, doreturn=False)

    def _draw_tag(self, p: int, name: str, y: int, x: int) -> None:
        """A name tag centred over the player's cell (under it on the top row), inside the map."""
        tag, t = self._name_tag(p, name), self.tile
        w, h = tag.get_size()
        left = min(max(0, x * t + (t - w) // 2), self.width - w)
        top = y * t - h + max(1, t // 8)
        if top < 0:
            top = (y + 1) * t - max(1, t // 8)
        self._map.blit(tag, (left, top))

    def _background(self, level: int) -> tuple[pygame.Surface, np.ndarray]:
        """Walls and floor of a pool level, and the codes they stand for."""
        hit = self._bg_cache.get(level)
        if hit is not None:
            self._bg_cache.move_to_end(level)
            return hit
        tiles = self.engine.levels.tiles[level]
        codes = np.where(tiles == T.WALL, T.WALL, T.FLOOR).astype(np.uint8)
        t = self.tile
        surf = pygame.Surface((self.width, self.map_height))
        floor, wall = self.sprites[T.FLOOR], self.sprites[T.WALL]
        surf.blits([(wall if c == T.WALL else floor, (x * t, y * t))
                    for (y, x), c in np.ndenumerate(codes)], doreturn=False)
        self._bg_cache[level] = (surf, codes)
        if len(self._bg_cache) > self.BG_CACHE:
            self._bg_cache.popitem(last=False)
        return surf, codes

    def _hud(self, text: str) -> pygame.Surface:
        """The heads-up bar: white text on a dark bar; "P1".."P4" in the players' colours."""
        hit = self._hud_cache.get(text)
        if hit is not None:
            return hit
        h, lh = self.hud_height, self.line_height
        bar = pygame.Surface((self.width, h))
        bar.fill(HUD_BG)
        pygame.draw.line(bar, HUD_LINE, (0, h - 1), (self.width, h - 1))
        lines = [s.strip() for s in text.split("\n") if s.strip()]
        if self.hud_lines == 1 and lines:
            lines = ["    ".join(lines)]
        elif len(lines) > 2:
            lines = [lines[0], "    ".join(lines[1:])]
        for i, line in enumerate(lines):
            top = (h - 1 - len(lines) * lh) // 2 + i * lh
            bar.blit(self._hud_text(line), (6, top))
        self._hud_cache[text] = bar
        if len(self._hud_cache) > 256:
            self._hud_cache.popitem(last=False)
        return bar

    def _hud_text(self, line: str) -> pygame.Surface:
        """One line of heads-up text, every part at one font size (shrunk to fit the width),
        words kept whole."""
        hit = self._line_cache.get(line)
        if hit is not None:
            return hit
        lh = self.line_height
        parts = [s for s in re.split(r"\b(P[1-4])\b", line) if s]
        size = self.type.fit(line, int(lh * 1.3), self.width - 12, smallest=max(16, int(lh * 0.8)))
        rendered = [self.type.render(s, size, PLAYER_COLOURS[int(s[1]) - 1] if re.fullmatch(r"P[1-4]", s)
                                     else HUD_TEXT) for s in parts]
        width = sum(r.get_width() for r in rendered)
        out = pygame.Surface((max(1, width), lh))
        out.fill(HUD_BG)
        x = 0
        for r in rendered:
            out.blit(r, (x, (lh - r.get_height()) // 2 + 1))
            x += r.get_width()
        self._line_cache[line] = out
        if len(self._line_cache) > 256:
            self._line_cache.popitem(last=False)
        return out

    # -- overlays (made on first use, then kept) ---------------------------------------------
    def _hidden_mark(self, tile: int, value: float) -> pygame.Surface | None:
        """What ``reveal`` draws over an item: a chest with a positive value gets the treasure
        mark, an empty chest nothing, any other item its value."""
        key = ("hidden", tile, round(value, 3))
        if key not in self._overlays:
            if tile in (T.CHEST, T.CHEST_OPEN):
                self._overlays[key] = self._treasure_mark() if value > 0 else None
            else:
                self._overlays[key] = self._value_label(value)
        return self._overlays[key]

    def _treasure_mark(self) -> pygame.Surface:
        """A gold frame round the cell and a star in its corner."""
        t = self.tile
        s = _canvas(t, alpha=True)
        n = s.get_width()
        w = max(3, n // 12)
        pygame.draw.rect(s, (*TREASURE_MARK, 90), (0, 0, n, n), border_radius=n // 5)
        pygame.draw.rect(s, (*TREASURE_MARK, 255), (0, 0, n, n), w, border_radius=n // 5)
        cx, cy, ro, ri = 0.80, 0.20, 0.19, 0.08
        star = [(cx + (ro if i % 2 == 0 else ri) * np.sin(i * np.pi / 5),
                 cy - (ro if i % 2 == 0 else ri) * np.cos(i * np.pi / 5)) for i in range(10)]
        _poly(s, (255, 250, 220), star, n)
        _poly(s, (150, 96, 0), star, n, max(2, n // 40))
        return _down(s, t)

    def _arrow_mark(self, direction: int) -> pygame.Surface:
        """A white arrow with a dark rim pointing ``direction`` (1..4: up, down, left, right)."""
        key = ("arrow", direction)
        if key not in self._overlays:
            t = self.tile
            s = _canvas(t, alpha=True)
            n = s.get_width()
            up = [(0.5, 0.16), (0.78, 0.48), (0.60, 0.48), (0.60, 0.84), (0.40, 0.84), (0.40, 0.48), (0.22, 0.48)]
            turn = {1: lambda x, y: (x, y), 2: lambda x, y: (x, 1 - y), 3: lambda x, y: (y, x),
                    4: lambda x, y: (1 - y, x)}[direction]
            pts = [turn(x, y) for x, y in up]
            _poly(s, (255, 255, 255), pts, n)
            _poly(s, (20, 40, 80), pts, n, max(2, n // 24))
            self._overlays[key] = _down(s, t)
        return self._overlays[key]

    def _value_label(self, value: float) -> pygame.Surface:
        """The value on a dark tab over the lower half of the cell, the coin's colour still
        showing above it: green when it pays, red when it costs."""
        t = self.tile
        text = f"{value:+g}".replace("0.", ".") if value else "0"
        colour = VALUE_GOOD if value > 0 else VALUE_BAD if value < 0 else HUD_TEXT
        size = self.type.fit(text, max(14, int(t * 0.62)), t - 4, smallest=10)
        label = self.type.render(text, size, colour)
        s = pygame.Surface((t, t), pygame.SRCALPHA)
        s.fill((0, 0, 0, 0))
        tab = pygame.Rect(0, 0, min(t, label.get_width() + 6), min(t // 2 + 2, label.get_height() + 1))
        tab.midbottom = (t // 2, t)
        pygame.draw.rect(s, (10, 12, 18, 225), tab, border_radius=max(2, tab.height // 3))
        s.blit(label, label.get_rect(center=(tab.centerx, tab.centery + 1)))
        return s

    def _trail_sprite(self, owner: int) -> pygame.Surface:
        """A light trail over the floor in the colour of the cycle that left it (players
        0..3, then the bots)."""
        key = ("trail", owner)
        if key not in self._overlays:
            t = self.tile
            colour = PLAYER_COLOURS[owner] if owner < MAX_PLAYERS else BOT_COLOURS[(owner - MAX_PLAYERS) % len(BOT_COLOURS)]
            layer = _canvas(t, alpha=True)
            n = layer.get_width()
            pygame.draw.rect(layer, (*colour, 150), (int(0.12 * n), int(0.12 * n), int(0.76 * n), int(0.76 * n)),
                             border_radius=n // 6)
            core = tuple(min(255, c + 90) for c in colour)
            pygame.draw.rect(layer, (*core, 230), (int(0.34 * n), int(0.34 * n), int(0.32 * n), int(0.32 * n)),
                             border_radius=n // 10)
            s = self.sprites[T.FLOOR].copy()
            s.blit(_down(layer, t), (0, 0))
            self._overlays[key] = s
        return self._overlays[key]

    def _bot_sprite(self, j: int) -> pygame.Surface:
        """An opponent's cycle: a diamond in the bot's colour with a dark eye slit."""
        key = ("bot", j)
        if key not in self._overlays:
            t = self.tile
            s = _canvas(t, alpha=True)
            n = s.get_width()
            colour = BOT_COLOURS[j % len(BOT_COLOURS)]
            pts = [(0.5, 0.06), (0.94, 0.5), (0.5, 0.94), (0.06, 0.5)]
            _poly(s, (250, 250, 252), pts, n)
            _poly(s, colour, [(0.5, 0.16), (0.84, 0.5), (0.5, 0.84), (0.16, 0.5)], n)
            pygame.draw.rect(s, OUTLINE, (int(0.30 * n), int(0.44 * n), int(0.40 * n), int(0.12 * n)),
                             border_radius=n // 16)
            self._overlays[key] = _down(s, t)
        return self._overlays[key]

    def _wreck_mark(self) -> pygame.Surface:
        """A crashed cycle: a dark cross with a light rim."""
        key = ("wreck",)
        if key not in self._overlays:
            t = self.tile
            s = _canvas(t, alpha=True)
            n = s.get_width()
            for a, b in (((0.2, 0.2), (0.8, 0.8)), ((0.8, 0.2), (0.2, 0.8))):
                pygame.draw.line(s, (255, 255, 255), (a[0] * n, a[1] * n), (b[0] * n, b[1] * n), max(4, n // 6))
                pygame.draw.line(s, (30, 16, 20), (a[0] * n, a[1] * n), (b[0] * n, b[1] * n), max(2, n // 10))
            self._overlays[key] = _down(s, t)
        return self._overlays[key]

    def _view_outline(self, p: int) -> pygame.Surface:
        """Player ``p``'s observation window: a light tint and a frame in its colour, inset a
        little per player so that windows that coincide all show."""
        key = ("view", p)
        if key not in self._overlays:
            t, side = self.tile, self.engine.view * self.tile
            s = pygame.Surface((side, side), pygame.SRCALPHA)
            s.fill((*PLAYER_COLOURS[p], 26))
            inset, w = p * max(1, t // 12), max(2, t // 12)
            pygame.draw.rect(s, (*PLAYER_COLOURS[p], 235), (inset, inset, side - 2 * inset, side - 2 * inset), w,
                             border_radius=max(2, t // 6))
            self._overlays[key] = s
        return self._overlays[key]

    def _name_tag(self, p: int, name: str) -> pygame.Surface:
        """A player's name on a pill of its colour (long names cut with an ellipsis)."""
        key = ("tag", p, name)
        if key not in self._overlays:
            t = self.tile
            size = max(16, min(24, int(t * 0.6)))
            limit = max(3 * t, 60)
            text = name
            while len(text) > 1 and self.type.size(text, size)[0] > limit:
                text = text[:-1]
            if text != name:
                text = text[:-1] + "…"
            label = self.type.render(text, size, OUTLINE)
            w, h = label.get_width() + 8, label.get_height() + 1
            s = pygame.Surface((w, h + 1), pygame.SRCALPHA)
            s.fill((0, 0, 0, 0))
            pygame.draw.rect(s, (*OUTLINE, 200), (0, 1, w, h), border_radius=h // 2)
            pygame.draw.rect(s, PLAYER_COLOURS[p], (0, 0, w, h), border_radius=h // 2)
            s.blit(label, (4, 1))
            self._overlays[key] = s
        return self._overlays[key]

    # -- sprites (drawn once) ----------------------------------------------------------------
    def _tile_sprites(self) -> list[pygame.Surface]:
        """One opaque sprite per tile code 0..127 (unknown codes draw as wall)."""
        t = self.tile
        floor = self._floor()
        made = {T.FLOOR: floor, T.WALL: self._wall()}
        for code, draw in ((T.CHEST, self._chest), (T.CHEST_OPEN, self._chest_open),
                           (T.COIN_RED, self._coin), (T.COIN_GREEN, self._coin), (T.COIN_BLUE, self._coin),
                           (T.EXIT, self._exit), (T.OBJECT_A, self._object), (T.OBJECT_B, self._object),
                           (T.OBJECT_C, self._object), (T.BOOST, self._boost), (T.TRAP, self._trap),
                           (T.WIND, self._wind), (T.TRAIL, self._trail)):
            layer = _canvas(t, alpha=True)
            draw(layer, code)
            s = floor.copy()
            s.blit(_down(layer, t), (0, 0))
            made[code] = s
        return [made.get(c, made[T.WALL]) for c in range(T.TILE_MASK + 1)]

    def _floor(self) -> pygame.Surface:
        n = self.tile * SS
        s = _canvas(self.tile)
        s.fill(FLOOR_EDGE)
        e = max(1, n // 32)
        pygame.draw.rect(s, FLOOR, (e, e, n - 2 * e, n - 2 * e))
        return _down(s, self.tile)

    def _wall(self) -> pygame.Surface:
        n = self.tile * SS
        s = _canvas(self.tile)
        s.fill(WALL)
        m = max(1, n // 32)  # mortar width
        # two courses of bricks, offset
        half = n // 2
        pygame.draw.line(s, WALL_MORTAR, (0, half), (n, half), m)
        pygame.draw.line(s, WALL_MORTAR, (n // 2, 0), (n // 2, half), m)
        pygame.draw.line(s, WALL_MORTAR, (n // 4, half), (n // 4, n), m)
        pygame.draw.line(s, WALL_MORTAR, (3 * n // 4, half), (3 * n // 4, n), m)
        b = max(1, n // 16)  # bevel
        pygame.draw.rect(s, WALL_LIGHT, (0, 0, n, b))
        pygame.draw.rect(s, WALL_LIGHT, (0, 0, b, n))
        pygame.draw.rect(s, WALL_DARK, (0, n - b, n, b))
        pygame.draw.rect(s, WALL_DARK, (n - b, 0, b, n))
        return _down(s, self.tile)

    def _chest(self, s: pygame.Surface, code: int) -> None:
        n = s.get_width()
        w = max(2, n // 20)
        body = pygame.Rect(int(0.16 * n), int(0.40 * n), int(0.68 * n), int(0.42 * n))
        lid = pygame.Rect(int(0.16 * n), int(0.20 * n), int(0.68 * n), int(0.24 * n))
        pygame.draw.rect(s, CHEST_WOOD, body, border_bottom_left_radius=n // 16,
                         border_bottom_right_radius=n // 16)
        pygame.draw.rect(s, CHEST_LID, lid, border_top_left_radius=n // 8, border_top_right_radius=n // 8)
        pygame.draw.rect(s, CHEST_DARK, body, w, border_bottom_left_radius=n // 16,
                         border_bottom_right_radius=n // 16)
        pygame.draw.rect(s, CHEST_DARK, lid, w, border_top_left_radius=n // 8, border_top_right_radius=n // 8)
        # gold bands and the lock
        for fx in (0.27, 0.73):
            pygame.draw.rect(s, CHEST_GOLD, (int(fx * n) - w, lid.top + w, 2 * w, body.bottom - lid.top - 2 * w))
        lock = pygame.Rect(0, 0, int(0.16 * n), int(0.18 * n))
        lock.center = (n // 2, body.top + int(0.02 * n))
        pygame.draw.rect(s, CHEST_GOLD, lock, border_radius=n // 32)
        pygame.draw.rect(s, CHEST_DARK, lock, max(1, w // 2), border_radius=n // 32)
        pygame.draw.circle(s, CHEST_DARK, (n // 2, lock.centery - n // 80), max(2, n // 40))

    def _chest_open(self, s: pygame.Surface, code: int) -> None:
        n = s.get_width()
        w = max(2, n // 20)
        # the lid thrown back (seen from behind), the dark empty inside, the front of the box
        back = pygame.Rect(int(0.16 * n), int(0.12 * n), int(0.68 * n), int(0.20 * n))
        pygame.draw.rect(s, CHEST_DARK, back, border_top_left_radius=n // 8, border_top_right_radius=n // 8)
        pygame.draw.rect(s, (104, 66, 30), back.inflate(-2 * w, -2 * w), border_top_left_radius=n // 10,
                         border_top_right_radius=n // 10)
        inside = pygame.Rect(int(0.16 * n), int(0.30 * n), int(0.68 * n), int(0.24 * n))
        pygame.draw.rect(s, (20, 12, 6), inside)
        pygame.draw.rect(s, CHEST_DARK, inside, w)
        body = pygame.Rect(int(0.16 * n), int(0.52 * n), int(0.68 * n), int(0.30 * n))
        pygame.draw.rect(s, (116, 74, 34), body, border_bottom_left_radius=n // 16,
                         border_bottom_right_radius=n // 16)
        pygame.draw.rect(s, CHEST_DARK, body, w, border_bottom_left_radius=n // 16,
                         border_bottom_right_radius=n // 16)
        for fx in (0.27, 0.73):
            pygame.draw.rect(s, (146, 124, 60), (int(fx * n) - w, body.top + w, 2 * w, body.height - 2 * w))

    def _coin(self, s: pygame.Surface, code: int) -> None:
        n = s.get_width()
        fill, rim = COIN_COLOURS[code]
        c, rad = (n // 2, n // 2), int(0.30 * n)
        pygame.draw.circle(s, OUTLINE, (c[0], c[1] + n // 28), rad + n // 40)  # drop shadow
        pygame.draw.circle(s, rim, c, rad)
        pygame.draw.circle(s, fill, c, int(rad * 0.78))
        pygame.draw.circle(s, rim, c, int(rad * 0.50), max(2, n // 32))
        hi = tuple(min(255, v + 110) for v in fill)
        pygame.draw.arc(s, hi, pygame.Rect(c[0] - rad * 0.62, c[1] - rad * 0.62, rad * 1.24, rad * 1.24),
                        1.9, 3.0, max(2, n // 24))

    def _exit(self, s: pygame.Surface, code: int) -> None:
        n = s.get_width()
        frame = pygame.Rect(int(0.18 * n), int(0.12 * n), int(0.64 * n), int(0.76 * n))
        pygame.draw.rect(s, (60, 200, 120), frame, border_top_left_radius=n // 3, border_top_right_radius=n // 3)
        pygame.draw.rect(s, (8, 24, 16), frame.inflate(-n // 8, -n // 8), border_top_left_radius=n // 4,
                         border_top_right_radius=n // 4)
        # an arrow pointing out
        _poly(s, (150, 255, 190), [(0.5, 0.30), (0.66, 0.50), (0.56, 0.50), (0.56, 0.72), (0.44, 0.72),
                                   (0.44, 0.50), (0.34, 0.50)], n)

    def _object(self, s: pygame.Surface, code: int) -> None:
        n = s.get_width()
        w = max(2, n // 24)
        if code == T.OBJECT_A:  # orange triangle
            pts = [(0.5, 0.18), (0.82, 0.78), (0.18, 0.78)]
            colour = (255, 170, 48)
        elif code == T.OBJECT_B:  # purple square
            pts = [(0.22, 0.22), (0.78, 0.22), (0.78, 0.78), (0.22, 0.78)]
            colour = (176, 104, 255)
        else:  # teal diamond
            pts = [(0.5, 0.14), (0.84, 0.5), (0.5, 0.86), (0.16, 0.5)]
            colour = (48, 214, 196)
        _poly(s, colour, pts, n)
        _poly(s, OUTLINE, pts, n, w)

    def _boost(self, s: pygame.Surface, code: int) -> None:
        n = s.get_width()
        for dy in (0.0, 0.26):
            _poly(s, (255, 222, 48), [(0.2, 0.52 + dy - 0.18), (0.5, 0.22 + dy - 0.06), (0.8, 0.52 + dy - 0.18),
                                      (0.8, 0.66 + dy - 0.18), (0.5, 0.36 + dy - 0.06), (0.2, 0.66 + dy - 0.18)], n)

    def _trap(self, s: pygame.Surface, code: int) -> None:
        n = s.get_width()
        pygame.draw.circle(s, (96, 20, 24), (n // 2, n // 2), int(0.36 * n))
        for i in range(8):
            a = i * np.pi / 4
            tip = (0.5 + 0.40 * np.cos(a), 0.5 + 0.40 * np.sin(a))
            l = (0.5 + 0.18 * np.cos(a - 0.35), 0.5 + 0.18 * np.sin(a - 0.35))
            r = (0.5 + 0.18 * np.cos(a + 0.35), 0.5 + 0.18 * np.sin(a + 0.35))
            _poly(s, (220, 220, 228), [tip, l, r], n)
        pygame.draw.circle(s, (232, 48, 48), (n // 2, n // 2), int(0.14 * n))

    def _wind(self, s: pygame.Surface, code: int) -> None:
        n = s.get_width()
        w = max(2, n // 18)
        for fy, fx0, fx1 in ((0.30, 0.16, 0.72), (0.50, 0.26, 0.84), (0.70, 0.16, 0.66)):
            pts = [(fx0 + (fx1 - fx0) * k / 12, fy + 0.045 * np.sin(k * np.pi / 3)) for k in range(13)]
            pygame.draw.lines(s, (170, 214, 255), False, [(x * n, y * n) for x, y in pts], w)

    def _trail(self, s: pygame.Surface, code: int) -> None:
        n = s.get_width()
        pygame.draw.rect(s, (92, 220, 255, 120), (int(0.1 * n), int(0.1 * n), int(0.8 * n), int(0.8 * n)),
                         border_radius=n // 6)
        pygame.draw.rect(s, (200, 245, 255, 200), (int(0.3 * n), int(0.3 * n), int(0.4 * n), int(0.4 * n)),
                         border_radius=n // 10)

    def _player_sprite(self, p: int) -> pygame.Surface:
        """A rounded token in the player's colour with its number; transparent corners."""
        t = self.tile
        s = _canvas(t, alpha=True)
        n = s.get_width()
        colour = PLAYER_COLOURS[p]
        body = pygame.Rect(int(0.08 * n), int(0.08 * n), int(0.84 * n), int(0.84 * n))
        pygame.draw.rect(s, (0, 0, 0, 110), body.move(n // 32, n // 20), border_radius=n // 3)  # shadow
        pygame.draw.rect(s, (250, 250, 252), body, border_radius=n // 3)
        pygame.draw.rect(s, colour, body.inflate(-n // 8, -n // 8), border_radius=n // 4)
        font = pygame.font.Font(None, int(0.80 * n))
        label = font.render(str(p + 1), True, OUTLINE)
        s.blit(label, label.get_rect(center=(n // 2, n // 2 + n // 28)))
        return _down(s, t)


# -- a window for the interfaces' render_mode="human" ---------------------------------------------
# The arena's live viewer owns its own window; this one only serves Gymnasium and PettingZoo envs
# made with render_mode="human", which must show frames themselves.

_WINDOW: list | None = None  # [display surface, clock] while the window is open


def hud_text(engine: Engine, state: State, slot: int = 0, episodes: int = 1) -> str:
    """The heads-up line: game, level seed, episode k/K, step t/limit, then every player's score."""
    seed = int(engine.levels.seeds[state.level[slot]])
    scores = "  ".join(f"P{p + 1} {s:+.2f}" for p, s in enumerate(state.score[slot].tolist()))
    return (f"{engine.game.spec.name}  level {seed}  episode {int(state.episode[slot]) + 1}/{episodes}"
            f"  t {int(state.t[slot])}/{engine.limit}\n{scores}")


def show_human(frame: np.ndarray, fps: float = FPS, caption: str = "metarena") -> None:
    """Show an RGB frame (H, W, 3) in a window opened on first use, pump the window's
    events, and wait for the next tick at ``fps`` (no waiting on a dummy video driver)."""
    global _WINDOW
    h, w = int(frame.shape[0]), int(frame.shape[1])
    if _WINDOW is None or _WINDOW[0].get_size() != (w, h):
        pygame.display.init()
        _WINDOW = [pygame.display.set_mode((w, h)), pygame.time.Clock()]
    surface, clock = _WINDOW
    pygame.display.set_caption(caption)
    pygame.event.pump()
    image = pygame.image.frombuffer(np.ascontiguousarray(frame, dtype=np.uint8).tobytes(), (w, h), "RGB")
    surface.blit(image, (0, 0))
    pygame.display.flip()
    if os.environ.get("SDL_VIDEODRIVER") != "dummy":
        clock.tick(fps)


def close_human() -> None:
    """Close the window of :func:`show_human` (safe to call when none is open)."""
    global _WINDOW
    if _WINDOW is not None:
        _WINDOW = None
        pygame.display.quit()
