"""Tournaments: many matches played side by side, a crash-safe journal, replays and standings.

A match is one trial: K episodes on one level, with 1 to 4 players, every agent keeping its
memory across the episodes. A tournament is a list of matches made from its arguments
(:func:`schedule`): every *seating* (which agent sits in which seat) plays the same N levels
of the split. The matches of one seating are played together as slots of one
:class:`~metarena.games.batch.BatchEnv`, in chunks of ``batch`` levels (a *group*), through
the one trial loop :func:`metarena.agents.rollout.play`.

A tournament is a pure function of its arguments: every group seeds its env and its agents
from ``(seed, group index)`` and makes its agents afresh, so a group plays the same whatever
ran before it, and a resumed tournament ends with the same journal as an uninterrupted one
(apart from timing fields).

``DIR/`` holds:

- ``tournament.json``: the arguments (and the variant's parameters); ``--resume`` refuses
  other arguments;
- ``journal.jsonl``: one line per finished match (:data:`JOURNAL_SCHEMA`), appended and
  flushed to disk; the standings are computed from it alone
  (:mod:`metarena.arenas.ratings`);
- ``replays.jsonl``: one line per match, written before its journal line: the actions of
  every seat at every step, and a digest of what the match showed (observations and
  rewards), from which :func:`replay` re-simulates the match bit for bit;
- ``leaderboard.json``, ``leaderboard.md``, ``leaderboard.png``: the standings.

An agent that raises, runs past its time, or returns an action outside the action space
forfeits the matches it was playing (:mod:`metarena.arenas.guard`): its player stands still
from then on, the record names its status, and the others play on.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from metarena import games
from metarena.agents.registry import weights_hash
from metarena.agents.rollout import Hooks, play
from metarena.agents.rundir import keep_lines, write_atomic
from metarena.games.batch import BatchEnv
from metarena.games.variant import Variant, validate

from . import executor
from .guard import GuardedAgent, guard

FORMATS = ("round-robin", "gauntlet", "ffa")
JOURNAL_SCHEMA = 1
JOURNAL, REPLAYS, ARGS = "journal.jsonl", "replays.jsonl", "tournament.json"


class TournamentError(ValueError):
    """The arguments cannot make a tournament (the message says why and what to do)."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """The arguments a tournament is a pure function of."""

    game: str
    agents: tuple[str, ...]
    format: str = "round-robin"
    players: int = 2
    levels: int = 20
    episodes: int = 4
    split: str = "test"
    seed: int = 0
    variant: str | None = None
    batch: int = 64  #: levels per group: matches played side by side
    step_budget: float = 1.0  #: seconds per step an agent may take (for all its slots at once)
    time_bank: float = 10.0  #: seconds over the budget an agent may use, summed over a group

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "agents": list(self.agents)}


@dataclasses.dataclass(frozen=True)
class Group:
    """Matches that play together: one seating on a chunk of the levels."""

    index: int
    seats: tuple[str, ...]
    levels: tuple[int, ...]  #: indices into the split
    first_match: int  #: the id number of the group's first match

    def match_ids(self) -> list[str]:
        return [match_id(self.first_match + i) for i in range(len(self.levels))]


def match_id(number: int) -> str:
    return f"m{number:06d}"


def seatings(agents: Sequence[str], fmt: str, players: int) -> list[tuple[str, ...]]:
    """Who sits where in each seating of a format (see the module docstring)."""
    agents = list(agents)
    if fmt not in FORMATS:
        raise TournamentError(f"unknown format '{fmt}'; choose from {', '.join(FORMATS)}")
    if len(set(agents)) != len(agents):
        raise TournamentError(f"an agent is named twice in {agents}; name each once")
    if fmt == "round-robin":
        if len(agents) < players:
            raise TournamentError(f"round-robin with {players} players needs at least {players} agents, "
                                  f"got {len(agents)}")
        return list(itertools.permutations(agents, players))
    if fmt == "gauntlet":
        if len(agents) < 2:
            raise TournamentError("a gauntlet needs one agent and at least one other to face it")
        if players != 2:
            raise TournamentError(f"a gauntlet is played 2 at a time, not {players}; use --format ffa for more")
        first, others = agents[0], agents[1:]
        return [s for other in others for s in ((first, other), (other, first))]
    if len(agents) < players:
        raise TournamentError(f"a {players}-player free-for-all needs at least {players} agents, got {len(agents)}")
    out = []
    for chosen in itertools.combinations(agents, players):  # every seat once for each agent
        out += [tuple(chosen[(i + r) % players] for i in range(players)) for r in range(players)]
    return out


def schedule(spec: Spec) -> list[Group]:
    """The groups of a tournament, in play order."""
    out, number = [], 0
    for seats in seatings(spec.agents, spec.format, spec.players):
        for lo in range(0, spec.levels, spec.batch):
            chunk = tuple(range(lo, min(lo + spec.batch, spec.levels)))
            out.append(Group(len(out), seats, chunk, number))
            number += len(chunk)
    return out


def derived_seed(seed: int, *parts: int) -> int:
    """A seed for one part of a tournament, a function of the tournament's seed and the part."""
    digest = hashlib.sha256(":".join(map(str, ("metarena-tournament", seed, *parts))).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


# ---------------------------------------------------------------------------------------------
# playing a group


class _Recorder(Hooks):
    """Every seat's action at every step, and what every step showed (rewards, then the next
    observations), kept until the end: a slot's digest covers its steps up to the end of its
    trial (after the trial's last step the slot shows the next level, which is left out)."""

    def __init__(self, n: int):
        self.actions: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.grids: list[np.ndarray] = []
        self.scalars: list[np.ndarray] = []
        self.live = np.ones(n, dtype=bool)
        self.length = np.zeros(n, dtype=np.int64)
        self._stacked: tuple[np.ndarray, ...] | None = None

    def on_step(self, env, actions, step):
        self.actions.append(np.asarray(actions, dtype=np.uint8).copy())
        self.rewards.append(step.rewards.copy())
        self.grids.append(step.grid.copy())  # copies: the env overwrites its buffers
        self.scalars.append(step.scalars.copy())
        self.length[self.live] += 1
        self.live &= ~step.trial_done

    def digest(self, slot: int) -> str:
        if self._stacked is None:  # (T, n, ...) arrays, made once after the last step
            self._stacked = tuple(np.stack(x) for x in (self.rewards, self.grids, self.scalars))
        rewards, grids, scalars = self._stacked
        steps = int(self.length[slot])
        h = hashlib.sha256()
        for part in (rewards[:steps, slot], grids[: steps - 1, slot], scalars[: steps - 1, slot]):
            h.update(np.ascontiguousarray(part).tobytes())
        return h.hexdigest()

    def replay_line(self, slot: int, match: str) -> dict:
        acts = np.stack([a[slot] for a in self.actions[: self.length[slot]]])
        return {"match": match, "steps": int(self.length[slot]), "players": int(acts.shape[1]),
                "actions": base64.b64encode(acts.tobytes()).decode("ascii"), "digest": self.digest(slot)}


def variant_of(spec: Spec) -> Variant:
    return games.variant(spec.game, spec.variant)


def play_group(spec: Spec, group: Group, variant: Variant | None = None) -> tuple[list[dict], list[dict]]:
    """Play one group; returns its journal records and replay lines, one per match."""
    variant = variant or variant_of(spec)
    began = time.perf_counter()
    seeds = games.split_seeds(spec.split, spec.levels)[list(group.levels)]
    n = len(group.levels)
    env = BatchEnv(games.get(spec.game), variant, batch=n, players=spec.players, learners=spec.players,
                   seeds=seeds, episodes=spec.episodes, seed=derived_seed(spec.seed, group.index))
    agents = [guard(name, spec.game, seed=derived_seed(spec.seed, group.index, p), step_budget=spec.step_budget,
                    time_bank=spec.time_bank) for p, name in enumerate(group.seats)]
    recorder = _Recorder(n)
    try:
        stats = play(env, agents, levels=np.arange(n), hooks=recorder)
    finally:
        for a in agents:
            a.close()
    duration = (time.perf_counter() - began) / n
    hashes = [weights_hash(name, spec.game) for name in group.seats]
    records, replays = [], []
    for i, (level, match) in enumerate(zip(group.levels, group.match_ids())):
        records.append({
            "schema": JOURNAL_SCHEMA, "match": match, "game": spec.game, "variant": variant.name,
            "split": spec.split, "level": int(level), "level_seed": int(seeds[i]), "seats": list(group.seats),
            "weights": hashes, "episodes": spec.episodes,
            "returns": [[float(x) for x in stats.returns[i, k]] for k in range(spec.episodes)],
            "status": [a.status[i] for a in agents], "duration_s": round(duration, 6)})
        replays.append(recorder.replay_line(i, match))
    return records, replays


# ---------------------------------------------------------------------------------------------
# the tournament


def _append(path: Path, lines: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _done_matches(out: Path) -> set[str]:
    """The matches already in the journal. A torn last line (a kill mid-write) is dropped, with
    a warning, and so are the replay lines of matches without a journal line."""
    from .ratings import read_journal

    journal = out / JOURNAL
    if not journal.exists():
        return set()
    records = read_journal(journal)
    done = {r["match"] for r in records}
    keep_lines(journal, lambda line: _match_of(line) in done)
    keep_lines(out / REPLAYS, lambda line: _match_of(line) in done)
    return done


def _match_of(line: str) -> str | None:
    try:
        return json.loads(line)["match"]
    except (ValueError, KeyError, TypeError):
        return None


def check_agents(spec: Spec) -> None:
    """Make every agent once, so that an unknown name, an unloadable checkpoint or one trained
    on another game is refused before any match starts."""
    for name in spec.agents:
        agent = guard(name, spec.game, seed=0, step_budget=spec.step_budget, time_bank=spec.time_bank)
        agent.close()


def run_tournament(spec: Spec, out: str | os.PathLike, resume: bool = False, workers: int = 1,
                   backend: str = "local", address: str | None = None,
                   on_group: Callable[[Group, list[dict], list[dict]], None] | None = None) -> list[dict]:
    """Play every match of ``spec`` not yet in ``out``'s journal, then write the leaderboard;
    returns the journal's records. The groups are played by ``backend`` with ``workers``
    (:mod:`metarena.arenas.executor`: here, local processes, or Ray at ``address``); the journal
    is the same whatever they are, since only this process writes it, in play order.
    ``on_group(group, records, replays)`` hears of each group played once its lines are in the
    files: the journal records and replay lines of its matches not played before, in order."""
    from .ratings import read_journal, standings, write_leaderboard

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TournamentError(f"{out} is a file, not a tournament directory; pick another --out")
    variant = variant_of(spec)
    groups = schedule(spec)
    if spec.levels < 1 or spec.episodes < 1 or spec.batch < 1:
        raise TournamentError("levels, episodes and batch must be positive")
    args = {"schema": JOURNAL_SCHEMA, **spec.to_dict(), "variant_params": dict(variant.params),
            "variant_name": variant.name}
    if (out / ARGS).exists():
        saved = json.loads((out / ARGS).read_text(encoding="utf-8"))
        if not resume:
            raise TournamentError(f"{out} holds a tournament already; continue it with --resume or pick another "
                                  "--out (nothing was changed)")
        if saved != args:
            differ = sorted(k for k in set(saved) | set(args) if saved.get(k) != args.get(k))
            raise TournamentError(f"{out} holds a tournament with other arguments ({', '.join(differ)}); resume it "
                                  "with the same command, or pick another --out")
    elif out.exists() and any(out.iterdir()):
        raise TournamentError(f"{out} is not empty and holds no tournament; pick another --out")
    check_agents(spec)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / ARGS).exists():
        write_atomic(out / ARGS, json.dumps(args, indent=2) + "\n")
    done = _done_matches(out)
    todo = [g for g in groups if any(m not in done for m in g.match_ids())]
    played = executor.run(functools.partial(play_group, spec), todo, backend=backend, workers=workers,
                          address=address)
    for group, (records, replays) in played:
        keep = [i for i, r in enumerate(records) if r["match"] not in done]
        _append(out / REPLAYS, [replays[i] for i in keep])
        _append(out / JOURNAL, [records[i] for i in keep])
        if on_group is not None:
            on_group(group, [records[i] for i in keep], [replays[i] for i in keep])
    records = read_journal(out / JOURNAL)
    write_leaderboard(standings(records), out)
    return records


# ---------------------------------------------------------------------------------------------
# replays


def load_match(out: str | os.PathLike, match: str) -> tuple[Spec, Variant, dict, dict]:
    """``(spec, variant, journal record, replay line)`` of a match of the tournament in ``out``."""
    out = Path(out)
    if not (out / ARGS).exists():
        raise TournamentError(f"{out}: not a tournament directory (no {ARGS})")
    args = json.loads((out / ARGS).read_text(encoding="utf-8"))
    fields = {f.name for f in dataclasses.fields(Spec)}
    spec = Spec(**{k: tuple(v) if k == "agents" else v for k, v in args.items() if k in fields})
    game = games.get(spec.game)
    variant = validate(spec.game, args["variant_name"], args["variant_params"], game.spec.params, str(out / ARGS))
    from .ratings import read_journal

    records = {r["match"]: r for r in read_journal(out / JOURNAL)}
    if match not in records:
        known = sorted(records)
        hint = f"{known[0]} .. {known[-1]}" if known else "none yet"
        raise TournamentError(f"{out}: no match '{match}' in the journal (matches: {hint})")
    replays = {}
    with open(out / REPLAYS, encoding="utf-8") as fh:
        for line in fh:
            if _match_of(line) == match:
                replays = json.loads(line)
    if not replays:
        raise TournamentError(f"{out}: the replay of '{match}' is missing from {REPLAYS}")
    return spec, variant, records[match], replays


class Replayed:
    """Plays back one seat's recorded actions (the agent protocol, one slot)."""

    def __init__(self, name: str, actions: np.ndarray):
        self.name, self.actions = name, actions

    def begin_trial(self, n: int) -> int:
        return 0

    def act(self, obs, memory: int, ctx) -> tuple[np.ndarray, int]:
        action = int(self.actions[memory]) if memory < len(self.actions) else 0
        return np.array([action], dtype=np.int64), memory + 1

    def end_episode(self, memory: int, slots: np.ndarray) -> int:
        return memory


def replay_agents(record: dict, line: dict) -> list[Replayed]:
    acts = np.frombuffer(base64.b64decode(line["actions"]), dtype=np.uint8).reshape(line["steps"], line["players"])
    return [Replayed(name, acts[:, p]) for p, name in enumerate(record["seats"])]


def replay_digest(out: str | os.PathLike, match: str) -> tuple[str, str]:
    """``(recorded digest, digest of the match re-simulated from its record)``: equal when the
    replay reproduces every observation and reward of the original."""
    spec, variant, record, line = load_match(out, match)
    env = BatchEnv(games.get(spec.game), variant, batch=1, players=spec.players, learners=spec.players,
                   seeds=[record["level_seed"]], episodes=spec.episodes, seed=0)
    recorder = _Recorder(1)
    play(env, replay_agents(record, line), levels=np.zeros(1, dtype=np.int64), hooks=recorder)
    return line["digest"], recorder.digest(0)


__all__ = ["FORMATS", "Spec", "Group", "TournamentError", "seatings", "schedule", "play_group", "run_tournament",
           "load_match", "replay_agents", "replay_digest", "GuardedAgent"]
