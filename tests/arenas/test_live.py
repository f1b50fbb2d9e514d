"""A tournament watched as it runs: the leaderboard panel, the feed of finished groups, the
watch loop (with a window that is not one), Tab, closing the window, and --watch without a
display."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import numpy as np
import pygame
import pytest

from metarena.arenas.board import Board, Leaderboard, Standing
from metarena.arenas.cli import main
from metarena.arenas.live import Feed, TournamentThread, TournamentWatcher, watch_tournament
from metarena.arenas.match import run_match
from metarena.arenas.ratings import standings
from metarena.arenas.tournament import Spec, TournamentError, run_tournament
from metarena.agents.registry import make_agent

#: 2 seatings x 2 levels, in groups of 2 matches: 4 matches, a second or so
SPEC = Spec("treasure", ("scripted", "random"), levels=2, episodes=1, variant="small", batch=2)


def journal(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "duration_s"}
            for line in (out / "journal.jsonl").read_text().splitlines()]


class NoWindow:
    """A viewer's interface with no window: counts what it is shown, hands out ``keys`` (one
    per call), and closes itself after ``close_after`` frames."""

    fps = 8

    def __init__(self, keys=(), close_after: int | None = None):
        self.keys, self.close_after = list(keys), close_after
        self.closed, self.frames, self.statuses = False, 0, []

    def show(self, frame, tick=True):
        self.frames += 1
        if self.close_after is not None and self.frames >= self.close_after:
            self.closed = True
        return not self.closed

    def poll_keys(self):
        return [self.keys.pop(0)] if self.keys else []

    def wait_key(self, timeout=None):
        if self.keys:
            return self.keys.pop(0)
        time.sleep(0.005)
        return None

    def set_footer(self, footer=None, status=None):
        if status and (not self.statuses or self.statuses[-1] != status):
            self.statuses.append(status)

    def close(self):
        self.closed = True


def played_groups(tmp_path) -> list[tuple]:
    """``(group, records, replays)`` of every group of SPEC, as the tournament hands them over."""
    items = []
    run_tournament(SPEC, tmp_path / "source", on_group=lambda *item: items.append(item))
    return items


# -- the panel ---------------------------------------------------------------------------------


def test_the_leaderboard_panel_draws_the_standings_and_changes_after_an_update(tmp_path):
    records = [r for _, rs, _ in played_groups(tmp_path) for r in rs]
    snaps, boards = [], []
    board_of = lambda snap, board: snaps.append(snap) or boards.append(board)  # noqa: E731
    lb = Leaderboard(2)
    run_match("treasure", "small", [make_agent("scripted", seed=0), make_agent("random", seed=1)], seed=0,
              episodes=1, names=["scripted", "random"], on_snapshot=board_of, tile=8, leaderboard=lb)
    board = boards[0]
    rect = board.leaderboard_rect
    assert rect is not None and board.side_rect.contains(rect) and rect.bottom == board.height
    plain = Board(board.engine, board.names, 1, tile=8)
    assert plain.leaderboard_rect is None and plain.height < board.height  # room only where asked

    def panel(snap):
        return board.draw(snap)[rect.top:rect.bottom, rect.left:rect.right].copy()

    empty = panel(snaps[0])
    lb.update(Leaderboard.rows_of(standings(records[:2])), "2/4 matches")
    first = panel(snaps[0])
    assert not np.array_equal(empty, first)  # the same snapshot, drawn again with the new standings
    lb.update(Leaderboard.rows_of(standings(records)), "final · 4 matches")
    assert [r.matches for r in lb.rows] == [4, 4] and lb.rows[0].rank == 1
    assert not np.array_equal(first, panel(snaps[0]))
    # the summary's card leaves the standings uncovered
    assert snaps[-1].summary and np.array_equal(panel(snaps[-2]), panel(snaps[-1]))
    # more agents than rows: the last row says how many are left out
    lb.update([Standing(i + 1, f"agent{i}", 10.0 - i, 3) for i in range(5)])
    assert panel(snaps[0]).any()


# -- the feed and the watch loop ---------------------------------------------------------------


def test_the_feed_takes_groups_as_they_come_and_the_leaderboard_follows(tmp_path):
    items = played_groups(tmp_path)
    source = queue.Queue()
    feed = Feed(source, total=4)
    watcher = TournamentWatcher(SPEC, feed, NoWindow(), wait_at_end=False)
    assert not watcher.tick() and lb_note(watcher) == "0/4 matches" and watcher.leaderboard.rows == ()
    source.put(items[0])
    assert watcher.tick() and lb_note(watcher) == "2/4 matches"
    assert [r.matches for r in watcher.leaderboard.rows] == [2, 2]
    assert feed.newest() == "m000001" and feed.after("m000001") == "m000000" and feed.after("m000000") == "m000001"
    source.put(items[1])
    source.put(None)
    assert watcher.tick() and feed.done and feed.groups == 2 and lb_note(watcher) == "final · 4 matches"
    assert [r.matches for r in watcher.leaderboard.rows] == [4, 4]
    assert feed.after("m000001") == "m000002"  # not in the latest group: its first
    assert not watcher.tick()


def lb_note(watcher) -> str:
    return watcher.leaderboard.note


def test_the_watch_loop_shows_the_newest_match_answers_tab_and_returns_once_the_tournament_ends(tmp_path):
    source = queue.Queue()
    for item in played_groups(tmp_path):
        source.put(item)
    source.put(None)
    window = NoWindow(keys=[pygame.K_TAB])
    watcher = TournamentWatcher(SPEC, Feed(source, total=4), window, speed=32, wait_at_end=False)
    began = time.monotonic()
    watcher.run()
    assert time.monotonic() - began < 10
    # the newest match, then Tab to the next of its group; nothing new after that: the end
    assert watcher.shown == ["m000003", "m000002"]
    assert window.frames > 3 and any(s.startswith("m000002") for s in window.statuses)
    assert watcher.feed.done and watcher.leaderboard.note == "final · 4 matches"


def test_a_watched_tournament_writes_the_journal_of_an_unwatched_one(tmp_path):
    watched, plain = tmp_path / "watched", tmp_path / "plain"
    run_tournament(SPEC, plain)
    window = NoWindow()
    records = watch_tournament(SPEC, watched, viewer=window, speed=32, wait_at_end=False)
    assert journal(watched) == journal(plain) and len(records) == 4 and window.frames > 0
    assert (watched / "replays.jsonl").read_text() == (plain / "replays.jsonl").read_text()
    assert (watched / "leaderboard.json").exists()
    # the window closed after its second frame: the tournament finishes without it, unchanged
    closed = tmp_path / "closed"
    window = NoWindow(close_after=2)
    watch_tournament(SPEC, closed, viewer=window, speed=32)
    assert window.closed and journal(closed) == journal(plain)


def test_a_failing_tournament_raises_in_the_main_thread(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "stray.txt").write_text("not a tournament")
    window = NoWindow()
    with pytest.raises(TournamentError, match="not empty"):
        watch_tournament(SPEC, tmp_path / "t", viewer=window)
    assert window.frames == 0


def test_the_thread_hands_over_every_group_then_none(tmp_path):
    source = queue.Queue()
    seen = []
    thread = TournamentThread(SPEC, tmp_path / "t", source, on_group=lambda g, r, p: seen.append(g.index))
    thread.start()
    thread.join(timeout=60)
    items = []
    while not source.empty():
        items.append(source.get())
    assert items[-1] is None and [g.index for g, _, _ in items[:-1]] == seen == [0, 1]
    assert thread.error is None and len(thread.records) == 4


def test_watch_without_a_display_says_so_and_runs_the_tournament(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["tournament", "--game", "treasure", "--variant", "small", "--agents", "scripted,random",
                 "--levels", "2", "--episodes", "1", "--batch", "2", "--out", str(out), "--watch", "--json"]) == 0
    captured = capsys.readouterr()
    assert "--watch: no display" in captured.err
    assert json.loads(captured.out)["matches"] == 4 and len(journal(out)) == 4
