"""The ceiling planners (metarena.agents.planners): agents that forget nothing within a trial."""

from __future__ import annotations

import pytest

from metarena.agents.evaluate import evaluate
from metarena.agents.planners import PLANNERS, make_planner
from metarena.agents.registry import make_agent


class SizeOnly:
    """A planner behind a ctx that has nothing but the map's size."""

    def __init__(self, planner):
        self.planner, self.name = planner, planner.name

    def begin_trial(self, n):
        return self.planner.begin_trial(n)

    def end_episode(self, memory, slots):
        return self.planner.end_episode(memory, slots)

    def act(self, obs, memory, ctx):
        from types import SimpleNamespace

        size = SimpleNamespace(engine=SimpleNamespace(height=ctx.engine.height, width=ctx.engine.width))
        return self.planner.act(obs, memory, size)


def test_treasure_ceiling_planner_explores_then_remembers():
    """The uninformed planner's first episode, then (nearly) the oracle."""
    result = evaluate(make_planner("recall", "treasure"), "treasure", "small", levels=60, episodes=3)
    agent, uninformed = result["per_episode"], result["reference"]["uninformed"]
    assert agent["return"][0] == pytest.approx(uninformed["return"][0])  # explores as it does
    assert agent["success"][1] == 1.0 and agent["success"][2] == 1.0  # then never misses
    oracle = result["reference"]["oracle"]["length"][1]
    assert agent["length"][2] == pytest.approx(oracle)  # and walks straight there
    assert agent["length"][1] < uninformed["length"][1]


def test_treasure_window_planner_maps_its_windows_and_remembers():
    """The window planner reads only the map's size from ctx, and
    what its windows showed in the first episode carries it to the treasure in the later ones."""
    planner = SizeOnly(make_planner("window-recall", "treasure"))
    agent = evaluate(planner, "treasure", "medium", levels=30, episodes=3)["per_episode"]
    norm, length = agent["normalized"], agent["length"]
    assert min(norm[1:]) >= norm[0] and norm[1] >= 0.8  # later episodes at least as good, and near the oracle
    assert max(length[1:]) < length[0] and agent["success"][1] == 1.0


def test_coinrush_window_planner_learns_the_values_and_beats_the_uninformed_planner():
    """The window planner reads only the map's size from ctx; what
    its first episode showed and paid (the map, the coins, the colours' values) makes its later
    episodes better than its first and than the map-knowing uninformed planner."""
    planner = SizeOnly(make_planner("window-recall", "coinrush"))
    result = evaluate(planner, "coinrush", "medium", levels=30, episodes=3)
    norm, uninformed = result["per_episode"]["normalized"], result["reference"]["uninformed"]["normalized"]
    for e in (1, 2):
        assert norm[e] > norm[0] + 0.2 and norm[e] > uninformed[e] + 0.1


def test_planners_are_agents_by_name_for_every_game_that_has_them():
    for name, by_game in PLANNERS.items():
        for game, cls in by_game.items():
            assert isinstance(make_agent(name, game), cls)
    with pytest.raises(ValueError, match="say which game"):
        make_agent("window-recall")
    with pytest.raises(ValueError, match="none for 'nogame'"):
        make_planner("recall", "nogame")
