"""
The command's rendering (`journey_async._cli._output`): rich on a terminal,
plain aligned text without it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import (
    EMPTY,
    MARKUP,
    MISSING,
    RUN_MAIN,
    WELCOME,
    WINBACK,
    api,
    cli_env,
    run_cli,
    run_in_terminal,
)

from journey_async._cli._output import _Column, _plain_table, _plural
from journey_async.testing import EmulatorServer


def test_stats_on_a_terminal_draws_rich_tables(cli_server: EmulatorServer, tmp_path: Path) -> None:
    # rich's own switches make the pipes count as an interactive terminal.
    env = cli_env(TTY_COMPATIBLE="1", TTY_INTERACTIVE="1", COLUMNS="160")

    result = run_cli("stats", *api(cli_server), WINBACK, MISSING, MARKUP, cwd=tmp_path, env=env)

    assert result.returncode == 1
    assert result.stdout.startswith("┏━")
    assert "│ Winback   │ j-winback │ Email" in result.stdout
    assert "│ error: NotFoundError: 404 journey not found" in result.stdout
    assert "│ [/b] sale │ j-markup  │ Push" in result.stdout
    assert "3 journeys: 2 ok, 1 failed" in result.stdout


def test_without_rich_a_terminal_gets_plain_text(
    cli_server: EmulatorServer, tmp_path: Path
) -> None:
    env = cli_env(TTY_COMPATIBLE="1", TTY_INTERACTIVE="1")
    without_rich = "import sys; sys.modules['rich'] = None; " + RUN_MAIN

    result = subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-c", without_rich, "stats", *api(cli_server), WINBACK],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].split()[:3] == ["Winback", WINBACK, "Email"]
    assert result.stderr == ""  # and no progress bar


WITHOUT_RICH = "import sys; sys.modules['rich'] = None; " + RUN_MAIN


@pytest.mark.parametrize("rich", [True, False], ids=["rich", "plain"])
def test_stats_fit_80_columns_in_a_pseudo_terminal(
    cli_server: EmulatorServer, tmp_path: Path, rich: bool
) -> None:
    code, lines = run_in_terminal(
        "stats",
        *api(cli_server),
        WELCOME,
        WINBACK,
        EMPTY,
        MISSING,
        MARKUP,
        columns=80,
        cwd=tmp_path,
        env=cli_env(),
        python_code=None if rich else WITHOUT_RICH,
    )

    assert code == 1  # MISSING is not found
    too_wide = [line for line in lines if len(line) > 80]
    assert too_wide == []
    text = "\n".join(lines)
    # Readable: each point's counts together, named, on a line of their own.
    assert "Statistics" in text
    assert "sent 22,648, opened 60, conv. 0.26%" in text
    assert "shows 3,148, interactions 2,759," in text
    assert "delivered=10 failed=1" in text
    assert "error: NotFoundError: 404 journey not found" in " ".join(text.split())
    assert "5 journeys: 4 ok, 1 failed" in text


def test_demo_fits_80_columns_in_a_pseudo_terminal(tmp_path: Path) -> None:
    code, lines = run_in_terminal(
        "demo",
        "--journeys=30",
        "--users=200",
        "--latency-ms=0",
        "--fault-rate=0",
        columns=80,
        cwd=tmp_path,
        env=cli_env(),
    )

    assert code == 0, "\n".join(lines)
    assert [line for line in lines if len(line) > 80] == []
    text = "\n".join(lines)
    assert "Top 10 journeys by messages sent" in text
    assert "Totals per channel" in text
    assert "Done in " in text


def test_plain_tables_fold_text_and_keep_numbers_and_ids_whole() -> None:
    columns = [_Column("Title"), _Column("ID", whole=True), _Column("Sent", numeric=True)]
    rows = [["a title long enough to fold onto lines", "0123456789abcdef", "1,234,567"]]

    folded = _plain_table(columns, rows, title="", width=40).splitlines()

    assert max(map(len, folded)) <= 40
    assert "0123456789abcdef" in folded[2]
    assert folded[2].endswith("1,234,567")
    assert " ".join(line[:11].strip() for line in folded[2:]) == rows[0][0]
    # Without a width (a pipe), every row stays on one line.
    assert len(_plain_table(columns, rows, title="").splitlines()) == 3


@pytest.mark.parametrize(
    ("count", "noun", "text"),
    [(0, "journey", "0 journeys"), (1, "journey", "1 journey"), (1234, "batch", "1,234 batches")],
)
def test_counts_are_pluralised(count: int, noun: str, text: str) -> None:
    assert _plural(count, noun) == text
