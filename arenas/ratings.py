"""The standings of a tournament, computed from its journal alone.

A tournament appends one line per finished match to ``DIR/journal.jsonl``
(:data:`JOURNAL_SCHEMA`)::

    {"schema": 1, "match": "m000012" (ids sort in play order), "game": str, "variant": str,
     "split": "train" | "test", "level": int (index in the split), "level_seed": int,
     "seats": [agent name per seat] (1-4 seats; one agent may sit in several seats),
     "weights": [sha256 hex or null per seat],
     "returns": [[return per seat] per episode] (K lists),
     "status": ["ok" | "error" | "timeout" | "invalid" per seat],
     "duration_s": float, "episodes": K}

The ranking of a match (:func:`ranks`): every seat's total return over the K episodes, higher
is better; a seat whose status is not ``"ok"`` forfeits and ranks below every ``"ok"`` seat
(forfeiting seats tie among themselves); equal totals tie. A seat's rank is the number of seats
strictly better than it (0 = best; ``[9, 9, 4]`` ranks ``[0, 0, 2]``).

The standings (:func:`standings`) process the records in match-id order, whatever order they
come in, and hold for each agent:

- an openskill Plackett-Luce rating (mu, sigma, ordinal = mu - 3 sigma) with ``tau = 0``: the
  agents' weights are frozen, so their skill does not drift and sigma only shrinks. It is
  updated once per match, one team per seat, over the match's ranking. An agent in several
  seats of one match gets the mean of its seats' new mu and the root mean square of their new
  sigma. A match with fewer than two distinct agents (solo, self-play) changes no rating;
- matches played, forfeits (matches in which one of its seats ended with that status);
- mean return by episode index over all its seats in all its matches (forfeiting seats
  included), and the adaptation gain: the last episode's mean minus the first's;
- for every agent it met, wins / draws / losses against it (a beats b in a match when a's seat
  ranks better; in a free-for-all every pair of seats counts, seats of the same agent do not),
  the score ``(wins + draws / 2) / games`` and its 95% Wilson score interval.

Standings schema (``"schema": 1``; plain JSON types; ``null`` where undefined)::

    {
      "schema": 1,
      "model": {"name": "PlackettLuce", "mu": 25.0, "sigma": 8.33, "beta": 4.17, "tau": 0.0,
                "ordinal": "mu - 3 sigma"},
      "matches": int, "first_match": str | null, "last_match": str | null,
      "games": [str], "variants": [str], "splits": [str], "episodes": int (largest K),
      "agents": [str]                the leaderboard order: ordinal descending, ties by name,
      "leaderboard": [{
          "rank": int (1 = top), "agent": str, "mu": float, "sigma": float, "ordinal": float,
          "matches": int, "wins": int, "draws": int, "losses": int (summed over its opponents),
          "forfeits": {"error": int, "timeout": int, "invalid": int}, "forfeited": int,
          "return_by_episode": [float | null], "gain": float | null,
          "weights": [str] (distinct weight hashes it played with)}],
      "pairs": {a: {b: {"wins": int, "draws": int, "losses": int, "games": int,
                        "score": float, "score_ci": [low, high]}}}   a against b, pairs that met
    }

:func:`write_leaderboard` writes ``leaderboard.json`` (the standings), ``leaderboard.md``
(:func:`format_markdown`) and ``leaderboard.png`` (the score matrix as a heatmap).
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from openskill.models import PlackettLuce

from metarena.agents.rundir import write_atomic
from metarena.text import grid, wrapped

JOURNAL_SCHEMA = 1
LEADERBOARD_SCHEMA = 1
STATUSES = ("ok", "error", "timeout", "invalid")
FORFEITS = STATUSES[1:]
Z95 = 1.959963984540054  # two-sided 95% normal quantile
ORDINAL_Z = 3.0
LEADERBOARD_FILES = ("leaderboard.json", "leaderboard.md", "leaderboard.png")


# ---------------------------------------------------------------------------------------------
# the journal


def check_record(record) -> None:
    """Raise ValueError (saying what is wrong) unless ``record`` is a journal record of
    :data:`JOURNAL_SCHEMA`."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if record.get("schema") != JOURNAL_SCHEMA:
        raise ValueError(f"journal schema {record.get('schema')!r} is not known (this version reads schema "
                         f"{JOURNAL_SCHEMA}); was the journal written by another version of metarena?")
    missing = [k for k in ("match", "seats", "returns", "status") if k not in record]
    if missing:
        raise ValueError(f"missing keys {missing}")
    match, seats, returns, status = record["match"], record["seats"], record["returns"], record["status"]
    if not isinstance(match, str) or not match:
        raise ValueError(f"'match' must be a non-empty string, got {match!r}")
    if not isinstance(seats, list) or not 1 <= len(seats) <= 4 or not all(isinstance(s, str) and s for s in seats):
        raise ValueError(f"match {match}: 'seats' must list 1 to 4 agent names, got {seats!r}")
    n = len(seats)
    if not isinstance(status, list) or len(status) != n or any(s not in STATUSES for s in status):
        raise ValueError(f"match {match}: 'status' must give one of {list(STATUSES)} per seat ({n}), got {status!r}")
    weights = record.get("weights")
    if weights is not None and (not isinstance(weights, list) or len(weights) != n
                                or not all(w is None or isinstance(w, str) for w in weights)):
        raise ValueError(f"match {match}: 'weights' must give a hash or null per seat ({n}), got {weights!r}")
    if not isinstance(returns, list) or not returns:
        raise ValueError(f"match {match}: 'returns' must list the seats' returns of at least one episode")
    for k, row in enumerate(returns):
        if (not isinstance(row, list) or len(row) != n
                or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r) for r in row)):
            raise ValueError(f"match {match}: returns of episode {k} must be {n} finite numbers, got {row!r}")
    episodes = record.get("episodes", len(returns))
    if episodes != len(returns):
        raise ValueError(f"match {match}: 'episodes' is {episodes} but 'returns' holds {len(returns)} episodes")


def read_journal(path: str | os.PathLike) -> list[dict]:
    """The records of a ``journal.jsonl``, in file order.

    A torn last line (a kill mid-write: no trailing newline, or not valid JSON) is left out
    with a warning naming the file. A line elsewhere that is not a valid record raises
    ValueError naming the file and the line number. Blank lines are skipped."""
    path = Path(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete = data.endswith(b"\n")
    if complete:
        lines = lines[:-1]  # the empty string after the final newline
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    records = []
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        torn = i == len(lines) - 1 and not complete
        try:
            record = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            if i == last:
                torn = True
            else:
                raise ValueError(f"{path}:{i + 1}: not valid JSON ({exc}); a journal line can only be torn at "
                                 "the end of the file, so this one was damaged: repair or remove it") from None
        if torn:
            warnings.warn(f"{path}: the last line (line {i + 1}) is incomplete, probably cut short by a kill "
                          "mid-write; it is ignored (its match counts as not played)", stacklevel=2)
            continue
        try:
            check_record(record)
        except ValueError as exc:
            raise ValueError(f"{path}:{i + 1}: not a journal record: {exc}") from None
        records.append(record)
    return records


# ---------------------------------------------------------------------------------------------
# one match


def totals(record: dict) -> list[float]:
    """Every seat's total return over the match's episodes (exactly rounded sums)."""
    return [math.fsum(row[s] for row in record["returns"]) for s in range(len(record["seats"]))]


def ranks(record: dict) -> list[int]:
    """The ranking of a match, one entry per seat: 0 = best; a seat's rank is the number of
    seats strictly better than it. Higher total return is better; a seat whose status is not
    ``"ok"`` ranks below every ``"ok"`` seat, and forfeiting seats tie among themselves."""
    total = totals(record)
    ok = [s == "ok" for s in record["status"]]
    # sort key: (forfeited, -total); forfeits compare equal to each other whatever their return
    keys = [(0, -t) if good else (1, 0.0) for t, good in zip(total, ok)]
    return [sum(other < key for other in keys) for key in keys]


def wilson(score: float, n: int, z: float = Z95) -> list[float] | None:
    """The Wilson score interval ``[low, high]`` of a proportion ``score`` out of ``n`` trials
    (draws counted as half a win); None when ``n == 0``."""
    if n <= 0:
        return None
    denom = 1.0 + z * z / n
    center = (score + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(score * (1.0 - score) / n + z * z / (4 * n * n), 0.0))
    return [max(0.0, center - half), min(1.0, center + half)]


# ---------------------------------------------------------------------------------------------
# the standings


def rating_model() -> PlackettLuce:
    """The rating model: openskill's Plackett-Luce with its default priors and ``tau = 0``."""
    return PlackettLuce(tau=0.0)


class _Agent:
    """What the standings accumulate for one agent."""

    def __init__(self, rating):
        self.rating = rating
        self.matches = 0
        self.forfeits = dict.fromkeys(FORFEITS, 0)
        self.forfeited = 0
        self.return_sum: list[float] = []
        self.return_n: list[int] = []
        self.weights: set[str] = set()

    def add_returns(self, returns: Sequence[float]) -> None:
        for k, r in enumerate(returns):
            if k == len(self.return_sum):
                self.return_sum.append(0.0)
                self.return_n.append(0)
            self.return_sum[k] += float(r)
            self.return_n[k] += 1


def standings(records: Iterable[dict]) -> dict:
    """The standings of a tournament from its journal records (see the module docstring for
    the schema). The result depends on the set of records only, not on their order."""
    return Standings().add(records).result()


class Standings:
    """Standings built up match by match: :meth:`add` takes newly finished records,
    :meth:`result` gives the same dict as :func:`standings` of every record added so far.

    Ratings are updated in match order. New records whose matches all come after the last one
    added cost only their own updates (a live leaderboard adds a group at a time); a record
    that comes earlier makes the next :meth:`result` replay every match in order, so the
    result never depends on the order records arrived in."""

    def __init__(self):
        self.records: list[dict] = []
        self._ids: set[str] = set()
        self._reset()

    def _reset(self) -> None:
        self.model = rating_model()
        self.agents: dict[str, _Agent] = {}
        self.pairs: dict[str, dict[str, list[int]]] = {}  # a -> b -> [wins, draws, losses]
        self._rated = 0  # records[:_rated] are in the ratings, in match order

    def add(self, records: Iterable[dict]) -> "Standings":
        new = list(records)
        for record in new:
            try:
                check_record(record)
            except ValueError as exc:
                raise ValueError(f"not a journal record: {exc}") from None
        ids = [r["match"] for r in new]
        twice = self._ids.intersection(ids) or {m for m in ids if ids.count(m) > 1}
        if twice:
            raise ValueError(f"match {min(twice)} appears twice in the records; a journal holds one line per "
                             "match (was a journal concatenated with another?)")
        new.sort(key=lambda r: r["match"])
        if new and self.records and new[0]["match"] < self.records[-1]["match"]:
            self.records = sorted(self.records + new, key=lambda r: r["match"])
            self._reset()  # an earlier match arrived late: replay them all in order
        else:
            self.records += new
        self._ids.update(ids)
        return self

    def _rate_pending(self) -> None:
        for record in self.records[self._rated:]:
            self._take(record)
        self._rated = len(self.records)

    def _take(self, record: dict) -> None:
        agents, pairs = self.agents, self.pairs
        seats, status = record["seats"], record["status"]
        rank = ranks(record)
        for name in seats:
            if name not in agents:
                agents[name] = _Agent(self.model.rating(name=name))
        for name in dict.fromkeys(seats):
            agent = agents[name]
            agent.matches += 1
            bad = {status[s] for s in range(len(seats)) if seats[s] == name and status[s] != "ok"}
            for st in bad:
                agent.forfeits[st] += 1
            agent.forfeited += bool(bad)
        for s, name in enumerate(seats):
            agents[name].add_returns([row[s] for row in record["returns"]])
            w = (record.get("weights") or [None] * len(seats))[s]
            if w is not None:
                agents[name].weights.add(w)
        _rate(self.model, agents, seats, rank)
        for i in range(len(seats)):
            for j in range(len(seats)):
                a, b = seats[i], seats[j]
                if a == b:
                    continue
                wdl = pairs.setdefault(a, {}).setdefault(b, [0, 0, 0])
                wdl[0 if rank[i] < rank[j] else 1 if rank[i] == rank[j] else 2] += 1

    def result(self) -> dict:
        self._rate_pending()
        model, agents, pairs, records = self.model, self.agents, self.pairs, self.records

        def ordinal(agent: _Agent) -> float:
            return agent.rating.mu - ORDINAL_Z * agent.rating.sigma

        order = sorted(agents, key=lambda n: (-ordinal(agents[n]), n))
        leaderboard = []
        for place, name in enumerate(order, 1):
            agent = agents[name]
            wdl = [sum(v[i] for v in pairs.get(name, {}).values()) for i in range(3)]
            means = [s / n for s, n in zip(agent.return_sum, agent.return_n)]
            leaderboard.append({
                "rank": place, "agent": name, "mu": float(agent.rating.mu), "sigma": float(agent.rating.sigma),
                "ordinal": float(ordinal(agent)), "matches": agent.matches,
                "wins": int(wdl[0]), "draws": int(wdl[1]), "losses": int(wdl[2]),
                "forfeits": dict(agent.forfeits), "forfeited": agent.forfeited,
                "return_by_episode": means, "gain": means[-1] - means[0] if means else None,
                "weights": sorted(agent.weights),
            })
        pair_out = {}
        for a in order:
            row = {}
            for b in order:
                if b not in pairs.get(a, {}):
                    continue
                w, d, l = pairs[a][b]
                n = w + d + l
                score = (w + d / 2) / n
                row[b] = {"wins": w, "draws": d, "losses": l, "games": n, "score": score,
                          "score_ci": wilson(score, n)}
            pair_out[a] = row
        return {
            "schema": LEADERBOARD_SCHEMA,
            "model": {"name": "PlackettLuce", "mu": float(model.mu), "sigma": float(model.sigma),
                      "beta": float(model.beta), "tau": float(model.tau), "ordinal": f"mu - {ORDINAL_Z:g} sigma"},
            "matches": len(records),
            "first_match": records[0]["match"] if records else None,
            "last_match": records[-1]["match"] if records else None,
            "games": sorted({str(r.get("game")) for r in records if r.get("game") is not None}),
            "variants": sorted({str(r.get("variant")) for r in records if r.get("variant") is not None}),
            "splits": sorted({str(r.get("split")) for r in records if r.get("split") is not None}),
            "episodes": max((len(r["returns"]) for r in records), default=0),
            "agents": order,
            "leaderboard": leaderboard,
            "pairs": pair_out,
        }


def _rate(model: PlackettLuce, agents: dict[str, _Agent], seats: Sequence[str], rank: Sequence[int]) -> None:
    """One rating update over a match: one team per seat. An agent in several seats takes the
    mean of its seats' new mu and the root mean square of their new sigma; a match with fewer
    than two distinct agents changes nothing."""
    if len(set(seats)) < 2:
        return
    new = model.rate([[agents[name].rating] for name in seats], ranks=list(rank))
    for name in dict.fromkeys(seats):
        mine = [new[s][0] for s in range(len(seats)) if seats[s] == name]
        mu = sum(r.mu for r in mine) / len(mine)
        sigma = math.sqrt(sum(r.sigma ** 2 for r in mine) / len(mine))
        agents[name].rating = model.rating(mu=mu, sigma=sigma, name=name)


# ---------------------------------------------------------------------------------------------
# tables


def _num(x: float | None, fmt: str = ".2f") -> str:
    if x is None:
        return "-"
    text = format(x, fmt)
    return format(0.0, fmt) if float(text) == 0 else text  # no "-0.00"


def _forfeit_text(row: dict) -> str:
    if not row["forfeited"]:
        return "0"
    parts = [f"{k} {v}" for k, v in row["forfeits"].items() if v]
    return f"{row['forfeited']} ({', '.join(parts)})"


#: the columns of :func:`_rows` that hold text (agent, returns, forfeits): left-aligned; numbers right
_TEXT_COLUMNS = (1, 6, 8)


def _rows(st: dict) -> tuple[list[str], list[list[str]]]:
    header = ["rank", "agent", "ordinal", "mu ± sigma", "matches", "W/D/L", "return by episode", "gain", "forfeits"]
    rows = []
    for r in st["leaderboard"]:
        rows.append([str(r["rank"]), r["agent"], _num(r["ordinal"]), f"{_num(r['mu'])} ± {_num(r['sigma'])}",
                     str(r["matches"]), f"{r['wins']}/{r['draws']}/{r['losses']}",
                     " ".join(_num(x) for x in r["return_by_episode"]), _num(r["gain"], "+.2f"), _forfeit_text(r)])
    return header, rows


def _caption(st: dict) -> str:
    where = " / ".join(", ".join(st[k]) for k in ("games", "variants") if st[k])
    split = f", {', '.join(st['splits'])} split" if st["splits"] else ""
    m = st["model"]
    return (f"{where or 'tournament'}{split}: {st['matches']} matches of {st['episodes']} episodes, "
            f"{len(st['agents'])} agents; openskill {m['name']} (tau = {m['tau']:g}), ordinal = {m['ordinal']}")


def format_table(st: dict, width: int | None = None) -> str:
    """A plain-text leaderboard of :func:`standings`: rank, agent, ordinal, mu ± sigma, matches,
    W/D/L (over all opponents), mean return by episode, gain (last episode minus first) and
    forfeits. ``width`` (a terminal's): a wider table is split by columns, each part led by the
    rank and the agent."""
    if not st["leaderboard"]:
        return "no matches in the journal yet"
    header, rows = _rows(st)
    return "\n".join(wrapped([_caption(st), *grid(header, rows, width, lead=2, left=_TEXT_COLUMNS, rule=True)], width))


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(st: dict) -> str:
    """The leaderboard of :func:`standings` as a Markdown table, followed by the matrix of
    the row agent's score (W-D-L) against each column agent."""
    lines = ["# Leaderboard", "", _caption(st) + ".", ""]
    if not st["leaderboard"]:
        return "\n".join(lines + ["No matches in the journal yet.", ""])
    header, rows = _rows(st)
    lines += ["| " + " | ".join(header) + " |",
              "|" + "|".join("---" if i in _TEXT_COLUMNS else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    agents = st["agents"]
    lines += ["", "## Head to head", "",
              "Score of the row agent against the column agent, (wins + draws / 2) / games, with wins-draws-losses; "
              "every pair of seats of a match counts once.", "",
              "| | " + " | ".join(_md(a) for a in agents) + " |", "|---|" + "---:|" * len(agents)]
    for a in agents:
        cells = []
        for b in agents:
            p = st["pairs"].get(a, {}).get(b)
            cells.append("—" if a == b else "" if p is None else
                         f"{p['score']:.2f} ({p['wins']}-{p['draws']}-{p['losses']})")
        lines.append(f"| **{_md(a)}** | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# files


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def plot_scores(st: dict) -> bytes:
    """The PNG bytes of a heatmap of the score matrix: row agent against column agent, each
    cell "score" over "(W-D-L)", pairs that never met left grey, and a colour bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib import colormaps

    agents = st["agents"]
    n = len(agents)
    side = max(4.5, 0.95 * n + 2.5)
    fig = Figure(figsize=(side + 1.4, side), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if n == 0:
        ax.text(0.5, 0.5, "no matches yet", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
    else:
        score = np.full((n, n), np.nan)
        for i, a in enumerate(agents):
            for j, b in enumerate(agents):
                p = st["pairs"].get(a, {}).get(b)
                if p is not None:
                    score[i, j] = p["score"]
        cmap = colormaps["RdBu"].with_extremes(bad="#d9d9d9")
        im = ax.imshow(np.ma.masked_invalid(score), cmap=cmap, vmin=0.0, vmax=1.0)
        size = 11 if n <= 4 else 10 if n <= 7 else 9 if n <= 10 else 8
        for i, a in enumerate(agents):
            for j, b in enumerate(agents):
                p = st["pairs"].get(a, {}).get(b)
                if i == j:
                    text, color = "—", "#555555"
                elif p is None:
                    text, color = "not met", "#555555"
                else:
                    text = f"{p['score']:.2f}\n({p['wins']}-{p['draws']}-{p['losses']})"
                    color = "white" if abs(p["score"] - 0.5) > 0.3 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color, linespacing=1.3)
        labels = [_short(a) for a in agents]
        ax.set_xticks(range(n), labels, rotation=35 if n > 3 else 0, ha="right" if n > 3 else "center",
                      fontsize=9)
        ax.set_yticks(range(n), labels, fontsize=9)
        ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="white", lw=2)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel("opponent (column)")
        ax.set_ylabel("agent (row), in leaderboard order")
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("score of the row agent: (wins + draws/2) / games")
    where = " / ".join(", ".join(st[k]) for k in ("games", "variants") if st[k])
    ax.set_title(f"Head to head{': ' + where if where else ''}\n{st['matches']} matches; "
                 "cell: score (wins-draws-losses)", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_leaderboard(st: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``leaderboard.json`` (the standings), ``leaderboard.md`` and ``leaderboard.png``
    into ``out_dir`` (made if missing), each atomically; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    body = {"schema": LEADERBOARD_SCHEMA, **{k: v for k, v in st.items() if k != "schema"}}
    contents = [(json.dumps(body, indent=2) + "\n").encode("utf-8"), format_markdown(st).encode("utf-8"),
                plot_scores(st)]
    paths = [out / name for name in LEADERBOARD_FILES]
    for path, data in zip(paths, contents):
        write_atomic(path, data)
    return paths


__all__ = ["JOURNAL_SCHEMA", "LEADERBOARD_SCHEMA", "STATUSES", "LEADERBOARD_FILES", "check_record", "read_journal",
           "totals", "ranks", "wilson", "rating_model", "standings", "format_table", "format_markdown",
           "plot_scores", "write_leaderboard"]
