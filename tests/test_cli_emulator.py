"""``journey-async emulator``: served in a subprocess, read by ``stats``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import assert_one_error_line, cli_env, run_cli

from journey_async._cli._args import EXIT_INTERRUPTED


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


@pytest.mark.parametrize(
    ("host", "cause"),
    [
        ("999.1.1.1", "nor a host name this machine resolves"),
        ("192.0.2.1", "not an address of this machine"),  # TEST-NET-1: not ours
    ],
)
def test_emulator_command_on_an_unusable_host_names_it(
    tmp_path: Path, host: str, cause: str
) -> None:
    result = run_cli("emulator", "--host", host, "--port", "8089", cwd=tmp_path)

    assert result.returncode == 2
    assert_one_error_line(result.stderr, f"cannot listen on {host}:8089: ", cause)
    assert "Errno" not in result.stderr


# --- stopping it: Ctrl-C (130) and SIGTERM (0), in any phase of start-up -------------------

_EMULATOR = [sys.executable, "-m", "journey_async", "emulator", "--port=0", "--journeys=3"]
_DEADLINE = 30.0  # a guard against a process that never stops, not a measure of speed


def _wait_stopped(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        stdout, stderr = process.communicate(timeout=_DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"still serving {_DEADLINE} s after the signal: {stderr}") from None
    return process.returncode, stdout, stderr


def _spawn(command: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(**env),
    )


def test_ctrl_c_right_after_the_start_stops_it() -> None:
    process = _spawn(_EMULATOR)
    process.send_signal(signal.SIGINT)  # no wait: somewhere in the interpreter's start

    code, _, stderr = _wait_stopped(process)

    # Before Python installs its handler, SIGINT ends the process as a signal
    # does (a shell shows 130); while Python runs ``-m``'s own imports, it
    # exits 1 after the KeyboardInterrupt: both are before any of ours runs.
    python_own = code == 1 and stderr.rstrip().endswith("KeyboardInterrupt")
    assert code in (EXIT_INTERRUPTED, -signal.SIGINT) or python_own, (code, stderr)


@pytest.mark.parametrize(("sent", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_a_signal_once_it_serves_stops_it(sent: signal.Signals, expected: int) -> None:
    process = _spawn(_EMULATOR)
    assert process.stdout is not None
    assert process.stdout.readline().startswith("journey-async emulator listening on ")
    process.send_signal(sent)

    code, _, stderr = _wait_stopped(process)

    assert code == expected, stderr
    assert stderr == ""  # the usual way to stop it: no error line, no traceback


# Run in the child: the command, with SIGINT (or $SIGNAL) sent to itself at
# the phase named by $PHASE.
_AT_PHASE = """
import os, signal, sys
import uvicorn
from journey_async._cli import _emulator
from journey_async.testing import JourneyEmulator

sent = getattr(signal, os.environ.get("SIGNAL", "SIGINT"))
phase = os.environ["PHASE"]

def send():
    os.kill(os.getpid(), sent)

class Dropped:
    # A signal handled inside a __del__ (the garbage collector, a weakref
    # callback): what it raises there is printed and dropped by Python.
    def __del__(self):
        send()
        for _ in range(10_000):
            pass

def before(function):
    def wrapper(*args, **kwargs):
        send() if phase != "swallowed" else Dropped()
        return function(*args, **kwargs)
    return wrapper

def before_async(function):
    async def wrapper(*args, **kwargs):
        send()
        return await function(*args, **kwargs)
    return wrapper

if phase == "uvicorn-import":
    _emulator._require_uvicorn = before(_emulator._require_uvicorn)
elif phase in ("sample-data", "swallowed"):
    sample = JourneyEmulator.with_sample_data.__func__
    JourneyEmulator.with_sample_data = classmethod(before(sample))
elif phase == "server-run":
    uvicorn.Server.run = before(uvicorn.Server.run)
elif phase == "server-startup":
    uvicorn.Server.startup = before_async(uvicorn.Server.startup)

from journey_async._cli import main
raise SystemExit(main())
"""


@pytest.mark.parametrize(
    ("phase", "serves"),
    [
        ("uvicorn-import", False),
        ("sample-data", False),
        ("swallowed", False),
        ("server-run", True),
        ("server-startup", True),
    ],
)
@pytest.mark.parametrize(("sent", "expected"), [("SIGINT", 130), ("SIGTERM", 0)])
def test_a_signal_in_any_phase_of_the_start_stops_it(
    phase: str, serves: bool, sent: str, expected: int
) -> None:
    command = [sys.executable, "-c", _AT_PHASE, *_EMULATOR[3:]]

    code, stdout, stderr = _wait_stopped(_spawn(command, PHASE=phase, SIGNAL=sent))

    assert code == expected, stderr
    # Listening only once the sample data is built: the stop cuts that short.
    assert stdout.startswith("journey-async emulator listening on ") is serves, stdout
    if phase != "swallowed":  # there Python prints what it dropped
        assert stderr == ""
