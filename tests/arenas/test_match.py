"""Matches, their frames (board, messages, summary), watching (GIF / MP4), the viewer under the
dummy driver, and human keys."""

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pygame
import pytest

from metarena.agents.registry import make_agent
from metarena.arenas.board import Board, Snapshot, winners
from metarena.arenas.human import HumanAgent
from metarena.arenas.match import MESSAGE_STEPS, item_name, run_match
from metarena.arenas.viewer import HOLD_S, KEY_ACTIONS, Viewer, ViewerClosed, action_for_key
from metarena.arenas.watch import SUMMARY_HOLD_S, watch
from metarena.games import tiles as T
from metarena.games.render import PLAYER_COLOURS


def agents(*names, seed=0):
    return [make_agent(n, seed=seed + i) for i, n in enumerate(names)]


def test_run_match_returns_results_and_is_deterministic():
    a = run_match("coinrush", "small", agents("scripted", "random"), seed=4, episodes=2)
    b = run_match("coinrush", "small", agents("scripted", "random"), seed=4, episodes=2)
    assert a["completed"] and a["players"] == 2 and a["agents"] == ["scripted", "random"]
    assert len(a["returns"]) == 2 and all(len(r) == 2 for r in a["returns"])
    assert len(a["lengths"]) == 2 and all(n > 0 for n in a["lengths"])
    assert a == b


def test_run_match_frames_and_stop():
    frames, finals = [], []

    def on_frame(frame, final):
        frames.append(frame.copy())
        finals.append(final)

    res = run_match("treasure", "small", agents("oracle"), seed=2, episodes=2, on_frame=on_frame, tile=8)
    assert res["completed"] and res["returns"][0][0] > 0
    # the first frame, one per step, the last frame of each episode before the restart, the summary
    assert len(frames) == res["frames"] == sum(res["lengths"]) + 2 + 1
    assert sum(finals) == 3 and finals[-1] and finals[-2]
    assert len({f.shape for f in frames}) == 1  # one size all through, summary included
    stopped = run_match("treasure", "small", agents("random"), seed=2, episodes=2, tile=8,
                        on_frame=lambda f, final: False)
    assert not stopped["completed"] and stopped["frames"] == 1


def test_watch_headless_writes_default_gif(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    res = watch("treasure", "small", ["scripted", "random"], seed=3, episodes=1, record=None, headless=True,
                fps=10, tile=8)
    path = tmp_path / "watch-treasure-3.gif"
    assert res["record"] == "watch-treasure-3.gif" and path.exists()
    assert "watch-treasure-3.gif" in capsys.readouterr().out
    assert len(iio.imread(path, index=None)) == sum(res["lengths"]) + 1 + 1  # + the summary


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_watch_records_by_extension(tmp_path, ext):
    path = tmp_path / f"match.{ext}"
    res = watch("coinrush", "small", ["scripted", "random", "oracle"], seed=5, episodes=2, record=str(path),
                headless=True, fps=12, tile=16)
    expected = sum(res["lengths"]) + 2 + 1
    assert res["frames"] == expected
    if ext == "gif":
        frames = iio.imread(path, index=None)
        assert len(frames) == expected
        durations = [f.info["duration"] for f in map(_gif_frame(path), range(expected))]
        assert durations[0] == round(1000 / 12, -1) or abs(durations[0] - 1000 / 12) < 10
        assert sorted(durations)[-3:] == [HOLD_S * 1000] * 2 + [SUMMARY_HOLD_S * 1000]
        assert durations[-1] == SUMMARY_HOLD_S * 1000
    else:
        frames = [f for f in imageio.get_reader(path)]
        # held frames are repeated: each episode's end HOLD_S, the summary SUMMARY_HOLD_S
        held = 2 * (round(HOLD_S * 12) - 1) + round(SUMMARY_HOLD_S * 12) - 1
        assert len(frames) == expected + held
        assert np.abs(frames[-1].astype(int) - frames[-2].astype(int)).mean() < 2  # the summary, held
    assert frames[0].shape[1] > 9 * 16 + 200  # the map and the panels beside it


def _gif_frame(path):
    from PIL import Image

    image = Image.open(path)

    def seek(i):
        image.seek(i)
        return image

    return seek


def test_viewer_under_dummy_driver():
    frame = np.zeros((40, 60, 3), dtype=np.uint8)
    frame[:, :30] = (255, 0, 0)
    v = Viewer("test", fps=0, footer="keys")
    assert v.show(frame) and v.is_open
    assert v.show(frame)
    assert v.poll_keys() == []
    v.close()
    assert not v.show(frame)
    v.close()  # twice is fine


def test_viewer_esc_closes():
    v = Viewer("test", fps=0)
    assert v.show(np.zeros((8, 8, 3), dtype=np.uint8))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
    assert not v.show(np.zeros((8, 8, 3), dtype=np.uint8))
    v.close()


def test_human_agent_maps_keys_to_actions():
    assert action_for_key(pygame.K_UP) == action_for_key(pygame.K_w) == 1
    assert action_for_key(pygame.K_DOWN) == action_for_key(pygame.K_s) == 2
    assert action_for_key(pygame.K_LEFT) == action_for_key(pygame.K_a) == 3
    assert action_for_key(pygame.K_RIGHT) == action_for_key(pygame.K_d) == 4
    assert action_for_key(pygame.K_SPACE) == action_for_key(pygame.K_PERIOD) == 0
    assert action_for_key(pygame.K_q) is None and set(KEY_ACTIONS.values()) == {0, 1, 2, 3, 4}
    v = Viewer("test", fps=0)
    v.show(np.zeros((8, 8, 3), dtype=np.uint8))
    human = HumanAgent(v)
    mem = human.begin_trial(1)
    keys = [pygame.K_UP, pygame.K_q, pygame.K_a, pygame.K_SPACE, pygame.K_d, pygame.K_s, pygame.K_PERIOD]
    for k in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k))
    got = [int(human.act(None, mem, None)[0][0]) for _ in range(6)]
    assert got == [1, 3, 0, 4, 2, 0]
    lazy = HumanAgent(v, block=False)
    assert int(lazy.act(None, mem, None)[0][0]) == 0  # no key: stay
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
    with pytest.raises(ViewerClosed):
        human.act(None, mem, None)
    v.close()


# -- the board: names, scoreboard, charts, messages, summary -----------------------------------


def collect(game, names_, seed, episodes, **kwargs):
    """run_match's snapshots and board (and the result)."""
    snaps = []
    boards = []

    def on_snapshot(snap, board):
        snaps.append(snap)
        boards.append(board)

    res = run_match(game, "small", agents(*names_), seed=seed, episodes=episodes, on_snapshot=on_snapshot,
                    tile=16, **kwargs)
    return res, snaps, boards[0]


def test_names_are_drawn_in_frames_and_recordings(tmp_path):
    def first_frame(**kwargs):
        got = []
        run_match("treasure", "small", agents("random", "random"), seed=2, episodes=1, tile=16,
                  on_frame=lambda f, final: got.append(f.copy()) or False, **kwargs)
        return got[0]

    default, named = first_frame(), first_frame(names=["alice", "bob"])
    assert default.shape == named.shape and not np.array_equal(default, named)
    # on the map (tags over the players) as well as in the scoreboard
    maps = []
    for names_ in (["alice", "bob"], None):
        _, snaps, board = collect("treasure", ("random", "random"), seed=2, episodes=1, names=names_)
        m = board.map_rect
        maps.append(board.draw(snaps[0])[m.top:m.bottom, m.left:m.right])
    assert not np.array_equal(*maps)
    with pytest.raises(ValueError, match="one name per agent"):
        run_match("treasure", "small", agents("random"), names=["a", "b"], on_frame=lambda f, final: None)
    # watch's recordings name the agents too: other agents, other pixels on the same level
    a = watch("treasure", "small", ["random", "stay"], seed=2, episodes=1, record=str(tmp_path / "a.gif"),
              headless=True, tile=16)
    b = watch("treasure", "small", ["stay", "random"], seed=2, episodes=1, record=str(tmp_path / "b.gif"),
              headless=True, tile=16)
    assert a["record"] and b["record"]
    fa, fb = iio.imread(tmp_path / "a.gif", index=0), iio.imread(tmp_path / "b.gif", index=0)
    assert not np.array_equal(fa, fb)


def test_snapshots_follow_the_match_and_end_with_a_summary():
    res, snaps, board = collect("treasure", ("oracle", "random"), seed=2, episodes=3)
    assert res["completed"] and res["frames"] == len(snaps)
    assert [s.index for s in snaps] == list(range(len(snaps)))
    finals = [s for s in snaps if s.final and not s.summary]
    assert len(finals) == 3 and [s.episode for s in finals] == [0, 1, 2]
    # an episode's last frame: the scores as it ended, the returns of the episodes before it
    for k, s in enumerate(finals):
        assert s.returns == tuple(tuple(r) for r in res["returns"][:k])
        assert s.scores == pytest.approx(res["returns"][k])
        assert "P1 oracle found the treasure!" in s.message
    starts = [s for s in snaps if s.t == 0]
    assert [s.episode for s in starts] == [0, 1, 2]
    assert [s.message for s in starts] == [f"episode {k} of 3: go!" for k in (1, 2, 3)]
    summary = snaps[-1]
    assert summary.summary and summary.final and sum(s.summary for s in snaps) == 1
    assert summary.returns == tuple(tuple(r) for r in res["returns"])
    totals = np.sum(res["returns"], axis=0)
    assert summary.totals == pytest.approx(totals)
    assert winners(summary.totals) == [0]
    # the summary frame is the last episode's end under a card: same size, other pixels
    last, card = board.draw(finals[-1]), board.draw(summary)
    assert last.shape == card.shape and (last != card).any(axis=2).mean() > 0.2


def test_totals_count_the_current_episode_once():
    state = None
    mid = Snapshot(state, episode=1, t=5, scores=(0.5, -1.0), returns=((1.0, 0.0),))
    assert mid.totals == pytest.approx((1.5, -1.0))
    end = Snapshot(state, episode=1, t=9, scores=(0.5, -1.0), returns=((1.0, 0.0), (0.5, -1.0)), summary=True)
    assert end.totals == pytest.approx((1.5, -1.0))
    assert winners((1.0, 2.0, 2.0)) == [1, 2] and winners((0.0,)) == [0]


def test_messages_name_what_was_taken_and_when_time_is_up():
    assert item_name(T.COIN_RED) == "red coin" and item_name(T.CHEST) == "chest"
    _, snaps, _ = collect("coinrush", ("oracle", "random"), seed=3, episodes=1)
    took = [s.message for s in snaps if "took a" in s.message]
    assert took and all(" coin: " in m for m in took)
    assert any(m.startswith("P1 oracle took a") for m in took)
    assert snaps[-2].final and snaps[-2].message.startswith("time up: episode 1 of 1 is over")
    # a message stays a few steps, then goes
    _, snaps, _ = collect("treasure", ("stay",), seed=2, episodes=1)
    assert [s.message for s in snaps[:MESSAGE_STEPS]] == ["episode 1 of 1: go!"] * MESSAGE_STEPS
    assert all(s.message == "" for s in snaps[MESSAGE_STEPS:-2])


def test_charts_grow_with_each_episode():
    _, snaps, board = collect("treasure", ("oracle",), seed=2, episodes=3)
    rect = board.chart_rect(0)
    colour = np.array(PLAYER_COLOURS[0])

    def bar_pixels(snap):
        img = board.draw(snap)[rect.top:rect.bottom, rect.left:rect.right]
        return int((img == colour).all(axis=2).sum())

    counts = [bar_pixels(s) for s in snaps if s.t == 0]
    assert counts[0] == 0  # nothing played yet
    assert counts[0] < counts[1] < counts[2]  # one more solid bar per finished episode
    assert counts[2] == 2 * counts[1]  # the oracle's returns are all the same on this level


def test_board_rejects_too_many_names():
    from metarena import games
    from metarena.games.batch import BatchEnv

    env = BatchEnv(games.get("treasure"), games.variant("treasure", "small"), batch=1, seeds=[1])
    with pytest.raises(ValueError, match="1-4 players"):
        Board(env.engine, ["a"] * 5, 2)


def test_reveal_and_views_reach_the_recorded_frames():
    def frame_at(step, **kwargs):
        got = []
        run_match("coinrush", "small", agents("random"), seed=3, episodes=1, tile=16,
                  on_frame=lambda f, final: got.append(f.copy()) or len(got) <= step, **kwargs)
        return got[step]

    plain = frame_at(0)
    assert not np.array_equal(plain, frame_at(0, reveal=True))
    assert not np.array_equal(plain, frame_at(0, views=True))
    assert np.array_equal(plain, frame_at(0))


def test_play_screen_drops_keys_typed_while_an_episode_ends():
    from metarena.arenas.watch import _PlayScreen

    class Impatient(Viewer):
        """Plays the keys typed so far, then closes instead of waiting for more."""

        def wait_action(self):
            self._pump()
            while self._keys:
                act = action_for_key(self._keys.pop(0))
                if act is not None:
                    return act
            raise ViewerClosed("no more keys")

    viewer = Impatient("test", fps=0)
    viewer.show(np.zeros((8, 8, 3), dtype=np.uint8))  # open the window: keys go to it
    screen = _PlayScreen(viewer, hold=0.0)
    seen = []

    def on_snapshot(snap, board):
        seen.append(snap)
        return screen(snap, board)

    # 45 "stay" keys for an episode that times out after 40 steps: 5 are typed ahead
    for _ in range(45):
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE))
    res = run_match("treasure", "small", [HumanAgent(viewer)], seed=2, episodes=2, tile=8, on_snapshot=on_snapshot)
    viewer.close()
    assert res["lengths"] == [40] and not res["completed"]
    assert [s.t for s in seen if s.episode == 1] == [0]  # no key spilled into episode 2: it took no step
    final = [s for s in seen if s.final]
    assert len(final) == 1 and final[0].message == "time up: episode 1 of 2 is over"
