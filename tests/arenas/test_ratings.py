"""Standings from a tournament journal: ranking rule, openskill ratings (ties, tau = 0),
head-to-head counts with Wilson intervals, returns by episode, the journal reader, and the
leaderboard files."""

import json
import math
import random
import struct
import warnings

import pytest
from openskill.models import PlackettLuce

from metarena.arenas.ratings import (Standings, format_markdown, format_table, ranks, rating_model, read_journal, standings,
                                     wilson, write_leaderboard)

PRIOR_SIGMA = 25.0 / 3.0


def rec(match, seats, returns, status=None, **extra):
    """A schema-1 journal record; ``returns`` is one list per episode."""
    n = len(seats)
    return {"schema": 1, "match": match, "game": "treasure", "variant": "small", "split": "test", "level": 0,
            "level_seed": 0, "seats": list(seats), "weights": [None] * n, "returns": [list(r) for r in returns],
            "status": list(status or ["ok"] * n), "duration_s": 0.01, "episodes": len(returns), **extra}


def by_agent(st):
    return {row["agent"]: row for row in st["leaderboard"]}


def write_lines(path, lines, end="\n"):
    path.write_text("\n".join(lines) + end, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# ranking


def test_ranks_total_return_ties_and_forfeits_last():
    # totals 2, 5, 5, 18; the last seat timed out, so its large return does not count
    r = rec("m0", ["a", "b", "c", "d"], [[1, 5, 2, 9], [1, 0, 3, 9]], ["ok", "ok", "ok", "timeout"])
    assert ranks(r) == [2, 0, 0, 3]
    # forfeiting seats tie among themselves whatever their returns, below an ok seat's negative total
    r = rec("m1", ["a", "b", "c"], [[7, -3, 1]], ["error", "ok", "invalid"])
    assert ranks(r) == [1, 0, 1]
    assert ranks(rec("m2", ["a", "b"], [[0.5, 0.5], [0.25, 0.25]])) == [0, 0]
    assert ranks(rec("m3", ["a"], [[1.0]])) == [0]


# ---------------------------------------------------------------------------------------------
# ratings


def test_tie_gives_equal_updates_from_equal_priors():
    st = standings([rec("m0", ["a", "b"], [[1, 1], [0, 0]])])
    a, b = by_agent(st)["a"], by_agent(st)["b"]
    assert a["mu"] == b["mu"] and a["sigma"] == b["sigma"]
    assert a["mu"] == pytest.approx(25.0)
    assert a["sigma"] < PRIOR_SIGMA
    assert a["draws"] == b["draws"] == 1 and a["wins"] == a["losses"] == 0
    # an ffa tie for first: the tied pair share their rating, the loser falls
    st = standings([rec("m0", ["a", "b", "c"], [[3, 3, 1]])])
    a, b, c = (by_agent(st)[n] for n in "abc")
    assert (a["mu"], a["sigma"]) == (b["mu"], b["sigma"])
    assert a["mu"] > c["mu"]


def test_tau_is_zero_so_sigma_shrinks_as_without_drift():
    model = rating_model()
    assert model.tau == 0.0
    assert standings([])["model"]["tau"] == 0.0
    one = standings([rec("m0", ["a", "b"], [[2, 1]])])
    two = standings([rec("m0", ["a", "b"], [[2, 1]]), rec("m1", ["a", "b"], [[2, 1]])])
    s1, s2 = by_agent(one)["a"]["sigma"], by_agent(two)["a"]["sigma"]
    assert s2 < s1 < PRIOR_SIGMA
    # the same two matches under openskill's default tau leave sigma larger
    default = PlackettLuce()
    a, b = default.rating(), default.rating()
    for _ in range(2):
        [[a], [b]] = default.rate([[a], [b]], ranks=[0, 1])
    assert default.tau > 0 and s2 < a.sigma
    assert by_agent(two)["a"]["mu"] == pytest.approx(a.mu, abs=0.05)  # same model otherwise


def test_clear_winner_gets_the_higher_ordinal():
    records = [rec(f"m{i:03d}", ["weak", "strong"] if i % 2 else ["strong", "weak"],
                   [[1, 0]] if i % 2 == 0 else [[0, 1]]) for i in range(30)]
    st = standings(records)
    strong, weak = by_agent(st)["strong"], by_agent(st)["weak"]
    assert st["agents"] == ["strong", "weak"]
    assert strong["rank"] == 1 and weak["rank"] == 2
    assert strong["ordinal"] > weak["ordinal"] and strong["mu"] > 25 > weak["mu"]
    assert strong["ordinal"] == pytest.approx(strong["mu"] - 3 * strong["sigma"])
    assert strong["sigma"] < PRIOR_SIGMA and weak["sigma"] < PRIOR_SIGMA
    assert (strong["wins"], strong["draws"], strong["losses"]) == (30, 0, 0)


def test_forfeits_are_counted_and_lose():
    st = standings([rec("m0", ["a", "b"], [[9, 0]], ["timeout", "ok"]),
                    rec("m1", ["a", "b"], [[9, 0]], ["error", "ok"]),
                    rec("m2", ["a", "b"], [[9, 0]], ["ok", "ok"])])
    a = by_agent(st)["a"]
    assert a["forfeits"] == {"error": 1, "timeout": 1, "invalid": 0} and a["forfeited"] == 2
    assert (a["wins"], a["losses"]) == (1, 2) and a["matches"] == 3
    assert by_agent(st)["b"]["forfeited"] == 0


def test_one_agent_in_two_seats_counts_one_match_and_no_self_pair():
    st = standings([rec("m0", ["a", "a", "b"], [[3, 1, 2]])])
    a = by_agent(st)["a"]
    assert a["matches"] == 1
    assert "a" not in st["pairs"]["a"]
    assert (st["pairs"]["a"]["b"]["wins"], st["pairs"]["a"]["b"]["losses"]) == (1, 1)
    assert math.isfinite(a["mu"]) and a["sigma"] < PRIOR_SIGMA
    # self-play alone carries no information: no rating moves
    st = standings([rec("m0", ["a", "a"], [[3, 1]])])
    assert by_agent(st)["a"]["mu"] == 25.0 and by_agent(st)["a"]["sigma"] == PRIOR_SIGMA
    assert st["pairs"]["a"] == {}


# ---------------------------------------------------------------------------------------------
# head to head and returns


def test_wdl_counts_and_wilson_interval_on_a_hand_made_journal():
    records = [
        rec("m0", ["a", "b"], [[2, 1]]),            # a beats b
        rec("m1", ["b", "a"], [[1, 3]]),            # a beats b
        rec("m2", ["a", "b"], [[1, 1]]),            # draw
        rec("m3", ["b", "a"], [[5, 0]]),            # b beats a
        rec("m4", ["a", "b", "c"], [[3, 2, 2]]),    # a beats b and c; b draws c
        rec("m5", ["a", "c"], [[0, 0]], ["ok", "invalid"]),  # c forfeits: a beats c
    ]
    st = standings(records)
    ab, ba = st["pairs"]["a"]["b"], st["pairs"]["b"]["a"]
    assert (ab["wins"], ab["draws"], ab["losses"], ab["games"]) == (3, 1, 1, 5)
    assert (ba["wins"], ba["draws"], ba["losses"]) == (1, 1, 3)
    assert ab["score"] == pytest.approx(3.5 / 5) and ba["score"] == pytest.approx(1.5 / 5)
    bc = st["pairs"]["b"]["c"]
    assert (bc["wins"], bc["draws"], bc["losses"]) == (0, 1, 0) and bc["score"] == 0.5
    ac = st["pairs"]["a"]["c"]
    assert (ac["wins"], ac["draws"], ac["losses"]) == (2, 0, 0)
    a = by_agent(st)["a"]
    assert (a["wins"], a["draws"], a["losses"]) == (5, 1, 1)
    # Wilson 95%: p = 0.7, n = 5 -> [0.2988, 0.9274] (worked by hand from the formula)
    lo, hi = ab["score_ci"]
    assert lo == pytest.approx(0.2988, abs=1e-3) and hi == pytest.approx(0.9274, abs=1e-3)
    assert ab["score_ci"] == wilson(0.7, 5)
    # the interval of a mirrored pair is mirrored
    assert ba["score_ci"][0] == pytest.approx(1 - hi) and ba["score_ci"][1] == pytest.approx(1 - lo)
    lo, hi = wilson(1.0, 2)
    assert 0.0 < lo < 1.0 and hi == pytest.approx(1.0)
    assert wilson(0.5, 0) is None


def test_mean_return_by_episode_and_gain():
    records = [
        rec("m0", ["a", "b"], [[1, 0], [3, 0], [5, 0]]),
        rec("m1", ["b", "a"], [[0, 2], [0, 6], [0, 4]]),
        rec("m2", ["a", "a", "b"], [[0, 3, 9], [3, 3, 9], [1, 5, 9]]),  # a in two seats: both count
    ]
    st = standings(records)
    a = by_agent(st)["a"]
    assert a["return_by_episode"] == pytest.approx([(1 + 2 + 0 + 3) / 4, (3 + 6 + 3 + 3) / 4, (5 + 4 + 1 + 5) / 4])
    assert a["gain"] == pytest.approx((5 + 4 + 1 + 5) / 4 - (1 + 2 + 0 + 3) / 4)
    b = by_agent(st)["b"]
    assert b["return_by_episode"] == pytest.approx([3, 3, 3]) and b["gain"] == pytest.approx(0.0)
    assert st["episodes"] == 3 and st["matches"] == 3


def test_standings_do_not_depend_on_record_order():
    rng = random.Random(7)
    names = ["a", "b", "c", "d"]
    records = []
    for i in range(40):
        seats = rng.sample(names, rng.choice([2, 3, 4]))
        returns = [[rng.choice([0, 1, 1, 2]) for _ in seats] for _ in range(3)]
        status = [rng.choice(["ok"] * 8 + ["timeout", "error"]) for _ in seats]
        records.append(rec(f"m{i:06d}", seats, returns, status))
    reference = standings(records)
    for _ in range(3):
        shuffled = records[:]
        rng.shuffle(shuffled)
        assert standings(shuffled) == reference
    assert json.loads(json.dumps(reference)) == reference  # plain JSON types
    assert standings(records[::-1]) == reference


def test_standings_built_group_by_group_equal_the_whole_journal_whatever_the_arrival_order():
    """The live leaderboard adds finished groups as they come: in order they cost only their
    own updates; a group that arrives late replays the rest; the result is the same."""
    rng = random.Random(3)
    records = [rec(f"m{i:06d}", rng.sample(["a", "b", "c"], 2), [[rng.choice([0, 1, 2]), rng.choice([0, 1])]])
               for i in range(60)]
    reference = standings(records)
    built = Standings()
    for lo in range(0, 60, 7):  # in order
        built.add(records[lo:lo + 7])
        assert built.result() == standings(records[:lo + 7])
    assert built.result() == reference
    groups = [records[lo:lo + 10] for lo in range(0, 60, 10)]
    rng.shuffle(groups)  # out of order, as parallel workers may finish
    late = Standings()
    for group in groups:
        late.add(group)
    assert late.result() == reference
    with pytest.raises(ValueError, match="m000003 appears twice"):
        late.add([records[3]])


def test_duplicate_match_ids_are_refused():
    with pytest.raises(ValueError, match="m0 appears twice"):
        standings([rec("m0", ["a", "b"], [[1, 0]]), rec("m0", ["a", "b"], [[0, 1]])])


# ---------------------------------------------------------------------------------------------
# the journal


def test_torn_last_line_warns_and_is_skipped(tmp_path):
    path = tmp_path / "journal.jsonl"
    good = [json.dumps(rec(f"m{i}", ["a", "b"], [[1, 0]])) for i in range(3)]
    path.write_text("\n".join(good) + "\n" + good[0][: len(good[0]) // 2], encoding="utf-8")
    with pytest.warns(UserWarning, match="journal.jsonl"):
        records = read_journal(path)
    assert [r["match"] for r in records] == ["m0", "m1", "m2"]
    # a complete record without its newline was cut before the newline: also left out
    path.write_text("\n".join(good), encoding="utf-8")
    with pytest.warns(UserWarning, match="journal.jsonl"):
        assert [r["match"] for r in read_journal(path)] == ["m0", "m1"]
    # a clean journal reads without a warning
    write_lines(path, good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_journal(path)) == 3


def test_bad_middle_line_raises_with_file_and_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    good = [json.dumps(rec(f"m{i}", ["a", "b"], [[1, 0]])) for i in range(3)]
    write_lines(path, [good[0], good[1][:20], good[2]])
    with pytest.raises(ValueError, match=r"journal\.jsonl:2"):
        read_journal(path)
    # valid JSON that is not a record: named too, even on the last line
    write_lines(path, [good[0], json.dumps({"schema": 1, "match": "m9", "seats": ["a"], "returns": [[1]],
                                            "status": ["lost"]})])
    with pytest.raises(ValueError, match=r"journal\.jsonl:2: .*status"):
        read_journal(path)
    write_lines(path, [good[0], json.dumps({**json.loads(good[1]), "schema": 2})])
    with pytest.raises(ValueError, match="schema 2"):
        read_journal(path)


# ---------------------------------------------------------------------------------------------
# tables and files


def sample_standings():
    records = [rec(f"m{i:03d}", s, [[float(s[0] == "oracle"), 0.5], [1.0, float(i % 3 == 0)]])
               for i, s in enumerate([["oracle", "random"], ["random", "scripted|x"], ["scripted|x", "oracle"]] * 4)]
    return standings(records)


def test_tables_name_every_agent():
    st = sample_standings()
    text = format_table(st)
    assert all(name in text for name in st["agents"])
    assert "ordinal" in text and "W/D/L" in text and "-0.00" not in text
    md = format_markdown(st)
    assert md.count("\n| ") >= 2 * len(st["agents"]) + 1
    assert "scripted\\|x" in md  # a pipe in a name does not break the table
    assert format_table(standings([])).startswith("no matches")


def test_the_table_fits_a_narrow_terminal():
    st = sample_standings()
    whole = format_table(st).splitlines()
    narrow = format_table(st, width=80).splitlines()
    assert max(map(len, narrow)) <= 80 < max(map(len, whole))
    first = next(i for i, line in enumerate(narrow) if line.startswith("rank"))  # the caption wrapped above
    parts = "\n".join(narrow[first:]).split("\n\n")
    assert len(parts) >= 2
    for part in parts:  # each part led by the rank and the agent, every agent on its own row
        head, rule, *rows = part.splitlines()
        assert head.split()[:2] == ["rank", "agent"] and set(rule) <= {"-", " "}
        assert [r.split()[1] for r in rows] == [row["agent"] for row in st["leaderboard"]]
    assert sum(p.splitlines()[0].count(col) for p in parts for col in ("ordinal", "W/D/L", "gain", "forfeits")) == 4


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("n", [2, 12])
def test_write_leaderboard_writes_three_files(tmp_path, n):
    names = [f"agent{i:02d}" for i in range(n)]
    records = [rec(f"m{i:04d}", [names[i % n], names[(i * 7 + 1) % n]], [[i % 3, 1]]) for i in range(6 * n)
               if names[i % n] != names[(i * 7 + 1) % n]]
    st = standings(records)
    out = tmp_path / "t"
    paths = write_leaderboard(st, out)
    assert sorted(p.name for p in paths) == ["leaderboard.json", "leaderboard.md", "leaderboard.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files left
    saved = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    assert saved["schema"] == 1 and saved == st
    assert (out / "leaderboard.md").read_text(encoding="utf-8") == format_markdown(st)
    data = (out / "leaderboard.png").read_bytes()
    width, height = png_size(data)
    assert 400 <= width <= 2400 and 400 <= height <= 2400
    assert 10_000 < len(data) < 3_000_000
    # rewriting replaces the files in place
    write_leaderboard(st, out)
    assert len(list(out.iterdir())) == 3
