"""
Start-up: ``import journey_async`` imports only what every use needs. The
command line's rich, the emulator and its uvicorn, redis, cattrs (until the
first response is read) and httpcore (until a handover needs it) come in
when they are used. Measured in a fresh process, against what ``import
httpx`` alone imports in the same venv (httpx brings rich itself when its
command-line extras are installed); benchmarks/startup.py has the times.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LAZY = ("rich", "uvicorn", "redis", "cattrs", "httpcore", "trio", "journey_async._emulator")


def modules_after(code: str) -> set[str]:
    report = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(result.stdout))


def added(modules: set[str], baseline: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules - baseline
        if any(name == lazy or name.startswith(lazy + ".") for lazy in LAZY)
    )


@pytest.fixture(scope="module")
def httpx_modules() -> set[str]:
    return modules_after("import httpx")


def test_import_journey_async_leaves_the_heavy_parts_for_later(httpx_modules: set[str]) -> None:
    assert added(modules_after("import journey_async"), httpx_modules) == []


def test_the_first_response_brings_cattrs_and_nothing_else_heavy(httpx_modules: set[str]) -> None:
    code = (
        "import journey_async._converter as c\n"
        'c.structure_stats(b\'{"payload": {"title": "t", "points": []}}\')'
    )
    packages = {name.split(".")[0] for name in added(modules_after(code), httpx_modules)}
    assert packages == {"cattrs"}


def test_help_imports_no_command(httpx_modules: set[str]) -> None:
    code = (
        "import contextlib, io, journey_async._cli as cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['--help'])"
    )
    modules = modules_after(code)
    assert added(modules, httpx_modules) == []
    commands = {f"journey_async._cli.{name}" for name in ("_stats", "_remove_users", "_demo")}
    assert "journey_async._cli._args" in modules
    assert sorted(commands & modules) == []
