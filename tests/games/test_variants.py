"""Variants: built-ins load, user files are validated with messages that say what to fix."""

import pytest

from metarena import games
from metarena.games import VariantError
from metarena.games.variant import builtin_variants


@pytest.mark.parametrize("game", games.names())
def test_builtin_variants_load(game):
    names = list(builtin_variants(game))
    assert games.get(game).spec.default_variant in names
    for name in names:
        v = games.variant(game, name)
        assert v.name == name and v.game == game
        games.level(game, name, 0)


def write(tmp_path, text, name="v.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_a_file_overrides_its_base(tmp_path):
    v = games.variant("treasure", write(tmp_path, 'base = "small"\nchests = 2\n', "two.toml"))
    small = games.variant("treasure", "small")
    assert v.name == "two" and v.chests == 2 and v.size == small.size
    default = games.variant("treasure", write(tmp_path, "chests = 5\n"))
    assert default.size == games.variant("treasure").size


@pytest.mark.parametrize("text,needle", [
    ("sizes = 11\n", "unknown key 'sizes'"),
    ("size = 12\n", "must be odd"),
    ("size = 3\n", "out of range"),
    ('size = "big"\n', "expected an integer"),
    ("loops = 1.5\n", "out of range"),
    ("chests = 2.5\n", "expected an integer"),
    ("steps_per_cell = true\n", "expected a number"),
    ('base = "huge"\n', "base = 'huge' is not a built-in variant of treasure"),
    ("size = = 3\n", "not valid TOML"),
])
def test_bad_files_name_file_key_and_what_is_allowed(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(VariantError) as err:
        games.variant("treasure", path)
    msg = str(err.value)
    assert needle in msg
    assert path in msg  # the user's file is named, also for a bad base


def test_unknown_variant_and_missing_file():
    with pytest.raises(VariantError, match="Built-in variants: small, medium, large"):
        games.variant("coinrush", "tiny")
    with pytest.raises(VariantError, match="no such variant file"):
        games.variant("coinrush", "/nonexistent/x.toml")


def test_unknown_game():
    with pytest.raises(KeyError, match="known games"):
        games.get("chess")


BOUNDS = [(g, p) for g in games.names() for p in games.get(g).spec.params if p.type is not bool]


@pytest.mark.parametrize("game,param", BOUNDS, ids=[f"{g}-{p.name}" for g, p in BOUNDS])
def test_every_param_loads_at_its_bounds_and_not_one_past(tmp_path, game, param):
    """Both bounds are inclusive; one step past either (ints: 1, or 2 for odd-only ones so that
    the value stays odd; floats: 0.01) is refused with a message naming the key."""
    step = (2 if param.odd else 1) if param.type is int else 0.01
    # each bound on a variant it fits: the small one, or the large one on the largest map
    size = next(p for p in games.get(game).spec.params if p.name == "size")
    widest = f'base = "large"\nsize = {size.high}\n' if param is not size else 'base = "large"\n'
    for base, bound, past in (('base = "small"\n', param.low, param.low - step),
                              (widest, param.high, param.high + step)):
        if bound is None:
            continue
        v = games.variant(game, write(tmp_path, f'{base}{param.name} = {param.type(bound)!r}\n'))
        assert v.params[param.name] == bound
        path = write(tmp_path, f'{base}{param.name} = {param.type(past)!r}\n', "past.toml")
        with pytest.raises(VariantError, match=rf"key '{param.name}' = .* is out of range") as err:
            games.variant(game, path)
        assert path in str(err.value)
