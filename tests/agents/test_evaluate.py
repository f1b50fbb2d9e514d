"""The adaptation benchmark: normalization arithmetic, references, memory reset, schema, plot."""

import json

import numpy as np
import pytest

from metarena import games
from metarena.agents.evaluate import (
    SCHEMA,
    evaluate,
    excluded_levels,
    format_table,
    mean_ci,
    normalized_scores,
    plot_adaptation,
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
    assert mean_ci(np.array([2.0, np.nan])) == (2.0, None, 1)


def test_summarize_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        summarize([[1.0, 2.0]], [[1.0]], [[0.0]])


# ---------------------------------------------------------------------------------------------
# (2) references on real levels


def test_oracle_always_succeeds_random_scores_zero_uninformed_below_one():
    oracle = evaluate("oracle", GAME, VARIANT, levels=40, episodes=2)
    assert oracle["per_episode"]["success"] == [1.0, 1.0]
    random = evaluate("random", GAME, VARIANT, levels=40, episodes=2)
    assert random["per_episode"]["normalized"] == pytest.approx([0.0, 0.0])
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


@pytest.mark.parametrize("split", ["test", "train"])
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
        evaluate("oracle", GAME, VARIANT, split="valid", levels=4)
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
    return evaluate("uninformed", GAME, VARIANT, levels=30, episodes=3, seed=1)


def test_result_round_trips_through_json(result):
    text = json.dumps(result, allow_nan=False)
    back = json.loads(text)
    assert back == result
    assert back["schema"] == SCHEMA == 1
    for key in ("game", "variant", "split", "levels", "episodes", "seed", "memory_reset", "players", "others",
                "agent", "terminates", "success_rule", "excluded", "per_episode", "reference", "timing"):
        assert key in back, key
    assert (back["game"], back["variant"], back["split"], back["agent"]) == (GAME, VARIANT, "test", "uninformed")
    assert set(back["reference"]) == {"oracle", "uninformed", "random"}
    for block in (back["per_episode"], *back["reference"].values()):
        for key in ("return", "return_ci", "success", "length", "normalized", "normalized_ci", "normalized_n",
                    "normalized_of_means"):
            assert len(block[key]) == 3, key
        assert "gain" in block
    assert set(back["timing"]) == {"setup_s", "agent_s", "reference_s", "total_s", "agent_steps",
                                   "agent_steps_per_s"}
    assert "uninformed on treasure/small" in format_table(result)


def test_results_are_reproducible(result):
    again = evaluate("uninformed", GAME, VARIANT, levels=30, episodes=3, seed=1)
    again.pop("timing")
    assert again == {k: v for k, v in result.items() if k != "timing"}


def test_plot_is_written(result, tmp_path):
    path = tmp_path / "adaptation.png"
    other = dict(result, memory_reset=True)
    assert plot_adaptation(result, str(path), others=[other]) == str(path)
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
