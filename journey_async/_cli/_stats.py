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
from collections.abc import Sequence
from typing import Any, Final, TextIO

from journey_async._exceptions import APIStatusError, JourneyError
from journey_async._models import InAppStats, MessageStats, PointStats, StatsResult, UnknownStats

from ._args import EXIT_FAILED, EXIT_OK, _client, _journey_ids
from ._output import (
    _Column,
    _count,
    _describe_error,
    _Output,
    _percent,
    _seconds,
    _short_error,
)

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
