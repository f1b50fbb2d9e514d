"""Races: win rates by episode, seats swapped, and stand-offs counted as the issue defines them."""

import numpy as np
import pytest

from metarena.agents.registry import make_agent
from metarena.arenas.races import format_race, race


def _agents(*names):
    return [make_agent(n, "treasure", seed=i) for i, n in enumerate(names)], list(names)


def test_players_who_never_move_stand_off_in_every_episode():
    agents, names = _agents("stay", "stay")
    result = race(agents, names, "treasure", "small", levels=20, episodes=2, still=5)
    d = result.to_dict()
    assert d["matches"] == 40 and d["standoff_rate"] == [1.0, 1.0] and d["matches_with_standoff"] == 1.0
    assert d["draw_rate"] == [1.0, 1.0]  # nobody finds the treasure: every episode is a draw


def test_players_who_walk_about_rarely_stand_off():
    agents, names = _agents("random", "random")
    d = race(agents, names, "treasure", "small", levels=20, episodes=2).to_dict()
    assert max(d["standoff_rate"]) < 0.2


def test_the_oracle_wins_the_race_and_seats_are_swapped():
    agents, names = _agents("oracle", "random")
    result = race(agents, names, "treasure", "small", levels=30, episodes=2)
    assert result.returns.shape == (60, 2, 2)
    d = result.to_dict()
    oracle, rand = d["agents"]
    assert all(w > 0.6 for w in oracle["win_rate"]) and all(w < 0.2 for w in rand["win_rate"])
    for k in range(2):
        assert oracle["win_rate"][k] + rand["win_rate"][k] + d["draw_rate"][k] == pytest.approx(1.0)
    # the same levels raced twice, seats reversed: each agent's returns follow it, not the seat
    first, second = result.returns[:30], result.returns[30:]
    assert np.mean(first[..., 0]) > np.mean(first[..., 1]) and np.mean(second[..., 0]) > np.mean(second[..., 1])
    text = format_race(d)
    assert "oracle wins" in text and "stand-offs" in text
    narrow = format_race(d, width=40).splitlines()
    assert max(map(len, narrow)) <= 40 < max(map(len, text.splitlines()))
    assert sum(line.split()[:1] == ["ep"] for line in narrow) >= 2 and "stand-offs" in " ".join(narrow)


def test_bad_races_are_refused():
    agents, names = _agents("random", "random")
    with pytest.raises(ValueError, match="still must be >= 1"):
        race(agents, names, "treasure", still=0)
    with pytest.raises(ValueError, match="takes 1-4 players, got 5"):
        race(agents * 2 + agents[:1], names * 2 + names[:1], "treasure")


def test_the_race_command(capsys):
    from metarena.arenas.cli import main

    assert main(["race", "--agents", "stay,stay", "--game", "treasure", "--variant", "small", "--levels", "4",
                 "--episodes", "2", "--json"]) == 0
    import json

    d = json.loads(capsys.readouterr().out)
    assert d["matches"] == 8 and d["standoff_rate"] == [1.0, 1.0]
    assert main(["race", "--agents", "stay", "--game", "treasure"]) == 2
    assert "races 2-4 agents, got 1" in capsys.readouterr().err
