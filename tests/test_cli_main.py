"""
`journey_async._cli.main`: the one place errors become a line and an exit
code; Ctrl-C, usage errors in a subprocess, tokens blanked out, help.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import SECRET, WELCOME, api, assert_one_error_line, cli_env, run_cli

import journey_async._cli._main
from journey_async._cli import main
from journey_async.testing import EmulatorServer, Fault, JourneyEmulator


def test_ctrl_c_exits_130_with_one_line(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    cli_emulator.inject(Fault.delay(30), endpoint="stats")
    command = [sys.executable, "-m", "journey_async", "stats", *api(cli_server), WELCOME]
    with subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    ) as process:
        deadline = time.monotonic() + 30
        while cli_emulator.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the request is held by the cli_server
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 130
    assert stdout == ""
    assert stderr == "journey-async: error: interrupted\n"


def test_usage_error_in_a_subprocess_is_one_line(tmp_path: Path) -> None:
    result = run_cli("stats", "--format", "yaml", "j1", cwd=tmp_path)

    assert result.returncode == 2
    assert_one_error_line(result.stderr, "argument --format: invalid choice: 'yaml'")
    assert result.stdout == ""


def test_a_token_in_a_usage_error_is_blanked_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--token", SECRET, "--base-url", f"ftp://{SECRET}/", "j1"]) == 2

    _, err = capsys.readouterr()
    assert SECRET not in err
    assert "[secret]" in err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "remove-users" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("journey-async ")


def test_a_bug_is_one_line_without_the_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError(f"a bug that got hold of {SECRET}")

    monkeypatch.setattr(journey_async._cli._main, "_dispatch", broken)

    assert main(["stats", "--token", SECRET, "j1"]) == 1

    assert_one_error_line(
        capsys.readouterr().err, "unexpected RuntimeError: a bug that got hold of [secret]"
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full to write to")
def test_results_that_cannot_be_written_fail_the_run_not_its_usage(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    # A full disk once the requests went out: exit 1 (failed), not 2, which
    # says nothing was sent; one line, no traceback from the flush at exit.
    command = [sys.executable, "-m", "journey_async", "stats", *api(cli_server), WELCOME]
    with Path("/dev/full").open("w") as full:
        result = subprocess.run(  # noqa: S603 - this interpreter, our own module
            command, stdout=full, stderr=subprocess.PIPE, text=True, env=cli_env(), timeout=60
        )
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "cannot write the results", "No space left on device")
    assert len(cli_emulator.requests) == 1
