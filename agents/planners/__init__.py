"""Ceiling planners: what an agent that forgets nothing within a trial can score.

Two kinds, one of each for every game that has them:

- ``recall`` knows the map (as the uninformed planner does) and remembers everything a trial
  has shown: the ceiling of an agent that explores as well as a map-knowing planner;
- ``window-recall`` sees only what a learned agent sees (its window, its row and column and
  the trial features) and forgets nothing: the ceiling of adaptation from the real
  observation.

They are agents like any other (``metarena eval --agent window-recall --game treasure``); how
each plays is in its game's module docstring.
"""

from __future__ import annotations

from . import coinrush, cycles, drift, rules, treasure

#: planner name -> game -> agent class
PLANNERS: dict[str, dict[str, type]] = {
    "recall": {"treasure": treasure.RecallPlanner, "coinrush": coinrush.RecallPlanner,
               "rules": rules.RecallPlanner, "drift": drift.RecallPlanner, "cycles": cycles.RecallPlanner},
    "window-recall": {"treasure": treasure.WindowRecallPlanner, "coinrush": coinrush.WindowRecallPlanner,
                      "rules": rules.WindowRecallPlanner, "drift": drift.WindowRecallPlanner,
                      "cycles": cycles.WindowRecallPlanner},
}


def make_planner(name: str, game: str | None):
    """The ``name`` planner of ``game``; a ValueError says which games have one."""
    if name not in PLANNERS:
        raise ValueError(f"unknown planner '{name}'; choose from {', '.join(PLANNERS)}")
    by_game = PLANNERS[name]
    if game not in by_game:
        raise ValueError(f"the '{name}' planner exists once per game ({', '.join(by_game)}): "
                         + ("say which game" if game is None else f"there is none for '{game}'"))
    return by_game[game]()


__all__ = ["PLANNERS", "make_planner"]
