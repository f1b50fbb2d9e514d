"""``metarena demo``: the shipped agents against the reference agents, on every game.

For every registered game, a short round-robin tournament on held-out levels: the agent shipped
for that game (``rl2``) against the uninformed planner, the scripted heuristic and random. Then
one of its matches is shown: the ``rl2`` against ``scripted`` match in which ``rl2`` gained the
most from its first episode to its last (adaptation, as it happens), live in a window where
there is a display, else recorded to a GIF. The leaderboards (ratings, return by episode and
the adaptation gain of every agent) are printed and written beside the journals.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from metarena import games
from metarena.agents.registry import shipped_path

from .ratings import format_table, read_journal, standings
from .tournament import JOURNAL, Spec, TournamentError, load_match, replay_agents, run_tournament
from .watch import has_display, spectate

OPPONENTS = ("uninformed", "scripted", "random")


def _shipped(game: str) -> bool:
    try:
        shipped_path("rl2", game)
    except ValueError:
        return False
    return True


def showcase(records: list[dict]) -> dict | None:
    """The match of ``rl2`` (in the first seat) against ``scripted`` where ``rl2`` gained the most from its
    first episode to its last; ties go to the earliest match."""
    pairs = [r for r in records if r["seats"][:2] == ["rl2", "scripted"]]
    if not pairs:
        return None
    return max(pairs, key=lambda r: (r["returns"][-1][0] - r["returns"][0][0], -int(r["match"][1:])))


def demo(out: str | os.PathLike = "metarena-demo", levels: int = 8, episodes: int = 4, seed: int = 0,
         headless: bool = False, record: str | None = None, echo: Callable[[str], None] = print,
         width: int | None = None) -> dict:
    """Run the demo into ``out`` (``out/<game>/`` per game; run again, it reuses what is there),
    its standings printed with ``echo`` (split by columns where wider than ``width``);
    returns ``{"standings": {game: standings}, "shown": match id or None, "record": file or None}``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TournamentError(f"{out} is a file, not a folder; pick another --out")
    found = {}
    for game in games.names():
        agents = (("rl2",) if _shipped(game) else ()) + OPPONENTS
        spec = Spec(game=game, agents=agents, levels=levels, episodes=episodes, seed=seed, batch=levels)
        records = run_tournament(spec, out / game, resume=True)
        found[game] = standings(records)
        echo(f"\n{game}: {spec.levels} held-out levels, every seating of {', '.join(agents)}")
        echo(format_table(found[game], width))
    game = next((g for g in games.names() if _shipped(g)), None)
    pick = showcase(read_journal(out / game / JOURNAL)) if game else None
    shown = None
    if pick is not None:
        spec, variant, rec, line = load_match(out / game, pick["match"])
        live = not headless and has_display()
        shown = record or (None if live else str(out / f"demo-{game}.gif"))
        gain = rec["returns"][-1][0] - rec["returns"][0][0]
        echo(f"\nshowing {game} match {rec['match']} (level {rec['level_seed']}): rl2 against scripted, rl2's return "
             f"{rec['returns'][0][0]:+.2f} in episode 1 and {rec['returns'][-1][0]:+.2f} in episode {episodes} "
             f"({gain:+.2f})")
        spectate(game, variant, replay_agents(rec, line), rec["level_seed"], spec.episodes, names=rec["seats"],
                 record=shown, live=live, title=f"metarena demo: {game} level {rec['level_seed']}")
        if shown:
            echo(f"wrote {shown}")
    echo(f"\njournals, replays and leaderboards: {out}/<game>/ (metarena replay {out}/<game> MATCH_ID "
         "plays any match back)")
    return {"standings": found, "shown": pick["match"] if pick else None, "record": shown}
