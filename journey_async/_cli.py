"""
The ``journey-async`` command: statistics, removals, the emulator and the demo from a shell.

Four subcommands, one per job: ``stats`` fans out over journeys and prints a
table, JSON or CSV; ``remove-users`` removes users in batches and writes the
ones that failed to a file the same command reads back; ``emulator`` serves
`journey_async.testing.JourneyEmulator` in the foreground; ``demo`` does the
library's main job against an emulator it serves itself.

Exit codes: 0 success, 1 some journeys or users failed (or the API refused
the call), 2 a usage or configuration error (nothing was sent), 130 Ctrl-C.
Every error is one line on stderr, never a traceback, and never the token:
`main` is the one place that turns exceptions into that line.

rich (the ``cli`` extra) draws progress bars and tables on a terminal. It is
imported only here and only when present: without it, or when the output is
not a terminal, the command prints plain aligned text, so pipes and scripts
get the same output whether or not it is installed.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import importlib.util
import io
import json
import math
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn, TextIO, TypeAlias

import attrs

from ._client import (
    DEFAULT_BASE_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT,
    REDACTED,
    TOKEN_ENV_VAR,
    AsyncJourneyClient,
)
from ._exceptions import APIStatusError, JourneyError, RemovalError
from ._models import InAppStats, MessageStats, PointStats, StatsResult, UnknownStats
from ._validation import validate_journey_id, validate_user_ids
from ._version import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from ._emulator import JourneyEmulator

__all__ = ["BASE_URL_ENV_VAR", "main"]

PROG: Final = "journey-async"
BASE_URL_ENV_VAR: Final = "PUSHWOOSH_JOURNEY_BASE_URL"
INSTALL_CLI: Final = "pip install 'journey-async[cli]'"
DEFAULT_FAILED_FILE: Final = "failed-users.txt"
EMULATOR_DEFAULT_TOKEN: Final = "test-token"  # noqa: S105 - the emulator's public default

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

_CLIENT_OPTIONS: Final = {
    "token": "--token",
    "base_url": "--base-url",
    "concurrency": "--concurrency",
    "timeout": "--timeout",
    "no_retry": "--no-retry",
}
# The client options each command reads; any other given before the
# subcommand is refused rather than silently ignored.
_APPLICABLE: Final[dict[str, frozenset[str]]] = {
    "stats": frozenset(_CLIENT_OPTIONS),
    "remove-users": frozenset(_CLIENT_OPTIONS),
    "emulator": frozenset({"token"}),
    "demo": frozenset({"concurrency"}),
}


class UsageError(Exception):
    """Bad arguments or configuration: exit 2, nothing was sent."""


# --- output ---------------------------------------------------------------------------------


@attrs.frozen
class _Column:
    header: str
    numeric: bool = False


ProgressCallback: TypeAlias = Callable[[int], None]


class _Output:
    """
    Where a command writes: rich on a terminal when it is installed, plain
    text otherwise. Results go to stdout, progress and notes to stderr.
    """

    def __init__(self) -> None:
        self._out: Console | None = None
        self._err: Console | None = None
        if not _installed("rich"):
            return
        from rich.console import Console

        # rich decides what a terminal is (isatty, FORCE_COLOR, TTY_COMPATIBLE).
        out = Console(highlight=False)
        err = Console(stderr=True, highlight=False)
        self._out = out if out.is_terminal else None
        self._err = err if err.is_interactive else None

    def line(self, text: str = "") -> None:
        """A line of results on stdout."""
        if self._out is not None:
            self._out.print(text, markup=False, soft_wrap=True)
        else:
            print(text, flush=True)

    def note(self, text: str) -> None:
        """A line about the run on stderr, so that stdout stays machine-readable."""
        print(text, file=sys.stderr, flush=True)

    def table(
        self, columns: Sequence[_Column], rows: Sequence[Sequence[str]], *, title: str = ""
    ) -> None:
        """A table on stdout: rich's on a terminal, aligned plain text elsewhere."""
        if self._out is None:
            print(_plain_table(columns, rows, title=title), flush=True)
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title or None, title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(
                column.header,
                justify="right" if column.numeric else "left",
                overflow="fold",
            )
        for row in rows:
            # Text, not str: a journey title like "[b]ig sale" is not markup.
            table.add_row(*map(Text, row))
        self._out.print(table)

    @contextlib.contextmanager
    def progress(self, description: str, total: int) -> Iterator[ProgressCallback | None]:
        """
        A progress bar on stderr while the block runs, when stderr is an
        interactive terminal; yields the callback to advance it, or None.
        """
        if self._err is None or total == 0:
            yield None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._err,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield lambda settled: bar.advance(task, settled)


def _plain_table(columns: Sequence[_Column], rows: Sequence[Sequence[str]], *, title: str) -> str:
    widths = [len(column.header) for column in columns]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def render(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if column.numeric else cell.ljust(width)
            for column, cell, width in zip(columns, cells, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [title] if title else []
    lines.append(render([column.header for column in columns]))
    lines.append(render(["-" * width for width in widths]))
    lines.extend(render(row) for row in rows)
    return "\n".join(lines)


def _count(value: int) -> str:
    return f"{value:,}"


def _percent(value: float) -> str:
    return f"{value:.2f}"


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    return f"{_count(count)} {noun}" + ("es" if noun.endswith("ch") else "s")


def _rate(count: int, seconds: float, unit: str) -> str:
    return f"{count / seconds:,.0f} {unit}/s" if seconds > 0 else f"- {unit}/s"


# --- reading ids ----------------------------------------------------------------------------


def _read_lines(path: str, option: str) -> list[str]:
    """One id a line; blank lines skipped, surrounding whitespace dropped; ``-`` is stdin."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
    except OSError as exc:
        raise UsageError(f"cannot read {option} {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {option} {path!r}: not UTF-8 text ({exc.reason})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _journey_ids(args: argparse.Namespace) -> list[str]:
    ids: list[str] = list(args.ids)
    if args.ids_file is not None:
        if ids:
            raise UsageError("pass journey ids as arguments or with --ids-file, not both")
        ids = _read_lines(args.ids_file, "--ids-file")
    if not ids:
        raise UsageError("no journey ids: pass them as arguments or with --ids-file")
    for journey_id in ids:
        validate_journey_id(journey_id)
    # Asked twice, fetched once: the output has one entry per journey.
    return list(dict.fromkeys(ids))


def _user_ids(args: argparse.Namespace) -> tuple[str, ...]:
    users: list[str] = list(args.users)
    sources = bool(users) + (args.users_file is not None)
    if sources > 1:
        raise UsageError("pass users as arguments, with --users-file or '-', not several")
    if users == ["-"]:
        users = _read_lines("-", "stdin")
    elif "-" in users:
        raise UsageError("'-' (read users from stdin) must be the only user argument")
    elif args.users_file is not None:
        users = _read_lines(args.users_file, "--users-file")
    if not users:
        raise UsageError("no users: pass them as arguments, with --users-file F, or '-' for stdin")
    return validate_user_ids(users)


# --- the client -----------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> AsyncJourneyClient:
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV_VAR)
    if not token:
        raise UsageError(f"no API token: pass --token or set {TOKEN_ENV_VAR}")
    base_url = args.base_url or os.environ.get(BASE_URL_ENV_VAR) or DEFAULT_BASE_URL
    options: dict[str, Any] = {}
    if args.concurrency is not None:
        options["max_concurrency"] = args.concurrency
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.no_retry:
        options["retry"] = None
    return AsyncJourneyClient(token, base_url=base_url, **options)


# --- stats ----------------------------------------------------------------------------------

_STAT_COLUMNS: Final = (
    _Column("Sent", numeric=True),
    _Column("Opened", numeric=True),
    _Column("Conv. %", numeric=True),
    _Column("Shows", numeric=True),
    _Column("Interactions", numeric=True),
    _Column("Skipped", numeric=True),
)
_CSV_HEADER: Final = (
    "journey_id",
    "journey_title",
    "point_title",
    "campaign_code",
    "preset_code",
    "kind",
    "sent",
    "opened",
    "conversion",
    "shows",
    "interactions",
    "skipped",
    "other",
    "error",
)


def _kind(stat: PointStats) -> str:
    if isinstance(stat, MessageStats):
        return "message"
    if isinstance(stat, InAppStats):
        return "in_app"
    return "unknown"


def _stat_json(stat: PointStats) -> dict[str, Any]:
    if isinstance(stat, MessageStats):
        return {"sent": stat.sent, "opened": stat.opened, "conversion": stat.conversion}
    if isinstance(stat, InAppStats):
        return {"shows": stat.shows, "interactions": stat.interactions, "skipped": stat.skipped}
    return dict(stat.raw)


def _stat_cells(stat: PointStats) -> tuple[list[str], str]:
    """The six numeric cells (blank where they do not apply) and the unknown fields."""
    if isinstance(stat, MessageStats):
        cells = [_count(stat.sent), _count(stat.opened), _percent(stat.conversion), "", "", ""]
        return cells, ""
    if isinstance(stat, InAppStats):
        cells = ["", "", "", _count(stat.shows), _count(stat.interactions), _count(stat.skipped)]
        return cells, ""
    return [""] * 6, " ".join(f"{key}={value}" for key, value in stat.raw.items())


def _error_json(error: JourneyError) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "message": str(error),
        "status_code": error.status_code if isinstance(error, APIStatusError) else None,
    }


def _describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _short_error(error: JourneyError) -> str:
    # The table's row already names the journey: not the request's path again.
    if isinstance(error, APIStatusError):
        return f"{type(error).__name__}: {error.status_code} {error.message}"
    return _describe_error(error)


def _result_json(result: StatsResult) -> dict[str, Any]:
    if result.stats is None:
        assert result.error is not None
        return {"id": result.journey_id, "error": _error_json(result.error)}
    return {
        "id": result.journey_id,
        "title": result.stats.title,
        "points": [
            {
                "title": point.title,
                "campaign_code": point.campaign_code,
                "preset_code": point.preset_code,
                "kind": _kind(point.stat),
                "stat": _stat_json(point.stat),
            }
            for point in result.stats.points
        ],
    }


def _write_csv(results: Sequence[StatsResult], file: TextIO) -> None:
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(_CSV_HEADER)
    blank_point = [""] * 10
    for result in results:
        if result.stats is None:
            assert result.error is not None
            writer.writerow(
                [result.journey_id, "", *blank_point, "", _describe_error(result.error)]
            )
            continue
        if not result.stats.points:
            # Still one row: every journey asked for is in the output.
            writer.writerow([result.journey_id, result.stats.title, *blank_point, "", ""])
        for point in result.stats.points:
            stat = point.stat
            fields = _stat_json(stat)
            if isinstance(stat, UnknownStats):
                numbers = [""] * 6
                other = json.dumps(fields, separators=(",", ":"))
            else:
                numbers = [fields.get(name, "") for name in _CSV_HEADER[6:12]]
                other = ""
            writer.writerow(
                [
                    result.journey_id,
                    result.stats.title,
                    point.title,
                    point.campaign_code or "",
                    point.preset_code or "",
                    _kind(stat),
                    *numbers,
                    other,
                    "",
                ]
            )


def _stats_table(results: Sequence[StatsResult], output: _Output) -> None:
    has_unknown = any(
        isinstance(point.stat, UnknownStats)
        for result in results
        if result.stats is not None
        for point in result.stats.points
    )
    columns = [
        _Column("Journey"),
        _Column("ID"),
        _Column("Point"),
        _Column("Kind"),
        *_STAT_COLUMNS,
        *([_Column("Other fields")] if has_unknown else []),
    ]
    width = len(columns)
    rows: list[list[str]] = []
    for result in results:
        if result.stats is None:
            assert result.error is not None
            rows.append(["", result.journey_id, f"error: {_short_error(result.error)}"])
        elif not result.stats.points:
            rows.append([result.stats.title, result.journey_id, "(no points)"])
        else:
            for index, point in enumerate(result.stats.points):
                cells, other = _stat_cells(point.stat)
                first = index == 0
                rows.append(
                    [
                        result.stats.title if first else "",
                        result.journey_id if first else "",
                        point.title,
                        _kind(point.stat),
                        *cells,
                        other,
                    ]
                )
    output.table(columns, [(row + [""] * width)[:width] for row in rows])


def _stats_summary(results: Sequence[StatsResult], elapsed: float) -> str:
    failures = Counter(type(r.error).__name__ for r in results if r.error is not None)
    failed = sum(failures.values())
    summary = (
        f"{_count(len(results))} journeys: {_count(len(results) - failed)} ok, "
        f"{_count(failed)} failed, in {_seconds(elapsed)}"
    )
    if failures:
        summary += " (" + ", ".join(f"{name}: {n}" for name, n in failures.most_common()) + ")"
    return summary


async def _stats(args: argparse.Namespace, output: _Output) -> int:
    ids = _journey_ids(args)
    async with _client(args) as client:
        started = time.perf_counter()
        with output.progress("journeys", len(ids)) as progress:
            results = await client.get_stats_many(ids, progress=progress)
        elapsed = time.perf_counter() - started

    summary = _stats_summary(results, elapsed)
    if args.format == "json":
        json.dump([_result_json(r) for r in results], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        sys.stdout.flush()
        output.note(summary)
    elif args.format == "csv":
        _write_csv(results, sys.stdout)
        sys.stdout.flush()
        output.note(summary)
    else:
        _stats_table(results, output)
        output.line(summary)
    return EXIT_FAILED if any(not r.ok for r in results) else EXIT_OK


# --- remove-users ---------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> tuple[str, list[str]]:
    """How the removal's target reads in a sentence, and as options to retry it."""
    if args.all_journeys:
        return "all journeys", ["--all-journeys"]
    journeys: list[str] = args.journeys
    noun = "journey" if len(journeys) == 1 else "journeys"
    return f"{len(journeys)} {noun}", [f"--journey={j}" for j in journeys]


def _write_failed(path: str, users: Sequence[str], output: _Output) -> bool:
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.writelines(f"{user}\n" for user in users)
    except OSError as exc:
        # The file was the only record of who failed: print them instead.
        output.note(f"{PROG}: error: cannot write {path!r}: {exc.strerror or exc}")
        output.note("the users whose removal failed follow on stdout")
        for user in users:
            output.line(user)
        return False
    return True


async def _remove_users(args: argparse.Namespace, output: _Output) -> int:
    users = _user_ids(args)
    target, target_options = _target(args)
    failed: Sequence[str] = ()
    errors: Sequence[JourneyError] = ()
    requests = 0
    async with _client(args) as client:
        started = time.perf_counter()
        with output.progress("users", len(users)) as progress:
            try:
                result = await client.remove_users(
                    users,
                    journey_ids=args.journeys,
                    all_journeys=args.all_journeys,
                    batch_size=args.batch_size,
                    progress=progress,
                )
            except RemovalError as exc:
                removed, failed, errors = exc.removed, exc.failed, exc.errors
            except JourneyError as exc:
                # Nothing was confirmed: every user is accounted as failed.
                removed, failed, errors = (), users, (exc,)
            else:
                removed, requests = result.user_ids, result.requests
        elapsed = time.perf_counter() - started

    if not failed:
        output.line(
            f"removed {_plural(len(removed), 'user')} from {target}: "
            f"{_plural(requests, 'request')} in {_seconds(elapsed)}"
        )
        return EXIT_OK

    path = args.failed_file
    written = _write_failed(path, failed, output)
    output.line(
        f"removed {_count(len(removed))} users from {target}; failed for {_count(len(failed))}"
        + (f" (written to {path})" if written else "")
        + f", in {_seconds(elapsed)}"
    )
    if removed:
        failures = f"{_plural(len(errors), 'removal request')} failed; first"
    else:
        failures = "no removal was confirmed"
    message = f"{failures}: {_describe_error(errors[0])}"
    if written:
        retry = shlex.join([PROG, "remove-users", *target_options, "--users-file", path])
        message += f"; retry them with: {retry}"
    output.note(f"{PROG}: error: {message}")
    return EXIT_FAILED


# --- emulator -------------------------------------------------------------------------------


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return False


def _require_uvicorn(command: str) -> None:
    if not _installed("uvicorn"):
        raise UsageError(f"'{command}' serves the emulator with uvicorn: {INSTALL_CLI}")


def _emulator(args: argparse.Namespace, output: _Output) -> int:
    _require_uvicorn("emulator")
    from ._emulator import JourneyEmulator
    from ._emulator_server import LISTENING, run_emulator

    token = EMULATOR_DEFAULT_TOKEN if args.token is None else args.token
    emulator = JourneyEmulator.with_sample_data(
        args.journeys,
        users_per_journey=args.users_per_journey,
        unknown_shapes=args.unknown_shapes,
        seed=args.seed,
        token=token,
        latency=args.latency_ms / 1000,
        fault_rate=args.fault_rate,
        max_user_ids_per_request=args.max_user_ids_per_request,
        # It may serve for days (or carry a benchmark): keep no request log.
        record_requests=False,
    )
    ids = emulator.journey_ids
    # The default token is public (it is in the docs); one the user chose is not echoed.
    shown_token = token if token == EMULATOR_DEFAULT_TOKEN else "<your token>"

    def explain(url: str) -> None:
        output.line(
            f"{_count(len(ids))} sample journeys (seed {args.seed}), "
            f"latency {args.latency_ms:g} ms, fault rate {args.fault_rate:g}; Ctrl-C stops it"
        )
        example = " ".join(ids[:3])
        output.line(f"try: {PROG} stats --base-url {url} --token {shown_token} {example}".rstrip())

    run_emulator(emulator, host=args.host, port=args.port, file=_AfterListening(LISTENING, explain))
    return EXIT_OK


class _AfterListening(io.StringIO):
    """
    The file `run_emulator` prints its one line to (and flushes): passes it
    on to stdout, then calls *then* with what follows *prefix*: the URL,
    only known once the socket listens (``--port 0``).
    """

    def __init__(self, prefix: str, then: Callable[[str], None]) -> None:
        super().__init__()
        self._prefix = prefix
        self._then = then

    def flush(self) -> None:
        text = self.getvalue()
        self.seek(0)
        self.truncate()
        sys.stdout.write(text)
        sys.stdout.flush()
        for line in text.splitlines():
            if line.startswith(self._prefix):
                self._then(line.removeprefix(self._prefix).strip())


# --- demo -----------------------------------------------------------------------------------

_MEMBERSHIPS_PER_DEMO_USER: Final = 3
_FAILURES_SHOWN: Final = 5


def _seat_demo_users(emulator: JourneyEmulator, count: int) -> tuple[str, ...]:
    """Put *count* new users into journeys, each into a few, spread evenly."""
    journey_ids = emulator.journey_ids
    users = tuple(f"demo-user-{n:06d}" for n in range(1, count + 1))
    seats: dict[str, list[str]] = {journey_id: [] for journey_id in journey_ids}
    per_user = min(_MEMBERSHIPS_PER_DEMO_USER, len(journey_ids))
    for index, user in enumerate(users):
        for step in range(per_user):
            seats[journey_ids[(index + step) % len(journey_ids)]].append(user)
    for journey_id, seated in seats.items():
        emulator.add_users(journey_id, seated)
    return users


def _memberships(emulator: JourneyEmulator) -> Counter[str]:
    """How many journeys each user is in."""
    counts: Counter[str] = Counter()
    for journey_id in emulator.journey_ids:
        counts.update(emulator.users_in(journey_id))
    return counts


@attrs.define
class _Totals:
    """Sums over message points and in-app points."""

    message_points: int = 0
    sent: int = 0
    opened: int = 0
    in_app_points: int = 0
    shows: int = 0
    interactions: int = 0
    skipped: int = 0
    unknown_points: int = 0

    def add(self, stat: PointStats) -> None:
        if isinstance(stat, MessageStats):
            self.message_points += 1
            self.sent += stat.sent
            self.opened += stat.opened
        elif isinstance(stat, InAppStats):
            self.in_app_points += 1
            self.shows += stat.shows
            self.interactions += stat.interactions
            self.skipped += stat.skipped
        else:
            self.unknown_points += 1

    @property
    def conversion(self) -> float:
        return self.opened / self.sent * 100 if self.sent else 0.0


def _demo_tables(results: Sequence[StatsResult], output: _Output, top: int) -> None:
    per_journey: list[tuple[_Totals, StatsResult]] = []
    overall = _Totals()
    for result in results:
        if result.stats is None:
            continue
        totals = _Totals()
        for point in result.stats.points:
            totals.add(point.stat)
            overall.add(point.stat)
        per_journey.append((totals, result))
    per_journey.sort(key=lambda item: item[0].sent, reverse=True)

    rows = []
    for rank, (totals, result) in enumerate(per_journey[:top], start=1):
        assert result.stats is not None
        rows.append(
            [
                str(rank),
                result.stats.title,
                result.journey_id,
                _count(totals.sent),
                _count(totals.opened),
                _percent(totals.conversion),
                _count(totals.shows),
                _count(totals.interactions),
            ]
        )
    output.line()
    output.table(
        [
            _Column("#", numeric=True),
            _Column("Journey"),
            _Column("ID"),
            *_STAT_COLUMNS[:5],
        ],
        rows,
        title=f"Top {len(rows)} journeys by messages sent",
    )
    channel_rows = [
        [
            "message (push, email, SMS...)",
            _count(overall.message_points),
            _count(overall.sent),
            _count(overall.opened),
            _percent(overall.conversion),
            "",
            "",
            "",
        ],
        [
            "in-app",
            _count(overall.in_app_points),
            "",
            "",
            "",
            _count(overall.shows),
            _count(overall.interactions),
            _count(overall.skipped),
        ],
    ]
    if overall.unknown_points:
        channel_rows.append(["other (unknown shape)", _count(overall.unknown_points)] + [""] * 6)
    output.line()
    output.table(
        [_Column("Channel"), _Column("Points", numeric=True), *_STAT_COLUMNS],
        channel_rows,
        title="Totals per channel",
    )


def _requests(requests: int, faults: int) -> str:
    return f"{_plural(requests, 'request')} ({_count(faults)} met a transient fault)"


def _attempts(emulator: JourneyEmulator, endpoint: str) -> tuple[int, int]:
    """Requests the emulator received for *endpoint*, and how many it faulted."""
    received = [r for r in emulator.requests if r.endpoint == endpoint]
    return len(received), sum(r.fault is not None for r in received)


async def _demo(args: argparse.Namespace, output: _Output) -> int:
    _require_uvicorn("demo")
    from ._emulator import JourneyEmulator
    from ._emulator_server import serve_emulator

    started = time.perf_counter()
    emulator = JourneyEmulator.with_sample_data(
        args.journeys,
        seed=args.seed,
        latency=args.latency_ms / 1000,
        fault_rate=args.fault_rate,
    )
    ids = emulator.journey_ids
    demo_users = _seat_demo_users(emulator, args.users)
    before = _memberships(emulator)

    with serve_emulator(emulator) as server:
        output.line(
            f"An emulated Journey API on {server.url} (in this process): "
            f"{_count(len(ids))} journeys, {args.latency_ms:g} ms latency, "
            f"{args.fault_rate:.0%} of requests failing transiently"
        )
        client_options: dict[str, Any] = {}
        if args.concurrency is not None:
            client_options["max_concurrency"] = args.concurrency
        async with AsyncJourneyClient(
            emulator.token, base_url=server.url, **client_options
        ) as client:
            output.line()
            output.line(
                f"1. Statistics of all {_count(len(ids))} journeys, "
                f"up to {client.max_concurrency} requests at a time"
            )
            emulator.reset_counters()
            stats_started = time.perf_counter()
            with output.progress("journeys", len(ids)) as progress:
                results = await client.get_stats_many(ids, progress=progress)
            stats_elapsed = time.perf_counter() - stats_started
            stats_requests, stats_faults = _attempts(emulator, "stats")
            peak = emulator.max_in_flight

            output.line(f"   {_stats_summary(results, stats_elapsed)}")
            failed = [r for r in results if r.error is not None]
            for result in failed[:_FAILURES_SHOWN]:
                assert result.error is not None
                output.line(f"   failed: {result.journey_id}: {_short_error(result.error)}")
            if len(failed) > _FAILURES_SHOWN:
                output.line(f"   and {_count(len(failed) - _FAILURES_SHOWN)} more")
            output.line(
                f"   {_rate(len(ids), stats_elapsed, 'journeys')}: "
                f"{_requests(stats_requests, stats_faults)}, at most {peak} in flight"
            )
            if args.latency_ms:
                one_by_one = len(ids) * args.latency_ms / 1000
                output.line(f"   (one at a time, the latency alone would take {one_by_one:.1f} s)")
            _demo_tables(results, output, top=10)

            batch_size = args.batch_size or client.batch_size
            batches = math.ceil(len(demo_users) / batch_size)
            output.line()
            output.line(
                f"2. Removal of {_count(len(demo_users))} users from all journeys, "
                f"in {_plural(batches, 'batch')} of up to {_count(batch_size)}"
            )
            emulator.reset_counters()
            removal_started = time.perf_counter()
            with output.progress("users", len(demo_users)) as progress:
                removal = await client.remove_users(
                    demo_users, all_journeys=True, batch_size=batch_size, progress=progress
                )
            removal_elapsed = time.perf_counter() - removal_started
            removal_requests, removal_faults = _attempts(emulator, "remove")

    output.line(
        f"   removed {_plural(len(removal.user_ids), 'user')} in {_seconds(removal_elapsed)} "
        f"({_rate(len(removal.user_ids), removal_elapsed, 'users')}): "
        f"{_plural(removal.requests, 'batch')}, {_requests(removal_requests, removal_faults)}"
    )
    after = _memberships(emulator)
    left = sum(after[user] for user in demo_users)
    demo_set = frozenset(demo_users)
    others_before = sum(n for user, n in before.items() if user not in demo_set)
    others_after = sum(n for user, n in after.items() if user not in demo_set)
    verified = left == 0 and others_before == others_after
    if verified:
        output.line(
            f"   verified in the emulator: none of them is in any journey any more; "
            f"the other {_count(others_after)} memberships are untouched"
        )
    else:
        output.note(
            f"{PROG}: error: the emulator still holds {_count(left)} memberships of removed "
            f"users, and {_count(others_before - others_after)} other memberships changed"
        )
    output.line()
    output.line(f"Done in {_seconds(time.perf_counter() - started)}.")
    all_ok = verified and all(r.ok for r in results)
    return EXIT_OK if all_ok else EXIT_FAILED


# --- parsing --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, through main's single error path, instead of usage + exit.
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


# argparse names the type in its message: these read better than the function names.
_positive_int.__name__ = _port.__name__ = "integer"
_non_negative.__name__ = _positive_float.__name__ = _fraction.__name__ = "number"


def _add_client_options(parser: argparse.ArgumentParser, *, on_subcommand: bool) -> None:
    # On a subcommand, an option left out must not overwrite one given
    # before the subcommand: hence SUPPRESS, not None.
    default = argparse.SUPPRESS if on_subcommand else None
    group = parser.add_argument_group("API options (before or after the subcommand)")
    group.add_argument(
        "--token",
        default=default,
        help=f"the server API token (default: ${TOKEN_ENV_VAR})",
    )
    group.add_argument(
        "--base-url",
        default=default,
        metavar="URL",
        help=f"the API's root (default: ${BASE_URL_ENV_VAR}, else {DEFAULT_BASE_URL})",
    )
    group.add_argument(
        "--concurrency",
        type=_positive_int,
        default=default,
        metavar="N",
        help=f"requests in flight at most (default: {DEFAULT_MAX_CONCURRENCY})",
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=default,
        metavar="SECONDS",
        help=f"per attempt (default: {DEFAULT_TIMEOUT.read:g}, "
        f"{DEFAULT_TIMEOUT.connect:g} to connect)",
    )
    group.add_argument(
        "--no-retry",
        action="store_true",
        default=default,
        help="fail at the first error instead of retrying transient ones",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Statistics and user removals with the Pushwoosh Customer Journey API.",
        epilog="Exit codes: 0 ok, 1 some journeys or users failed, 2 usage error, 130 Ctrl-C.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_client_options(parser, on_subcommand=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    stats = commands.add_parser(
        "stats",
        help="fetch the statistics of journeys, concurrently",
        description="Fetch the statistics of journeys, concurrently. "
        "Exits 1 when any journey failed.",
    )
    stats.add_argument("ids", nargs="*", metavar="ID", help="journey ids")
    stats.add_argument(
        "--ids-file", metavar="F", help="read journey ids from F, one a line ('-': stdin)"
    )
    stats.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table (default), json (one object per journey) or csv (one row per point)",
    )
    _add_client_options(stats, on_subcommand=True)

    remove = commands.add_parser(
        "remove-users",
        help="remove users from journeys, in batches",
        description="Remove users from some journeys or from all of them, in batches. "
        "Users whose removal failed are written to a file that --users-file reads back.",
    )
    target = remove.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--journey",
        dest="journeys",
        action="append",
        metavar="ID",
        help="a journey to remove them from (repeat for several)",
    )
    target.add_argument(
        "--all-journeys", action="store_true", help="remove them from every active journey"
    )
    remove.add_argument("users", nargs="*", metavar="USER", help="user ids, or '-' for stdin")
    remove.add_argument("--users-file", metavar="F", help="read user ids from F, one a line")
    remove.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help=f"user ids per request (default: {DEFAULT_BATCH_SIZE})",
    )
    remove.add_argument(
        "--failed-file",
        default=DEFAULT_FAILED_FILE,
        metavar="F",
        help=f"where the users whose removal failed go (default: {DEFAULT_FAILED_FILE})",
    )
    _add_client_options(remove, on_subcommand=True)

    emulator = commands.add_parser(
        "emulator",
        help="serve an emulator of the API with sample journeys",
        description="Serve an emulator of the Journey API with sample journeys, "
        "until Ctrl-C. Point the other commands at it with --base-url.",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    emulator.add_argument(
        "--port", type=_port, default=8080, help="default: 8080; 0 picks a free port"
    )
    emulator.add_argument("--journeys", type=int, default=300, metavar="N", help="default: 300")
    emulator.add_argument(
        "--users-per-journey", type=int, default=20, metavar="N", help="default: 20"
    )
    emulator.add_argument(
        "--latency-ms", type=_non_negative, default=0.0, metavar="MS", help="added to each answer"
    )
    emulator.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        metavar="P",
        help="share of requests failing transiently (429, 5xx, dropped), 0 to 1",
    )
    emulator.add_argument("--seed", type=int, default=0, help="same seed, same journeys")
    emulator.add_argument(
        "--unknown-shapes",
        action="store_true",
        help="give every 4th journey a webhook point, a pointStat shape the client does not know",
    )
    emulator.add_argument(
        "--max-user-ids-per-request",
        type=_positive_int,
        default=None,
        metavar="N",
        help="answer 400 to a removal of more users (default: no limit)",
    )
    emulator.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help=f"the token it accepts (default: {EMULATOR_DEFAULT_TOKEN})",
    )

    demo = commands.add_parser(
        "demo",
        help="run the main job against an emulator served in-process",
        description="Serve an emulator on 127.0.0.1, fetch the statistics of all its "
        "journeys concurrently, remove thousands of users in batches, and say how long it took.",
    )
    demo.add_argument(
        "--journeys", type=_positive_int, default=300, metavar="N", help="default: 300"
    )
    demo.add_argument(
        "--users",
        type=_positive_int,
        default=3000,
        metavar="N",
        help="users to seat in journeys and remove (default: 3000)",
    )
    demo.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=20.0,
        metavar="MS",
        help="added to each answer (default: 20)",
    )
    demo.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.05,
        metavar="P",
        help="share of requests failing transiently, retried by the client (default: 0.05)",
    )
    demo.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help=f"user ids per request (default: {DEFAULT_BATCH_SIZE})",
    )
    demo.add_argument("--seed", type=int, default=0, help="same seed, same journeys")
    demo.add_argument(
        "--concurrency",
        type=_positive_int,
        default=argparse.SUPPRESS,
        metavar="N",
        help=f"requests in flight at most (default: {DEFAULT_MAX_CONCURRENCY})",
    )
    return parser


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    args = _build_parser().parse_args(argv)
    applicable = _APPLICABLE[args.command]
    for dest, flag in _CLIENT_OPTIONS.items():
        if dest not in applicable and getattr(args, dest) not in (None, False):
            raise UsageError(f"{flag} does not apply to '{args.command}'")
    return args


# --- the one place errors become a line and an exit code -------------------------------------


_MIN_SECRET_LENGTH: Final = 8


def _secrets(argv: Sequence[str]) -> list[str]:
    """Every token this run may know, to be blanked out of any message."""
    found = [os.environ.get(TOKEN_ENV_VAR, "")]
    for index, arg in enumerate(argv):
        if arg == "--token" and index + 1 < len(argv):
            found.append(argv[index + 1])
        elif arg.startswith("--token="):
            found.append(arg.partition("=")[2])
    # Real tokens are long; blanking a short one would mangle every word that
    # happens to contain it, and could not be a leak but a coincidence.
    return [secret for secret in found if len(secret.strip()) >= _MIN_SECRET_LENGTH]


def _fail(message: str, secrets: Sequence[str]) -> None:
    for secret in secrets:
        message = message.replace(secret, REDACTED)
    print(f"{PROG}: error: {' '.join(message.splitlines())}", file=sys.stderr, flush=True)


_COMMANDS: Final = {
    "stats": _stats,
    "remove-users": _remove_users,
    "demo": _demo,
}


def _dispatch(args: argparse.Namespace) -> int:
    output = _Output()
    if args.command == "emulator":
        return _emulator(args, output)
    return asyncio.run(_COMMANDS[args.command](args, output))


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the ``journey-async`` command with *argv* (default: ``sys.argv[1:]``);
    return its exit code.

    .. versionadded:: 0.1.0
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    secrets = _secrets(arguments)
    try:
        try:
            args = _parse(arguments)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        return _dispatch(args)
    except KeyboardInterrupt:
        _fail("interrupted", secrets)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (| head): not worth a message, and stdout
        # must not be flushed again at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except UsageError as exc:
        _fail(str(exc), secrets)
        return EXIT_USAGE
    except JourneyError as exc:
        _fail(_describe_error(exc), secrets)
        return EXIT_FAILED
    except (ValueError, TypeError, OSError, ImportError) as exc:
        # Bad input or configuration refused before anything was sent, a
        # file or port that is not there: the message says which.
        _fail(str(exc) or type(exc).__name__, secrets)
        return EXIT_USAGE
    except Exception as exc:
        _fail(f"unexpected {_describe_error(exc)} (please report it)", secrets)
        return EXIT_FAILED
