"""``check_game``: the conformance suite every game passes, yours included.

Run it on a game you wrote (see ``games/template.py``), as ``pettingzoo.test`` checks an
environment::

    from metarena.games.testing import check_game
    check_game("my_game")          # raises GameCheckError naming every check that failed

Each check is a function ``check(game, variant)`` in :data:`CHECKS`, so a test suite can run
them one by one (``tests/games/test_conformance.py`` does, for every registered game):

==================  ==========================================================================
check               what it asserts
==================  ==========================================================================
spec                the GameSpec is complete; every built-in variant loads
determinism         a level is a pure function of its seed; the same seed gives the same
                    rollout; nothing touches numpy's global random state
spaces              observations are one-hot tiles of the shared vocabulary in a (V, V, C)
                    window plus the scalars, within the declared spaces; actions are Discrete(5)
solvable            the oracle reaches a positive return on ``seeds`` levels (half train, half
                    test) of every built-in variant, within the step limit; every item is
                    reachable from every start cell
rendering           rgb_array frames are RGB uint8 arrays of a fixed size, and they change
gymnasium           Gymnasium's and Stable-Baselines3's ``check_env``, at every player count
pettingzoo          PettingZoo's ``parallel_api_test``, ``parallel_seed_test`` and
                    ``render_test``, at every player count
golden              a golden playthrough (:func:`playthrough`) is repeatable, and differs
                    between seeds
vectorized          ``step`` has no Python loop over levels: 64 times the slots cost far less
                    than 64 times the time
==================  ==========================================================================

The interfaces (Gymnasium, PettingZoo, Stable-Baselines3) are imported inside the checks
that use them, so importing this module costs nothing.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from typing import Callable

import numpy as np

from . import registry
from . import tiles as T
from .batch import BatchEnv
from .engine import NUM_ACTIONS, SCALAR_NAMES, VIEW, split_seeds
from .maze import UNREACHABLE
from .variant import builtin_variants

POOL = 16  #: levels in the pools the interface checks play
#: checker warnings expected by design: a small one-hot window is not a camera image, and the
#: score is unbounded
EXPECTED_WARNINGS = ("infinity", "image", "36x36", "[0, 255]")


class GameCheckError(AssertionError):
    """One or more checks failed; the message names each, with what it found."""


def smallest_variant(game: str) -> str:
    """The game's "small" variant, or its built-in variant with the smallest map."""
    tables = builtin_variants(game)
    if "small" in tables:
        return "small"
    return min(tables, key=lambda v: tables[v].get("size", 0))


def player_counts(game: str) -> list[int]:
    """The fewest players, two (where allowed) and the most."""
    spec = registry.get(game).spec
    return sorted({spec.min_players, min(max(spec.min_players, 2), spec.max_players), spec.max_players})


def _quiet(fn, *args, **kwargs):
    """Run a checker; fail on any warning other than the ones this design expects."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    unexpected = [str(w.message) for w in caught if not any(e in str(w.message) for e in EXPECTED_WARNINGS)]
    assert not unexpected, f"unexpected warnings: {unexpected}"


def _policy_rollout(game: str, variant: str, seed: int, players: int, steps: int) -> str:
    """A hash of every observation, reward and flag of ``steps`` steps of the reference
    policies on the level ``seed``."""
    env = BatchEnv(registry.get(game), registry.variant(game, variant), batch=1, players=players, seeds=[seed],
                   seed=seed, episodes=2)
    grid, scalars = env.reset(levels=[0])
    rng = np.random.default_rng(seed)
    kinds = ("uninformed", "scripted", "random", "oracle")
    h = hashlib.sha256()
    for _ in range(steps):
        actions = np.stack([env.game.policy(kinds[p], env.engine, env.state, p, grid[:, p], rng)
                            for p in range(players)], 1)
        grid, scalars, rewards, term, trunc, _ = env.step(actions)
        for a in (grid, scalars, rewards, term, trunc):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# the checks


def check_spec(game: str, variant: str) -> None:
    g = registry.get(game)
    s = g.spec
    assert s.name == game, f"spec.name is {s.name!r}, registered as {game!r}"
    for field in ("title", "summary", "hidden", "adaptation"):
        assert isinstance(getattr(s, field), str) and getattr(s, field), f"spec.{field} is empty"
    assert 1 <= s.min_players <= s.max_players <= 4, f"players {s.min_players}-{s.max_players}: allowed 1-4"
    tables = builtin_variants(game)
    assert s.default_variant in tables, f"the default variant {s.default_variant!r} is not in the game's TOML"
    for name in tables:
        v = registry.variant(game, name)
        assert g.step_limit(v) >= 1, f"variant {name}: step limit {g.step_limit(v)}"


def check_determinism(game: str, variant: str) -> None:
    g, v = registry.get(game), registry.variant(game, variant)
    state = np.random.get_state()
    a, b, c = g.generate(v, 7), g.generate(v, 7), g.generate(v, 8)
    for field in ("tiles", "spawn", "item_pos", "item_value"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), f"seed 7 made two different levels ({field})"
    assert not all(np.array_equal(getattr(a, f), getattr(c, f)) for f in ("tiles", "spawn", "item_value")), \
        "seeds 7 and 8 made the same level"
    players = player_counts(game)[-1]
    first = _policy_rollout(game, variant, 5, players, 40)
    assert first == _policy_rollout(game, variant, 5, players, 40), "the same seed gave two different rollouts"
    assert first != _policy_rollout(game, variant, 10, players, 40), "seeds 5 and 10 gave the same rollout"
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:], \
        "the game used numpy's global random state: draw from Game.rng(seed) or a passed generator"


def check_spaces(game: str, variant: str) -> None:
    from .gym_env import MetarenaEnv

    for players in player_counts(game):
        env = MetarenaEnv(game, variant, pool_size=POOL, players=players, seed=0)
        space = env.observation_space
        assert space["grid"].shape == (VIEW, VIEW, T.NUM_CHANNELS), f"grid space {space['grid'].shape}"
        assert space["scalars"].shape == (len(SCALAR_NAMES),), f"scalars space {space['scalars'].shape}"
        assert env.action_space.n == NUM_ACTIONS
        obs, _ = env.reset()
        rng = np.random.default_rng(0)
        for _ in range(env.benv.engine.limit + 2):
            assert obs in space, "an observation is outside the observation space"
            per_cell = obs["grid"].sum(-1)
            assert ((per_cell == 1) | (per_cell == 2)).all(), "a cell is not one-hot (a tile, plus a player)"
            assert 0.0 <= obs["scalars"][0] <= 1.0, f"time left {obs['scalars'][0]} outside [0, 1]"
            obs, _, term, trunc, _ = env.step(int(rng.integers(0, NUM_ACTIONS)))
            if term or trunc:
                obs, _ = env.reset()


def oracle_returns(game: str, variant: str, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The oracle's first-episode return and length (solo) on each level of ``seeds``, and the
    step limit."""
    g = registry.get(game)
    env = BatchEnv(g, registry.variant(game, variant), batch=len(seeds), seeds=seeds, seed=0)
    grid, _ = env.reset(levels=np.arange(len(seeds)))
    rng = np.random.default_rng(0)
    returns, lengths = np.zeros(len(seeds), dtype=np.float64), np.zeros(len(seeds), dtype=np.int64)
    done = np.zeros(len(seeds), dtype=bool)
    while not done.all():
        actions = g.policy("oracle", env.engine, env.state, 0, grid[:, 0], rng)
        grid, _, _, _, _, info = env.step(actions[:, None])
        final = info.get("final")
        if final is not None:
            fresh = ~done[final["slots"]]
            slots = final["slots"][fresh]
            returns[slots] = final["score"][fresh, 0]
            lengths[slots] = final["length"][fresh]
            done[slots] = True
    return returns, lengths, env.engine.limit


def check_solvable(game: str, variant: str, seeds: int = 1000) -> None:
    g = registry.get(game)
    for name in builtin_variants(game):
        v = registry.variant(game, name)
        level_seeds = np.concatenate([split_seeds("train", seeds // 2), split_seeds("test", seeds - seeds // 2)])
        if registry.get(game).generate(v, 0).item_pos.shape[0]:
            levels = BatchEnv(g, v, batch=1, seeds=level_seeds, seed=0).levels
            for i in range(len(level_seeds)):
                y, x = levels.spawn[i].T
                assert (levels.dist[i][:, y, x] < UNREACHABLE).all(), \
                    f"{name}, seed {level_seeds[i]}: an item cannot be reached from a start cell"
        ret, length, limit = oracle_returns(game, name, level_seeds)
        assert (ret > 0).all(), f"{name}: the oracle scored <= 0 on seeds {level_seeds[ret <= 0][:10].tolist()}"
        if g.spec.terminates:
            late = length >= limit
            assert not late.any(), f"{name}: the oracle ran out of steps on seeds {level_seeds[late][:10].tolist()}"


def check_rendering(game: str, variant: str) -> None:
    from .gym_env import MetarenaEnv

    env = MetarenaEnv(game, variant, pool_size=POOL, players=player_counts(game)[-1], render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray) and first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3, \
        "render() must return an (H, W, 3) uint8 frame"
    assert first.std() > 0, "the frame is one flat colour"
    frames = [first]
    for a in (1, 2, 3, 4, 1, 2):
        env.step(a)
        frames.append(env.render())
        assert frames[-1].shape == first.shape, "frames change size"
    assert any(not np.array_equal(f, first) for f in frames[1:]), "six moves changed nothing in the frame"
    env.close()


def check_gymnasium(game: str, variant: str) -> None:
    import gymnasium
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from .gym_env import MetarenaEnv, env_id

    for players in player_counts(game):
        env = gymnasium.make(env_id(game), variant=variant, pool_size=POOL, players=players)
        _quiet(check_env, env.unwrapped)
        env.close()
        _quiet(sb3_check_env, MetarenaEnv(game, variant, pool_size=POOL, players=players, others="scripted"),
               warn=True)


def check_pettingzoo(game: str, variant: str) -> None:
    from pettingzoo.test import parallel_api_test, parallel_seed_test, render_test

    from . import pz_env

    for players in player_counts(game):
        par = pz_env.parallel_env(game, variant, players=players, pool_size=POOL)
        _quiet(parallel_api_test, par, num_cycles=200)
        _quiet(parallel_seed_test, lambda: pz_env.parallel_env(game, variant, players=players, pool_size=POOL))
    players = player_counts(game)[-1]
    render_test(lambda render_mode=None: pz_env.env(game, variant, players=players, pool_size=POOL,
                                                     render_mode=render_mode))


def playthrough(game: str, seed: int, players: int, readable: int = 8) -> tuple[str, list[dict]]:
    """A golden playthrough of the game's default variant: two episodes on the level ``seed``
    with the reference policies (uninformed, scripted, random, oracle by seat). Returns the
    hash of everything observed, and the first ``readable`` steps as each player's
    ``actions``, then its ``pos`` (row, col) and ``reward`` after the step."""
    env = BatchEnv(registry.get(game), registry.variant(game), batch=1, players=players, seeds=[seed], seed=seed,
                   episodes=2)
    grid, scalars = env.reset(levels=[0])
    rng = np.random.default_rng(seed)
    kinds = ("uninformed", "scripted", "random", "oracle")
    h = hashlib.sha256()
    steps = []
    for t in range(2 * env.engine.limit + 2):
        actions = np.stack([env.game.policy(kinds[p], env.engine, env.state, p, grid[:, p], rng)
                            for p in range(players)], 1)
        grid, scalars, rewards, term, trunc, _ = env.step(actions)
        for a in (grid, scalars, rewards, term, trunc):
            h.update(np.ascontiguousarray(a).tobytes())
        if t < readable:
            row, col = env.engine.rowcol(env.state)
            steps.append({"step": t + 1, "actions": [int(a) for a in actions[0]],
                          "pos": [[int(r), int(c)] for r, c in zip(row[0], col[0])],
                          "reward": [float(r) for r in rewards[0]]})
    return h.hexdigest(), steps


def check_golden(game: str, variant: str) -> None:
    players = player_counts(game)[-1]
    first = playthrough(game, 5, players)
    assert len(first[0]) == 64 and len(first[1]) == 8, "a playthrough is a sha256 and 8 readable steps"
    for step in first[1]:
        assert len(step["actions"]) == len(step["pos"]) == len(step["reward"]) == players
    assert first == playthrough(game, 5, players), "the same playthrough came out twice differently"
    assert first[0] != playthrough(game, 10, players)[0], "two seeds gave the same playthrough"


def step_seconds(game: str, variant: str, batch: int, steps: int = 30) -> float:
    """The least time of one engine step (observations included) of ``batch`` random slots."""
    v = registry.variant(game, variant)
    env = BatchEnv(registry.get(game), v, batch=batch, pool_size=64, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, NUM_ACTIONS, size=(steps, batch, 1))
    best = float("inf")
    for t in range(steps):
        start = time.perf_counter()
        env.step(actions[t])
        best = min(best, time.perf_counter() - start)
    return best


def check_vectorized(game: str, variant: str) -> None:
    small, large = 64, 64 * 64
    ratio = step_seconds(game, variant, large) / step_seconds(game, variant, small)
    # one Python loop over levels makes the ratio about 64; numpy over the batch keeps it far lower
    assert ratio < 32, (f"a step of {large} slots took {ratio:.0f}x as long as one of {small}: step() seems to "
                        "loop over levels in Python; work on whole arrays (see games/engine.py)")


#: every check, in the order check_game runs them
CHECKS: dict[str, Callable[[str, str], None]] = {
    "spec": check_spec, "determinism": check_determinism, "spaces": check_spaces, "solvable": check_solvable,
    "rendering": check_rendering, "gymnasium": check_gymnasium, "pettingzoo": check_pettingzoo,
    "golden": check_golden, "vectorized": check_vectorized,
}


def check_game(game: str, checks: list[str] | None = None, variant: str | None = None, seeds: int = 1000,
               echo: Callable[[str], None] | None = print) -> None:
    """Run the conformance ``checks`` (default: all of :data:`CHECKS`) on a registered game, on
    its smallest built-in variant (or ``variant``); ``seeds`` levels of every built-in variant
    for ``solvable``. ``echo`` hears one line per check. Raises :class:`GameCheckError` naming
    every check that failed."""
    if game not in registry.names():
        raise ValueError(f"unknown game {game!r}: register it first (registered: {', '.join(registry.names())})")
    unknown = sorted(set(checks or ()) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")
    variant = variant or smallest_variant(game)
    failed = []
    for name in checks or list(CHECKS):
        start = time.perf_counter()
        try:
            if name == "solvable":
                check_solvable(game, variant, seeds)
            else:
                CHECKS[name](game, variant)
        except AssertionError as exc:
            failed.append(f"{name}: {exc}")
            outcome = "FAILED"
        else:
            outcome = "ok"
        if echo is not None:
            echo(f"{game} {name:<12} {outcome} ({time.perf_counter() - start:.1f} s)")
    if failed:
        raise GameCheckError(f"{game} failed {len(failed)} check(s):\n" + "\n".join(failed))
