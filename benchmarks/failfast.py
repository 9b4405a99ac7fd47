"""
Fail fast and streams that end: what a wrong token, a wrong base URL and a
``break`` out of ``iter_stats`` cost, with the client at its defaults.

Run from the project root::

    python -m benchmarks.failfast               # about a minute and a half
    python -m benchmarks.failfast --repeat 3

- Wrong token: the emulator, in another process (`spawn_emulator_process`),
  accepts another token; ``get_stats_many`` of 300 ids with default
  settings. Requests are counted as they start, by a wrapper around the
  default transport; the goal is at most the client's ``max_concurrency``
  (what is in flight when the first 401 comes back).
- Wrong base URL: a port on 127.0.0.1 where nothing listens, default retry
  policy (real backoff, so each run takes seconds): the wall time of 300 ids
  against that of one id; the goal is at most 1.5x.
- ``iter_stats`` break: 300 ids (endlessly cycled) against the emulator with
  20 ms latency, a ``break`` after the first result without ``async with``;
  the requests started after the break and the tasks left once it settled
  (both goals: 0).

Medians of ``--repeat`` runs, each with a fresh client.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import statistics
import time
from collections.abc import Sequence

import httpx

import journey_async as ja
from journey_async._http import default_transport
from journey_async.testing import spawn_emulator_process

from ._common import TOKEN, machine, markdown_table, sample_ids

IDS = 300


class Counting(httpx.AsyncBaseTransport):
    """The default transport, counting the requests that start."""

    def __init__(self, max_connections: int) -> None:
        self.inner = default_transport(max_connections)
        self.started = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.started += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wrong_token(url: str) -> tuple[float, int, int]:
    """Seconds, requests started, and max_concurrency."""
    transport = Counting(ja.AsyncJourneyClient("x").max_concurrency)
    async with ja.AsyncJourneyClient("wrong-token", base_url=url, transport=transport) as client:
        started = time.perf_counter()
        results = await client.get_stats_many(sample_ids(IDS))
        elapsed = time.perf_counter() - started
    if not all(isinstance(r.error, ja.AuthenticationError | ja.NotAttemptedError) for r in results):
        raise RuntimeError("a journey did not fail as expected")
    return elapsed, transport.started, client.max_concurrency


async def wrong_url(count: int) -> tuple[float, int]:
    """Seconds for *count* ids against a closed port, and requests started."""
    url = f"http://127.0.0.1:{closed_port()}"
    transport = Counting(ja.AsyncJourneyClient("x").max_concurrency)
    async with ja.AsyncJourneyClient("t", base_url=url, transport=transport) as client:
        started = time.perf_counter()
        results = await client.get_stats_many([f"journey-{n}" for n in range(count)])
        elapsed = time.perf_counter() - started
    if any(r.ok for r in results):
        raise RuntimeError("a journey succeeded against a closed port")
    return elapsed, transport.started


async def iter_break(url: str) -> tuple[int, int, int]:
    """Requests started before the break, after it, and tasks left."""
    transport = Counting(ja.AsyncJourneyClient("x").max_concurrency)
    async with ja.AsyncJourneyClient(TOKEN, base_url=url, transport=transport) as client:
        await client.get_stats_many(sample_ids(64))  # connections open, as in a warm app
        baseline = len(asyncio.all_tasks())
        before = transport.started
        async for _ in client.iter_stats(itertools.cycle(sample_ids(IDS))):
            break
        at_break = transport.started
        for _ in range(200):  # until the workers are gone, 2 s at most
            if len(asyncio.all_tasks()) <= baseline:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # room for a leftover worker to send, were there one
        return at_break - before, transport.started - at_break, len(asyncio.all_tasks()) - baseline


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failfast")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    args = parser.parse_args(argv)
    repeat: int = args.repeat

    print(machine(["journey-async", "httpx", "anyio"]))
    print(f"{IDS} ids, default settings, medians of {repeat} runs\n")

    with spawn_emulator_process(journeys=300, token=TOKEN) as url:
        token_runs = [asyncio.run(wrong_token(url)) for _ in range(repeat)]
    with spawn_emulator_process(journeys=300, token=TOKEN, latency=0.02) as url:
        break_runs = [asyncio.run(iter_break(url)) for _ in range(repeat)]
    one_runs = [asyncio.run(wrong_url(1)) for _ in range(repeat)]
    many_runs = [asyncio.run(wrong_url(IDS)) for _ in range(repeat)]

    token_time = statistics.median(r[0] for r in token_runs)
    token_sent = [r[1] for r in token_runs]
    one = statistics.median(r[0] for r in one_runs)
    many = statistics.median(r[0] for r in many_runs)
    rows = [
        [
            "wrong token: requests sent (max_concurrency)",
            f"{statistics.median(token_sent):g} (max {max(token_sent)}; {token_runs[0][2]})",
        ],
        ["wrong token: wall time", f"{token_time * 1000:.1f} ms"],
        ["wrong base URL: 1 id, wall time", f"{one:.2f} s"],
        [f"wrong base URL: {IDS} ids, wall time", f"{many:.2f} s"],
        [f"wrong base URL: {IDS} ids / 1 id", f"{many / one:.2f}x"],
        [
            f"wrong base URL: {IDS} ids, attempts (max)",
            f"{statistics.median(r[1] for r in many_runs):g} ({max(r[1] for r in many_runs)})",
        ],
        [
            "iter_stats break: requests before it (max)",
            f"{statistics.median(r[0] for r in break_runs):g} ({max(r[0] for r in break_runs)})",
        ],
        ["iter_stats break: requests after it (max)", f"{max(r[1] for r in break_runs)}"],
        ["iter_stats break: tasks left (max)", f"{max(r[2] for r in break_runs)}"],
    ]
    print("\n".join(markdown_table(["measure", "value"], rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
