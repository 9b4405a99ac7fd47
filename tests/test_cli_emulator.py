"""``journey-async emulator``: served in a subprocess, read by ``stats``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from cli_support import assert_one_error_line, cli_env, run_cli


def test_emulator_command_serves_journeys_that_stats_can_read(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "journey_async", "emulator", "--port=0", "--journeys=3"]
    with subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    ) as process:
        try:
            assert process.stdout is not None
            listening = process.stdout.readline()
            assert listening.startswith("journey-async emulator listening on http://127.0.0.1:")
            url = listening.split()[-1]
            assert process.stdout.readline().startswith("3 sample journeys (seed 0)")
            hint = process.stdout.readline().split()
            assert hint[:6] == ["try:", "journey-async", "stats", "--base-url", url, "--token"]
            ids = hint[7:]
            assert len(ids) == 3

            # What the hint says, as a user would type it in another terminal.
            result = run_cli(*hint[2:], "--format=json", cwd=tmp_path)

            assert result.returncode == 0, result.stderr
            assert [journey["id"] for journey in json.loads(result.stdout)] == ids
        finally:
            process.terminate()
            process.wait(10)
    assert process.returncode == 0


def test_emulator_command_on_a_port_in_use_says_which_and_what_to_do(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli("emulator", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert_one_error_line(result.stderr, f"cannot listen on 127.0.0.1:{port}", "0 for a free one")
