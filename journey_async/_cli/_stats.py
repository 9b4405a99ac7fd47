"""
``journey-async stats``: the statistics of journeys, fetched concurrently and
printed as a table, JSON (one object per journey) or CSV (one row per point).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final, TextIO

import attrs

from journey_async._converter import unstructure_point_stats
from journey_async._exceptions import APIStatusError, JourneyError
from journey_async._models import StatsResult

from ._args import EXIT_FAILED, EXIT_OK, PROG
from ._inputs import _client, _journey_ids
from ._output import (
    _Column,
    _count,
    _csv_text,
    _describe_error,
    _Output,
    _percent,
    _plural,
    _printable,
    _seconds,
    _short_error,
)
from ._stopped import call_stopper, stopped_message


@attrs.frozen
class _StatField:
    """A count or rate a known point shape carries, as tables show it."""

    name: str  # the API's key, as `unstructure_point_stats` gives it
    header: str
    short: str  # in the one-cell layout: "sent 22,648", "conv. 0.26%"
    unit: str = ""

    def format(self, value: float) -> str:
        return _percent(value) if self.unit == "%" else _count(int(value))


_STAT_FIELDS: Final = (
    _StatField("sent", "Sent", "sent"),
    _StatField("opened", "Opened", "opened"),
    _StatField("conversion", "Conv. %", "conv.", unit="%"),
    _StatField("shows", "Shows", "shows"),
    _StatField("interactions", "Interactions", "interactions"),
    _StatField("skipped", "Skipped", "skipped"),
)
_STAT_COLUMNS: Final = tuple(_Column(field.header, numeric=True) for field in _STAT_FIELDS)
_CSV_HEADER: Final = (
    "journey_id",
    "journey_title",
    "point_title",
    "campaign_code",
    "preset_code",
    "kind",
    *(field.name for field in _STAT_FIELDS),
    "other",
    "error",
)


def _error_json(error: JourneyError) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "message": str(error),
        "status_code": error.status_code if isinstance(error, APIStatusError) else None,
    }


def _result_json(result: StatsResult) -> dict[str, Any]:
    if result.stats is None:
        assert result.error is not None
        return {"id": result.journey_id, "error": _error_json(result.error)}
    points = []
    for point in result.stats.points:
        kind, fields = unstructure_point_stats(point.stat)
        points.append(
            {
                "title": point.title,
                "campaign_code": point.campaign_code,
                "preset_code": point.preset_code,
                "kind": kind,
                "stat": fields,
            }
        )
    return {"id": result.journey_id, "title": result.stats.title, "points": points}


class _CsvWriter:
    """
    `csv.writer` with ``\n`` line ends, that quotes a cell holding a bare CR
    too: before Python 3.13 a writer quotes only the characters of its own
    line terminator, and a reader takes a CR left bare for the end of a row.
    """

    def __init__(self, file: TextIO) -> None:
        self._minimal = csv.writer(file, lineterminator="\n")
        self._quoted = csv.writer(file, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)

    def writerow(self, row: Sequence[Any]) -> None:
        has_cr = any(isinstance(cell, str) and "\r" in cell for cell in row)
        (self._quoted if has_cr else self._minimal).writerow(row)


def _write_csv(results: Sequence[StatsResult], file: TextIO) -> None:
    writer = _CsvWriter(file)
    writer.writerow(_CSV_HEADER)
    blank_point = [""] * (len(_CSV_HEADER) - 4)
    for result in results:
        # Text from the user (the ids) or the server (titles, codes): never a
        # formula (`_csv_text`). The numbers and the JSON of "other" are left as they are.
        journey_id = _csv_text(result.journey_id)
        if result.stats is None:
            assert result.error is not None
            error = _csv_text(_describe_error(result.error))
            writer.writerow([journey_id, "", *blank_point, "", error])
            continue
        title = _csv_text(result.stats.title)
        if not result.stats.points:
            # Still one row: every journey asked for is in the output.
            writer.writerow([journey_id, title, *blank_point, "", ""])
        for point in result.stats.points:
            kind, fields = unstructure_point_stats(point.stat)
            if kind == "unknown":
                numbers = [""] * len(_STAT_FIELDS)
                other = json.dumps(fields, separators=(",", ":"))
            else:
                numbers = [fields.get(field.name, "") for field in _STAT_FIELDS]
                other = ""
            writer.writerow(
                [
                    journey_id,
                    title,
                    _csv_text(point.title),
                    _csv_text(point.campaign_code or ""),
                    _csv_text(point.preset_code or ""),
                    kind,
                    *numbers,
                    other,
                    "",
                ]
            )


def _unknown_fields(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in fields.items())


def _stat_cells(fields: Mapping[str, Any], shown: Sequence[_StatField] = _STAT_FIELDS) -> list[str]:
    """A cell per *shown* count, blank where *fields* has no such count."""
    return [field.format(fields[field.name]) if field.name in fields else "" for field in shown]


def _stat_text(fields: Mapping[str, Any], shown: Sequence[_StatField] = _STAT_FIELDS) -> str:
    """The *shown* counts in *fields*, named, in one cell: "sent 22,648, opened 60"."""
    return ", ".join(
        f"{field.short} {field.format(fields[field.name])}{field.unit}"
        for field in shown
        if field.name in fields
    )


def _counts_table(
    output: _Output,
    *,
    title: str,
    wide: tuple[Sequence[_Column], Sequence[Sequence[str]]],
    narrow: tuple[Sequence[_Column], Sequence[Sequence[str]]],
    counts: Sequence[Mapping[str, Any]],
    shown: Sequence[_StatField] = _STAT_FIELDS,
) -> None:
    """
    Rows of labels and counts: a column per *shown* count (after the *wide*
    labels) when that fits the terminal, else the *narrow* labels and the
    counts named in one cell. *counts* has the fields of each row.
    """
    columns = [*wide[0], *(_Column(field.header, numeric=True) for field in shown)]
    rows = [
        [*labels, *_stat_cells(row, shown)] for labels, row in zip(wide[1], counts, strict=True)
    ]
    if output.fits(columns, rows):
        output.table(columns, rows, title=title)
        return
    output.table(
        [*narrow[0], _Column("Statistics")],
        [[*labels, _stat_text(row, shown)] for labels, row in zip(narrow[1], counts, strict=True)],
        title=title,
    )


def _stats_table(results: Sequence[StatsResult], output: _Output) -> None:
    """
    One row per point with a column per count when the terminal is wide
    enough for it (pipes always are); else three columns, the counts of a
    point in one cell, so that 80 columns stay readable.
    """
    wide = _wide_table(results)
    if output.fits(*wide):
        output.table(*wide)
    else:
        output.table(*_narrow_table(results))


def _wide_table(results: Sequence[StatsResult]) -> tuple[list[_Column], list[list[str]]]:
    rows: list[list[str]] = []
    has_unknown = False
    for result in results:
        if result.stats is None:
            assert result.error is not None
            rows.append(["", result.journey_id, f"error: {_short_error(result.error)}"])
            continue
        if not result.stats.points:
            rows.append(
                [_printable(result.stats.title, lines=False), result.journey_id, "(no points)"]
            )
        for index, point in enumerate(result.stats.points):
            kind, fields = unstructure_point_stats(point.stat)
            first = index == 0
            row = [
                _printable(result.stats.title, lines=False) if first else "",
                result.journey_id if first else "",
                _printable(point.title, lines=False),
                kind,
            ]
            if kind == "unknown":
                has_unknown = True
                row += [""] * len(_STAT_FIELDS) + [_unknown_fields(fields)]
            else:
                row += _stat_cells(fields)
            rows.append(row)
    columns = [
        _Column("Journey"),
        _Column("ID", whole=True),
        _Column("Point"),
        _Column("Kind"),
        *_STAT_COLUMNS,
        *([_Column("Other fields")] if has_unknown else []),
    ]
    return columns, [(row + [""] * len(columns))[: len(columns)] for row in rows]


def _narrow_table(results: Sequence[StatsResult]) -> tuple[list[_Column], list[list[str]]]:
    rows: list[list[str]] = []
    for result in results:
        if result.stats is None:
            assert result.error is not None
            rows.append([result.journey_id, "", f"error: {_short_error(result.error)}"])
            continue
        journey = f"{_printable(result.stats.title, lines=False)}\n{result.journey_id}"
        if not result.stats.points:
            rows.append([journey, "(no points)", ""])
        for index, point in enumerate(result.stats.points):
            kind, fields = unstructure_point_stats(point.stat)
            numbers = _unknown_fields(fields) if kind == "unknown" else _stat_text(fields)
            rows.append(
                [journey if index == 0 else "", _printable(point.title, lines=False), numbers]
            )
    return [_Column("Journey", whole=True), _Column("Point"), _Column("Statistics")], rows


def _stats_summary(results: Sequence[StatsResult], elapsed: float) -> str:
    failures = Counter(type(r.error).__name__ for r in results if r.error is not None)
    failed = sum(failures.values())
    summary = (
        f"{_plural(len(results), 'journey')}: {_count(len(results) - failed)} ok, "
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
    stopper = call_stopper(r.error for r in results)
    if stopper is not None and not any(r.ok for r in results):
        # A wrong token or URL: the same error for every journey. One line
        # says what to check; JSON and CSV still account for every journey.
        summary = (
            f"{PROG}: error: {stopped_message(stopper, args, client.base_url)}; "
            f"{_plural(len(results), 'journey')} not fetched"
        )
        if args.format == "table":
            output.note(summary)
            return EXIT_FAILED
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
