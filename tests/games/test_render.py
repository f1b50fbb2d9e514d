"""The renderer: shapes, movement, no hidden factor on screen, sprites drawn once."""

import dataclasses

import numpy as np
import pygame
import pytest

from metarena import games
from metarena.games import tiles as T
from metarena.games.batch import BatchEnv
from metarena.games.engine import Engine
from metarena.games.render import Renderer

TILE = 16


def make_env(game, players=1, seed=11):
    env = BatchEnv(games.get(game), games.variant(game, "small"), batch=1, players=players, seeds=[seed], seed=0)
    env.reset(levels=np.zeros(1, dtype=np.int64))
    return env


def cell(img, r, y, x):
    """Pixels of map cell (y, x) in a frame."""
    t = r.tile
    return img[r.hud_height + y * t: r.hud_height + (y + 1) * t, x * t: (x + 1) * t]


@pytest.mark.parametrize("game", ["treasure", "coinrush"])
@pytest.mark.parametrize("players", [1, 2, 3, 4])
def test_frame_shape_and_dtype(game, players):
    env = make_env(game, players)
    r = Renderer(env.engine, tile=TILE)
    img = r.frame(env.state, 0, hud=f"{game}  P1 +0.00")
    eng = env.engine
    assert img.dtype == np.uint8
    assert img.shape == (eng.height * TILE + r.hud_height, eng.width * TILE, 3)
    assert (r.width, r.height) == (img.shape[1], img.shape[0]) == r.size
    # every player is drawn in its own colour: the player cells all differ
    rows, cols = eng.rowcol(env.state)
    blocks = [cell(img, r, y, x) for y, x in zip(rows[0], cols[0])]
    for i in range(players):
        for j in range(i + 1, players):
            assert not np.array_equal(blocks[i], blocks[j])


@pytest.mark.parametrize("game", ["treasure", "coinrush"])
def test_frames_differ_after_a_move(game):
    env = make_env(game)
    r = Renderer(env.engine, tile=TILE)
    before = r.frame(env.state, 0, "same hud").copy()
    pos = env.state.pos.copy()
    for action in (1, 2, 3, 4):
        env.step(np.array([[action]]))
        if not np.array_equal(env.state.pos, pos):
            break
    assert not np.array_equal(env.state.pos, pos), "no move possible from the spawn"
    assert not np.array_equal(r.frame(env.state, 0, "same hud"), before)


def test_hud_text_is_drawn():
    env = make_env("treasure")
    r = Renderer(env.engine, tile=TILE)
    a, b = r.frame(env.state, 0, "").copy(), r.frame(env.state, 0, "treasure level 11")
    assert not np.array_equal(a[: r.hud_height], b[: r.hud_height])
    assert np.array_equal(a[r.hud_height:], b[r.hud_height:])


def test_treasure_chest_looks_like_any_closed_chest():
    env = make_env("treasure", seed=5)
    eng = env.engine
    lv = eng.levels.level(0)
    r = Renderer(eng, tile=TILE)
    img = r.frame(env.state, 0)
    rows, cols = eng.rowcol(env.state)
    occupied = set(zip(rows[0].tolist(), cols[0].tolist()))
    treasure = int(np.argmax(lv.item_value))
    ty, tx = lv.item_pos[treasure]
    others = [tuple(p) for k, p in enumerate(lv.item_pos.tolist()) if k != treasure and tuple(p) not in occupied]
    assert others and (ty, tx) not in occupied
    for y, x in others:
        assert np.array_equal(cell(img, r, ty, tx), cell(img, r, y, x))


@pytest.mark.parametrize("game", ["treasure", "coinrush"])
def test_frame_does_not_depend_on_hidden_values(game):
    env = make_env(game, players=2, seed=9)
    eng = env.engine
    shuffled = dataclasses.replace(eng.levels, item_value=eng.levels.item_value[:, ::-1].copy() * -1)
    other = Engine(eng.game, eng.variant, shuffled, batch=1, players=2)
    a = Renderer(eng, tile=TILE).frame(env.state, 0, "hud")
    b = Renderer(other, tile=TILE).frame(env.state, 0, "hud")
    assert np.array_equal(a, b)


def test_sprites_are_drawn_once(monkeypatch):
    env = make_env("coinrush", players=4)
    r = Renderer(env.engine, tile=TILE)
    sprites, players = list(r.sprites), list(r.player_sprites)
    r.frame(env.state, 0, "warm up")

    def forbidden(*args, **kwargs):
        raise AssertionError("a sprite was drawn during a frame")

    for name in ("rect", "circle", "polygon", "line", "lines", "arc"):
        monkeypatch.setattr(pygame.draw, name, forbidden)
    monkeypatch.setattr(pygame.transform, "smoothscale", forbidden)
    rng = np.random.default_rng(0)
    for _ in range(20):
        env.step(rng.integers(0, 5, size=(1, 4)))
        r.frame(env.state, 0, "warm up")
    assert all(a is b for a, b in zip(sprites, r.sprites)) and len(sprites) == len(r.sprites)
    assert all(a is b for a, b in zip(players, r.player_sprites))
    assert len(r._bg_cache) == 1  # one level, one cached background


def test_open_chest_is_drawn():
    env = make_env("treasure", seed=5)
    eng, st = env.engine, env.state
    lv = eng.levels.level(0)
    r = Renderer(eng, tile=TILE)
    empty = int(np.argmin(lv.item_value))
    y, x = lv.item_pos[empty]
    closed = cell(r.frame(st, 0), r, y, x).copy()
    st.cells[0, y + eng.radius, x + eng.radius] = T.CHEST_OPEN
    opened = cell(r.frame(st, 0), r, y, x)
    assert not np.array_equal(closed, opened)
