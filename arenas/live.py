"""Watch a tournament as it runs (``metarena tournament ... --watch``).

The tournament plays at full speed in a background thread: :func:`run_tournament`, as
without a window, and it alone writes the journal. As each group of matches is played, the
thread puts the group's journal records and replay lines on a queue and goes on; it never
waits for the window.

The main thread owns the window. It takes what the queue holds whenever the spectator waits
(every 10-50 ms), re-simulates the newest finished match from its record
(:func:`~metarena.arenas.tournament.replay_agents` and the match's level seed, as
``metarena replay`` does) and shows it through the one spectator path
(:func:`~metarena.arenas.watch.spectate`), at the viewer's speed. Beside the match, a
leaderboard (:class:`~metarena.arenas.board.Leaderboard`) shows the standings over the
records so far (:class:`~metarena.arenas.ratings.Standings`, which rates only the new
matches), updated each time a group finishes (at most :data:`REFRESH_SHARE` of the time goes
to them: when they cost more, the updates come further apart).

Keys: the spectator's (space pauses, the arrows step, + / - change the speed, h shows the
hidden factor, v the players' windows), and Tab shows another finished match (the next of
the latest group). A match's summary stays a few seconds, then the newest finished match
follows if it was not shown yet; else the summary stays (the leaderboard keeps changing) until
a group finishes. Esc or the window's close button closes the window; the tournament goes on
without it and ends as it would have. Once the tournament is over, the summary of the match
on screen stays until a key other than Tab or the controls is pressed.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on import
import pygame  # noqa: E402

from .board import Leaderboard  # noqa: E402
from .ratings import Standings, read_journal  # noqa: E402
from .tournament import (JOURNAL, Spec, TournamentError, replay_agents, run_tournament,  # noqa: E402
                         schedule, variant_of)
from .viewer import FPS, Spectator, Viewer, speed_text  # noqa: E402
from .watch import SUMMARY_HOLD_S, spectate  # noqa: E402

__all__ = ["TournamentThread", "Feed", "TournamentWatcher", "watch_tournament"]

#: the footer while a match of a running tournament plays
LIVE_KEYS = ("Tab: next match    space: pause    left / right: step    + / -: speed    h: hidden    v: views    "
             "Esc: close window")
REFRESH_SHARE = 0.05  #: at most this share of the time goes to recomputing the standings


class TournamentThread(threading.Thread):
    """:func:`run_tournament` in a daemon thread. Each group played goes on ``feed`` as
    ``(group, records, replays)`` (then to ``on_group``, if given); ``None`` follows the last.
    :attr:`records` holds the journal at the end, :attr:`error` what the tournament raised."""

    def __init__(self, spec: Spec, out, feed: queue.Queue, *, on_group: Callable | None = None, **kwargs):
        super().__init__(name="metarena-tournament", daemon=True)  # Ctrl+C ends the process; --resume continues
        self.spec, self.out, self.feed, self.on_group, self.kwargs = spec, out, feed, on_group, kwargs
        self.records: list[dict] | None = None
        self.error: BaseException | None = None

    def _group(self, group, records: list[dict], replays: list[dict]) -> None:
        self.feed.put((group, records, replays))
        if self.on_group is not None:
            self.on_group(group, records, replays)

    def run(self) -> None:
        try:
            self.records = run_tournament(self.spec, self.out, on_group=self._group, **self.kwargs)
        except BaseException as exc:  # handed to the main thread, which raises it
            self.error = exc
        finally:
            self.feed.put(None)


class Feed:
    """What the main thread knows of the running tournament, taken from the thread's queue:
    every record so far (for the standings) and the replay lines of the latest matches."""

    KEEP = 256  #: replay lines kept besides the latest group's: the matches Tab can reach

    def __init__(self, source: queue.Queue, total: int, records: list[dict] = ()):
        self.source, self.total = source, total
        self.records: list[dict] = list(records)
        self.matches: OrderedDict[str, tuple[dict, dict]] = OrderedDict()  # id -> (record, replay line)
        self.latest: list[str] = []  # the match ids of the latest group that played any
        self.groups = 0  # groups taken
        self.done = False  # the tournament ended (or failed)

    def poll(self, timeout: float = 0.0) -> bool:
        """Take everything the queue holds, waiting up to ``timeout`` seconds for the first item;
        True when anything came."""
        try:
            item = self.source.get(timeout=timeout) if timeout > 0 else self.source.get_nowait()
        except queue.Empty:
            return False
        while True:
            self._take(item)
            try:
                item = self.source.get_nowait()
            except queue.Empty:
                return True

    def _take(self, item) -> None:
        if item is None:
            self.done = True
            return
        _, records, replays = item
        self.groups += 1
        self.records += records
        for record, line in zip(records, replays):
            self.matches[record["match"]] = (record, line)
        if records:
            self.latest = [r["match"] for r in records]
        while len(self.matches) > max(self.KEEP, len(self.latest)):
            self.matches.popitem(last=False)

    def newest(self) -> str | None:
        """The last finished match (the last of the latest group)."""
        return self.latest[-1] if self.latest else None

    def after(self, match: str | None) -> str | None:
        """The match Tab shows after ``match``: the next of the latest group (round again), or the
        latest group's first when ``match`` is not in it; when that group is ``match`` alone, the
        match played before it."""
        if not self.latest:
            return None
        if match not in self.latest:
            return self.latest[0]
        if len(self.latest) > 1:
            return self.latest[(self.latest.index(match) + 1) % len(self.latest)]
        kept = list(self.matches)
        return kept[kept.index(match) - 1]

    def get(self, match: str) -> tuple[dict, dict]:
        return self.matches[match]


class _MatchView(Spectator):
    """The spectator of one match of a running tournament: keeps taking finished groups while
    it waits, answers Tab, and after the summary hands over to the newest match."""

    def __init__(self, viewer, watcher: "TournamentWatcher", match: str, **kwargs):
        self.watcher, self.match = watcher, match
        self.next: str | None = None  # the match to show after this one
        self.ended = False  # a key closed the summary of the tournament's last view
        self._summary_at = float("inf")
        super().__init__(viewer, **kwargs)

    def _tick(self) -> None:
        if self.watcher.tick() and self.index >= 0 and self.board is not None:
            self._draw()  # the leaderboard changed
        feed = self.watcher.feed
        if self.stopped or time.monotonic() - self._summary_at < SUMMARY_HOLD_S / max(1.0, float(self.speed)):
            return
        newest = feed.newest()
        if newest is not None and newest not in self.watcher.seen:  # from a group that finished meanwhile
            self.next, self.stopped = newest, True

    def _summary(self) -> bool:
        self._summary_at = time.monotonic()
        return super()._summary()

    def _keys(self, keys: list[int], browsing: bool = False) -> bool:
        if pygame.K_TAB in keys:
            keys = [k for k in keys if k != pygame.K_TAB]
            other = self.watcher.feed.after(self.match)
            if other is not None:
                self.next, self.stopped = other, True
        ok = super()._keys(keys, browsing)
        if not ok and not self.watcher.feed.done:
            return True  # while the tournament runs the summary waits for the next match
        self.ended |= not ok
        return ok

    def _status(self, done: bool = False) -> None:
        rate = f"{speed_text(self.speed)} ({self.steps_per_s:g} steps/s)"
        over = self.watcher.feed.done
        if done and over:
            status, footer = (f"{self.match}: tournament over, any key closes",
                              "Tab: another match    left / right: look back    h: hidden    v: views")
        elif done:
            status = f"{self.match} over: the next finished match follows"
            footer = "Tab: next match    left / right: look back    h: hidden    v: views    Esc: close window"
        else:
            status, footer = f"{self.match}  " + (f"paused  {rate}" if self.paused else rate), LIVE_KEYS
        self.viewer.set_footer(footer, status)


class TournamentWatcher:
    """The main thread's side of a watched tournament: the feed of finished matches, the
    leaderboard and the window (``viewer``). :meth:`run` shows matches until the tournament
    is over and its last view closed, or the window is closed. ``speed``, ``reveal`` and
    ``views`` are how the first match starts; later ones keep what the person chose. With
    ``wait_at_end`` False nothing waits for a key (the summaries go by on their own)."""

    def __init__(self, spec: Spec, feed: Feed, viewer, *, speed: float = 1.0, reveal: bool = False,
                 views: bool = False, tile: int = 32, wait_at_end: bool = True,
                 failed: Callable[[], bool] = lambda: False):
        self.spec, self.feed, self.viewer, self.tile, self.wait_at_end = spec, feed, viewer, tile, wait_at_end
        self.variant = variant_of(spec)
        self.failed = failed
        self.leaderboard = Leaderboard(len(spec.agents))
        self.shown: list[str] = []  # the matches shown, in order
        self.seen: set[str] = set()
        self.updates = 0  # leaderboard updates
        self._choices = dict(speed=speed, reveal=reveal, views=views)
        self._stale, self._next_refresh = False, 0.0
        self._standings, self._added = Standings(), 0
        self.refresh()

    # -- the standings -------------------------------------------------------------------------
    def refresh(self) -> None:
        """The leaderboard from the records so far."""
        began = time.monotonic()
        self._standings.add(self.feed.records[self._added:])  # only the new matches are rated
        self._added = len(self.feed.records)
        rows = Leaderboard.rows_of(self._standings.result()) if self.feed.records else []
        n = len(self.feed.records)
        note = f"final · {n} matches" if self.feed.done else f"{n}/{self.feed.total} matches"
        self.leaderboard.update(rows, note)
        self.updates += 1
        self._stale = False
        cost = time.monotonic() - began
        self._next_refresh = began + cost / REFRESH_SHARE if cost > 0.01 else 0.0  # short ones: every time

    def tick(self) -> bool:
        """Take finished groups from the feed; True when the leaderboard changed."""
        if self.feed.poll():
            self._stale = True
            if self.feed.done and self.failed():
                self.viewer.close()  # the tournament failed: the caller raises its error
        if self._stale and (self.feed.done or time.monotonic() >= self._next_refresh):
            self.refresh()
            return True
        return False

    # -- the window ----------------------------------------------------------------------------
    def run(self) -> None:
        """Show finished matches until the tournament is over (and, with ``wait_at_end``, a key
        closed the last one's summary) or the window is closed."""
        while not self.viewer.closed:
            self.tick()
            target = self.feed.newest()
            if target is None or target in self.seen:
                if self.feed.done:
                    return
                self._wait()
                continue
            if not self.show(target):
                return

    def _wait(self) -> None:
        """Wait for the next group: in the queue before the window opens, else with the window
        answering its events."""
        if getattr(self.viewer, "is_open", False):
            self.viewer.wait_key(0.05)
        else:
            if self.feed.poll(timeout=0.05):
                self._stale = True

    def show(self, match: str) -> bool:
        """Show ``match`` and then what the person or the tournament chose next; False when the
        view ended for good (window closed, the last summary closed by a key)."""
        while match is not None and not self.viewer.closed:
            record, line = self.feed.get(match)
            view = _MatchView(self.viewer, self, match, wait_at_end=self.wait_at_end, **self._choices)
            self.shown.append(match)
            self.seen.add(match)
            result = spectate(self.spec.game, self.variant, replay_agents(record, line), record["level_seed"],
                              self.spec.episodes, names=record["seats"], spectator=view, tile=self.tile,
                              leaderboard=self.leaderboard)
            if result["completed"] and not _same_returns(result["returns"], record["returns"]):
                print(f"warning: the replay of {match} differs from its journal record", file=sys.stderr)
            self._choices = dict(speed=float(view.speed), reveal=view.reveal, views=view.views)
            if view.ended:
                return False
            match = view.next
        return not self.viewer.closed


def _same_returns(a, b) -> bool:
    return [[round(x, 6) for x in row] for row in a] == [[round(x, 6) for x in row] for row in b]


def watch_tournament(spec: Spec, out, *, resume: bool = False, workers: int = 1, backend: str = "local",
                     address: str | None = None, on_group: Callable | None = None, viewer=None, fps: float = FPS,
                     speed: float = 1.0, scale: float | None = None, tile: int = 32, reveal: bool = False,
                     views: bool = False, wait_at_end: bool = True) -> list[dict]:
    """Run a tournament (the arguments of :func:`run_tournament`) while a window shows it
    (the module docstring says how); returns the journal's records, as ``run_tournament``.
    ``viewer`` is the window (default: a new :class:`Viewer` at ``fps`` steps per second,
    ``scale``); the first window opens when the first group is played."""
    out = Path(out)
    earlier: list[dict] = []
    if resume and (out / JOURNAL).exists():
        try:
            earlier = read_journal(out / JOURNAL)  # before the thread starts: no writer yet
        except (OSError, ValueError):
            earlier = []  # the tournament itself says what is wrong
    total = sum(len(g.levels) for g in schedule(spec))
    source: queue.Queue = queue.Queue()
    thread = TournamentThread(spec, out, source, on_group=on_group, resume=resume, workers=workers, backend=backend,
                              address=address)
    feed = Feed(source, total, earlier)
    owned = viewer is None
    if owned:
        viewer = Viewer(f"metarena tournament: {spec.game}: {', '.join(spec.agents)}", fps, scale=scale)
    thread.start()
    try:
        watcher = TournamentWatcher(spec, feed, viewer, speed=speed, reveal=reveal, views=views, tile=tile,
                                    wait_at_end=wait_at_end, failed=lambda: thread.error is not None)
        watcher.run()
    finally:
        if owned:
            viewer.close()
    if thread.is_alive() and watcher.shown:
        print("the window is closed; the tournament goes on", file=sys.stderr)
    thread.join()
    if thread.error is not None:
        raise thread.error
    if thread.records is None:  # pragma: no cover - run() always sets one of the two
        raise TournamentError("the tournament thread ended without a result")
    return thread.records
