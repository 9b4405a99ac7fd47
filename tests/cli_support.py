"""
What the command-line tests share: the emulator they serve (four journeys
of every shape, one with a title that is rich markup), and running
``python -m journey_async`` in a subprocess as a user would.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Mapping
from pathlib import Path

from journey_async.testing import (
    EmulatorServer,
    JourneyEmulator,
    in_app_point,
    message_point,
    raw_point,
)

TOKEN = "cli-test-token"
SECRET = "s3cr3t-t0ken-do-not-print"
WELCOME, WINBACK, EMPTY, MISSING = "j-welcome", "j-winback", "j-empty", "j-missing"
MARKUP = "j-markup"
USERS = [f"user-{n}" for n in range(1, 7)]
# Environment variables that would change what the command does or prints.
AMBIENT = ("PUSHWOOSH_API_TOKEN", "PUSHWOOSH_JOURNEY_BASE_URL")
TERMINAL = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS")


def make_emulator() -> JourneyEmulator:
    emulator = JourneyEmulator(token=TOKEN)
    emulator.add_journey(
        WELCOME,
        title="Welcome",
        points=[
            message_point("Push", 22648, 60, campaign_code="AAAAA-00000", preset_code="1-2"),
            in_app_point("Banner", 3148, 2759, 36, campaign_code="BBBBB-11111", preset_code="3-4"),
            raw_point(
                "Webhook", {"delivered": 10, "failed": 1}, campaign_code="C", preset_code="P"
            ),
        ],
        users=USERS,
    )
    emulator.add_journey(
        WINBACK, title="Winback", points=[message_point("Email", 1000, 250)], users=USERS[:3]
    )
    emulator.add_journey(EMPTY, title="Empty", points=[])
    # Square brackets are rich's markup: an unbalanced closing tag would crash it.
    emulator.add_journey(MARKUP, title="[/b] sale", points=[message_point("Push", 5, 1)])
    return emulator


RUN_MAIN = "from journey_async._cli import main; raise SystemExit(main())"


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT + TERMINAL}
    env.update(extra)
    return env


def run_cli(
    *args: str,
    cwd: Path,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "journey_async", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env() if env is None else dict(env),
        timeout=60,
        check=False,
    )


def api(server: EmulatorServer) -> list[str]:
    return ["--base-url", server.url, "--token", TOKEN]


def assert_one_error_line(stderr: str, *fragments: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("journey-async: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]


# Colours, cursor moves and hyperlinks: what a terminal draws but does not show as text.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def run_in_terminal(
    *args: str, columns: int, cwd: Path, env: Mapping[str, str], python_code: str | None = None
) -> tuple[int, list[str]]:
    """
    Run the command with stdout and stderr on a pseudo-terminal *columns*
    wide (the window size set on it, and ``COLUMNS``); return the exit code
    and the lines the terminal received, escape sequences removed.
    """
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    command = [sys.executable, "-m", "journey_async", *args]
    if python_code is not None:
        command = [sys.executable, "-c", python_code, *args]
    with subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        command,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        cwd=cwd,
        env={**env, "COLUMNS": str(columns)},
    ) as process:
        os.close(terminal)
        received = bytearray()
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            received += chunk
        code = process.wait(timeout=60)
    os.close(controller)
    text = _ESCAPES.sub("", received.decode("utf-8", "replace"))
    return code, re.split(r"\r\n|\r|\n", text)
