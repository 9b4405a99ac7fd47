"""
``journey-async demo``: the library's main job (statistics of every journey,
then a batched removal) against an emulator served in this process, with
what it took and a check of the emulator's state afterwards.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from journey_async._client import AsyncJourneyClient
from journey_async._models import InAppStats, MessageStats, PointStats, StatsResult

from ._args import EXIT_FAILED, EXIT_OK, PROG, _require_uvicorn
from ._output import _Column, _count, _Output, _percent, _plural, _rate, _seconds, _short_error
from ._stats import _STAT_COLUMNS, _stats_summary

if TYPE_CHECKING:
    from journey_async._emulator._app import JourneyEmulator

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
    from journey_async._emulator._app import JourneyEmulator
    from journey_async._emulator._serving import serve_emulator

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
