"""``journey-async demo``: the whole demo in a subprocess, verified against its emulator."""

from __future__ import annotations

from pathlib import Path

from cli_support import run_cli


def test_demo_fetches_removes_and_verifies(tmp_path: Path) -> None:
    result = run_cli(
        "demo",
        "--journeys=20",
        "--users=200",
        "--batch-size=50",
        "--latency-ms=0",
        "--fault-rate=0",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1. Statistics of all 20 journeys" in out
    assert "20 journeys: 20 ok, 0 failed" in out
    assert "Top 10 journeys by messages sent" in out
    assert "Totals per channel" in out
    assert "2. Removal of 200 users from all journeys, in 4 batches of up to 50" in out
    assert "removed 200 users in " in out
    assert ": 4 batches, 4 requests (0 met a transient fault)" in out
    assert "verified in the emulator: none of them is in any journey any more" in out
    assert out.rstrip().splitlines()[-1].startswith("Done in ")
    assert result.stderr == ""
