"""
The command's rendering (`journey_async._cli._output`): rich on a terminal,
plain aligned text without it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_support import MARKUP, MISSING, RUN_MAIN, WINBACK, api, cli_env, run_cli

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
