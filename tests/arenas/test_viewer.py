"""The live viewer under the dummy driver: a resizable window that keeps the frame's aspect,
the footer, keys; the spectator's controls (pause, step, back, speed, h, v, summary); the
one default speed; ``levels show --reveal``; ``bench viewer`` (drawing only, and under Xvfb
when it is installed)."""

import itertools
import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pygame
import pytest

from metarena.agents.registry import make_agent
from metarena.arenas import viewer as viewer_module
from metarena.arenas.cli import build_parser, main
from metarena.arenas.match import run_match
from metarena.arenas.viewer import SPEEDS, Spectator, Viewer, fit

RED, BLUE = (255, 0, 0), (0, 0, 255)


def two_colour_frame(w=60, h=40):
    frame = np.zeros((h, w, 3), dtype=np.uint8)
    frame[:, : w // 2] = RED
    frame[:, w // 2:] = BLUE
    return frame


def window_pixels(v: Viewer) -> np.ndarray:
    return pygame.surfarray.array3d(pygame.display.get_surface()).transpose(1, 0, 2)


def press(*keys):
    pygame.display.init()  # events can be posted before the window opens; they wait for it
    for k in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k))


# -- the window --------------------------------------------------------------------------------


def test_fit_keeps_the_aspect_and_centres():
    assert fit((60, 40), (60, 40)) == pygame.Rect(0, 0, 60, 40)
    assert fit((60, 40), (120, 80)) == pygame.Rect(0, 0, 120, 80)
    assert fit((60, 40), (240, 80)) == pygame.Rect(60, 0, 120, 80)  # bars left and right
    assert fit((60, 40), (60, 400)) == pygame.Rect(0, 180, 60, 40)  # bars above and below


def test_scale_sets_the_first_size():
    v = Viewer("test", fps=0, scale=2)
    assert v.show(two_colour_frame())
    assert v.window_size == (120, 80)
    img = window_pixels(v)
    assert tuple(img[40, 10]) == RED and tuple(img[40, 110]) == BLUE
    v.close()
    with pytest.raises(ValueError, match="scale"):
        Viewer("test", scale=0)


def test_window_resizes_and_frames_fit_it():
    v = Viewer("test", fps=0, scale=1)
    frame = two_colour_frame()
    assert v.show(frame) and v.window_size == (60, 40)
    pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, size=(240, 80), w=240, h=80))
    assert v.show(frame)
    assert v.window_size == (240, 80)
    img = window_pixels(v)
    # scaled to 120 x 80, centred: black bars of 60 px at both sides
    assert tuple(img[40, 30]) == (0, 0, 0) and tuple(img[40, 210]) == (0, 0, 0)
    assert tuple(img[40, 70]) == RED and tuple(img[40, 170]) == BLUE
    # a new frame of another size keeps the size the person chose
    assert v.show(two_colour_frame(30, 40)) and v.window_size == (240, 80)
    v.close()


def test_footer_goes_under_the_frame_and_status_changes_keep_the_window():
    v = Viewer("test", fps=0, footer="keys", scale=1)
    assert v.show(two_colour_frame())
    w, h = v.window_size
    assert w == 60 and h > 40
    v.set_footer(status="paused")
    assert v.window_size == (w, h)
    v.close()


def test_clear_keys_and_wait_key():
    v = Viewer("test", fps=0)
    v.show(two_colour_frame())
    assert v.wait_key(0.01) is None
    press(pygame.K_a, pygame.K_b)
    assert v.wait_key(0.01) == pygame.K_a
    press(pygame.K_c)
    v.clear_keys()
    assert v.poll_keys() == [] and v.wait_key(0.01) is None
    press(pygame.K_ESCAPE)
    assert v.wait_key(0.01) is None and v.closed
    v.close()


def test_on_key_sees_keys_first():
    v = Viewer("test", fps=0)
    v.show(two_colour_frame())
    seen = []
    v.on_key = lambda key: seen.append(key) or key == pygame.K_v
    press(pygame.K_v, pygame.K_UP)
    assert v.poll_keys() == [pygame.K_UP] and seen == [pygame.K_v, pygame.K_UP]
    v.close()


# -- the spectator -----------------------------------------------------------------------------


class Script:
    """Keys handed to a spectator whenever it waits for one, then Esc."""

    def __init__(self, viewer, keys):
        self.keys = list(keys)
        viewer.wait_key = self.wait_key
        self.viewer = viewer

    def wait_key(self, timeout=None):
        if not self.keys:
            self.viewer.closed = True
            return None
        return self.keys.pop(0)


def spectate(spectator, episodes=2, game="treasure", players=("random",), seed=2, **kwargs):
    agents = [make_agent(n, seed=i) for i, n in enumerate(players)]
    return run_match(game, "small", agents, seed=seed, episodes=episodes, tile=8, on_snapshot=spectator, **kwargs)


def record_draws(spectator):
    """(index, reveal, views) of every snapshot the spectator draws."""
    drawn = []
    draw = spectator._draw

    def logged():
        drawn.append((spectator.index, spectator.reveal, spectator.views))
        draw()

    spectator._draw = logged
    return drawn


@pytest.fixture
def fast_clock(monkeypatch):
    """A clock that moves 1 ms per reading and sleeps that take no time."""
    ticks = itertools.count(0.0, 0.001)
    monkeypatch.setattr(viewer_module, "time", SimpleNamespace(monotonic=lambda: next(ticks), sleep=lambda s: None))


def test_pause_step_forward_and_back_and_toggle(fast_clock):
    v = Viewer("test", fps=8)
    s = Spectator(v, wait_at_end=False)
    drawn = record_draws(s)
    K = pygame
    # space at the start: paused on the first frame; then the keys the spectator waits for
    press(K.K_SPACE)
    Script(v, [K.K_RIGHT, K.K_LEFT, K.K_RIGHT, K.K_RIGHT, K.K_h, K.K_v, K.K_LEFT, K.K_SPACE])
    res = spectate(s)
    v.close()
    assert res["completed"] and len(s.snapshots) == res["frames"]
    shown = [d for d in drawn]
    # 0 drawn, paused; right: the match plays a step, 1 drawn; left: 0 again (redrawn from the
    # kept snapshot); right: 1 (kept); right: 2 (played); h and v: 2 redrawn with each overlay;
    # left: 1 with both; space: play on to the end with both
    assert shown[:7] == [(0, False, False), (1, False, False), (0, False, False), (1, False, False),
                         (2, False, False), (2, True, False), (2, True, True)]
    assert shown[7] == (1, True, True)
    assert shown[-1] == (len(s.snapshots) - 1, True, True)
    assert not s.paused


def test_step_back_draws_what_was_shown_before(fast_clock):
    v = Viewer("test", fps=8)
    s = Spectator(v, wait_at_end=False)
    frames = []
    draw = s._draw

    def grab():
        draw()
        frames.append(window_pixels(v)[: s.board.height].copy())  # the frame, not the footer

    s._draw = grab
    press(pygame.K_SPACE)
    Script(v, [pygame.K_RIGHT, pygame.K_RIGHT, pygame.K_LEFT, pygame.K_LEFT, pygame.K_SPACE])
    spectate(s, episodes=1)
    v.close()
    # 0, 1, 2, then back to 1 and 0: the same pictures as the first time
    assert not np.array_equal(frames[0], frames[2])
    assert np.array_equal(frames[3], frames[1]) and np.array_equal(frames[4], frames[0])


def test_speed_keys_run_from_an_eighth_to_32x():
    v = Viewer("test", fps=8)
    s = Spectator(v)
    assert s.speed == 1 and s.steps_per_s == 8
    s._keys([pygame.K_PLUS] * 20)
    assert s.speed == SPEEDS[-1] == 32 and s.steps_per_s == 256
    s._keys([pygame.K_MINUS] * 20)
    assert s.speed == SPEEDS[0] == Fraction(1, 8) and s.steps_per_s == 1
    s._keys([pygame.K_EQUALS, pygame.K_KP_PLUS])
    assert s.speed == Fraction(1, 2)
    assert "1/2x (4 steps/s)" in v.status
    v.close()


def test_steps_are_shown_at_the_chosen_speed(fast_clock):
    def run(speed):
        v = Viewer("test", fps=8)
        s = Spectator(v, speed=speed, wait_at_end=False)
        start = viewer_module.time.monotonic()
        drawn = record_draws(s)
        res = spectate(s, episodes=1, players=("stay",))
        v.close()
        return viewer_module.time.monotonic() - start, drawn, res

    slow, drawn_slow, res = run(1)
    fast, drawn_fast, _ = run(32)
    steps = res["lengths"][0]
    assert slow == pytest.approx(steps / 8 + 1.0, rel=0.1)  # 8 steps/s, and the end held 1 s
    assert fast < slow / 10
    # at 1x every step is drawn; at 32x (256 steps/s) at most 60 frames/s are, the last always
    assert len(drawn_slow) == steps + 2
    assert len(drawn_fast) < len(drawn_slow) and drawn_fast[-1][0] == steps + 1


def test_summary_waits_for_a_key_and_arrows_look_back(fast_clock):
    v = Viewer("test", fps=8)
    s = Spectator(v, speed=32)
    drawn = record_draws(s)
    Script(v, [pygame.K_LEFT, pygame.K_LEFT, pygame.K_RIGHT, pygame.K_h, pygame.K_q])
    res = spectate(s, episodes=1)
    assert res["completed"] and not v.closed  # q closed the summary, not the window
    last = len(s.snapshots) - 1
    assert [i for i, _, _ in drawn[-5:]] == [last, last - 1, last - 2, last - 1, last - 1]
    assert drawn[-1][1] is True
    assert "any key" in v.status
    v.close()


def test_esc_stops_the_match(fast_clock):
    v = Viewer("test", fps=8)
    s = Spectator(v)
    calls = []

    def on_snapshot(snap, board):
        calls.append(snap)
        if len(calls) == 3:
            press(pygame.K_ESCAPE)
        return s(snap, board)

    res = spectate(on_snapshot, episodes=2)
    assert not res["completed"] and len(calls) == 3 and v.closed
    v.close()


# -- one default speed and episode count; the command line -----------------------------------


def test_one_default_speed_and_four_episodes():
    import inspect

    from metarena.arenas import watch as watch_module
    from metarena.games.render import FPS

    assert FPS == 8
    assert Viewer().fps == FPS
    for fn in (watch_module.watch, watch_module.play):
        params = inspect.signature(fn).parameters
        assert params["fps"].default == FPS and params["episodes"].default == 4
    args = build_parser().parse_args(["watch", "treasure"])
    assert args.fps is None and args.episodes is None  # resolved to FPS and 4 by cmd_watch
    args = build_parser().parse_args(["watch", "treasure", "--scale", "1.5", "--reveal", "--views"])
    assert args.scale == 1.5 and args.reveal and args.views


def test_watch_command_defaults_reach_the_match(monkeypatch, capsys):
    from metarena.arenas import watch as watch_module

    got = {}

    def fake(game, variant, agents, **kwargs):
        got.update(kwargs)
        return {"returns": [], "record": None}

    monkeypatch.setattr(watch_module, "watch", fake)
    assert main(["watch", "treasure", "--headless"]) == 0
    assert got["episodes"] == 4 and got["fps"] == 8 and got["scale"] is None
    assert main(["watch", "treasure", "--headless", "--fps", "16", "--scale", "2", "--reveal"]) == 0
    assert got["fps"] == 16 and got["scale"] == 2 and got["reveal"] and not got["views"]


def test_levels_show_reveal_draws_the_hidden_factor(tmp_path, capsys):
    plain, revealed = tmp_path / "plain.png", tmp_path / "revealed.png"
    for out, extra in ((plain, []), (revealed, ["--reveal"])):
        assert main(["levels", "show", "coinrush", "--variant", "small", "--seed", "5", "--out", str(out),
                     *extra]) == 0
    out = capsys.readouterr().out
    assert "hidden: coin values" in out
    a, b = iio.imread(plain), iio.imread(revealed)
    assert a.shape == b.shape
    changed = (a != b).any(axis=2)
    assert changed.mean() > 0.01
    for game in ("treasure",):
        p1, p2 = tmp_path / f"{game}1.png", tmp_path / f"{game}2.png"
        main(["levels", "show", game, "--variant", "small", "--seed", "5", "--out", str(p1)])
        main(["levels", "show", game, "--variant", "small", "--seed", "5", "--out", str(p2), "--reveal"])
        assert not np.array_equal(iio.imread(p1), iio.imread(p2))


# -- bench viewer ------------------------------------------------------------------------------

VIEWER_FIELDS = {"benchmark", "game", "variant", "map", "players", "tile", "frame", "window", "scaled", "driver",
                 "shown", "measures", "frames", "snapshots", "seconds", "fps", "ms_median", "ms_p95", "target_fps",
                 "machine"}


def test_bench_viewer_without_a_display_measures_drawing_only(capsys):
    assert main(["bench", "viewer", "--frames", "4", "--players", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == VIEWER_FIELDS
    assert res["map"] == [33, 33] and res["variant"] == "large33" and res["players"] == 2
    assert not res["shown"] and res["window"] is None and res["measures"].startswith("draw only")
    assert res["fps"] > 0 and res["frames"] == 4
    assert main(["bench", "viewer", "--frames", "2", "--players", "1", "--variant", "small"]) == 0
    assert "drawn only: no display" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("xvfb-run") is None,
                    reason="xvfb-run is not installed (apt-get install xvfb): no X server to show frames on")
def test_bench_viewer_under_xvfb_draws_and_shows():
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    res = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x900x24", sys.executable, "-m", "metarena", "bench",
                          "viewer", "--frames", "30", "--json"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out) == VIEWER_FIELDS
    assert out["shown"] and out["driver"] == "x11" and out["measures"] == "draw + show"
    assert out["map"] == [33, 33] and out["players"] == 4 and out["frames"] == 30
    w, h = out["window"]
    assert 0 < w <= 1280 and 0 < h <= 900  # fitted to the screen
    assert out["scaled"] == (w < out["frame"][0])
    assert out["fps"] > 0 and out["ms_median"] > 0  # the figure itself is reported, not tested


def test_a_person_takes_a_player_over_and_hands_it_back():
    """Key 2 hands player 2 to the keyboard: its moves are the person's (stay without a key),
    the agent is still asked (its memory follows the match); 2 again hands it back."""
    import numpy as np
    import pygame

    from metarena.agents.base import Observation
    from metarena.arenas.viewer import Spectator, TakeOver, Viewer

    class Always:
        name = "always-right"

        def __init__(self):
            self.calls = 0

        def begin_trial(self, n):
            return 0

        def act(self, obs, memory, ctx):
            self.calls += 1
            return np.full(len(obs.grid), 4), memory + 1

        def end_episode(self, memory, slots):
            return memory

    spectator = Spectator(Viewer("test"))
    agent = Always()
    player = TakeOver(agent, spectator, 1)
    obs = Observation(np.zeros((1, 5, 5, 16), np.uint8), np.zeros((1, 4), np.float32), np.zeros((1, 8), np.float32))
    memory = player.begin_trial(1)
    action, memory = player.act(obs, memory, None)
    assert action.tolist() == [4]  # the agent plays
    spectator._keys([pygame.K_2])
    assert spectator.driving == 1
    action, memory = player.act(obs, memory, None)
    assert action.tolist() == [0] and memory == 2  # no key yet: the player stays; the agent was asked
    spectator._keys([pygame.K_w])
    assert player.act(obs, memory, None)[0].tolist() == [1]  # W: up, once
    assert player.act(obs, memory, None)[0].tolist() == [0]
    spectator._keys([pygame.K_1])  # key 1 moves the driving to player 1
    assert TakeOver(agent, spectator, 0).act(obs, memory, None)[0].tolist() == [0]
    spectator._keys([pygame.K_1, pygame.K_2])
    assert spectator.driving == 1
    spectator._keys([pygame.K_2])  # handed back
    assert spectator.driving is None and player.act(obs, memory, None)[0].tolist() == [4]
    assert agent.calls == 6  # asked at every step, driven or not
