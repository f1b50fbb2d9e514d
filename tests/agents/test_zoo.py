"""The agents shipped in agents/zoo: loadable by name, small, documented, and adapting."""

import json
import re

import numpy as np
import pytest

from metarena.agents.registry import _shipped, make_agent, shipped_path
from metarena.agents.evaluate import evaluate
from metarena.agents.rl2 import RL2Agent

#: the games with a shipped `rl2` agent of their own, and the agents shipped for several games
SHIPPED_GAMES = sorted(g for g in _shipped().get("rl2", {}) if g is not None)
MULTI_GAME = sorted(name for name, by_game in _shipped().items() if None in by_game)


def test_every_shipped_agent_is_small_and_says_how_it_was_trained():
    assert "treasure" in SHIPPED_GAMES
    for game in SHIPPED_GAMES:
        folder = shipped_path("rl2", game)
        assert (folder / "weights.safetensors").stat().st_size <= 5 * 2 ** 20
        text = (folder / "TRAINING.md").read_text()
        assert re.search(rf"metarena train --algo rl2 --game {game} --steps \d+", text)


def test_unknown_shipped_agent_says_what_exists():
    with pytest.raises(ValueError, match="no shipped 'rl2' agent for nogame.*rl2-treasure"):
        shipped_path("rl2", "nogame")
    with pytest.raises(ValueError, match="say which game"):
        make_agent("rl2")


@pytest.mark.parametrize("game", SHIPPED_GAMES)
def test_shipped_agent_adapts_on_held_out_levels(game):
    agent = make_agent("rl2", seed=0, game=game)
    assert isinstance(agent, RL2Agent) and agent.name == "rl2"
    normal = evaluate(agent, game, levels=100, episodes=4, seed=0)["per_episode"]["return"]
    agent = make_agent("rl2", seed=0, game=game)
    reset = evaluate(agent, game, levels=100, episodes=4, seed=0, memory_reset=True)["per_episode"]["return"]
    # it does better in later episodes of a trial, and only because it remembers the earlier ones
    assert np.mean(normal[1:]) > normal[0] + 0.03
    assert np.mean(normal[1:]) > np.mean(reset[1:]) + 0.03


@pytest.mark.parametrize("name", MULTI_GAME)
def test_an_agent_for_several_games_adapts_on_most(name):
    """``rl2-all``: one network, named without a game, trained on several games at once from
    one command; it plays every game it was trained on and adapts on most of them (its
    TRAINING.md says where it does not)."""
    folder = shipped_path(name, None)
    assert (folder / "weights.safetensors").stat().st_size <= 5 * 2 ** 20
    trained = list(dict.fromkeys(g["game"] for g in json.loads((folder / "meta.json").read_text())["games"]))
    assert len(trained) > 1
    text = (folder / "TRAINING.md").read_text()
    assert re.search(rf"metarena train --algo rl2 --game {','.join(trained)} .*--steps \d+", text)
    adapts = []
    for game in trained:
        agent = make_agent(name, seed=0, game=game)
        normal = evaluate(agent, game, levels=60, episodes=4, seed=0)["per_episode"]["return"]
        reset = evaluate(make_agent(name, seed=0, game=game), game, levels=60, episodes=4, seed=0,
                         memory_reset=True)["per_episode"]["return"]
        if np.mean(normal[1:]) > np.mean(reset[1:]) + 0.03:
            adapts.append(game)
    assert len(adapts) > len(trained) / 2, adapts
