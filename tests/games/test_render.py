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


def forbid_drawing(monkeypatch, message: str) -> None:
    """From now on, drawing a shape or scaling a surface fails the test with ``message``."""
    def forbidden(*args, **kwargs):
        raise AssertionError(message)

    for name in ("rect", "circle", "polygon", "line", "lines", "arc"):
        monkeypatch.setattr(pygame.draw, name, forbidden)
    monkeypatch.setattr(pygame.transform, "smoothscale", forbidden)


def cell(img, r, y, x):
    """Pixels of map cell (y, x) in a frame."""
    t = r.tile
    return img[r.hud_height + y * t: r.hud_height + (y + 1) * t, x * t: (x + 1) * t]


@pytest.mark.parametrize("game", games.names())
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


@pytest.mark.parametrize("game", games.names())
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


@pytest.mark.parametrize("game", games.names())
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

    forbid_drawing(monkeypatch, "a sprite was drawn during a frame")
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


# -- overlays for spectators: the hidden factor, the players' windows, name tags -----------------


def test_reveal_marks_the_treasure_chest_only():
    env = make_env("treasure", seed=5)
    eng = env.engine
    lv = eng.levels.level(0)
    r = Renderer(eng, tile=TILE)
    hidden, shown = r.frame(env.state, 0).copy(), r.frame(env.state, 0, reveal=True)
    treasure = int(np.argmax(lv.item_value))
    for k, (y, x) in enumerate(lv.item_pos.tolist()):
        same = np.array_equal(cell(hidden, r, y, x), cell(shown, r, y, x))
        assert same == (k != treasure), f"chest {k}"
    # outside the item cells nothing changes
    mask = np.ones(shown.shape[:2], dtype=bool)
    y, x = lv.item_pos[treasure]
    mask[r.hud_height + y * TILE: r.hud_height + (y + 1) * TILE, x * TILE: (x + 1) * TILE] = False
    assert np.array_equal(hidden[mask], shown[mask])


@pytest.mark.parametrize("game", games.names())
def test_revealed_frames_depend_on_the_hidden_values(game):
    env = make_env(game, players=2, seed=9)
    eng = env.engine
    values = eng.levels.item_value
    other_values = np.where(values > 0, 0.0, 1.0).astype(np.float32) if game == "treasure" else -values
    shuffled = dataclasses.replace(eng.levels, item_value=other_values)
    other = Engine(eng.game, eng.variant, shuffled, batch=1, players=2)
    a = Renderer(eng, tile=TILE).frame(env.state, 0, "hud", reveal=True)
    b = Renderer(other, tile=TILE).frame(env.state, 0, "hud", reveal=True)
    assert not np.array_equal(a, b)


def test_reveal_writes_coin_values_and_leaves_taken_coins():
    env = make_env("coinrush", seed=3)
    eng, st = env.engine, env.state
    lv = eng.levels.level(0)
    r = Renderer(eng, tile=TILE)
    hidden, shown = r.frame(st, 0).copy(), r.frame(st, 0, reveal=True).copy()
    for y, x in lv.item_pos.tolist():
        assert not np.array_equal(cell(hidden, r, y, x), cell(shown, r, y, x))
    # coins of one colour have one value: they look alike revealed
    tiles = lv.tiles[lv.item_pos[:, 0], lv.item_pos[:, 1]]
    first = {}
    for (y, x), tile in zip(lv.item_pos.tolist(), tiles.tolist()):
        if tile in first:
            assert np.array_equal(cell(shown, r, y, x), first[tile])
        first.setdefault(tile, cell(shown, r, y, x))
    # a taken coin shows nothing of its value
    st.alive[0, 0] = False
    y, x = lv.item_pos[0]
    st.cells[0, y + eng.radius, x + eng.radius] = T.FLOOR
    assert np.array_equal(cell(r.frame(st, 0, reveal=True), r, y, x), cell(r.frame(st, 0), r, y, x))


def test_views_outline_each_players_window():
    env = make_env("treasure", players=2, seed=5)
    eng = env.engine
    r = Renderer(eng, tile=TILE)
    plain, views = r.frame(env.state, 0).copy(), r.frame(env.state, 0, views=True)
    rows, cols = eng.rowcol(env.state)
    inside = np.zeros((eng.height, eng.width), dtype=bool)
    for y, x in zip(rows[0].tolist(), cols[0].tolist()):
        inside[max(0, y - eng.radius): y + eng.radius + 1, max(0, x - eng.radius): x + eng.radius + 1] = True
    for (y, x), within in np.ndenumerate(inside):
        changed = not np.array_equal(cell(plain, r, y, x), cell(views, r, y, x))
        player_here = any(y == py and x == px for py, px in zip(rows[0], cols[0]))
        if not within:
            assert not changed, (y, x)
        elif not player_here:
            assert changed, (y, x)


def test_name_tags_are_drawn_over_the_players():
    env = make_env("treasure", players=2, seed=5)
    eng = env.engine
    r = Renderer(eng, tile=TILE)
    plain = r.frame(env.state, 0).copy()
    named = r.frame(env.state, 0, names=["oracle", "random"]).copy()
    other = r.frame(env.state, 0, names=["scripted", "random"])
    assert not np.array_equal(plain, named) and not np.array_equal(named, other)
    assert np.array_equal(plain[: r.hud_height], named[: r.hud_height])  # on the map, not in the hud
    # a tag sits over its player: the cell above (or below, on the top row) changes
    rows, cols = eng.rowcol(env.state)
    y, x = int(rows[0, 0]), int(cols[0, 0])
    ny = y - 1 if y > 0 else y + 1
    assert not np.array_equal(cell(plain, r, ny, x), cell(named, r, ny, x))


def test_overlays_are_drawn_once(monkeypatch):
    env = make_env("coinrush", players=4)
    r = Renderer(env.engine, tile=TILE)
    names = ["a", "b", "c", "d"]
    r.frame(env.state, 0, "warm up", reveal=True, views=True, names=names)

    forbid_drawing(monkeypatch, "an overlay was drawn during a frame")
    rng = np.random.default_rng(0)
    for _ in range(20):
        env.step(rng.integers(0, 5, size=(1, 4)))
        r.frame(env.state, 0, "warm up", reveal=True, views=True, names=names)


def _ink_profile(surf: pygame.Surface) -> np.ndarray:
    ink = np.asarray(pygame.surfarray.pixels_alpha(surf), dtype=np.float64).sum(1)
    return ink / ink.sum()


def _reference_profile(text: str, size: int) -> np.ndarray:
    """Where the ink of ``text`` falls, column by column, from a render at 8x (hinting errors
    shrink to an eighth of a pixel there)."""
    big = pygame.font.Font(None, size * 8).render(text, True, (255, 255, 255))
    ink = np.asarray(pygame.surfarray.pixels_alpha(big), dtype=np.float64).sum(1)
    n = len(ink) // 8
    ink = ink[: n * 8].reshape(n, 8).sum(1)
    return ink / ink.sum()


def _spacing_error(profile: np.ndarray, reference: np.ndarray) -> float:
    """Largest gap between the cumulative ink of two profiles (best of three alignments): a
    glyph pushed a pixel or two along (a gap inside a word) shows as a jump here."""
    n = min(len(profile), len(reference))
    return min(float(np.abs(np.cumsum(profile[:n]) - np.cumsum(np.roll(reference, k)[:n])).max())
               for k in (-1, 0, 1))


def test_text_is_spaced_as_the_font_draws_it_large():
    from metarena.games.render import Type

    pygame.font.init()
    words, t = "level episode scripted", Type()
    raw_errors = []
    for size in range(18, 34):
        reference = _reference_profile(words, size)
        img = t.render(words, size, (255, 255, 255))
        assert abs(img.get_width() - len(reference)) <= 2, size
        assert _spacing_error(_ink_profile(img), reference) < 0.035, size
        raw_errors.append(_spacing_error(_ink_profile(pygame.font.Font(None, size).render(words, True, (255,) * 3)),
                                         reference))
    # the check bites: the font drawn directly at these sizes leaves gaps inside words ("l evel")
    assert max(raw_errors) > 0.05
