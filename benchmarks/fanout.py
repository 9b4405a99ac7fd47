"""
Fan-out: N statistics GETs at C in flight, journey_async against the usual
ways to do it, and the ideal.

Run from the project root::

    python -m benchmarks.fanout                      # the full table (about 10 minutes)
    python -m benchmarks.fanout --latency-ms 0 --concurrency 100 --repeat 3
    python -m benchmarks.fanout --rss-ids 0          # skip the memory part
    python -m benchmarks.fanout --loop uvloop        # the clients on uvloop

The emulator runs in another process (`spawn_emulator_process`, uvicorn with
httptools and uvloop when installed), one per latency setting, so the
clients measured here do not share its event loop or its GIL. Every client
runs on the default asyncio event loop, as most applications do, or on
uvloop with ``--loop uvloop``.

Clients, each one fresh for every run (connections included in the time):

- ``journey_async``: ``AsyncJourneyClient(max_concurrency=C).get_stats_many(ids)``
  with everything at its default (the retry policy included), and typed
  results: what a user gets.
- ``ja+httpcore``: the same with ``transport=httpx.AsyncHTTPTransport(...)``,
  plain httpcore one argument away; ``ja+aiohttp``: the same over
  httpx-aiohttp's ``AiohttpTransport`` (when installed). These two show what
  the default transport buys, everything else being equal.
- ``httpx``: ``httpx.AsyncClient()`` and a semaphore of C, the usual way;
  ``httpx C``: the same with its pool limits raised to C.
- ``httpx+aiohttp``: httpx over httpx-aiohttp's ``AiohttpTransport`` (when
  installed).
- ``aiohttp``: ``aiohttp.ClientSession`` with a connector limit of C and C
  workers pulling from one iterator of ids; the body decoded with ``json.loads``.
- ``ideal``: ``ceil(N / C) * latency``, the wall time of a client that costs
  nothing.

Every run checks that all N answers arrived with status 200. The tables show
the median wall time of the runs; ``aiohttp/ja`` is aiohttp's wall time over
journey_async's (above 1.0: journey_async is faster), ``ja/ideal`` how far
journey_async is from the ideal.

Memory: ``iter_stats`` (and, for contrast, ``get_stats_many``, whose result
list must grow) over lazily generated ids, each in a fresh process, reporting
its peak RSS: iter_stats' must not grow with the number of ids.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import importlib.util
import math
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx

import journey_async as ja
from journey_async.testing import spawn_emulator_process

from ._common import (
    AUTH,
    LOOPS,
    STATS_PATH,
    TOKEN,
    check_all_ok,
    gather_bounded,
    machine,
    run_aiohttp,
    run_journey_async,
    run_on,
    sample_ids,
)

RUN_TIMEOUT = 180.0
"""Seconds one run may take before it counts as failed: plain httpx at C=10
and 50 ms takes about 6 s; a run that hangs must not hang the benchmark."""

Runner = Callable[[str, Sequence[str], int], Awaitable[None]]


async def run_journey_async_httpcore(url: str, ids: Sequence[str], concurrency: int) -> None:
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=concurrency))
    async with ja.AsyncJourneyClient(
        TOKEN, base_url=url, max_concurrency=concurrency, transport=transport
    ) as client:
        check_all_ok(await client.get_stats_many(ids), len(ids))


def aiohttp_transport(concurrency: int) -> httpx.AsyncBaseTransport:
    """httpx-aiohttp's transport; imported by name, as it is optional here."""
    module = importlib.import_module("httpx_aiohttp")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport: httpx.AsyncBaseTransport = module.AiohttpTransport(limits=limits)
    return transport


async def run_journey_async_aiohttp(url: str, ids: Sequence[str], concurrency: int) -> None:
    transport = aiohttp_transport(concurrency)
    async with ja.AsyncJourneyClient(
        TOKEN, base_url=url, max_concurrency=concurrency, transport=transport
    ) as client:
        check_all_ok(await client.get_stats_many(ids), len(ids))


async def run_httpx_client(client: httpx.AsyncClient, ids: Sequence[str], concurrency: int) -> None:
    async def one(journey_id: str) -> None:
        response = await client.get(STATS_PATH.format(journey_id))
        response.raise_for_status()
        response.json()

    async with client:
        await gather_bounded(concurrency, (one(journey_id) for journey_id in ids))


async def run_httpx(url: str, ids: Sequence[str], concurrency: int) -> None:
    await run_httpx_client(httpx.AsyncClient(base_url=url, headers=AUTH), ids, concurrency)


async def run_httpx_limits(url: str, ids: Sequence[str], concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits)
    await run_httpx_client(client, ids, concurrency)


async def run_httpx_aiohttp(url: str, ids: Sequence[str], concurrency: int) -> None:
    client = httpx.AsyncClient(base_url=url, headers=AUTH, transport=aiohttp_transport(concurrency))
    await run_httpx_client(client, ids, concurrency)


CLIENTS: dict[str, Runner] = {
    "journey_async": run_journey_async,
    "ja+httpcore": run_journey_async_httpcore,
    "ja+aiohttp": run_journey_async_aiohttp,
    "httpx": run_httpx,
    "httpx C": run_httpx_limits,
    "httpx+aiohttp": run_httpx_aiohttp,
    "aiohttp": run_aiohttp,
}


async def timed(runner: Runner, url: str, ids: Sequence[str], concurrency: int) -> float:
    started = time.perf_counter()
    async with asyncio.timeout(RUN_TIMEOUT):
        await runner(url, ids, concurrency)
    return time.perf_counter() - started


async def measure(
    url: str, clients: Sequence[str], ids: Sequence[str], concurrency: int, repeat: int
) -> dict[str, float]:
    """Median wall time per client; each round runs every client, in a rotated order."""
    walls: dict[str, list[float]] = {name: [] for name in clients}
    for round_number in range(repeat):
        shift = round_number % len(clients)
        for name in [*clients[shift:], *clients[:shift]]:
            walls[name].append(await timed(CLIENTS[name], url, ids, concurrency))
            print(f"  {name} C={concurrency}: {walls[name][-1]:.3f} s", file=sys.stderr)
    return {name: statistics.median(values) for name, values in walls.items()}


def table(
    latency: float,
    count: int,
    repeat: int,
    clients: Sequence[str],
    rows: dict[int, dict[str, float]],
) -> list[str]:
    header = ["C", *clients, "ideal", "aiohttp/ja", "httpx/ja"]
    lines = [
        f"Emulator latency {latency * 1000:g} ms, N={count}, wall seconds, median of {repeat}:",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---:|" * len(header),
    ]
    for concurrency, walls in rows.items():
        ideal = math.ceil(count / concurrency) * latency
        ja_wall = walls["journey_async"]
        cells = [str(concurrency), *(f"{walls[name]:.3f}" for name in clients)]
        cells.append(f"{ideal:.3f} ({ja_wall / ideal:.2f}x)" if ideal else "0")
        cells.append(f"{walls['aiohttp'] / ja_wall:.2f}" if "aiohttp" in walls else "-")
        cells.append(f"{walls['httpx'] / ja_wall:.1f}" if "httpx" in walls else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# --- peak RSS of iter_stats, in a fresh process per size ------------------------------------


async def rss_child(url: str, mode: str, count: int, concurrency: int) -> None:
    journeys = sample_ids(300)
    ids = (journeys[index % 300] for index in range(count))  # lazy: never a list of N
    seen = 0
    async with ja.AsyncJourneyClient(TOKEN, base_url=url, max_concurrency=concurrency) as client:
        if mode == "iter":
            async for result in client.iter_stats(ids):
                seen += result.ok
        else:
            seen = sum(result.ok for result in await client.get_stats_many(ids))
    if seen != count:
        raise RuntimeError(f"{count - seen} of {count} failed")


def peak_rss_mib(url: str, mode: str, count: int, concurrency: int) -> float:
    args = [sys.executable, "-m", "benchmarks.fanout", "--rss-child", mode, str(count)]
    args += ["--url", url, "--concurrency", str(concurrency)]
    output = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return float(output.strip()) / 1024  # ru_maxrss is in KiB on Linux


# --- the run --------------------------------------------------------------------------------


def describe_machine(loop: str) -> str:
    return machine(("httpx", "httpcore", "httptools", "aiohttp", "anyio", "uvloop"), f"{loop} loop")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="requests per run (1000)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[10, 50, 100, 200], help="C values"
    )
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 50.0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per cell; the median shows")
    parser.add_argument("--clients", nargs="+", choices=list(CLIENTS), default=list(CLIENTS))
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="the clients' event loop")
    parser.add_argument(
        "--rss-ids",
        type=int,
        nargs="*",
        default=[1_000, 10_000, 100_000],
        help="sizes for the peak RSS part; none to skip it",
    )
    parser.add_argument("--rss-child", nargs=2, metavar=("MODE", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.rss_child:
        mode, count = args.rss_child[0], int(args.rss_child[1])
        asyncio.run(rss_child(args.url, mode, count, args.concurrency[0]))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return 0

    # In the order of CLIENTS; journey_async always, the ratios need it.
    clients = [name for name in CLIENTS if name in args.clients or name == "journey_async"]
    if not importlib.util.find_spec("httpx_aiohttp"):
        print("httpx-aiohttp is not installed: its columns are left out", file=sys.stderr)
        clients = [name for name in clients if name not in ("ja+aiohttp", "httpx+aiohttp")]
    ids = sample_ids(args.n)
    print(f"Machine: {describe_machine(args.loop)}")
    print(f"Command: python -m benchmarks.fanout {' '.join(argv or sys.argv[1:])}".rstrip())
    for latency_ms in args.latency_ms:
        latency = latency_ms / 1000
        with spawn_emulator_process(journeys=300, latency=latency, token=TOKEN) as url:
            rows: dict[int, dict[str, float]] = {}
            for concurrency in args.concurrency:
                # One throwaway round: imports, the server's first connections.
                run_on(args.loop, timed(run_journey_async, url, ids[:concurrency], concurrency))
                rows[concurrency] = run_on(
                    args.loop, measure(url, clients, ids, concurrency, args.repeat)
                )
        print()
        print("\n".join(table(latency, args.n, args.repeat, clients, rows)))

    if args.rss_ids:
        print()
        print("Peak RSS of a fresh process running the whole fan-out, C=100, MiB:")
        print()
        print("| ids | iter_stats | get_stats_many |")
        print("|---:|---:|---:|")
        with spawn_emulator_process(journeys=300, token=TOKEN) as url:
            for count in args.rss_ids:
                iterated = peak_rss_mib(url, "iter", count, 100)
                listed = peak_rss_mib(url, "many", count, 100)
                print(f"| {count:,} | {iterated:.1f} | {listed:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
