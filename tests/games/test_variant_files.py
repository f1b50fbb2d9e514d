"""Variants without code: the held-out variant, variant files that extend other files, and the
`metarena variant new` template."""

import pytest

from metarena import games
from metarena.arenas.cli import main
from metarena.games import VariantError
from metarena.games.variant import HELDOUT, builtin_variants

SIZE_LIKE = ("size", "rooms", "chests", "coins", "objects", "wind", "pads")  #: keys whose larger values mean a harder level


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("game", games.names())
def test_each_builtin_game_holds_out_a_variant_beyond_its_training_range(game):
    tables = builtin_variants(game)
    assert HELDOUT in tables
    held = games.variant(game, HELDOUT).params
    training = [games.variant(game, name).params for name in tables if name != HELDOUT]
    beyond = [k for k in SIZE_LIKE if k in held and all(held[k] > t[k] for t in training)]
    assert "size" in beyond and len(beyond) >= 2, beyond  # a larger map and more of something
    level = games.level(game, HELDOUT, 0)
    assert level.tiles.shape[0] == held["size"]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_file_extends_another_file_relative_to_its_folder(tmp_path):
    write(tmp_path / "shared" / "base.toml", 'base = "small"\nrooms = 1\nname = "ignored"\n')
    write(tmp_path / "mid.toml", 'base = "shared/base.toml"\nsize = 11\n')
    top = write(tmp_path / "runs" / "top.toml", 'base = "../mid.toml"\nchests = 2\n')
    v = games.variant("treasure", str(top))
    small = games.variant("treasure", "small")
    assert v.name == "top" and v.source == str(top)
    assert dict(v.params) == {**small.params, "rooms": 1, "size": 11, "chests": 2}
    # the nearer file wins
    write(tmp_path / "over.toml", 'base = "mid.toml"\nsize = 13\nrooms = 3\n')
    assert games.variant("treasure", str(tmp_path / "over.toml")).params["size"] == 13


def test_a_cycle_of_bases_is_an_error_naming_the_users_file(tmp_path):
    a = write(tmp_path / "a.toml", 'base = "b.toml"\nchests = 2\n')
    write(tmp_path / "b.toml", 'base = "a.toml"\nsize = 11\n')
    with pytest.raises(VariantError, match="cycle") as err:
        games.variant("treasure", str(a))
    msg = str(err.value)
    assert msg.startswith(str(a)) and "a.toml -> " in msg and "b.toml -> " in msg
    self_loop = write(tmp_path / "self.toml", 'base = "self.toml"\n')
    with pytest.raises(VariantError, match="cycle"):
        games.variant("treasure", str(self_loop))


def test_a_missing_or_bad_base_file_is_an_error_naming_the_users_file(tmp_path):
    top = write(tmp_path / "top.toml", 'base = "gone.toml"\nchests = 2\n')
    with pytest.raises(VariantError, match="does not exist") as err:
        games.variant("treasure", str(top))
    assert str(err.value).startswith(str(top)) and str(tmp_path / "gone.toml") in str(err.value)
    write(tmp_path / "gone.toml", 'base = "small"\nchestz = 2\n')
    with pytest.raises(VariantError, match="unknown key 'chestz'") as err:
        games.variant("treasure", str(top))
    assert str(err.value).startswith(str(top)) and "gone.toml" in str(err.value)
    write(tmp_path / "gone.toml", 'base = "huge"\n')
    with pytest.raises(VariantError, match="'huge' in .*gone.toml is not a built-in variant") as err:
        games.variant("treasure", str(top))
    assert str(err.value).startswith(str(top))


@pytest.mark.parametrize("game", games.names())
def test_variant_new_writes_a_template_that_loads_as_its_base(tmp_path, capsys, monkeypatch, game):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "variant", "new", game, "mine")
    assert code == 0, err
    text = (tmp_path / "mine.toml").read_text()
    default = games.get(game).spec.default_variant
    assert f'base = "{default}"' in text
    for p in games.get(game).spec.params:  # every key, its meaning and range on the line above
        assert f"# {p.doc}: {p.allowed()}\n{p.name} = " in text
    v = games.variant(game, "mine.toml")
    assert v.name == "mine" and v.params == games.variant(game, default).params
    base = next(name for name in builtin_variants(game) if name != default)
    code, _, err = run(capsys, "variant", "new", game, "other", "--from", base, "--out", tmp_path / "sub" / "o.toml")
    assert code == 0, err
    v = games.variant(game, str(tmp_path / "sub" / "o.toml"))
    assert v.name == "other" and v.params == games.variant(game, base).params
    code, out, _ = run(capsys, "variant", "show", game, str(tmp_path / "sub" / "o.toml"))
    assert code == 0 and all(f"{k} = " in out for k in v.params)


def test_variant_new_refuses_to_overwrite(tmp_path, capsys):
    path = write(tmp_path / "mine.toml", "chests = 2\n")
    code, _, err = run(capsys, "variant", "new", "treasure", "mine", "--out", path)
    assert code == 2 and "exists" in err
    assert path.read_text() == "chests = 2\n"
    code, _, err = run(capsys, "variant", "new", "treasure", "x", "--from", "huge", "--out", tmp_path / "x.toml")
    assert code == 2 and "--from huge" in err and not (tmp_path / "x.toml").exists()
