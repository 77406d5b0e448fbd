"""The benchmark's bookkeeping, not its timings: a part re-run alone rewrites only its own rows of
docs/benchmarks.md, and the prefetch part refuses to write rows that measured nothing or hides
a breach of its budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.common import read_parts, write_parts
from bench.prefetch import LIMIT, ClerkSync, Window, prefetch_rows

ORDER = ["scaling", "prefetch", "cold"]
DOC = """# Benchmarks

Intro kept.

<!-- bench: begin -->
## `make bench`

Old intro.

<!-- bench scaling: begin -->
### scaling
| a | 1 |
<!-- bench scaling: end -->

<!-- bench prefetch: begin -->
### prefetch
| empty | 0 / 0 / 0 |
<!-- bench prefetch: end -->
<!-- bench: end -->

<!-- bench-large: begin -->
large rows
<!-- bench-large: end -->
"""


def test_a_part_rerun_replaces_its_own_rows_and_keeps_every_other(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC, encoding="utf-8")

    write_parts(
        "bench",
        "## `make bench`\n\nNew intro.",
        {"prefetch": "### prefetch\n| x | 37/47 |"},
        ORDER,
        doc,
    )

    text = doc.read_text(encoding="utf-8")
    assert read_parts("bench", doc) == {
        "scaling": "### scaling\n| a | 1 |",
        "prefetch": "### prefetch\n| x | 37/47 |",
    }
    assert "0 / 0 / 0" not in text
    assert "New intro." in text and "Old intro." not in text
    assert text.startswith("# Benchmarks\n\nIntro kept.\n")
    assert "<!-- bench-large: begin -->\nlarge rows\n<!-- bench-large: end -->" in text


def test_a_part_run_first_lands_in_the_parts_order(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC, encoding="utf-8")

    write_parts("bench", "intro", {"cold": "### cold"}, ORDER, doc)
    write_parts("bench", "intro", {"scaling": "### scaling again"}, ORDER, doc)

    assert list(read_parts("bench", doc)) == ["scaling", "prefetch", "cold"]
    assert read_parts("bench", doc)["scaling"] == "### scaling again"


def test_the_section_is_made_when_the_doc_has_none(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n", encoding="utf-8")

    write_parts("bench", "intro", {"prefetch": "### prefetch"}, ORDER, doc)

    assert read_parts("bench", doc) == {"prefetch": "### prefetch"}
    assert doc.read_text(encoding="utf-8").startswith("# Benchmarks\n\n<!-- bench: begin -->")


def _clerk() -> ClerkSync:
    return ClerkSync(requests=3, prefetched=0, limited=0, status="succeeded", remaining=7)


def _windows(**changes: int) -> list[Window]:
    """The shape a good run has: a full window, one other work spent, one whose first PDF got
    a 429, and a window after it."""
    windows = [
        Window(3, 0, 37, 0, False, _clerk()),
        Window(3, 40, 0, 0, False, _clerk()),
        Window(3, 0, 1 + changes.get("after_429", 0), 0, True, None),
        Window(3, 0, changes.get("last", 37), 0, False, _clerk()),
    ]
    return windows


def test_a_good_run_holds_every_target() -> None:
    rows = prefetch_rows(_windows(), sendable=74, reserve=10)

    assert rows[0][1] == (
        "37/47, 0/7 (other work used 40 first), 1/47 (its first PDF answered 429: stopped), 37/47"
    )
    assert rows[0][2].endswith("held in every window")
    assert rows[1][1] == "4 / 74 / 0"
    assert rows[2][1] == "0; 37/47"
    assert all("FAILED" not in row[2] for row in rows)


def test_a_window_the_prefetch_took_more_than_it_left_fails_its_row() -> None:
    rows = prefetch_rows(_windows(last=LIMIT - 3), sendable=84, reserve=10)

    assert rows[0][2].endswith("FAILED: exceeded in window 3")


def test_a_prefetch_that_goes_on_after_a_429_fails_its_row() -> None:
    rows = prefetch_rows(_windows(after_429=5), sendable=79, reserve=10)

    assert rows[2][1].startswith("5;")
    assert rows[2][2].endswith("FAILED")


def test_a_clerks_sync_that_met_a_429_fails_its_row() -> None:
    windows = _windows()
    windows[0] = Window(3, 0, 37, 1, False, ClerkSync(3, 0, 1, "succeeded", 0))

    rows = prefetch_rows(windows, sendable=74, reserve=10)

    assert "FAILED" in rows[3][2]


def test_a_prefetch_that_fetched_nothing_writes_no_rows() -> None:
    windows = [
        Window(3, 0, 0, 0, False, _clerk()),
        Window(3, 0, 1, 0, True, None),
        Window(3, 0, 0, 0, False, _clerk()),
    ]
    with pytest.raises(RuntimeError, match="fetched no PDF of 300 sendable bills"):
        prefetch_rows(windows, sendable=300, reserve=10)


def test_no_sendable_bill_or_no_429_met_writes_no_rows() -> None:
    with pytest.raises(RuntimeError, match="no sendable bill"):
        prefetch_rows(_windows(), sendable=0, reserve=10)
    without_429 = [w for w in _windows() if not w.injected_429]
    with pytest.raises(RuntimeError, match="never met its 429"):
        prefetch_rows(without_429, sendable=74, reserve=10)


def test_only_one_part_rewrites_its_rows_and_prints_nothing_but_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import bench.__main__ as bench_main
    import bench.common

    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC, encoding="utf-8")
    monkeypatch.setattr(bench.common, "DOC", doc)

    def prefetch() -> list[tuple[str, str, str]]:
        print('{"level":"WARNING","message":"a handler log line"}')  # as handlers log
        return [("Prefetch: used/left", "37/47", "held")]

    monkeypatch.setattr(bench_main, "parts", lambda: {"scaling": list, "prefetch": prefetch})

    assert bench_main.main(["--only", "prefetch", "--note", "shared"]) == 0

    parts = read_parts("bench", doc)
    assert parts["scaling"] == "### scaling\n| a | 1 |"
    assert "| Prefetch: used/left | 37/47 | held |" in parts["prefetch"]
    assert "`python -m bench --only prefetch`" in parts["prefetch"]
    assert "shared" in parts["prefetch"]
    out, err = capfd.readouterr()
    assert out.splitlines() == [
        "| measure | result | against |",
        "| --- | --- | --- |",
        "| Prefetch: used/left | 37/47 | held |",
    ]
    assert "a handler log line" in err


def test_a_part_with_no_rows_fails_the_run_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.__main__ as bench_main
    import bench.common

    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC, encoding="utf-8")
    monkeypatch.setattr(bench.common, "DOC", doc)
    monkeypatch.setattr(bench_main, "parts", lambda: {"scaling": list, "prefetch": list})

    with pytest.raises(RuntimeError, match="bench part scaling measured nothing"):
        bench_main.main([])

    assert doc.read_text(encoding="utf-8") == DOC
