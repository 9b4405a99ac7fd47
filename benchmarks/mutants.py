"""
Mutation testing of the transport and the retry loop: ``nox -s mutants``
(``nox -s mutants -- journey_async/_http/_wire.py`` for one module).

mutmut 2 makes the mutants; this script runs them, one at a time, each
against the focused test files of its module (`TESTS`), so that a mutant
costs seconds rather than the whole suite. It works in a copy of the project
in a temporary folder, so the working tree is never mutated, and writes no
cache: each result is printed, and appended to ``--results`` when given (a
JSON line per mutant, which a later run with the same file resumes from).

A mutant is killed when its tests fail, survives when they pass, and times
out when they run past ``max(3 x, +20 s)`` the unmutated run. Each survivor
is printed as a diff, to judge: a test missing, or a harmless change.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

TESTS: dict[str, list[str]] = {
    "journey_async/_http/_wire.py": [
        "tests/test_http_wire.py",
        "tests/test_http_responses.py",
        "tests/test_http_limits.py",
    ],
    "journey_async/_http/_connection.py": [
        "tests/test_http_connection.py",
        "tests/test_http_wire.py",
        "tests/test_http_timeouts.py",
        "tests/test_http_transport.py",
        "tests/test_http_eyeballs.py",
    ],
    "journey_async/_http/_eyeballs.py": ["tests/test_http_eyeballs.py"],
    "journey_async/_http/_resolver.py": ["tests/test_http_resolver.py"],
    "journey_async/_http/_pool.py": ["tests/test_http_pool.py"],
    "journey_async/_http/_body.py": [
        "tests/test_http_body.py",
        "tests/test_http_interception.py",
        "tests/test_http_limits.py",
        "tests/test_http_decoding.py",
    ],
    "journey_async/_http/_timeouts.py": ["tests/test_http_timeouts.py"],
    "journey_async/_http/_decoding.py": ["tests/test_http_decoding.py"],
    "journey_async/_http/_limits.py": ["tests/test_http_limits.py"],
    "journey_async/_fanout.py": ["tests/test_fanout.py", "tests/test_fanout_closed.py"],
    "journey_async/_retry.py": [
        "tests/test_retry.py",
        "tests/test_retry_integration.py",
        "tests/test_guard.py",
    ],
}
"""Each module mutated, and the test files that run against its mutants."""


def mutants(source: str, filename: str) -> list[tuple[int, str]]:
    """Every mutant of *source*: its line number and its whole mutated text."""
    mutmut = importlib.import_module("mutmut")  # only in the mutants session
    context = mutmut.Context
    found = []
    for mutation_id in mutmut.list_mutations(context(source=source, filename=filename)):
        mutated, count = mutmut.mutate(
            context(source=source, mutation_id=mutation_id, filename=filename)
        )
        if count:
            found.append((mutation_id.line_number + 1, mutated))
    return found


PRELOAD = [
    *("pytest", "pluggy", "iniconfig", "pygments", "httpx", "httpcore", "h11", "httptools"),
    *("anyio", "sniffio", "idna", "certifi", "attrs", "brotli", "zstandard", "click", "rich"),
    *("starlette", "uvicorn", "uvloop", "trustme", "cryptography"),
]
"""Imported once, here, so that each run, a fork of this process, imports only
the project and its tests (a fraction of a second) instead of a new
interpreter spending seconds on httpx, pytest and its plugins. Not every
module a run imports: some (trio, hypothesis) leave asyncio's view of the
running task wrong when imported before the fork."""


def preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def run_tests(
    copy: Path, tests: list[str], timeout: float | None, options: list[str]
) -> tuple[str, float]:
    """``killed``, ``survived`` or ``timeout``, and the seconds it took: pytest
    in a fork of this process (see `PRELOAD`)."""
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: its own process group, so that a timeout ends it all
        try:
            os.setsid()
            os.chdir(copy)
            sys.path.insert(0, str(copy))
            os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
            sys.dont_write_bytecode = True
            if not os.environ.get("MUTANTS_VERBOSE"):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
            import pytest

            # The plugins were imported before pytest could rewrite their asserts.
            quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
            arguments = ["-x", "-q", "-p", "no:cacheprovider", *quiet, *options, *tests]
            code = int(pytest.main(arguments))
        except BaseException:
            traceback.print_exc()
            code = 99
        os._exit(code)
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        took = time.monotonic() - started
        if finished:
            return ("survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"), took
        if timeout is not None and took > timeout:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", took
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=list(TESTS), help="modules to mutate")
    parser.add_argument("--tests", nargs="+", help="test files (default: the module's own)")
    parser.add_argument("--only", help="mutant numbers to run, e.g. 3,7,12")
    parser.add_argument("--results", type=Path, help="a JSON-lines file to append to and resume")
    parser.add_argument(
        "--both-loops",
        action="store_true",
        help="run the tests on uvloop too (by default on asyncio's loop only: half the time)",
    )
    args = parser.parse_args()

    done: set[tuple[str, int, str]] = set()
    if args.results and args.results.exists():
        for line in args.results.read_text().splitlines():
            row = json.loads(line)
            done.add((row["module"], row["number"], row["diff"]))
    only = {int(n) for n in args.only.split(",")} if args.only else None
    options = [] if args.both_loops else ["-k", "not uvloop"]

    preload()
    with tempfile.TemporaryDirectory(prefix="mutants-") as folder:
        copy = Path(folder) / "project"
        shutil.copytree(
            ROOT,
            copy,
            ignore=shutil.ignore_patterns(".git", ".nox", ".venv", "__pycache__", "*_cache"),
        )
        totals: dict[str, dict[str, int]] = {}
        for module in args.modules:
            tests = [t for t in args.tests or TESTS[module] if (copy / t.split("::")[0]).exists()]
            target = copy / module
            source = target.read_text()
            baseline, seconds = run_tests(copy, tests, None, options)
            if baseline != "survived":
                print(f"{module}: its tests fail unmutated; skipped", flush=True)
                continue
            timeout = max(3 * seconds, seconds + 20)
            counts = totals.setdefault(module, {})
            found = mutants(source, module)
            print(f"== {module}: {len(found)} mutants, tests {seconds:.1f} s", flush=True)
            for number, (line, mutated) in enumerate(found, 1):
                if only is not None and number not in only:
                    continue
                diff = "".join(
                    difflib.unified_diff(
                        source.splitlines(True), mutated.splitlines(True), module, module, n=1
                    )
                )
                if (module, number, diff) in done:
                    continue
                target.write_text(mutated)
                try:
                    status, took = run_tests(copy, tests, timeout, options)
                finally:
                    target.write_text(source)
                counts[status] = counts.get(status, 0) + 1
                print(f"{module} #{number} line {line}: {status} ({took:.1f} s)", flush=True)
                if status != "killed":
                    print(diff, flush=True)
                if args.results:
                    result: dict[str, Any] = {
                        "module": module,
                        "number": number,
                        "line": line,
                        "status": status,
                        "diff": diff,
                    }
                    with args.results.open("a") as out:
                        out.write(json.dumps(result) + "\n")
        for module, counts in totals.items():
            print(module, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
