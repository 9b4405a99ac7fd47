"""
Start-up: how long a fresh process takes to ``import journey_async`` and to
print ``journey-async --help``, beside ``python -c "import httpx"``, all in
this venv and in the same run (httpx itself imports brotli, zstd and, through
httpcore, trio when they are installed, so only one venv compares fairly).

Run from the project root::

    python -m benchmarks.startup             # 15 rounds
    python -m benchmarks.startup --rounds 31

Each round starts one process of each kind, in an order that rotates, so that
a busy machine slows them alike; the table shows medians and the ratio to
``import httpx``. Goals (issue 13): ``import journey_async`` at most 1.3x,
``journey-async --help`` at most 1.5x.

It also lists the heavy modules each command imported (rich, uvicorn, redis,
cattrs, httpcore, the emulator and the command line's commands), from
``sys.modules`` at exit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

GOALS: Final = {"import journey_async": 1.3, "journey-async --help": 1.5}
WATCHED: Final = (
    "rich",
    "uvicorn",
    "redis",
    "cattrs",
    "httpcore",
    "journey_async._emulator",
    "journey_async._cli._stats",
)
_REPORT: Final = (
    "import atexit, json, sys; "
    "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))"
)


def _commands() -> dict[str, list[str]]:
    script = shutil.which("journey-async", path=str(Path(sys.executable).parent))
    help_command = (
        [script, "--help"]
        if script is not None
        else [sys.executable, "-m", "journey_async", "--help"]
    )
    return {
        "import httpx": [sys.executable, "-c", "import httpx"],
        "import journey_async": [sys.executable, "-c", "import journey_async"],
        # What a program that makes a client pays: the whole library.
        "...AsyncJourneyClient": [
            sys.executable,
            "-c",
            "import journey_async as ja; ja.AsyncJourneyClient",
        ],
        "journey-async --help": help_command,
    }


def _run(command: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def _imported(command: Sequence[str]) -> list[str]:
    """The `WATCHED` modules *command* has imported when it exits."""
    if command[0] == sys.executable:
        code = (
            command[2]
            if command[1] == "-c"
            else f"import runpy; runpy.run_module({command[2]!r}, run_name='__main__')"
        )
        argv = [sys.executable, "-c", f"{_REPORT}\n{code}", *command[3:]]
    else:
        # The console script: its entry point, run as it runs it.
        argv = [
            sys.executable,
            "-c",
            f"{_REPORT}\nimport sys; from journey_async._cli import main; sys.exit(main())",
            *command[1:],
        ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    modules: list[str] = json.loads(result.stderr.strip().splitlines()[-1])
    return [name for name in WATCHED if name in modules]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15, help="processes of each kind")
    args = parser.parse_args(argv)
    commands = _commands()
    names = list(commands)
    for command in commands.values():
        _run(command)  # warm the file cache and the .pyc files
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_run(commands[name]))

    base = statistics.median(times["import httpx"])
    print(f"Python {sys.version.split()[0]}, {sys.platform}, {os.cpu_count()} CPUs; ", end="")
    print(f"medians of {args.rounds} fresh processes each")
    print(f"{'command':<24}{'median ms':>10}{'x httpx':>9}{'goal':>7}  imports")
    for name in names:
        median = statistics.median(times[name])
        goal = GOALS.get(name)
        goal_text = f"{goal:.1f}x" if goal else ""
        imported = ", ".join(_imported(commands[name])) or "-"
        print(f"{name:<24}{median * 1000:>10.1f}{median / base:>8.2f}x{goal_text:>7}  {imported}")


if __name__ == "__main__":
    main()
