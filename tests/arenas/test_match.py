"""Matches, watching (GIF / MP4), the viewer under the dummy driver, and human keys."""

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pygame
import pytest

from metarena.agents.registry import make_agent
from metarena.arenas.human import HumanAgent
from metarena.arenas.match import run_match
from metarena.arenas.viewer import KEY_ACTIONS, Viewer, ViewerClosed, action_for_key
from metarena.arenas.watch import watch


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
    assert len(frames) == res["frames"] == sum(res["lengths"]) + 2
    assert sum(finals) == 2 and finals[-1]
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
    assert len(iio.imread(path, index=None)) == sum(res["lengths"]) + 1


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_watch_records_by_extension(tmp_path, ext):
    path = tmp_path / f"match.{ext}"
    res = watch("coinrush", "small", ["scripted", "random", "oracle"], seed=5, episodes=2, record=str(path),
                headless=True, fps=12, tile=16)
    expected = sum(res["lengths"]) + 2
    assert res["frames"] == expected
    if ext == "gif":
        frames = iio.imread(path, index=None)
    else:
        frames = [f for f in imageio.get_reader(path)]
    assert len(frames) == expected
    assert frames[0].shape[:2] == (9 * 16 + 2 * 14, 9 * 16)


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
