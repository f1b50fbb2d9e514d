"""Plain-text tables: split by columns to fit a terminal, whole in a file."""

import doctest

import metarena.text
from metarena.text import grid, wrapped

HEADER = ["rank", "agent", "ordinal", "mu ± sigma", "return by episode"]
ROWS = [["1", "rl2", "12.50", "20.1 ± 2.5", "0.50 0.90 0.95"],
        ["2", "scripted-long-name", "3.00", "9.0 ± 2.0", "0.40 0.41 0.40"]]


def test_the_docstring_example():
    assert doctest.testmod(metarena.text).failed == 0


def test_whole_without_a_width():
    lines = grid(HEADER, ROWS, left=(1,), rule=True)
    assert len(lines) == 4 and [len(d) for d in lines[1].split()] == [4, 18, 7, 10, 17]
    assert lines[2][:33] == "   1  " + "rl2".ljust(18) + "  " + "12.50".rjust(7)  # the agent alone left-aligned
    assert all(len(x) <= len(lines[0]) for x in lines)


def test_split_to_fit_each_part_led_by_the_lead_columns():
    whole = grid(HEADER, ROWS, left=(1,))
    for width in (45, 50, 60):
        lines = grid(HEADER, ROWS, width, lead=2, left=(1,))
        assert max(map(len, lines)) <= width < max(map(len, whole))
        parts = "\n".join(lines).split("\n\n")
        assert len(parts) >= 2
        for part in parts:
            head, first, second = part.splitlines()
            assert head.split()[:2] == ["rank", "agent"]
            assert first.split()[:2] == ["1", "rl2"] and second.split()[:2] == ["2", "scripted-long-name"]
        # every column is in exactly one part
        assert sum(p.splitlines()[0].count("ordinal") + p.splitlines()[0].count("sigma")
                   + p.splitlines()[0].count("episode") for p in parts) == 3


def test_a_column_too_wide_alone_gets_a_part_of_its_own():
    lines = grid(["ep", "a", "b"], [["1", "x" * 30, "y"]], width=20)
    parts = "\n".join(lines).split("\n\n")
    assert len(parts) == 2 and parts[0].splitlines()[1] == " 1  " + "x" * 30


def test_wrapped_only_where_too_long():
    text = ["short", "a sentence of several words that is longer than twenty columns", ""]
    assert wrapped(text, None) == text
    out = wrapped(text, 20)
    assert out[0] == "short" and out[-1] == "" and len(out) > 3 and max(map(len, out)) <= 20
    assert " ".join(out[1:-1]) == text[1]
