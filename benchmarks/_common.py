"""
What the benchmarks share: the emulator's token and paths, the sample ids,
the bounded fan-outs, the journey_async and aiohttp runs, the result check,
the machine line and Markdown tables.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import journey_async as ja
from journey_async.testing import JourneyEmulator

TOKEN = "bench-token"  # noqa: S105 - the emulator's, chosen here
AUTH = {"Authorization": f"Api {TOKEN}"}
STATS_PATH = "/api/journey/{}/statistics/external"
SAMPLE_JOURNEYS = 300
"""Journeys the servers hold; requests cycle over them."""

_T = TypeVar("_T")


def sample_ids(count: int) -> list[str]:
    """*count* ids cycling over the emulator's sample journeys (same seed)."""
    journeys = JourneyEmulator.with_sample_data(SAMPLE_JOURNEYS, seed=0).journey_ids
    return [journeys[index % len(journeys)] for index in range(count)]


async def gather_bounded(concurrency: int, calls: Iterator[Awaitable[None]]) -> None:
    """The usual fan-out: one task per call, a semaphore for the bound."""
    semaphore = asyncio.Semaphore(concurrency)

    async def bounded(call: Awaitable[None]) -> None:
        async with semaphore:
            await call

    await asyncio.gather(*(bounded(call) for call in calls))


async def workers(
    concurrency: int, ids: Sequence[str], one: Callable[[str], Awaitable[object]]
) -> list[object]:
    """C tasks pulling from one iterator, the cheapest bounded fan-out; what
    *one* returns for each id, in input order, kept as a fan-out's caller
    keeps its results (so that every client pays for the memory it holds)."""
    results: list[object] = [None] * len(ids)
    pending = enumerate(ids)

    async def work() -> None:
        for index, journey_id in pending:
            results[index] = await one(journey_id)

    await asyncio.gather(*(work() for _ in range(concurrency)))
    return results


def check_all_ok(results: Sequence[ja.StatsResult], count: int) -> None:
    failed = [result for result in results if not result.ok]
    if len(results) != count or failed:
        raise RuntimeError(f"{len(failed)} of {count} failed, e.g. {failed[:1]}")


async def run_journey_async(url: str, ids: Sequence[str], concurrency: int) -> None:
    """What a user writes: every default but the bound, typed results."""
    async with ja.AsyncJourneyClient(TOKEN, base_url=url, max_concurrency=concurrency) as client:
        check_all_ok(await client.get_stats_many(ids), len(ids))


async def run_aiohttp(url: str, ids: Sequence[str], concurrency: int) -> None:
    """aiohttp at its best: one session, C workers, ``json.loads`` of each body."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector, headers=AUTH) as session:

        async def one(journey_id: str) -> object:
            async with session.get(STATS_PATH.format(journey_id)) as response:
                response.raise_for_status()
                return json.loads(await response.read())

        await workers(concurrency, ids, one)


LOOPS = ("asyncio", "uvloop")
"""The event loops a benchmark can run its clients on."""


def run_on(loop: str, coro: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(coro)`` on *loop*: asyncio's own, or uvloop's."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        factory = importlib.import_module("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def machine(packages: Iterable[str], loops: str = "asyncio default loop") -> str:
    """One line: CPUs, OS, Python, *loops*, and the versions of *packages*."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line for line in cpuinfo if line.startswith("model name")).split(":")[1]
    except (OSError, StopIteration):
        pass
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return (
        f"{os.cpu_count()} CPUs ({cpu.strip()}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {loops}; {', '.join(versions)}"
    )


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table, the first column left-aligned and the others right."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines
