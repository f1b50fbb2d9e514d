"""What a spectator sees of a match: the map with panels around it.

A :class:`Board` draws one :class:`Snapshot` of a match (taken by
:mod:`metarena.arenas.match` after every step) as a frame; the map itself comes
from :class:`metarena.games.render.Renderer`::

    +----------------------------------------------------------------+
    | treasure · medium · level 5 (test)     episode 2/4   step 17/50 |
    +---------------------------+------------------------------------+
    |                           | PLAYER           EPISODE    TOTAL  |
    |   the map: players in     | 1 oracle           +0.00    +0.82  |
    |   their colours, with     | 2 random           +0.00    +0.00  |
    |   their agents' names     | RETURN BY EPISODE                  |
    |                           | 1 ▆ ▆ ▁ .        (a bar per episode,|
    |                           | 2 ▁ ▁ . .         the current one   |
    |                           | message: oracle found the treasure |
    |                           | LEADERBOARD       12/48 matches    |
    |                           | #  AGENT         ORDINAL  MATCHES  |
    |                           | 1  [1] oracle      +9.41        8  |
    +---------------------------+------------------------------------+

The leaderboard section is there when the board is given a :class:`Leaderboard`
(a tournament watched as it runs): the standings so far, one row per agent (rank,
agent, ordinal, matches), the agents of the match on screen marked with their
seats' colours. Whoever owns the leaderboard updates it between frames; the next
frame shows the change.

The summary frame of a match (``Snapshot.summary``) lays a card over the body:
the returns by episode of every player, their totals and who won (the leaderboard
stays uncovered). Frames are the same size all through a match, so recordings can
hold them all.

Text is drawn with :class:`metarena.games.render.Type` (the bundled font,
supersampled, cached). :meth:`Board.surface` returns a pygame surface (the
live viewer blits it as it is), :meth:`Board.draw` an RGB array.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on import
import pygame  # noqa: E402

from metarena.games.engine import Engine, State  # noqa: E402
from metarena.games.render import HUD_LINE, HUD_TEXT, PLAYER_COLOURS, Renderer, Type  # noqa: E402

BG = (22, 24, 32)
PANEL = (28, 31, 41)
RULE = HUD_LINE
TEXT = HUD_TEXT
DIM = (150, 156, 174)
ACCENT = (255, 214, 64)
GOOD = (120, 230, 150)
BAD = (255, 120, 120)
SHADE = (8, 9, 12, 180)

SIDEBAR = 330  #: width of the panels beside the map, in pixels
HEADER = 44  #: height of the title bar
PAD = 14
TITLE, BODY, SMALL = 30, 26, 21  #: font sizes (pygame.font.Font sizes; lines of about 21, 18, 15 px)


@dataclass(frozen=True)
class Snapshot:
    """One moment of a match: a copy of the state and what the panels show.

    ``returns`` holds the finished episodes' returns (one tuple per episode, one value per
    player); ``scores`` the current episode's so far. ``final`` marks an episode's last
    frame, ``summary`` the end-of-match frame (also ``final``).
    """

    state: State  # batch-1 copy of the match's slot
    episode: int  # 0-based index of the episode on screen
    t: int  # steps taken in that episode
    scores: tuple[float, ...]
    returns: tuple[tuple[float, ...], ...] = ()
    final: bool = False
    summary: bool = False
    message: str = ""
    index: int = 0  # position in the match's sequence of frames

    @property
    def totals(self) -> tuple[float, ...]:
        """Each player's return over the match so far (finished episodes plus the current one,
        unless the current one is already among the finished)."""
        done = np.sum(self.returns, axis=0) if self.returns else np.zeros(len(self.scores))
        current = 0.0 if len(self.returns) > self.episode else np.asarray(self.scores)
        return tuple(float(x) for x in done + current)


@dataclass(frozen=True)
class Standing:
    """One row of a :class:`Leaderboard`."""

    rank: int  # 1 = top
    agent: str
    ordinal: float  # mu - 3 sigma
    matches: int


class Leaderboard:
    """The standings a board shows beside a match (the leaderboard section).

    ``capacity`` rows are laid out (a tournament's agent count); more rows than that are
    cut, with a note. :meth:`update` replaces the rows and the ``note`` drawn at the
    section's head (e.g. ``"12/48 matches"``); boards redraw on the next frame. Not
    thread-safe: update it from the thread that draws.
    """

    MAX_ROWS = 8

    def __init__(self, capacity: int, note: str = ""):
        self.capacity = max(1, min(int(capacity), self.MAX_ROWS))
        self.rows: tuple[Standing, ...] = ()
        self.note = note
        self.version = 0  # bumped by every update: part of a board's cache key

    def update(self, rows: Iterable[Standing], note: str | None = None) -> None:
        self.rows = tuple(rows)
        if note is not None:
            self.note = note
        self.version += 1

    @classmethod
    def rows_of(cls, standings: dict) -> list[Standing]:
        """The rows of :func:`metarena.arenas.ratings.standings`' leaderboard."""
        return [Standing(int(r["rank"]), str(r["agent"]), float(r["ordinal"]), int(r["matches"]))
                for r in standings["leaderboard"]]


def copy_state(state: State, slot: int = 0) -> State:
    """A batch-1 copy of slot ``slot`` of ``state`` (arrays copied; the engine may go on)."""
    return State(**{f: getattr(state, f)[slot:slot + 1].copy() for f in State.__dataclass_fields__})


def winners(totals: Sequence[float]) -> list[int]:
    """The players with the highest total (several on a tie)."""
    best = max(totals)
    return [p for p, x in enumerate(totals) if abs(x - best) < 1e-6]


class Board:
    """Draws snapshots of one match of ``engine`` (slot 0) as frames of :attr:`size`.

    ``names`` label the players (map tags, scoreboard, charts, summary); ``title`` heads the
    frame; ``episodes`` is the match's K. The map is drawn with cells of ``tile`` pixels.
    With a ``leaderboard`` the sidebar ends with its section.
    """

    def __init__(self, engine: Engine, names: Sequence[str], episodes: int, *, tile: int = 32, title: str = "",
                 leaderboard: Leaderboard | None = None):
        if not 1 <= len(names) <= len(PLAYER_COLOURS):
            raise ValueError(f"a board shows 1-{len(PLAYER_COLOURS)} players, got {len(names)} names")
        self.engine, self.names, self.episodes, self.title = engine, [str(n) for n in names], int(episodes), title
        self.leaderboard = leaderboard
        self.renderer = Renderer(engine, tile)
        self.type = self.renderer.type
        self.players = len(self.names)
        mw, mh = self.renderer.map_size
        self.map_rect = pygame.Rect(0, HEADER, mw, mh)
        # the sidebar: scoreboard, charts, message
        self._row = 30
        self._chart = 46 if self.players <= 2 else 38
        self._score_top = PAD
        self._chart_top = self._score_top + 24 + self.players * self._row + 18
        self._message_top = self._chart_top + 26 + self.players * (self._chart + 8) + 14
        side_h = self._message_top + 3 * 20 + PAD
        self._board_top = side_h + 10  # the leaderboard section, if any
        self._board_row = 24
        if leaderboard is not None:
            side_h = self._board_top + 24 + 22 + leaderboard.capacity * self._board_row + PAD
        body_h = max(mh, side_h)
        self.side_rect = pygame.Rect(mw, HEADER, SIDEBAR, body_h)
        self.body_rect = pygame.Rect(0, HEADER, mw + SIDEBAR, body_h)
        self.map_rect.top = HEADER + (body_h - mh) // 2
        self.width, self.height = mw + SIDEBAR, HEADER + body_h
        self._surface = pygame.Surface((self.width, self.height))
        self._shade = pygame.Surface(self.body_rect.size, pygame.SRCALPHA)
        self._shade.fill(SHADE)
        self._last: tuple | None = None

    @property
    def leaderboard_rect(self) -> pygame.Rect | None:
        """Where the leaderboard section is drawn (None without a leaderboard)."""
        if self.leaderboard is None:
            return None
        top = self.side_rect.top + self._board_top - 10
        return pygame.Rect(self.side_rect.left, top, SIDEBAR, self.side_rect.bottom - top)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of a frame in pixels."""
        return self.width, self.height

    # -- frames ------------------------------------------------------------------------------
    def surface(self, snap: Snapshot, *, reveal: bool = False, views: bool = False) -> pygame.Surface:
        """The frame of ``snap`` as a pygame surface (owned by the board; drawn over by the next
        call). ``reveal`` shows the hidden factor on the map, ``views`` each player's window."""
        key = (id(snap), reveal, views, None if self.leaderboard is None else self.leaderboard.version)
        if self._last == key:
            return self._surface
        s = self._surface
        s.fill(BG)
        s.blit(self.renderer.draw_map(snap.state, 0, reveal=reveal, views=views, names=self.names),
               self.map_rect)
        self._header(snap, reveal)
        self._sidebar(snap)
        if snap.summary:
            self._summary(snap)
        self._last = key
        return s

    def draw(self, snap: Snapshot, *, reveal: bool = False, views: bool = False) -> np.ndarray:
        """The frame of ``snap`` as a fresh uint8 (H, W, 3) RGB array."""
        surf = self.surface(snap, reveal=reveal, views=views)
        return np.frombuffer(pygame.image.tobytes(surf, "RGB"), dtype=np.uint8).reshape(self.height, self.width, 3)

    # -- pieces ------------------------------------------------------------------------------
    def _text(self, text: str, size: int, colour, x: int, y: int, *, align: str = "left",
              width: int | None = None, on: pygame.Surface | None = None) -> int:
        """Draw ``text`` with its top at ``y`` on the frame (or ``on``); ``align`` left / right /
        center about ``x``. With ``width`` the text is made smaller (down to 14) or cut to fit.
        Returns its width."""
        if width is not None:
            size = self.type.fit(text, size, width, smallest=min(size, 14))
            while len(text) > 1 and self.type.size(text, size)[0] > width:
                text = text[:-2] + "…"
        img = self.type.render(text, size, colour)
        w = img.get_width()
        left = x if align == "left" else x - w if align == "right" else x - w // 2
        (self._surface if on is None else on).blit(img, (left, y))
        return w

    def _header(self, snap: Snapshot, reveal: bool) -> None:
        s, w = self._surface, self.width
        pygame.draw.rect(s, PANEL, (0, 0, w, HEADER))
        pygame.draw.line(s, RULE, (0, HEADER - 1), (w, HEADER - 1))
        k = min(snap.episode + 1, self.episodes)
        right = ("match over" if snap.summary
                 else f"episode {k}/{self.episodes}    step {snap.t}/{self.engine.limit}")
        rw = self._text(right, BODY, TEXT, w - PAD, 12, align="right")
        tag = "hidden factor shown" if reveal else ""
        tw = 0
        if tag:
            img = self.type.render(tag, SMALL, (20, 16, 4))
            tw = img.get_width() + 14
            box = pygame.Rect(w - PAD - rw - 12 - tw, 11, tw, 22)
            pygame.draw.rect(s, ACCENT, box, border_radius=11)
            s.blit(img, (box.left + 7, box.top + (22 - img.get_height()) // 2 + 1))
            tw += 12
        self._text(self.title, TITLE, TEXT, PAD, 10, width=max(40, w - 2 * PAD - rw - 16 - tw))

    def _swatch(self, p: int, x: int, y: int, size: int = 22, on: pygame.Surface | None = None) -> None:
        """The player's colour with its number, as on its token."""
        pygame.draw.rect(self._surface if on is None else on, PLAYER_COLOURS[p], (x, y, size, size),
                         border_radius=size // 4)
        self._text(str(p + 1), SMALL, (14, 16, 22), x + size // 2, y + (size - 15) // 2, align="center", on=on)

    def _sidebar(self, snap: Snapshot) -> None:
        s, side = self._surface, self.side_rect
        pygame.draw.rect(s, PANEL, side)
        pygame.draw.line(s, RULE, side.topleft, side.bottomleft)
        x0, x1 = side.left + PAD, side.right - PAD
        col_total, col_ep = x1, x1 - 80
        # scoreboard
        y = side.top + self._score_top
        self._text("PLAYER", SMALL, DIM, x0, y)
        self._text("EPISODE", SMALL, DIM, col_ep, y, align="right")
        self._text("TOTAL", SMALL, DIM, col_total, y, align="right")
        y += 24
        totals = snap.totals
        lead = winners(totals)  # highlighted when one player leads alone
        for p, name in enumerate(self.names):
            self._swatch(p, x0, y + 2)
            self._text(name, BODY, TEXT, x0 + 30, y + 4, width=col_ep - 70 - (x0 + 30))
            score = snap.scores[p]
            self._text(f"{score:+.2f}", BODY, _sign(score), col_ep, y + 4, align="right")
            self._text(f"{totals[p]:+.2f}", BODY, ACCENT if lead == [p] and self.players > 1 else TEXT,
                       col_total, y + 4, align="right")
            y += self._row
        # charts: return by episode
        y = side.top + self._chart_top
        pygame.draw.line(s, RULE, (x0, y - 10), (x1, y - 10))
        scale = _nice(max([abs(v) for row in snap.returns for v in row] + [abs(v) for v in snap.scores] + [1.0]))
        self._text("RETURN BY EPISODE", SMALL, DIM, x0, y)
        self._text(f"scale ±{scale:g}", SMALL, DIM, x1, y, align="right")
        y += 26
        for p in range(self.players):
            self._chart_row(snap, p, pygame.Rect(x0, y, x1 - x0, self._chart), scale)
            y += self._chart + 8
        # message
        y = side.top + self._message_top
        pygame.draw.line(s, RULE, (x0, y - 10), (x1, y - 10))
        for line in _wrap(self.type, snap.message, BODY, x1 - x0)[:3]:
            self._text(line, BODY, ACCENT, x0, y)
            y += 20
        if self.leaderboard is not None:
            self._leaderboard()

    def _leaderboard(self) -> None:
        """The standings: rank, agent (with the seats it holds in the match shown), ordinal, matches."""
        s, lb, box = self._surface, self.leaderboard, self.leaderboard_rect
        pygame.draw.rect(s, PANEL, box)
        pygame.draw.line(s, RULE, box.topleft, box.bottomleft)
        x0, x1 = box.left + PAD, box.right - PAD
        y = box.top + 10
        pygame.draw.line(s, RULE, (x0, y - 10), (x1, y - 10))
        note_w = self._text(lb.note, SMALL, ACCENT, x1, y, align="right", width=x1 - x0 - 130) if lb.note else 0
        self._text("LEADERBOARD", SMALL, DIM, x0, y, width=x1 - x0 - note_w - 8)
        y += 24
        col_matches, col_ordinal = x1, x1 - 84
        self._text("#", SMALL, DIM, x0, y)
        self._text("AGENT", SMALL, DIM, x0 + 26, y)
        self._text("ORDINAL", SMALL, DIM, col_ordinal, y, align="right")
        self._text("MATCHES", SMALL, DIM, col_matches, y, align="right")
        y += 22
        rows = lb.rows
        if len(rows) > lb.capacity:  # the last row says how many are left out
            rows = rows[: lb.capacity - 1]
        if not lb.rows:
            self._text("no match finished yet", BODY, DIM, x0, y + 2)
        for row in rows:
            self._text(str(row.rank), BODY, TEXT, x0, y + 2)
            x = x0 + 26
            for p in [p for p, n in enumerate(self.names) if n == row.agent][:3]:  # its seats in this match
                self._swatch(p, x, y + 2, size=18)
                x += 22
            x += 4 if x > x0 + 26 else 0
            name, room = row.agent, col_ordinal - 64 - x
            while len(name) > 2 and self.type.size(name, BODY)[0] > room:  # a path keeps its end: …/my_agent.py:A
                name = "…" + name[2:]
            self._text(name, BODY, ACCENT if row.rank == 1 else TEXT, x, y + 2)
            self._text(f"{row.ordinal:+.2f}", BODY, TEXT, col_ordinal, y + 2, align="right")
            self._text(str(row.matches), BODY, TEXT, col_matches, y + 2, align="right")
            y += self._board_row
        if len(lb.rows) > len(rows):
            self._text(f"... and {len(lb.rows) - len(rows)} more", SMALL, DIM, x0, y + 4)

    def chart_rect(self, p: int) -> pygame.Rect:
        """Where player ``p``'s chart of returns by episode is drawn (bars only, no swatch)."""
        top = self.side_rect.top + self._chart_top + 26 + p * (self._chart + 8)
        return pygame.Rect(self.side_rect.left + PAD + 32, top, SIDEBAR - 2 * PAD - 32, self._chart)

    def _chart_row(self, snap: Snapshot, p: int, box: pygame.Rect, scale: float) -> None:
        """A bar per episode: finished ones solid, the current one paler on a white mark, later ones a dot."""
        s = self._surface
        self._swatch(p, box.left, box.top + (box.height - 22) // 2)
        area = pygame.Rect(box.left + 32, box.top, box.width - 32, box.height)
        k = self.episodes
        gap = 4 if k <= 16 else 1
        bw = max(2, min(40, (area.width - gap * (k - 1)) // k))
        # the zero line sits at the bottom until some return below zero was seen
        negative = any(v < 0 for row in snap.returns for v in row) or any(v < 0 for v in snap.scores)
        zero = area.top + area.height // 2 if negative else area.bottom - 1
        half = (area.height // 2 - 1) if negative else area.height - 2
        pygame.draw.line(s, RULE, (area.left, zero), (area.left + k * (bw + gap) - gap, zero))
        colour = PLAYER_COLOURS[p]
        for e in range(k):
            x = area.left + e * (bw + gap)
            if e < len(snap.returns):
                v, solid = snap.returns[e][p], True
            elif e == snap.episode and not snap.summary:
                v, solid = snap.scores[p], False
            else:
                pygame.draw.circle(s, RULE, (x + bw // 2, zero), 2)
                continue
            h = int(round(min(1.0, abs(v) / scale) * half))
            bar = pygame.Rect(x, zero - h if v >= 0 else zero + 1, bw, max(h, 1))
            if solid:
                pygame.draw.rect(s, colour, bar)
            else:  # the episode being played: a paler bar, underlined
                pygame.draw.rect(s, tuple((c + p_) // 2 for c, p_ in zip(colour, PANEL)), bar)
                pygame.draw.line(s, TEXT, (x, zero), (x + bw - 1, zero), 2)

    def _summary(self, snap: Snapshot) -> None:
        """A card over the dimmed body: returns by episode, totals, the winner."""
        s = self._surface
        board = self.leaderboard_rect
        body = self.body_rect if board is None else pygame.Rect(self.body_rect.left, self.body_rect.top,
                                                                 self.body_rect.width, board.top - self.body_rect.top)
        s.blit(self._shade, self.body_rect)
        if board is not None:
            self._leaderboard()  # drawn again over the shade: the standings stay readable
        k, totals = len(snap.returns), snap.totals
        best = winners(totals)
        # measure at natural size, then draw on a card surface scaled to fit the body
        name_w = max(self.type.size(n, BODY)[0] for n in self.names) + 36
        col = max(74, self.type.size("+00.00", BODY)[0] + 18)
        width = PAD * 2 + max(name_w + col * (k + 1), self.type.size("match over", TITLE)[0] + 40, 320)
        height = PAD * 2 + 34 + 28 + 26 + self.players * 30 + 14 + 30
        card = pygame.Surface((width, height))
        card.fill(PANEL)
        pygame.draw.rect(card, ACCENT, card.get_rect(), 2, border_radius=8)
        y = PAD
        self._text("match over", TITLE, ACCENT, width // 2, y, align="center", on=card)
        y += 34
        self._text(f"{self.title}  ·  {k} episode{'s' if k != 1 else ''}", SMALL, DIM, width // 2, y,
                   align="center", width=width - 2 * PAD, on=card)
        y += 28
        x = PAD + name_w
        for e in range(k):
            self._text(f"ep {e + 1}", SMALL, DIM, x + col * (e + 1) - 6, y, align="right", on=card)
        self._text("TOTAL", SMALL, DIM, x + col * (k + 1) - 6, y, align="right", on=card)
        y += 26
        for p, name in enumerate(self.names):
            self._swatch(p, PAD, y + 2, on=card)
            self._text(name, BODY, TEXT, PAD + 30, y + 4, width=name_w - 36, on=card)
            for e in range(k):
                v = snap.returns[e][p]
                self._text(f"{v:+.2f}", BODY, _sign(v), x + col * (e + 1) - 6, y + 4, align="right", on=card)
            self._text(f"{totals[p]:+.2f}", BODY, ACCENT if p in best else TEXT, x + col * (k + 1) - 6, y + 4,
                       align="right", on=card)
            y += 30
        y += 14
        top = totals[best[0]]
        if self.players == 1:
            verdict = f"{self.names[0]} scored {top:+.2f} in all"
        elif len(best) == self.players:
            verdict = f"a draw at {top:+.2f}"
        elif len(best) > 1:
            verdict = "a tie: " + ", ".join(f"P{p + 1} {self.names[p]}" for p in best) + f" at {top:+.2f}"
        else:
            verdict = f"P{best[0] + 1} {self.names[best[0]]} won with {top:+.2f}"
        self._text(verdict, BODY, ACCENT, width // 2, y, align="center", width=width - 2 * PAD, on=card)
        room = body.inflate(-2 * PAD, -2 * PAD)
        if card.get_width() > room.width or card.get_height() > room.height:
            f = min(room.width / card.get_width(), room.height / card.get_height())
            card = pygame.transform.smoothscale(card, (max(1, int(card.get_width() * f)),
                                                       max(1, int(card.get_height() * f))))
        s.blit(card, card.get_rect(center=body.center))


def _sign(v: float):
    return GOOD if v > 1e-9 else BAD if v < -1e-9 else TEXT


def _nice(x: float) -> float:
    """The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) >= ``x``."""
    p = 10.0 ** np.floor(np.log10(x))
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * p >= x - 1e-9:
            return float(m * p)
    return float(10 * p)


def _wrap(type_: Type, text: str, size: int, width: int) -> list[str]:
    """Words of ``text`` in lines that fit ``width``."""
    lines: list[str] = []
    for word in text.split():
        if lines and type_.size(lines[-1] + " " + word, size)[0] <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines
