"""The `metarena` command: the one place that wires games, agents and arenas together.

    metarena demo [--headless]
    metarena games [--json]
    metarena levels show GAME [--variant V] [--seed S] [--out level.png]
    metarena variant new GAME NAME [--from medium] [--out NAME.toml]   |   metarena variant show GAME [V]
    metarena watch GAME [--agents scripted,random] [--record out.gif|mp4] [--headless]
    metarena play GAME [--opponents random]
    metarena eval --agent NAME --game G [--split test] [--levels N] [--episodes K] [--memory-reset]
                  [--no-ceiling] [--random-rollouts 16] [--json] [--plot out.png]
    metarena train --algo rl2 --game G[,G2] [--variant V[,V2]] --steps N --out RUN_DIR [--resume] [--wandb] [--set KEY=VALUE]
    metarena settings ALGO [--json]
    metarena check GAME [--only spec,solvable,...] [--seeds N]
    metarena tournament --game G --agents A,B[,C] --out DIR [--format round-robin|gauntlet|ffa] [--resume] [--watch]
    metarena replay DIR MATCH_ID [--record out.gif|mp4]
    metarena bench env --game G [--batch B] [--seconds S] [--json]
    metarena bench train --algo rl2 --game G [--seconds S] [--json]
    metarena bench render --game G [--json]
    metarena bench viewer [--game G] [--players 4] [--variant V] [--frames N] [--json]
    metarena bench tournament --game G [--agents rl2,scripted] [--json]

Wherever a command takes ``--variant``, V is a built-in variant name or the
path of a TOML file. Mistakes in the input exit with code 2 and a message
that says what was wrong; nothing is half-written.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
from pathlib import Path
from typing import Sequence

from metarena import games
from metarena.agents.checkpoint import CheckpointError
from metarena.agents.finetune import Strategy
from metarena.agents.registry import ALGORITHMS, agent_problem
from metarena.games import VariantError
from metarena.games.variant import variant_list
from metarena.text import terminal_width

EXIT_USAGE = 2
#: what every option that names an agent takes
AGENT_HELP = ("a reference agent (oracle, uninformed, scripted, random, stay), a ceiling planner (recall, "
              "window-recall), rl2 (the agent shipped for the game), the path of a run directory or "
              "checkpoint (rl2, finetune, reptile, ppo, recurrent-ppo), or your own agent as "
              "path/to/my_agent.py:MyAgent or an installed module:Class")
#: what every --split takes
SPLIT_HELP = ("level split: test (default; never trained on), train (the levels training draws from) "
              "or valid (levels of the train distribution past any training pool: choose between "
              "trained agents here, and keep test for the final figure)")


class UsageError(Exception):
    """Bad input from the command line; printed without a traceback, exit code 2."""


def _console():
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich would exit(1) itself; main() decides
            raise BrokenPipeError

    return _Console(stderr=False, highlight=False)


WIDE = 120  # columns from which a help table keeps its long texts in columns of their own


def _indented(console, text: str) -> None:
    """``text`` wrapped to the console's width, indented under a heading."""
    console.print(textwrap.fill(text, console.width - 1, initial_indent="    ", subsequent_indent="    "),
                  markup=False)


def _game(name: str) -> str:
    if name not in games.names():
        raise UsageError(f"unknown game '{name}'. Known games: {', '.join(games.names())}")
    return name


def _game_list(text: str, variant: str | None) -> list[str]:
    """``--game G[,G2]``: the games named, each checked with each of the ``--variant`` list's
    variants (a wrong name fails here, before anything is built)."""
    names = [_game(g.strip()) for g in text.split(",") if g.strip()]
    if not names:
        raise UsageError("--game needs at least one game")
    for g in names:
        for v in variant_list(variant):
            games.variant(g, v)
    return names


def _number(cast, ok, what: str):
    """An argparse type: ``cast`` the text and check it with ``ok``, else say what was expected."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_positive = _number(int, lambda v: v >= 1, "a positive integer")
_count = _number(int, lambda v: v >= 0, "a non-negative integer")
_seed = _number(int, lambda v: v >= 0, "a non-negative integer seed")
_seconds = _number(float, lambda v: v > 0, "a positive number of seconds")
_positive_float = _number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def _creatable(folder: Path, option: str, text: str) -> None:
    """``folder`` exists or can be made: the nearest existing part of its path is a folder we
    may write in (so nothing fails half-way, after the work is done)."""
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise UsageError(f"{option} {text}: '{part}' is a file, not a folder")
            if not os.access(part, os.W_OK | os.X_OK):
                raise UsageError(f"{option} {text}: no permission to write in '{part}'")
            return


def _output_file(text: str, option: str, suffixes: Sequence[str]) -> Path:
    """A file the command will write: one of ``suffixes``, in a folder that exists or can be
    made (it is made just before writing)."""
    path = Path(text)
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"{option} must name a {' or '.join(suffixes)} file, got '{text}'")
    if path.is_dir():
        raise UsageError(f"{option} {text} is a folder; give the name of a file to write")
    _creatable(path.parent, option, text)
    return path


def _output_dir(text: str, option: str) -> Path:
    """A folder the command will write in: it exists or can be made."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {text} is a file; give a folder")
    _creatable(path, option, text)
    return path


def _cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _warn_shards(shards: int | None) -> None:
    """Env processes beyond the core count wait on each other at every step."""
    cores = _cores()
    if shards is not None and shards > cores:
        print(f"warning: {shards} env processes (--shards) on {cores} CPU cores: every step waits for all of "
              f"them, so this runs far slower than with --shards {cores} or fewer", file=sys.stderr)


def _size(nbytes: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if nbytes < 1000 or unit == "MB":
            return f"{nbytes:,} {unit}" if unit == "bytes" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1000
    raise AssertionError("unreachable")


def _wrote(path: str | os.PathLike) -> None:
    """``wrote /absolute/path (123.4 KB)``: where a written file is, and how big."""
    p = Path(path)
    size = f" ({_size(p.stat().st_size)})" if p.is_file() else ""
    print(f"wrote {p.resolve()}{size}")


# ---------------------------------------------------------------------------------------------
# games


def game_info(levels: int) -> list[dict]:
    """Every registered game: its declared properties, variants and reference scores."""
    from metarena.agents.evaluate import RANDOM_ROLLOUTS, reference_scores
    from metarena.games.variant import builtin_variants

    out = []
    for name in games.names():
        g = games.get(name)
        s = g.spec
        v = games.variant(name)
        info = {
            "name": name, "title": s.title, "summary": s.summary, "players": [s.min_players, s.max_players],
            "hidden": s.hidden, "adaptation": s.adaptation, "default_variant": s.default_variant,
            "variants": {k: dict(games.variant(name, k).params) for k in builtin_variants(name)},
            "params": {p.name: {"allowed": p.allowed(), "doc": p.doc} for p in s.params},
            "step_limit": g.step_limit(v),
            "gym_id": f"metarena/{s.title}-v0",
        }
        if levels:
            info["reference"] = {
                "variant": v.name, "split": "test", "levels": levels, "episode": 1,
                "random_rollouts": RANDOM_ROLLOUTS, "scores": reference_scores(g, v, "test", levels),
            }
        out.append(info)
    return out


def cmd_games(args) -> int:
    if args.json:
        info = game_info(args.levels)
        # schema 2: R_random is the mean of `random_rollouts` random episodes per level (1 before)
        print(json.dumps({"schema": 2, "games": info}, indent=2))
        return 0
    from rich.table import Table

    console = _console()
    with console.status(f"playing the reference agents on {args.levels} test levels of each game..."):
        info = game_info(args.levels)
    wide = console.width >= WIDE  # narrower, the texts go below the table, one block per game
    table = Table(title="metarena games", show_lines=True)
    table.add_column("game", no_wrap=not wide)
    table.add_column("players", no_wrap=True)
    if wide:
        table.add_column("each level hides")
    table.add_column("variants", no_wrap=True)
    kinds = ("uninformed", "scripted", "random")
    if args.levels:
        table.add_column("oracle R", justify="right")
        for k in kinds:
            table.add_column(k, justify="right")
    for g in info:
        variants = "\n".join(f"{k}{(' (default)' if wide else ' *') if k == g['default_variant'] else ''}"
                              for k in g["variants"])
        row = [f"[bold]{g['name']}[/bold]" + (f"\n{g['summary']}" if wide else ""),
               f"{g['players'][0]}-{g['players'][1]}"] + ([g["hidden"]] if wide else []) + [variants]
        if "reference" in g:
            scores = g["reference"]["scores"]
            row += [f"{scores['oracle']['return']:.2f}"] + [f"{scores[k]['normalized']:.2f}" for k in kinds]
        table.add_row(*row)
    console.print(table)
    if not wide:
        console.print("* the default variant")
        for g in info:
            console.print(f"\n[bold]{g['name']}[/bold]")
            _indented(console, f"{g['summary']} Hidden: {g['hidden']}.")
    if args.levels:
        console.print(f"Reference agents, first episode, solo, on {args.levels} test levels of each default "
                      "variant: the oracle's mean return R, and each agent's normalized score "
                      "(R - R_random) / (R_oracle - R_random), averaged over levels.")
    console.print("`metarena games --json` lists every parameter and variant.")
    return 0


# ---------------------------------------------------------------------------------------------
# levels


def cmd_levels_show(args) -> int:
    from metarena.games.batch import BatchEnv
    from metarena.games.render import Renderer

    name = _game(args.game)
    _check_players(name, args.players)
    out = _output_file(args.out, "--out", (".png",))
    v = games.variant(name, args.variant)
    g = games.get(name)
    env = BatchEnv(g, v, batch=1, players=args.players, seeds=[args.seed])
    env.reset(levels=[0])
    title = f"{name} · {v.name} · level {args.seed} ({games.seed_split(args.seed)})"
    frame = Renderer(env.engine, tile=args.tile).frame(
        env.state, 0, title + ("  ·  hidden factor shown" if args.reveal else ""), reveal=args.reveal)
    import imageio.v3 as iio

    out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(out, frame)
    level = env.levels.level(0)
    print(f"{name} variant '{v.name}' seed {args.seed} ({games.seed_split(args.seed)} split): "
          f"{level.tiles.shape[0]}x{level.tiles.shape[1]} map, {len(level.item_pos)} items, "
          f"step limit {env.engine.limit}")
    if args.reveal:
        print("hidden: " + g.describe_level(level))
    _wrote(out)
    return 0


# ---------------------------------------------------------------------------------------------
# variant files


def cmd_variant_new(args) -> int:
    from metarena.games.variant import builtin_variants, template

    name = _game(args.game)
    stem = args.name[:-len(".toml")] if args.name.endswith(".toml") else args.name
    if not stem.strip() or "/" in stem or os.sep in stem:
        raise UsageError(f"NAME must be a plain name such as 'my-maze' (the file's path goes in --out), "
                         f"got '{args.name}'")
    base = args.base or games.get(name).spec.default_variant
    if base not in builtin_variants(name):
        raise UsageError(f"--from {base}: not a built-in variant of {name}; choose from "
                         f"{', '.join(builtin_variants(name))}")
    out = _output_file(args.out or f"{stem}.toml", "--out", (".toml",))
    if out.exists():
        raise UsageError(f"--out {out}: the file exists; nothing was changed (remove it, or give another --out)")
    text = template(games.variant(name, base), games.get(name).spec.params, stem, base)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(out, "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise UsageError(f"--out {out}: the file exists; nothing was changed") from None
    _wrote(out)
    print(f"edit it, then pass it as --variant {out}")
    return 0


def cmd_variant_show(args) -> int:
    from metarena.games.variant import toml_value

    name = _game(args.game)
    v = games.variant(name, args.variant)
    print(f"# {name} variant '{v.name}' ({v.source}), every key resolved")
    for key, value in v.params.items():
        print(f"{key} = {toml_value(value)}")
    return 0


# ---------------------------------------------------------------------------------------------
# watch and play


def _agent_names(text: str) -> list[str]:
    """Comma-separated agents: names the registry knows or paths of trained checkpoints."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--agents needs at least one agent name")
    for n in names:
        problem = agent_problem(n)
        if problem:
            raise UsageError(problem)
    return names


def _check_players(name: str, count: int) -> None:
    s = games.get(name).spec
    if not s.min_players <= count <= s.max_players:
        raise UsageError(f"{name} takes {s.min_players}-{s.max_players} players, got {count}")


def cmd_watch(args) -> int:
    from metarena.arenas.watch import EPISODES, FPS, watch

    name = _game(args.game)
    agents = _agent_names(args.agents)
    _check_players(name, len(agents))
    variant = games.variant(name, args.variant)  # resolved once, here at the edge
    if args.record:
        _output_file(args.record, "--record", (".gif", ".mp4"))
    result = watch(name, variant, agents, seed=args.seed, episodes=args.episodes or EPISODES, record=args.record,
                   headless=args.headless, fps=args.fps or FPS, tile=args.tile, scale=args.scale,
                   reveal=args.reveal, views=args.views)
    _print_match(result, agents)
    return 0


def cmd_play(args) -> int:
    from metarena.arenas.watch import EPISODES, FPS, NoDisplayError, play

    name = _game(args.game)
    opponents = _agent_names(args.opponents) if args.opponents else []
    _check_players(name, 1 + len(opponents))
    variant = games.variant(name, args.variant)
    try:
        result = play(name, variant, seed=args.seed, episodes=args.episodes or EPISODES, opponents=opponents,
                      fps=args.fps or FPS, tile=args.tile, scale=args.scale)
    except NoDisplayError as exc:
        raise UsageError(str(exc)) from None
    _print_match(result, ["you", *opponents])
    return 0


def _print_match(result: dict, names: Sequence[str]) -> None:
    returns = result.get("returns")
    if returns is not None:
        for k, row in enumerate(returns):
            scores = ", ".join(f"P{i + 1} {n}: {r:+.2f}" for i, (n, r) in enumerate(zip(names, row)))
            print(f"episode {k + 1}: {scores}")
    if result.get("record"):
        _wrote(result["record"])


# ---------------------------------------------------------------------------------------------
# eval


def _comparable(path: str, args) -> dict:
    """An earlier ``eval --json`` result to draw beside this one: same game, split, levels,
    episodes and seed (so the levels are the same)."""
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        same = {k: result[k] for k in ("game", "split", "levels", "episodes", "seed", "per_episode", "agent")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--compare {path}: not a result of `metarena eval --json` ({exc})") from None
    want = {"game": args.game, "split": args.split, "levels": args.levels, "episodes": args.episodes,
            "seed": args.seed}
    wrong = {k: (same[k], v) for k, v in want.items() if same[k] != v}
    if wrong:
        detail = ", ".join(f"{k} {a!r} (this run: {b!r})" for k, (a, b) in wrong.items())
        raise UsageError(f"--compare {path} was played on other levels: {detail}")
    return result


def cmd_eval(args) -> int:
    from metarena.agents.evaluate import evaluate, format_table, plot_adaptation

    name = _game(args.game)
    _check_players(name, args.players)
    variant = games.variant(name, args.variant)
    agent = _agent_names(args.agent)
    if len(agent) != 1:
        raise UsageError("--agent takes one agent")
    if args.plot:
        _output_file(args.plot, "--plot", (".png",))
    from metarena.agents.registry import make_agent

    compare = [_comparable(path, args) for path in args.compare]
    if compare and not args.plot:
        raise UsageError("--compare draws earlier results beside this one: give --plot too")
    try:
        player = make_agent(agent[0], name, seed=args.seed, strategy=args.strategy, adapt_lr=args.adapt_lr,
                            greedy=args.greedy)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        with _Progress(0, enabled=not args.json, label=f"eval {agent[0]}", unit="episodes") as bar:
            result = evaluate(player, name, variant, split=args.split, levels=args.levels,
                              episodes=args.episodes, seed=args.seed, memory_reset=args.memory_reset,
                              players=args.players, progress=bar.update, ceiling=args.ceiling,
                              random_rollouts=args.random_rollouts)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not args.ceiling:
        result["ceiling_note"] = "ceiling not played (--no-ceiling)"
    elif args.json and result["ceiling"] is None:
        print(result["ceiling_note"], file=sys.stderr)  # the table says it; stdout stays JSON
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        plot_adaptation(result, args.plot, others=compare)
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        print(format_table(result, terminal_width()))
        if result["timing"]["ceiling_s"] > 30:
            print(f"(the ceiling took {result['timing']['ceiling_s']:.0f} s; --no-ceiling skips it)")
        if args.plot:
            _wrote(args.plot)
    return 0


def cmd_race(args) -> int:
    from metarena.agents.registry import make_agent
    from metarena.arenas.races import format_race, race

    name = _game(args.game)
    agents = _agent_names(args.agents)
    spec = games.get(name).spec
    if not max(2, spec.min_players) <= len(agents) <= spec.max_players:
        raise UsageError(f"--agents: {name} races {max(2, spec.min_players)}-{spec.max_players} agents, "
                         f"got {len(agents)}")
    variant = games.variant(name, args.variant)
    try:
        players = [make_agent(a, name, seed=args.seed + i) for i, a in enumerate(agents)]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    total = args.levels * args.episodes * (2 if args.swap else 1)
    with _Progress(total, enabled=not args.json, label="race", unit="episodes") as bar:
        result = race(players, agents, name, variant, levels=args.levels, episodes=args.episodes, split=args.split,
                      seed=args.seed, still=args.still, swap=args.swap, progress=bar.advance).to_dict()
    print(json.dumps(result, indent=2) if args.json else format_race(result, terminal_width()))
    return 0


# ---------------------------------------------------------------------------------------------
# train


def _settings(pairs: Sequence[str]) -> dict:
    """``["lr=3e-4", "hidden=[256]"]`` -> ``{"lr": 0.0003, "hidden": [256]}`` (values are JSON; a
    bare word is a string). A key given twice with two values is refused."""
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE (or `--set help` for the keys), got '{pair}'")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if key in out and out[key] != value:
            raise UsageError(f"--set {key} is given twice, as {json.dumps(out[key])} and {json.dumps(value)}; "
                             "keep one")
        out[key] = value
    return out


def _settings_help(pairs: Sequence[str]) -> bool:
    """Whether ``--set help`` was given."""
    return any(pair.strip() == "help" for pair in pairs)


def cmd_train(args) -> int:
    from metarena.agents.train import Interrupted, train

    if _settings_help(args.set):
        return cmd_settings(argparse.Namespace(algo=args.algo, json=False))
    settings = _settings(args.set)
    for key in settings:
        if key in OWN_FLAGS:
            raise UsageError(f"--set {key}: {key} is set by its own option, {OWN_FLAGS[key]}; use that instead")
    required = [("--game", args.game is None and not args.resume), ("--steps", args.steps is None and not args.resume),
                ("--out", args.out is None)]
    missing = [flag for flag, absent in required if absent]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)} "
                         "(`metarena train --help` describes every option)")
    names = None if args.game is None else _game_list(args.game, args.variant)
    try:
        final = train(args.algo, names, args.variant, args.steps, args.out, envs=args.envs, device=args.device,
                      wandb=args.wandb, resume=args.resume, seed=args.seed,
                      checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, minutes=args.minutes,
                      settings=settings)
    except Interrupted as exc:  # the last finished update is saved; train said where
        return exc.exit_code
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"trained: {final}")
    return 0


# ---------------------------------------------------------------------------------------------
# tournaments and replays


def cmd_tournament(args) -> int:
    from metarena.arenas.ratings import format_table, standings
    from metarena.arenas.tournament import Spec, TournamentError, run_tournament, schedule

    name = _game(args.game)
    agents = _agent_names(args.agents)
    _check_players(name, args.players)
    _output_dir(args.out, "--out")
    games.variant(name, args.variant)  # fail early; the tournament records the variant's parameters
    spec = Spec(game=name, agents=tuple(agents), format=args.format, players=args.players, levels=args.levels,
                episodes=args.episodes, split=args.split, seed=args.seed, variant=args.variant, batch=args.batch,
                step_budget=args.step_budget, time_bank=args.time_bank)
    watch = args.watch
    if watch:
        from metarena.arenas.watch import has_display

        if not has_display():
            print("--watch: no display to open a window on (SDL_VIDEODRIVER is 'dummy' or neither DISPLAY nor "
                  "WAYLAND_DISPLAY is set); the tournament runs without one", file=sys.stderr)
            watch = False
    try:
        groups = schedule(spec)
        total = sum(len(g.levels) for g in groups)
        progress = _Progress(total, enabled=not args.json)
        kwargs = dict(resume=args.resume, workers=args.workers, backend=args.backend, address=args.address,
                      on_group=lambda group, done, _: progress.advance(len(done)))
        with progress:
            if watch:
                from metarena.arenas.live import watch_tournament

                records = watch_tournament(spec, args.out, **kwargs)
            else:
                records = run_tournament(spec, args.out, **kwargs)
    except (TournamentError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    st = standings(records)  # the journal as run_tournament read it back
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        print(format_table(st, terminal_width()))
        print(f"{len(records)} matches in {args.out}/journal.jsonl; leaderboard.json, leaderboard.md and "
              f"leaderboard.png beside it")
    return 0


class _Progress:
    """A progress bar on stderr over ``total`` units of long work (none when not ``enabled``,
    e.g. with --json); it is gone once the work is done."""

    def __init__(self, total: int, enabled: bool, label: str = "tournament", unit: str = "matches"):
        self.total, self.enabled, self.label, self.unit, self.bar = total, enabled, label, unit, None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn(f"[bold]{self.label}[/]"), BarColumn(), MofNCompleteColumn(),
                                TextColumn(self.unit), TimeElapsedColumn(), TextColumn("eta"),
                                TimeRemainingColumn(), transient=True, console=Console(stderr=True))
            self.bar.add_task(self.unit, total=self.total)
            self.bar.start()
        return self

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.bar.task_ids[0], n)

    def update(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.task_ids[0], completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def cmd_demo(args) -> int:
    from metarena.arenas.demo import demo
    from metarena.arenas.tournament import TournamentError

    _output_dir(args.out, "--out")
    if args.record:
        _output_file(args.record, "--record", (".gif", ".mp4"))
    try:
        demo(args.out, levels=args.levels, episodes=args.episodes, headless=args.headless, record=args.record,
             width=terminal_width())
    except TournamentError as exc:
        raise UsageError(str(exc)) from None
    return 0


def cmd_replay(args) -> int:
    from metarena.arenas.tournament import TournamentError, load_match, replay_agents
    from metarena.arenas.watch import FPS, has_display, spectate

    try:
        spec, variant, record, line = load_match(args.dir, args.match)
    except (TournamentError, OSError) as exc:
        raise UsageError(str(exc)) from None
    if args.record:
        _output_file(args.record, "--record", (".gif", ".mp4"))
    live = not args.headless and has_display()
    record_to = args.record or (None if live else f"replay-{args.match}.gif")
    result = spectate(spec.game, variant, replay_agents(record, line), record["level_seed"], spec.episodes,
                      names=record["seats"], record=record_to, live=live, fps=args.fps or FPS,
                      title=f"metarena replay {args.match}: " + " vs ".join(record["seats"]))
    same = [[round(x, 6) for x in row] for row in result["returns"]] == \
        [[round(x, 6) for x in row] for row in record["returns"][: len(result["returns"])]]
    _print_match(result, record["seats"])
    if not same:
        print("warning: the replay's returns differ from the journal's", file=sys.stderr)
    return 0


#: the config fields that `metarena train` takes as flags of their own, never as --set
OWN_FLAGS = {"games": "--game", "variant": "--variant", "total_steps": "--steps", "envs": "--envs",
             "device": "--device", "seed": "--seed", "algo": "--algo"}


def cmd_check(args) -> int:
    from metarena.games.testing import CHECKS, GameCheckError, check_game

    name = _game(args.game)
    only = [c.strip() for c in args.only.split(",") if c.strip()] if args.only else None
    unknown = sorted(set(only or ()) - set(CHECKS))
    if unknown:
        raise UsageError(f"unknown checks {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    try:
        check_game(name, only, seeds=args.seeds)
    except GameCheckError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"{name} passed every check")
    return 0


def cmd_settings(args) -> int:
    from metarena.agents.config import describe

    rows = describe(ALGORITHMS[args.algo].config)
    for row in rows:
        row["flag"] = OWN_FLAGS.get(row["name"], f"--set {row['name']}=VALUE")
    if args.json:
        print(json.dumps({"algorithm": args.algo, "settings": rows}, indent=2))
        return 0
    from rich.table import Table

    console = _console()
    title = f"metarena train --algo {args.algo}: settings"
    if console.width < WIDE:  # four columns would fold every flag: one block per setting instead
        console.print(title, style="bold")
        for row in rows:
            console.print(f"\n[bold]{row['flag']}[/bold]  default {json.dumps(row['default'])}; takes {row['allowed']}",
                          markup=True, highlight=False, soft_wrap=True)
            _indented(console, row["doc"])
        return 0
    table = Table(title=title, show_lines=False)
    table.add_column("flag", no_wrap=True)
    for col in ("default", "takes", "what it does"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row["flag"], json.dumps(row["default"]), row["allowed"], row["doc"])
    console.print(table)
    return 0


# ---------------------------------------------------------------------------------------------
# bench


def cmd_bench_env(args) -> int:
    from metarena.games.bench import bench_env

    name = _game(args.game)
    _check_players(name, args.players)
    variant = games.variant(name, args.variant)
    _warn_shards(args.shards)
    res = bench_env(name, variant, batch=args.batch, seconds=args.seconds, players=args.players,
                    shards=args.shards, pool_size=args.pool, seed=args.seed)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{name} ({res['variant']}), batch {res['batch']} x {res['players']} player(s), "
              f"{res['shards']} process(es): {res['steps_per_s']:,.0f} agent-steps/s, "
              f"{res['episodes_per_s']:,.0f} episodes/s over {res['seconds']:.1f} s "
              f"(pool of {res['pool_size']} levels built in {res['setup_s']:.1f} s)")
    return 0


def cmd_bench_train(args) -> int:
    from metarena.agents.bench import bench_train

    if _settings_help(args.set):  # --set changes RL²'s config
        return cmd_settings(argparse.Namespace(algo="rl2", json=False))
    names = _game_list(args.game, args.variant)  # fail early; the config records the variant as given
    _warn_shards(args.shards)
    try:
        res = bench_train(args.algo, names, args.variant, seconds=args.seconds, peers=not args.no_peers,
                          envs=args.envs, shards=args.shards, device=args.device, settings=_settings(args.set))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for r in res["runs"]:
            print(f"{r['algo']:<14} {r['steps_per_s']:>10,.0f} env-steps/s  ({r['steps']:,} steps in "
                  f"{r['seconds']:.1f} s, {r['envs']} envs on {r['device']}"
                  + (f", {r['network']}, {r['epochs']} epochs" if "network" in r else "") + ")")
            if r.get("timed_updates"):
                print(f"{'':<14} an update: {r['rollout_s'] / r['timed_updates']:.2f} s collecting, "
                      f"{r['update_s'] / r['timed_updates']:.2f} s learning")
    return 0


def cmd_bench_tournament(args) -> int:
    from metarena.arenas.bench import bench_tournament

    name = _game(args.game)
    agents = _agent_names(args.agents)
    games.variant(name, args.variant)
    try:
        res = bench_tournament(name, agents, args.variant, levels=args.levels, episodes=args.episodes,
                               batch=args.batch, peer_matches=args.peer_matches)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        peer = res["pettingzoo"]
        print(f"{name}, {', '.join(agents)}: {res['matches_per_s']:,.1f} matches/s batched ({res['matches']} matches "
              f"of {res['episodes']} episodes in {res['seconds']:.1f} s, {res['batch']} side by side)")
        if peer["matches_per_s"]:
            print(f"one at a time through PettingZoo: {peer['matches_per_s']:,.2f} matches/s ({peer['matches']} "
                  f"matches in {peer['seconds']:.1f} s); batched is {res['speedup']:,.0f}x faster")
    return 0


def cmd_bench_viewer(args) -> int:
    from metarena.arenas.bench import VIEWER_SIZE, bench_viewer

    name = _game(args.game)
    _check_players(name, args.players)
    variant = games.variant(name, args.variant) if args.variant else None
    res = bench_viewer(name, variant, players=args.players, frames=args.frames, tile=args.tile)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    where = (f"drawn and shown in a {res['window'][0]}x{res['window'][1]} window ({res['driver']}"
             + (", scaled to fit the screen)" if res["scaled"] else ")") if res["shown"] else
             f"drawn only: no display ({res['driver']} video driver), nothing shown; run it on a desktop or under "
             "xvfb-run for draw + show")
    print(f"{name} ({res['variant']}, {res['map'][0]}x{res['map'][1]} map, {res['players']} players, tile "
          f"{res['tile']} px, {res['frame'][0]}x{res['frame'][1]} frame): {res['fps']:,.0f} frames/s {where}; "
          f"{res['ms_median']:.1f} ms per frame (p95 {res['ms_p95']:.1f} ms); the viewer aims at "
          f"{res['target_fps']} frames/s" + ("" if args.variant else f" (map side {VIEWER_SIZE}: base = \"large\", "
                                            f"size = {VIEWER_SIZE})"))
    return 0


def cmd_bench_render(args) -> int:
    from metarena.games.bench import bench_render

    name = _game(args.game)
    variant = games.variant(name, args.variant)
    res = bench_render(name, variant, frames=args.frames, tile=args.tile)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{name} ({res['variant']}, {res['map'][0]}x{res['map'][1]} map, tile {res['tile']} px): "
              f"{res['ms_median']:.2f} ms per rgb_array frame (p95 {res['ms_p95']:.2f} ms), "
              f"{res['fps']:,.0f} frames/s")
    return 0


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from metarena.agents.evaluate import RANDOM_ROLLOUTS

    p = argparse.ArgumentParser(prog="metarena", description=(
        "Grid games as a task distribution, agents that adapt, and an arena to watch them."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def variant_arg(sp):
        sp.add_argument("--variant", default=None, metavar="V",
                        help="built-in variant name or path of a TOML file (default: the game's default)")

    game_help = f"the game: {', '.join(games.names())}"
    seed_help = "seed of the agents' and the levels' draws (default 0)"
    json_help = "print the result as JSON"

    g = sub.add_parser("games", help="list the games, their variants and reference scores")
    g.add_argument("--json", action="store_true", help="machine-readable output")
    g.add_argument("--levels", type=_count, default=200, metavar="N",
                   help="test levels for the reference scores (0 skips them; default 200)")
    g.set_defaults(func=cmd_games)

    lv = sub.add_parser("levels", help="look at levels")
    lsub = lv.add_subparsers(dest="levels_command", required=True, metavar="ACTION")
    show = lsub.add_parser("show", help="render one level to a PNG")
    show.add_argument("game", help=game_help)
    variant_arg(show)
    show.add_argument("--seed", type=_seed, default=0,
                      help="level seed (multiples of 5 are test levels; default 0)")
    show.add_argument("--players", type=_positive, default=1, help="players placed on the map (default 1)")
    show.add_argument("--out", default="level.png", help="PNG file to write (default level.png)")
    show.add_argument("--tile", type=_positive, default=32, help="pixels per map cell (default 32)")
    show.add_argument("--reveal", action="store_true",
                      help="also draw the level's hidden factor (the treasure chest, coin values) and print it")
    show.set_defaults(func=cmd_levels_show)

    va = sub.add_parser("variant", help="write a commented variant file to edit, or show a variant's values")
    vsub = va.add_subparsers(dest="variant_command", required=True, metavar="ACTION")
    vn = vsub.add_parser("new", help="write NAME.toml: every key of GAME with its value and meaning, to edit")
    vn.add_argument("game", help=game_help)
    vn.add_argument("name", help="the variant's name (and the file's, NAME.toml, unless --out is given)")
    vn.add_argument("--from", dest="base", default=None, metavar="V",
                    help="built-in variant it extends and whose values it starts from (default: the game's default)")
    vn.add_argument("--out", default=None, metavar="PATH",
                    help="TOML file to write (default NAME.toml here); an existing file is never overwritten")
    vn.set_defaults(func=cmd_variant_new)
    vs = vsub.add_parser("show", help="print every key of a variant (built-in or file), resolved")
    vs.add_argument("game", help=game_help)
    vs.add_argument("variant", nargs="?", default=None, metavar="V",
                    help="built-in variant name or path of a TOML file (default: the game's default)")
    vs.set_defaults(func=cmd_variant_show)

    w = sub.add_parser("watch", help="watch agents play a level (window, or a GIF when headless)")
    w.add_argument("game", help=game_help)
    variant_arg(w)
    w.add_argument("--agents", default="scripted", help="comma-separated, one per player: " + AGENT_HELP
                   + "; default scripted")
    w.add_argument("--seed", type=_seed, default=0, help="level seed (default 0)")
    w.add_argument("--episodes", type=_positive, default=None, help="episodes on the level (default 4, as eval)")
    w.add_argument("--record", default=None, metavar="FILE", help="write the match to FILE (.gif or .mp4)")
    w.add_argument("--headless", action="store_true", help="no window; records a GIF unless --record is given")
    w.add_argument("--fps", type=_positive, default=None,
                   help="steps per second at 1x (default 8); in the window + and - change the speed")
    w.add_argument("--scale", type=_positive_float, default=None,
                   help="first size of the window, times the frame's (default: 1, or what fits the screen); "
                        "the window can be resized")
    w.add_argument("--tile", type=_positive, default=32, help="pixels per map cell (default 32)")
    w.add_argument("--reveal", action="store_true",
                   help="show the hidden factor from the start (key h toggles it; recordings show it)")
    w.add_argument("--views", action="store_true",
                   help="outline each player's view from the start (key v toggles it)")
    w.set_defaults(func=cmd_watch)

    pl = sub.add_parser("play", help="play a level yourself (arrows or WASD, space waits, Esc quits)")
    pl.add_argument("game", help=game_help)
    variant_arg(pl)
    pl.add_argument("--seed", type=_seed, default=0, help="level seed (default 0)")
    pl.add_argument("--episodes", type=_positive, default=None, help="episodes on the level (default 4, as eval)")
    pl.add_argument("--vs", "--opponents", dest="opponents", default="",
                    help="comma-separated agents playing against you: " + AGENT_HELP + " (default: none, solo)")
    pl.add_argument("--fps", type=_positive, default=None, help="most steps per second a held key makes (default 8)")
    pl.add_argument("--scale", type=_positive_float, default=None,
                    help="first size of the window, times the frame's (default: 1, or what fits the screen)")
    pl.add_argument("--tile", type=_positive, default=32, help="pixels per map cell (default 32)")
    pl.set_defaults(func=cmd_play)

    ev = sub.add_parser("eval", help="the adaptation benchmark: normalized score by episode on held-out levels")
    ev.add_argument("--agent", required=True, help=AGENT_HELP + ", or ppo-scratch (SB3 PPO learning each level "
                    "from scratch within the K episodes)")
    ev.add_argument("--game", required=True, help=game_help)
    variant_arg(ev)
    ev.add_argument("--split", choices=games.SPLITS, default="test", help=SPLIT_HELP)
    ev.add_argument("--levels", type=_positive, default=500, help="levels, one trial each (default 500)")
    ev.add_argument("--episodes", type=_positive, default=4, help="episodes per trial (default 4)")
    ev.add_argument("--players", type=_positive, default=1,
                    help="players; the agent is the first, the others play random (default 1)")
    ev.add_argument("--seed", type=_seed, default=0, help=seed_help)
    ev.add_argument("--memory-reset", action="store_true",
                    help="wipe the agent's memory at every episode start (shows what adaptation adds)")
    ev.add_argument("--greedy", action="store_true",
                    help="trained agents take their most likely action instead of sampling one")
    ev.add_argument("--strategy", choices=Strategy.values(), default=None,
                    help="for finetune and reptile agents: what the fine-tuning tunes (default: the run's)")
    ev.add_argument("--adapt-lr", type=_positive_float, default=None, metavar="LR",
                    help="for finetune and reptile agents: the Adam learning rate of the fine-tuning after each "
                         "episode (default: the run's adapt_lr)")
    ev.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                    help="skip the game's ceiling planner (window-recall), which eval plays on the same levels "
                         "by default; it is the slowest part of an eval")
    ev.add_argument("--random-rollouts", type=_positive, default=RANDOM_ROLLOUTS, metavar="N",
                    help=f"random trials per level; the normalization uses their mean (default {RANDOM_ROLLOUTS})")
    ev.add_argument("--json", action="store_true", help="the result in its documented JSON schema")
    ev.add_argument("--plot", default=None, metavar="PNG", help="write the adaptation curve to PNG")
    ev.add_argument("--compare", nargs="+", default=[], metavar="JSON",
                    help="also draw these earlier --json results (same game, split, levels, episodes, seed)")
    ev.set_defaults(func=cmd_eval)

    ra = sub.add_parser("race", help="agents race on the same held-out levels: win rates by episode, "
                        "stand-offs")
    ra.add_argument("--agents", required=True, help="two to four agents, comma-separated (one per seat): " + AGENT_HELP)
    ra.add_argument("--game", required=True, help=game_help)
    variant_arg(ra)
    ra.add_argument("--split", choices=games.SPLITS, default="test", help=SPLIT_HELP)
    ra.add_argument("--levels", type=_positive, default=500, help="levels, one match each per seating (default 500)")
    ra.add_argument("--episodes", type=_positive, default=4, help="episodes per match (default 4)")
    ra.add_argument("--seed", type=_seed, default=0, help=seed_help)
    ra.add_argument("--still", type=_positive, default=10,
                    help="steps every player stands still, in a row, that make a stand-off (default 10)")
    ra.add_argument("--no-swap", dest="swap", action="store_false",
                    help="race each level once, agents in the order given (default: twice, seats reversed)")
    ra.add_argument("--json", action="store_true", help="the result as JSON")
    ra.set_defaults(func=cmd_race)

    tr = sub.add_parser("train", help="meta-train an agent on the train split (resumable run directory)",
                        description="Train --algo on the train split of --game for --steps env steps into the "
                        "run directory --out. Bad input exits with code 2 before anything is written. Ctrl-C "
                        "(or SIGTERM) saves the last finished update; --resume goes on from it.")
    tr.add_argument("--algo", required=True, choices=list(ALGORITHMS),
                    help="(required) " + "; ".join(f"{a.name}: {a.help}" for a in ALGORITHMS.values()))
    tr.add_argument("--game", default=None, metavar="G[,G2]",
                    help=game_help + "; or several comma-separated: one agent for all (required; with --resume: the "
                         "run's by default)")
    tr.add_argument("--variant", default=None, metavar="V[,V2]",
                    help="built-in variant name or path of a TOML file; or several comma-separated, each game "
                         "with each (rl2, finetune); never heldout, kept for eval (default: the game's default; "
                         "with --resume: the run's)")
    tr.add_argument("--steps", type=_positive, default=None, metavar="N",
                    help="env steps to train for in all, rounded up to whole updates (required; with --resume: "
                         "a new target, default the run's)")
    tr.add_argument("--envs", type=_positive, default=None, metavar="B",
                    help="env slots stepped together (default: the algorithm's, 1024 for rl2; with --resume: "
                         "the run's)")
    tr.add_argument("--minutes", type=_positive_float, default=None, metavar="M",
                    help="also stop after this many minutes of wall-clock (setup included), with a checkpoint "
                         "(default: no limit)")
    tr.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                    help="torch device (default auto: cuda if there is one, else cpu; with --resume: the run's)")
    tr.add_argument("--seed", type=_seed, default=None,
                    help="seeds torch, the level draws and the sampled actions (default 0; with --resume: the "
                         "run's)")
    tr.add_argument("--checkpoint-every", type=_positive, default=10, metavar="N",
                    help="updates between checkpoints (default 10; the last update is always saved)")
    tr.add_argument("--eval-every", type=_number(int, lambda v: v >= 0, "a non-negative integer"), default=0,
                    metavar="N", help="updates between valid-split evaluations into evals.jsonl (default 0: none)")
    tr.add_argument("--wandb", action="store_true",
                    help="also log to Weights & Biases, offline unless WANDB_API_KEY is set (default: off)")
    tr.add_argument("--resume", action="store_true",
                    help="continue the run in --out from its last checkpoint with its saved settings; only --steps, "
                         "--device and --set shards/torch_threads/rollout_threads/bf16 may differ (default: off, a "
                         "new run)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other training setting, e.g. --set lr=3e-4 --set 'hidden=[256]' (repeatable; VALUE "
                         "is JSON, a bare word is a string; default: the algorithm's). --set help lists every KEY "
                         "of --algo with its default, range and meaning")
    tr.add_argument("--out", default=None, metavar="RUN_DIR",
                    help="run directory: a new or empty folder, or with --resume an earlier run's (required)")
    tr.set_defaults(func=cmd_train)

    ck = sub.add_parser("check", help="the conformance suite of a game (yours too: see games/template.py)")
    ck.add_argument("game", help=game_help + ", or your own (METARENA_GAMES=my_game.py)")
    ck.add_argument("--only", default=None, metavar="CHECKS",
                    help="comma-separated checks to run (default: all of them, in order)")
    ck.add_argument("--seeds", type=_positive, default=1000,
                    help="levels of every variant the oracle must solve (default 1000)")
    ck.set_defaults(func=cmd_check)

    st = sub.add_parser("settings", help="every training setting of an algorithm: default, range, what it does")
    st.add_argument("algo", choices=list(ALGORITHMS), help=f"the algorithm: {', '.join(ALGORITHMS)}")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_settings)

    tm = sub.add_parser("tournament", help="many matches on held-out levels, a journal, ratings and a leaderboard")
    tm.add_argument("--game", required=True, help=game_help)
    variant_arg(tm)
    tm.add_argument("--agents", required=True, help="comma-separated: " + AGENT_HELP)
    tm.add_argument("--format", choices=("round-robin", "gauntlet", "ffa"), default="round-robin",
                    help="round-robin: every pairing, every seating; gauntlet: the first agent against each "
                         "other; ffa: P-player free-for-all over seatings of P agents (default round-robin)")
    tm.add_argument("--players", type=_positive, default=2, help="players per match (default 2)")
    tm.add_argument("--levels", type=_positive, default=20, help="levels each seating plays (default 20)")
    tm.add_argument("--episodes", type=_positive, default=4, help="episodes per match, one trial (default 4)")
    tm.add_argument("--split", choices=games.SPLITS, default="test", help=SPLIT_HELP)
    tm.add_argument("--seed", type=_seed, default=0, help=seed_help)
    tm.add_argument("--batch", type=_positive, default=64, help="matches played side by side (default 64)")
    tm.add_argument("--step-budget", type=_positive_float, default=1.0, metavar="S",
                    help="seconds an agent may take per step (default 1)")
    tm.add_argument("--time-bank", type=_positive_float, default=10.0, metavar="S",
                    help="seconds over the step budget an agent may spend in a match group (default 10)")
    tm.add_argument("--workers", type=_positive, default=1,
                    help="processes playing groups of matches (default 1: this one; with --backend ray, the "
                         "local cluster's CPUs); the journal is the same whatever the count")
    tm.add_argument("--backend", choices=("local", "ray"), default="local",
                    help="local: this machine's processes (default); ray: Ray tasks (pip install \"metarena[ray]\")")
    tm.add_argument("--address", default=None, metavar="ADDR",
                    help="with --backend ray: an existing cluster (e.g. ray://head:10001); default: a local "
                         "cluster on loopback only")
    tm.add_argument("--out", required=True, metavar="DIR", help="tournament directory (journal, replays, leaderboard)")
    tm.add_argument("--resume", action="store_true", help="play only the matches not yet in DIR's journal")
    tm.add_argument("--json", action="store_true", help="print the standings as JSON")
    tm.add_argument("--watch", action="store_true",
                    help="show the matches in a window as their groups finish, with the leaderboard so far (Tab: "
                         "another finished match, Esc closes the window and the tournament goes on); the tournament plays "
                         "at full speed, and without a display as usual")
    tm.set_defaults(func=cmd_tournament)

    dm = sub.add_parser("demo", help="the shipped agents against the reference agents on every game: a short "
                        "tournament, its leaderboard, and one match shown (a GIF when headless)")
    dm.add_argument("--levels", type=_positive, default=8, help="held-out levels per seating (default 8)")
    dm.add_argument("--episodes", type=_positive, default=4, help="episodes per match (default 4)")
    dm.add_argument("--out", default="metarena-demo", metavar="DIR",
                    help="where the journals, replays and leaderboards go (default metarena-demo)")
    dm.add_argument("--record", default=None, metavar="FILE", help="also write the match shown to FILE (.gif/.mp4)")
    dm.add_argument("--headless", action="store_true", help="no window; records a GIF")
    dm.set_defaults(func=cmd_demo)

    rp = sub.add_parser("replay", help="play a tournament's match back (window, or a GIF when headless)")
    rp.add_argument("dir", metavar="DIR", help="tournament directory")
    rp.add_argument("match", metavar="MATCH_ID", help="e.g. m000012 (the journal's 'match' field)")
    rp.add_argument("--record", default=None, metavar="FILE", help="write the match to FILE (.gif or .mp4)")
    rp.add_argument("--headless", action="store_true", help="no window; records a GIF unless --record is given")
    rp.add_argument("--fps", type=_positive_float, default=None, help="steps per second (default: the viewer's)")
    rp.set_defaults(func=cmd_replay)

    b = sub.add_parser("bench", help="measure speed")
    bsub = b.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    be = bsub.add_parser("env", help="engine steps/s with random actions (observations and autoresets included)")
    be.add_argument("--game", required=True, help=game_help)
    variant_arg(be)
    be.add_argument("--batch", type=_positive, default=4096, help="env slots stepped together (default 4096)")
    be.add_argument("--seconds", type=_seconds, default=5.0, help="how long to measure (default 5)")
    be.add_argument("--players", type=_positive, default=1, help="players per slot, all random (default 1)")
    be.add_argument("--shards", type=_positive, default=None,
                    help="env processes (default: one per core; more than the cores slows it down)")
    be.add_argument("--pool", type=_positive, default=1024, help="levels in the pool (default 1024)")
    be.add_argument("--seed", type=_seed, default=0, help=seed_help)
    be.add_argument("--json", action="store_true", help=json_help)
    be.set_defaults(func=cmd_bench_env)
    bt = bsub.add_parser("train", help="trainer env-steps/s end to end, beside SB3 PPO and RecurrentPPO")
    bt.add_argument("--algo", default="rl2", choices=("rl2", "ppo", "recurrent-ppo"),
                    help="the trainer measured: rl2, ppo or recurrent-ppo (default rl2)")
    bt.add_argument("--game", required=True, metavar="G[,G2]",
                    help=game_help + "; or several comma-separated, as `metarena train` takes them (rl2, "
                         "--no-peers: the peers train on one game)")
    bt.add_argument("--variant", default=None, metavar="V[,V2]",
                    help="built-in variant name or path of a TOML file; or several comma-separated for rl2, "
                         "as `metarena train` takes them (default: the game's default)")
    bt.add_argument("--seconds", type=_seconds, default=60.0, help="budget per trainer (default 60)")
    bt.add_argument("--envs", type=_positive, default=1024, help="RL² env slots (default 1024)")
    bt.add_argument("--shards", type=_positive, default=1, help="RL² env processes (default 1)")
    bt.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="RL²'s torch device (default auto: cuda if available); the peers run on the CPU")
    bt.add_argument("--no-peers", action="store_true", help="skip SB3 PPO and RecurrentPPO")
    bt.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an RL² setting, as for `metarena train`, e.g. --set 'hidden=[256]' --set memory=256 "
                         "(repeatable)")
    bt.add_argument("--json", action="store_true", help=json_help)
    bt.set_defaults(func=cmd_bench_train)
    bm = bsub.add_parser("tournament", help="tournament matches/s, batched, beside one match at a time "
                         "through the PettingZoo env")
    bm.add_argument("--game", required=True, help=game_help)
    variant_arg(bm)
    bm.add_argument("--agents", default="rl2,scripted", help="comma-separated agents of a 2-player round-robin: "
                    + AGENT_HELP + " (default rl2,scripted)")
    bm.add_argument("--levels", type=_positive, default=256, help="levels per seating (default 256)")
    bm.add_argument("--episodes", type=_positive, default=4, help="episodes per match (default 4)")
    bm.add_argument("--batch", type=_positive, default=256, help="matches side by side (default 256)")
    bm.add_argument("--peer-matches", type=int, default=16, metavar="M",
                    help="matches played one at a time through PettingZoo (default 16; 0 skips the peer)")
    bm.add_argument("--json", action="store_true", help=json_help)
    bm.set_defaults(func=cmd_bench_tournament)
    bv = bsub.add_parser("viewer", help="frames/s of the live viewer: the board drawn around a real match's map "
                         "and shown in the window, as a watched match is (drawing only without a display)")
    bv.add_argument("--game", default="treasure", help=game_help + " (default treasure)")
    bv.add_argument("--variant", default=None, metavar="V",
                    help="built-in variant name or path of a TOML file (default: the game's large variant with "
                         "size = 33)")
    bv.add_argument("--players", type=_positive, default=4, help="scripted players (default 4)")
    bv.add_argument("--frames", type=_positive, default=300, help="frames to draw (default 300)")
    bv.add_argument("--tile", type=_positive, default=32, help="pixels per map cell (default 32, as watch)")
    bv.add_argument("--json", action="store_true", help=json_help)
    bv.set_defaults(func=cmd_bench_viewer)
    br = bsub.add_parser("render", help="milliseconds per rgb_array frame")
    br.add_argument("--game", required=True, help=game_help)
    variant_arg(br)
    br.add_argument("--frames", type=_positive, default=300, help="frames to draw (default 300)")
    br.add_argument("--tile", type=_positive, default=32, help="pixels per map cell (default 32)")
    br.add_argument("--json", action="store_true", help=json_help)
    br.set_defaults(func=cmd_bench_render)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, VariantError, CheckpointError) as exc:
        print(f"metarena {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`metarena games | head`): stop quietly. Point stdout at devnull so
        # that the interpreter's last flush does not fail again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
