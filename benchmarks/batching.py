"""
Coalescing removals: N concurrent single-user removals through a
`RemovalBatcher`, against the same N as plain `remove_users` calls.

Run from the project root::

    python -m benchmarks.batching                  # 10,000 calls, 0 and 20 ms latency
    python -m benchmarks.batching --calls 2000 --repeat 3 --latency-ms 0

The emulator runs in another process (`spawn_emulator_process`), one per
latency setting. Each round runs both modes, alternating which goes first,
with a fresh client warmed up by one request; the table shows the median of
the rounds. Requests are counted by a transport wrapped around the client's
default one, so the I/O path is the one users get.

Columns: requests sent; wall time from the first call to the last answer;
the latency each caller saw, from its own call to its own return (p50, p99);
calls that raised.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

import anyio
import anyio.abc
import attrs
import httpx

import journey_async as ja
from journey_async._http import default_transport
from journey_async.testing import spawn_emulator_process

from ._common import TOKEN


class CountingTransport(httpx.AsyncBaseTransport):
    """The client's own transport, counting the requests that go through it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@attrs.frozen
class Run:
    requests: int
    wall: float
    p50: float
    p99: float
    errors: int


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def run_mode(url: str, mode: str, calls: int, *, rate: float, max_delay: float | None) -> Run:
    """One round of *calls* single-user removals, batched or not."""
    max_concurrency = ja.AsyncJourneyClient(TOKEN).max_concurrency
    transport = CountingTransport(default_transport(max_concurrency))
    latencies: list[float] = []
    errors = 0

    async def timed(remove: Callable[[], Awaitable[object]]) -> None:
        nonlocal errors
        start = time.perf_counter()
        try:
            await remove()
        except ja.JourneyError:
            errors += 1
        latencies.append(time.perf_counter() - start)

    async def start_calls(
        task_group: anyio.abc.TaskGroup, remove: Callable[..., Awaitable[object]]
    ) -> None:
        for n in range(calls):
            if rate:
                # An absolute schedule: sleeping's overshoot does not add up.
                ahead = start + n / rate - time.perf_counter()
                if ahead > 0:
                    await anyio.sleep(ahead)
            task_group.start_soon(timed, functools.partial(remove, [f"bench-user-{n}"]))

    async with ja.AsyncJourneyClient(TOKEN, base_url=url, transport=transport) as client:
        await client.remove_users(["warm-up"], all_journeys=True)  # opens a connection
        transport.requests = 0
        start = time.perf_counter()
        if mode == "batched":
            async with (
                client.removal_batcher(max_delay=max_delay) as batcher,
                anyio.create_task_group() as task_group,
            ):
                await start_calls(task_group, functools.partial(batcher.remove, all_journeys=True))
        else:
            async with anyio.create_task_group() as task_group:
                await start_calls(
                    task_group, functools.partial(client.remove_users, all_journeys=True)
                )
        wall = time.perf_counter() - start
    latencies.sort()
    return Run(
        requests=transport.requests,
        wall=wall,
        p50=_percentile(latencies, 0.50),
        p99=_percentile(latencies, 0.99),
        errors=errors,
    )


def _median_run(runs: Sequence[Run]) -> Run:
    return Run(
        requests=round(statistics.median(r.requests for r in runs)),
        wall=statistics.median(r.wall for r in runs),
        p50=statistics.median(r.p50 for r in runs),
        p99=statistics.median(r.p99 for r in runs),
        errors=round(statistics.median(r.errors for r in runs)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batching", description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds per mode (median shown)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="calls started per second, evenly spaced; 0 (the default) starts all at once",
    )
    parser.add_argument(
        "--latency-ms",
        default="0,20",
        help="the emulator's added latency per response, comma-separated settings",
    )
    parser.add_argument(
        "--max-delay", type=float, default=None, help="the batcher's max_delay (its default)"
    )
    args = parser.parse_args(argv)
    latencies = [float(v) for v in args.latency_ms.split(",")]
    max_delay = args.max_delay

    arrivals = f"started at {args.rate:g} a second" if args.rate else "started at once"
    print(
        f"{args.calls:,} single-user removals (all_journeys=True), {arrivals}; "
        f"median of {args.repeat} rounds; client defaults "
        f"(max_concurrency={ja.AsyncJourneyClient(TOKEN).max_concurrency}, "
        f"batch_size={ja.AsyncJourneyClient(TOKEN).batch_size}); batcher max_delay="
        f"{'default' if max_delay is None else max_delay}\n"
    )
    print("| emulator latency | mode | requests | wall (s) | p50 (ms) | p99 (ms) | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for latency_ms in latencies:
        with spawn_emulator_process(journeys=20, latency=latency_ms / 1000, token=TOKEN) as url:
            runs: dict[str, list[Run]] = {"batched": [], "unbatched": []}
            for round_number in range(args.repeat):
                order = ["batched", "unbatched"]
                if round_number % 2:
                    order.reverse()
                for mode in order:
                    runs[mode].append(
                        asyncio.run(
                            run_mode(url, mode, args.calls, rate=args.rate, max_delay=max_delay)
                        )
                    )
            for mode in ("batched", "unbatched"):
                run = _median_run(runs[mode])
                print(
                    f"| {latency_ms:g} ms | {mode} | {run.requests:,} | {run.wall:.2f} "
                    f"| {run.p50 * 1000:.1f} | {run.p99 * 1000:.1f} | {run.errors:,} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
