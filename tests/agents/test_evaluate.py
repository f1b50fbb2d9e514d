"""The adaptation benchmark: normalization arithmetic, references, memory reset, ceiling, episodes
since a hidden change, schema, plot."""

import json

import numpy as np
import pytest

from metarena import games
from metarena.agents.evaluate import (
    RANDOM_ROLLOUTS,
    SCHEMA,
    evaluate,
    excluded_levels,
    format_table,
    fraction_of,
    mean_ci,
    normalized_scores,
    plot_adaptation,
    relative_episodes,
    since_change,
    summarize,
)
from metarena.agents.rollout import play, reset_memory
from metarena.games.batch import BatchEnv

GAME, VARIANT = "treasure", "small"


# ---------------------------------------------------------------------------------------------
# (1) the arithmetic, on hand-written returns

# 4 levels x 2 episodes. Level 2: oracle == random; level 3: oracle below random: both excluded.
ORACLE = [[1.0, 1.0], [0.5, 0.5], [0.2, 0.2], [0.1, 0.1]]
RANDOM = [[0.0, 0.5], [0.0, 0.0], [0.2, 0.2], [0.3, 0.3]]
RETURNS = [[0.5, 0.75], [0.5, 0.25], [0.9, 0.0], [0.3, 0.3]]


def test_normalized_scores_by_hand():
    norm = normalized_scores(RETURNS, ORACLE, RANDOM)
    expected = np.array([[0.5, 0.5], [1.0, 0.5], [np.nan, np.nan], [np.nan, np.nan]])
    np.testing.assert_allclose(norm, expected)  # NaNs in the same places
    assert excluded_levels(ORACLE, RANDOM) == [2, 2]


def test_summarize_by_hand():
    lengths = np.array([[10, 20], [30, 40], [50, 60], [70, 80]])
    b = summarize(RETURNS, ORACLE, RANDOM, lengths)
    assert b["return"] == pytest.approx([(0.5 + 0.5 + 0.9 + 0.3) / 4, (0.75 + 0.25 + 0.0 + 0.3) / 4])
    assert b["success"] == pytest.approx([1.0, 0.75])  # a return of 0.0 is no success
    assert b["length"] == pytest.approx([40.0, 50.0])
    assert b["normalized_n"] == [2, 2]
    assert b["normalized_median"] == pytest.approx([0.75, 0.5])  # the middle of two: their mean
    # episode 1: scores 0.5 and 1.0 -> mean 0.75, sample std sqrt(0.125), CI 1.96 * std / sqrt(2)
    assert b["normalized"] == pytest.approx([0.75, 0.5])
    assert b["normalized_ci"] == pytest.approx([1.96 * np.sqrt(0.125) / np.sqrt(2), 0.0])
    # of means over the included levels: episode 1: 0.5 / 0.75; episode 2: 0.25 / 0.5
    assert b["normalized_of_means"] == pytest.approx([0.5 / 0.75, 0.5])
    assert b["gain"] == pytest.approx(-0.25)
    sd = np.std([0.5, 0.5, 0.9, 0.3], ddof=1)
    assert b["return_ci"][0] == pytest.approx(1.96 * sd / 2)


def test_summarize_without_any_normalizable_level():
    b = summarize([[0.3]], [[0.2]], [[0.2]])
    assert b["normalized"] == [None] and b["normalized_ci"] == [None] and b["normalized_n"] == [0]
    assert b["normalized_of_means"] == [None] and b["gain"] is None and b["length"] == [None]
    assert b["normalized_median"] == [None]
    assert mean_ci(np.array([2.0, np.nan])) == (2.0, None, 1)


def test_summarize_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        summarize([[1.0, 2.0]], [[1.0]], [[0.0]])


def test_random_rollouts_are_averaged_per_level():
    """Random given as (levels, rollouts, K): the level's R_random is the rollouts' mean, so one
    lucky rollout moves it by 1/rollouts of its luck; success counts every rollout."""
    oracle = np.array([[1.0], [1.0]])
    lucky = np.array([[[0.0], [0.0], [0.0], [0.96]], [[0.0], [0.0], [0.0], [0.0]]])  # (2 levels, 4 rollouts, 1)
    agent = np.array([[0.5], [0.5]])
    b = summarize(agent, oracle, lucky)
    assert b["normalized"] == pytest.approx([(0.26 / 0.76 + 0.5) / 2])  # level 1: R_random = 0.24
    assert excluded_levels(oracle, lucky) == [0]
    single = summarize(agent, oracle, lucky[:, 3])  # the lucky rollout alone
    assert single["normalized"][0] < -5  # (0.5 - 0.96) / (1 - 0.96): one level blows the mean up
    r = summarize(lucky, oracle, lucky)
    assert r["normalized"] == [0.0] and r["success"] == [1 / 8] and r["return"] == pytest.approx([0.12])
    # the mean of means and the median do not explode with a single rollout either
    assert single["normalized_of_means"][0] == pytest.approx((1.0 - 0.96) / (2.0 - 0.96))
    assert single["normalized_median"][0] == pytest.approx((0.5 - 11.5) / 2)


def test_fraction_of_the_ceiling_by_hand():
    # levels 3 and 4 are excluded (the oracle does not beat random)
    ceiling = [[1.0, 1.0], [0.5, 0.5], [0.2, 0.2], [0.1, 0.1]]
    frac = fraction_of(RETURNS, ceiling, ORACLE, RANDOM)
    # episode 1: (mean 0.5 - 0) / (mean 0.75 - 0); episode 2: ((0.75 - 0.5) + (0.25 - 0)) / ((1 - 0.5) + (0.5 - 0))
    assert frac == pytest.approx([(0.5 + 0.5) / (1.0 + 0.5), 0.5 / 1.0])
    assert fraction_of([[0.3]], [[0.0]], [[1.0]], [[0.0]]) == [None]  # a ceiling no better than random


def test_episodes_relative_to_the_change_by_hand():
    # K = 4; levels change at episodes 1, 2, 0 (no change within the trial), 5 (none the trial shows), 3
    change = np.array([1, 2, 0, 5, 3])
    offsets, groups = relative_episodes(change, 4)
    assert offsets == [-3, -2, -1, 0, 1, 2]
    rows = {d: (g[0].tolist(), g[1].tolist()) for d, g in zip(offsets, groups)}
    assert rows[0] == ([0, 1, 4], [1, 2, 3]) and rows[2] == ([0], [3]) and rows[-3] == ([4], [0])
    assert relative_episodes(np.array([0, 4]), 4) == ([], [])
    # returns: the agent scores 1 before the change, 0 in its episode, then recovers
    k = 4
    oracle = np.ones((5, k))
    random = np.zeros((5, 2, k))
    agent = np.array([[1.0 if e < c else 0.0 if e == c else 0.5 for e in range(k)] for c in change])
    block = since_change(change, k, agent, oracle, random, uninformed=np.full((5, k), 0.25), ceiling=oracle)
    assert block["changed_levels"] == 3 and block["offsets"] == offsets
    assert block["levels"] == [1, 2, 3, 3, 2, 1] and block["excluded"] == [0] * 6
    assert block["agent"]["normalized"] == pytest.approx([1.0, 1.0, 1.0, 0.0, 0.5, 0.5])
    assert block["reference"]["uninformed"]["normalized"] == pytest.approx([0.25] * 6)
    assert block["agent_fraction"] == pytest.approx(block["agent"]["normalized_of_means"])
    assert since_change(np.zeros(5, dtype=int), k, agent, oracle, random, oracle) is None


# ---------------------------------------------------------------------------------------------
# (2) references on real levels


def test_oracle_always_succeeds_random_scores_zero_uninformed_below_one():
    oracle = evaluate("oracle", GAME, VARIANT, levels=40, episodes=2)
    assert oracle["per_episode"]["success"] == [1.0, 1.0]
    random = evaluate("random", GAME, VARIANT, levels=40, episodes=2)
    # the agent is one random rollout per level, the reference the mean of RANDOM_ROLLOUTS of them
    assert random["random_rollouts"] == RANDOM_ROLLOUTS >= 16
    assert random["reference"]["random"]["normalized"] == pytest.approx([0.0, 0.0])
    assert abs(random["per_episode"]["normalized_of_means"][0]) < 0.1
    ref = random["reference"]
    assert ref["uninformed"]["normalized"][0] < 1.0
    # the references are the same whoever is evaluated
    assert ref == oracle["reference"]
    assert sum(random["excluded"]) < 40


class Seat:
    """Plays the oracle's moves and notes the seat (and the number of players) it is given."""

    name = "seat"

    def __init__(self):
        self.seats = set()

    def begin_trial(self, n):
        return None

    def act(self, obs, memory, ctx):
        self.seats.add((ctx.player, ctx.state.players))
        return ctx.engine.game.oracle(ctx.engine, ctx.state, ctx.player), memory

    def end_episode(self, memory, slots):
        return memory


def test_agent_plays_seat_zero_with_several_players():
    agent = Seat()
    r = evaluate(agent, GAME, VARIANT, levels=12, episodes=2, players=2, others="random")
    assert r["players"] == 2 and agent.seats == {(0, 2)}
    # the returns reported are seat 0's: the agent's, the same as the oracle's in that seat
    assert r["per_episode"]["return"] == r["reference"]["oracle"]["return"]


class LevelRecorder:
    """Stays still and records, per slot, the seed of every level it plays during its trial."""

    name = "levels"

    def __init__(self, episodes):
        self.episodes, self.seeds = episodes, {}

    def begin_trial(self, n):
        return np.zeros(n, dtype=np.int64)  # episodes ended so far in each slot's trial

    def act(self, obs, memory, ctx):
        seeds = ctx.engine.levels.seeds[ctx.state.level]
        for slot in np.flatnonzero(memory < self.episodes):
            self.seeds.setdefault(int(slot), set()).add(int(seeds[slot]))
        return np.zeros(len(memory), dtype=np.int64), memory

    def end_episode(self, memory, slots):
        memory = memory.copy()
        memory[slots] += 1
        return memory


@pytest.mark.parametrize("split", ["test", "train", "valid"])
def test_evaluation_plays_the_split_it_reports(split):
    """Slot i plays level i of the split named in the result, for its whole trial."""
    n = 7
    agent = LevelRecorder(episodes=2)
    result = evaluate(agent, GAME, VARIANT, split=split, levels=n, episodes=2)
    assert result["split"] == split
    want = games.split_seeds(split, n)
    assert agent.seeds == {i: {int(want[i])} for i in range(n)}
    assert all(games.seed_split(int(s)) == split for s in want)


def test_bad_arguments():
    with pytest.raises(ValueError):
        evaluate("oracle", GAME, VARIANT, split="dev", levels=4)
    with pytest.raises(ValueError):
        evaluate("oracle", GAME, VARIANT, levels=0)


# ---------------------------------------------------------------------------------------------
# (3) memory reset


class Learner:
    """Stays still in the first episode of a trial, then plays the oracle's path: an agent
    whose every gain comes from its memory (the episode count, kept in ``kind`` of layout)."""

    name = "learner"

    def __init__(self, kind: str = "numpy"):
        self.kind = kind
        self.trials: list[int] = []  # sizes of begin_trial calls

    def begin_trial(self, n):
        self.trials.append(n)
        if self.kind == "numpy":
            return {"episode": np.zeros(n, dtype=np.int64), "seen": np.zeros((n, 3))}
        import torch

        return torch.zeros(1, n, 2)  # (layers, n, hidden): slots on axis 1

    def _episode(self, memory):
        return memory["episode"] if self.kind == "numpy" else memory[0, :, 0].numpy().astype(np.int64)

    def act(self, obs, memory, ctx):
        first = self._episode(memory) == 0
        act = np.where(first, 0, ctx.engine.game.oracle(ctx.engine, ctx.state, ctx.player))
        return act, memory

    def end_episode(self, memory, slots):
        if self.kind == "numpy":
            memory = {k: v.copy() for k, v in memory.items()}
            memory["episode"][slots] += 1
        else:
            memory = memory.clone()
            memory[0, slots, 0] += 1
        return memory


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_memory_reset_removes_what_the_trial_taught(kind):
    learner = Learner(kind)
    keep = evaluate(learner, GAME, VARIANT, levels=24, episodes=3)
    assert learner.trials == [24]
    a = keep["per_episode"]
    assert a["success"] == [0.0, 1.0, 1.0]  # stays still first, then goes straight there
    assert a["normalized"][1:] == pytest.approx([1.0, 1.0])
    assert a["gain"] > 0.9

    learner = Learner(kind)
    wiped = evaluate(learner, GAME, VARIANT, levels=24, episodes=3, memory_reset=True)
    assert wiped["memory_reset"] is True
    b = wiped["per_episode"]
    assert b["success"] == [0.0, 0.0, 0.0]  # every episode is a first one
    assert b["normalized"][0] == pytest.approx(a["normalized"][0])
    assert all(x <= 0.0 for x in b["normalized"])
    # every slot got a fresh memory at each of its episode starts after the first
    assert learner.trials[0] == 24 and sum(learner.trials[1:]) >= 24 * 2


def test_play_resets_only_the_slots_that_start_an_episode():
    learner = Learner("numpy")
    env = BatchEnv(games.get(GAME), games.variant(GAME, VARIANT), batch=8, seeds=games.split_seeds("test", 8),
                   episodes=2, seed=0)
    stats = play(env, [learner], levels=np.arange(8), seed=0, memory_reset=True)
    assert (stats.returns[:, :, 0] == 0).all() and stats.steps > 0
    stats = play(env, [learner], levels=np.arange(8), seed=0)
    assert (stats.returns[:, 1, 0] > 0).all()


def test_reset_memory_layouts():
    import torch

    class Fresh:
        def __init__(self, memory):
            self.memory = memory

        def begin_trial(self, n):
            return self.memory(n)

    slots = np.array([1, 3])
    # dict of arrays, slots on axis 0; other leaves are kept
    agent = Fresh(lambda n: {"h": np.zeros((n, 2)), "step": 7})
    mem = {"h": np.ones((4, 2)), "step": 3}
    out = reset_memory(agent, mem, slots, 4)
    np.testing.assert_array_equal(out["h"][:, 0], [1, 0, 1, 0])
    assert out["step"] == 3 and mem["h"].sum() == 8  # the input is untouched
    # a tuple of torch tensors (layers, n, hidden): slots on axis 1
    agent = Fresh(lambda n: (torch.zeros(2, n, 3), torch.zeros(2, n, 3)))
    h = torch.ones(2, 4, 3)
    out = reset_memory(agent, (h, h * 2), slots, 4)
    assert isinstance(out, tuple)
    assert out[1][:, :, 0].tolist() == [[2, 0, 2, 0]] * 2 and h.sum() == 24
    # a torch tensor with slots on axis 0
    agent = Fresh(lambda n: torch.full((n, 5), -1.0))
    assert reset_memory(agent, torch.ones(4, 5), slots, 4)[:, 0].tolist() == [1, -1, 1, -1]
    # every slot: the fresh memory; no slot: unchanged; memory-less agents: None
    assert reset_memory(agent, torch.ones(4, 5), np.arange(4), 4)[:, 0].tolist() == [-1] * 4
    assert reset_memory(agent, "kept", np.array([], dtype=np.int64), 4) == "kept"
    assert reset_memory(Fresh(lambda n: None), None, slots, 4) is None
    # an agent can reset its own memory
    agent.reset_memory = lambda memory, s: ("own", s.tolist())
    assert reset_memory(agent, None, slots, 4) == ("own", [1, 3])
    # no slot axis found
    with pytest.raises(ValueError, match="slot axis"):
        reset_memory(Fresh(lambda n: np.zeros((3, 3, n))), np.zeros((3, 3, 4)), slots, 4)


# ---------------------------------------------------------------------------------------------
# (4) the result schema and (5) the plot


@pytest.fixture(scope="module")
def result():
    return evaluate("uninformed", GAME, VARIANT, levels=30, episodes=3, seed=1, ceiling=True)


def test_result_round_trips_through_json(result):
    text = json.dumps(result, allow_nan=False)
    back = json.loads(text)
    assert back == result
    assert back["schema"] == SCHEMA == 2
    for key in ("game", "variant", "split", "levels", "episodes", "seed", "memory_reset", "players", "others",
                "agent", "terminates", "success_rule", "random_rollouts", "excluded", "per_episode", "reference",
                "ceiling", "ceiling_note", "since_change", "timing"):
        assert key in back, key
    assert (back["game"], back["variant"], back["split"], back["agent"]) == (GAME, VARIANT, "test", "uninformed")
    assert back["random_rollouts"] == RANDOM_ROLLOUTS
    assert set(back["reference"]) == {"oracle", "uninformed", "random"}
    assert set(back["ceiling"]) == {"planner", "per_episode", "agent_fraction"}
    assert back["ceiling"]["planner"] == "window-recall" and back["ceiling_note"] is None
    assert back["since_change"] is None  # treasure's chest never moves within a trial
    for block in (back["per_episode"], back["ceiling"]["per_episode"], *back["reference"].values()):
        for key in ("return", "return_ci", "success", "length", "normalized", "normalized_ci", "normalized_median",
                    "normalized_n", "normalized_of_means"):
            assert len(block[key]) == 3, key
        assert "gain" in block
    assert len(back["ceiling"]["agent_fraction"]) == 3
    assert set(back["timing"]) == {"setup_s", "agent_s", "reference_s", "ceiling_s", "total_s", "agent_steps",
                                   "agent_steps_per_s"}
    table = format_table(result)
    assert "uninformed on treasure/small" in table and "mean of 16 rollouts" in table
    head = table.splitlines()[1].split()
    assert head[:4] == ["ep", "normalized", "median", "of"] and "ceiling" in head
    narrow = format_table(result, width=80).splitlines()
    assert max(map(len, narrow)) <= 80 < max(map(len, table.splitlines()))
    # split by columns, every one still there, each part led by the episode
    heads = [line.split() for line in narrow if line.startswith("ep ")]
    assert len(heads) >= 2
    assert sorted(w for h in heads for w in h[1:]) == sorted(table.splitlines()[1].split()[1:])


def test_the_ceiling_beside_the_agent(result):
    top = result["ceiling"]
    # the window-recall ceiling learns within the trial: below the uninformed planner at first, near 1 later
    assert top["per_episode"]["normalized"][0] < result["per_episode"]["normalized"][0]
    assert top["per_episode"]["normalized"][-1] > 0.9
    # the uninformed planner keeps no memory: a falling fraction of a rising ceiling
    frac = top["agent_fraction"]
    assert frac[0] > 1.0 > frac[-1] > 0.5
    assert frac[-1] == pytest.approx(result["per_episode"]["normalized_of_means"][-1]
                                     / top["per_episode"]["normalized_of_means"][-1])


def test_the_ceiling_planner_as_the_agent_is_its_own_ceiling():
    from metarena.agents.planners import make_planner

    r = evaluate(make_planner("window-recall", GAME), GAME, VARIANT, levels=12, episodes=2, ceiling=True)
    assert r["ceiling"]["per_episode"] == r["per_episode"]
    assert r["ceiling"]["agent_fraction"] == pytest.approx([1.0, 1.0])
    assert r["timing"]["ceiling_s"] == 0.0  # played once


def test_a_game_without_a_ceiling_planner_gets_a_note_not_an_error(monkeypatch):
    from metarena.agents.planners import PLANNERS

    monkeypatch.delitem(PLANNERS["window-recall"], GAME)
    r = evaluate("scripted", GAME, VARIANT, levels=6, episodes=2, ceiling=True)
    assert r["ceiling"] is None and "no window-recall planner" in r["ceiling_note"]
    table = format_table(r)
    assert "ceiling" not in table.splitlines()[1] and r["ceiling_note"] in table
    assert evaluate("scripted", GAME, VARIANT, levels=6, episodes=2)["ceiling_note"] == "ceiling not played"


def test_random_rollouts_are_deterministic_and_counted():
    a = evaluate("scripted", GAME, VARIANT, levels=10, episodes=2, random_rollouts=4)
    b = evaluate("scripted", GAME, VARIANT, levels=10, episodes=2, random_rollouts=4)
    assert a["random_rollouts"] == 4 and a["reference"]["random"] == b["reference"]["random"]
    c = evaluate("scripted", GAME, VARIANT, levels=10, episodes=2, random_rollouts=4, seed=1)
    assert c["reference"]["random"]["return"] != a["reference"]["random"]["return"]
    with pytest.raises(ValueError, match="random_rollouts"):
        evaluate("scripted", GAME, VARIANT, levels=2, random_rollouts=0)


def test_scores_since_a_hidden_change(monkeypatch):
    """A game whose hidden factor changes within a trial (Game.change_episode) also gets its
    scores by episode relative to the change; faked here on treasure: levels change at 1 or 2."""
    g = games.get(GAME)
    monkeypatch.setattr(g, "change_episode", lambda levels: 1 + np.arange(len(levels.seeds)) % 2)
    r = evaluate(Learner(), GAME, VARIANT, levels=10, episodes=3, ceiling=True)
    change = r["since_change"]
    assert change["changed_levels"] == 10 and change["offsets"] == [-2, -1, 0, 1]
    assert change["levels"] == [5, 10, 10, 5]
    # the learner stays still in episode 0 (offset -1 for half the levels, -2 for the others)
    assert change["agent"]["success"][0] == 0.0 and change["agent"]["success"][-1] == 1.0
    assert change["agent"]["normalized"][-1] == pytest.approx(1.0)
    assert len(change["ceiling"]["normalized"]) == 4 and len(change["agent_fraction"]) == 4
    assert set(change["reference"]) == {"oracle", "uninformed", "random"}
    json.dumps(r, allow_nan=False)
    table = format_table(r)
    assert "relative to the hidden change" in table
    rows = table.splitlines()
    first = next(i for i, line in enumerate(rows) if "relative to the hidden change" in line)
    assert [line.split()[0] for line in rows[first + 2:first + 6]] == ["-2", "-1", "0", "+1"]


def test_results_are_reproducible(result):
    again = evaluate("uninformed", GAME, VARIANT, levels=30, episodes=3, seed=1, ceiling=True)
    again.pop("timing")
    assert again == {k: v for k, v in result.items() if k != "timing"}


def test_plot_is_written(result, tmp_path):
    path = tmp_path / "adaptation.png"
    other = dict(result, memory_reset=True)
    assert plot_adaptation(result, str(path), others=[other]) == str(path)
    # an earlier result of schema 1 (no ceiling, one random rollout) still draws
    old = {k: v for k, v in result.items() if k not in ("ceiling", "random_rollouts")}
    assert plot_adaptation(old, str(tmp_path / "old.png")) == str(tmp_path / "old.png")
    data = path.read_bytes()
    assert len(data) > 5000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_reward_breakdown_adds_up_to_the_return():
    """What the paying and costing steps paid is the episode's return."""
    from metarena.agents.evaluate import reward_breakdown
    from metarena.agents.reference import ReferenceAgent

    oracle = reward_breakdown(ReferenceAgent("oracle", 0), "coinrush", "small", levels=30, episodes=2)
    assert oracle["costing"].sum() == 0 and oracle["paying"].min() > 0  # told the values: pays only
    want = evaluate("oracle", "coinrush", "small", levels=30, episodes=2)["per_episode"]["return"]
    np.testing.assert_allclose((oracle["paid"] + oracle["cost"]).mean(0), want, rtol=1e-5)
    uninformed = reward_breakdown(ReferenceAgent("uninformed", 0), "coinrush", "small", levels=30, episodes=2)
    assert uninformed["costing"].sum() > 0  # it does not know which colour costs
