"""bench/profile_diff.py: py-spy's collapsed stacks read into shares per function."""

from pathlib import Path

from bench.profile_diff import compare, shares


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_inclusive_and_own_samples_per_function_ignore_line_numbers(tmp_path):
    stacks = write(tmp_path / "a.txt", [
        "main (app.py:10);score (core.py:5);pickle (state.py:7) 6",
        "main (app.py:11);score (core.py:9) 3",
        "main (app.py:10);score (core.py:5);score (core.py:5) 1",  # recursion counted once
    ])
    inclusive, own, total = shares(stacks)
    assert total == 10
    assert inclusive["main (app.py)"] == 10 and inclusive["score (core.py)"] == 10
    assert own["pickle (state.py)"] == 6 and own["score (core.py)"] == 4


def test_compare_ranks_what_moved_and_leaves_out_the_entry_points(tmp_path):
    first = write(tmp_path / "first.txt", ["main (app.py:1);score (core.py:2) 10",
                                           "main (app.py:1);fetch (kafka.py:3) 10"])
    last = write(tmp_path / "last.txt", ["main (app.py:1);score (core.py:2) 30",
                                         "main (app.py:1);fetch (kafka.py:3) 10"])
    table = compare(first, last, seconds=10).splitlines()
    assert table[0].startswith("busy samples per second of sampling: first 2.0, last 4.0")
    own_rows = table[2:table.index(next(r for r in table if r.startswith("inclusive")))]
    assert own_rows[0].split()[:2] == ["score", "(core.py)"]
    assert own_rows[0].split()[-2:] == ["1.0", "3.0"]
    inclusive_rows = table[table.index(next(r for r in table if r.startswith("inclusive"))) + 1:]
    assert not any(r.startswith("main") for r in inclusive_rows)  # in every stack of both
