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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from journey_async._client import AsyncJourneyClient
from journey_async._converter import unstructure_point_stats
from journey_async._models import StatsResult

from ._args import EXIT_FAILED, EXIT_OK, PROG
from ._inputs import _require_uvicorn
from ._output import (
    ProgressCallback,
    _Column,
    _count,
    _Output,
    _plural,
    _rate,
    _seconds,
    _short_error,
)
from ._stats import _STAT_FIELDS, _counts_table, _stats_summary

if TYPE_CHECKING:
    from journey_async._emulator._app import JourneyEmulator
    from journey_async._emulator._data import Endpoint

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
    """How many points, and the sum of each count over them."""

    points: int = 0
    sums: Counter[str] = attrs.Factory(Counter)

    def add(self, fields: Mapping[str, Any]) -> None:
        self.points += 1
        # A rate does not add up: it is worked out again from the sums.
        self.sums.update({name: value for name, value in fields.items() if name != "conversion"})

    def fields(self) -> dict[str, float]:
        """The sums, and the conversion worked out from them when messages were sent."""
        fields: dict[str, float] = dict(self.sums)
        if "sent" in fields:
            sent, opened = self.sums["sent"], self.sums["opened"]
            fields["conversion"] = opened / sent * 100 if sent else 0.0
        return fields


_CHANNELS: Final = {
    "message": "message (push, email, SMS...)",
    "in_app": "in-app",
    "unknown": "other (unknown shape)",
}


def _demo_tables(results: Sequence[StatsResult], output: _Output, top: int) -> None:
    per_journey: list[tuple[_Totals, StatsResult]] = []
    channels = {kind: _Totals() for kind in _CHANNELS}
    for result in results:
        if result.stats is None:
            continue
        totals = _Totals()
        for point in result.stats.points:
            kind, fields = unstructure_point_stats(point.stat)
            if kind == "unknown":
                channels[kind].points += 1
                continue
            totals.add(fields)
            channels[kind].add(fields)
        per_journey.append((totals, result))
    per_journey.sort(key=lambda item: item[0].sums["sent"], reverse=True)

    ranked = [
        (str(rank), result.stats.title, result.journey_id, totals.fields())
        for rank, (totals, result) in enumerate(per_journey[:top], start=1)
        if result.stats is not None
    ]
    number = _Column("#", numeric=True)
    output.line()
    _counts_table(
        output,
        title=f"Top {len(ranked)} journeys by messages sent",
        wide=(
            [number, _Column("Journey"), _Column("ID", whole=True)],
            [[rank, title, journey_id] for rank, title, journey_id, _ in ranked],
        ),
        narrow=(
            [number, _Column("Journey", whole=True)],
            [[rank, f"{title}\n{journey_id}"] for rank, title, journey_id, _ in ranked],
        ),
        counts=[fields for *_, fields in ranked],
        shown=_STAT_FIELDS[:5],
    )
    shown_channels = [
        (label, channels[kind])
        for kind, label in _CHANNELS.items()
        if kind != "unknown" or channels[kind].points
    ]
    labels = (
        [_Column("Channel"), _Column("Points", numeric=True)],
        [[label, _count(totals.points)] for label, totals in shown_channels],
    )
    output.line()
    _counts_table(
        output,
        title="Totals per channel",
        wide=labels,
        narrow=labels,
        counts=[totals.fields() for _, totals in shown_channels],
    )


def _requests(requests: int, faults: int) -> str:
    return f"{_plural(requests, 'request')} ({_count(faults)} met a transient fault)"


def _attempts(emulator: JourneyEmulator, endpoint: str) -> tuple[int, int]:
    """Requests the emulator received for *endpoint*, and how many it faulted."""
    received = [r for r in emulator.requests if r.endpoint == endpoint]
    return len(received), sum(r.fault is not None for r in received)


_T = TypeVar("_T")


async def _phase(
    output: _Output,
    emulator: JourneyEmulator,
    endpoint: Endpoint,
    total: int,
    call: Callable[[ProgressCallback | None], Awaitable[_T]],
) -> tuple[_T, float, int, int]:
    """
    One step of the demo, with a progress bar over *total*: what *call*
    returned, the seconds it took, and the requests the emulator received
    for *endpoint* meanwhile, and how many of them it faulted.
    """
    emulator.reset_counters()
    started = time.perf_counter()
    with output.progress("journeys" if endpoint == "stats" else "users", total) as progress:
        outcome = await call(progress)
    elapsed = time.perf_counter() - started
    requests, faults = _attempts(emulator, endpoint)
    return outcome, elapsed, requests, faults


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
            f"{_plural(len(ids), 'journey')}, {args.latency_ms:g} ms latency, "
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
                f"1. Statistics of all {_plural(len(ids), 'journey')}, "
                f"up to {client.max_concurrency} requests at a time"
            )
            results, stats_elapsed, stats_requests, stats_faults = await _phase(
                output,
                emulator,
                "stats",
                len(ids),
                lambda progress: client.get_stats_many(ids, progress=progress),
            )
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
                f"2. Removal of {_plural(len(demo_users), 'user')} from all journeys, "
                f"in {_plural(batches, 'batch')} of up to {_count(batch_size)}"
            )
            removal, removal_elapsed, removal_requests, removal_faults = await _phase(
                output,
                emulator,
                "remove",
                len(demo_users),
                lambda progress: client.remove_users(
                    demo_users, all_journeys=True, batch_size=batch_size, progress=progress
                ),
            )

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
            f"the other {_plural(others_after, 'membership')} are untouched"
        )
    else:
        output.note(
            f"{PROG}: error: the emulator still holds {_plural(left, 'membership')} of removed "
            f"users, and {_plural(others_before - others_after, 'other membership')} changed"
        )
    output.line()
    output.line(f"Done in {_seconds(time.perf_counter() - started)}.")
    all_ok = verified and all(r.ok for r in results)
    return EXIT_OK if all_ok else EXIT_FAILED
