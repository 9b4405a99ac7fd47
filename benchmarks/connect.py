"""
Connecting: what resolving a name costs when a fan-out opens C connections
at once. The default transport resolves a name itself (``loop.getaddrinfo``,
which asyncio runs in its default thread pool, uvloop in libuv's), to race
the addresses when there are several: once for the connections that open
within a few seconds (`journey_async._http._resolver`); an IP address is
connected to without the resolver.

Run from the project root::

    python -m benchmarks.connect                        # C = 100 and 1000, 7 rounds
    python -m benchmarks.connect --connections 1000 --rounds 11 --loop uvloop

Against the fast server (`benchmarks._server`) in another process, each
measurement in a fresh process (so that the thread pool starts cold, as a
new client's does), the kinds in an order that rotates each round; medians,
and ratios to the first row of each table, within the run:

- ``create_connection(ip)``: ``loop.create_connection`` to 127.0.0.1 for
  each, no resolver (the floor);
- ``connect(ip)``: the transport's ``connect`` to 127.0.0.1 (no resolver);
- ``connect(localhost)``: ``connect`` to a name (here one address), its
  addresses asked once and shared (`_resolver`);
- ``..., a lookup each``: the same with the resolver asked for every
  connection (as before the cache; and as ``connect`` did for an IP too);
- ``race(ip)``: the happy-eyeballs race over one address (what a name with
  several addresses costs beyond the resolver);
- ``get_stats_many ip`` / ``localhost``: a whole fan-out, C journeys at
  ``max_concurrency=C`` (C connections), with ``base_url`` an IP or a name.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx

import journey_async as ja
from journey_async._http import _connection
from journey_async._http._connection import HAPPY_EYEBALLS_DELAY, Connection, _tcp_to, connect
from journey_async._http._eyeballs import connect_first
from journey_async._http._resolver import Resolver

from ._common import LOOPS, TOKEN, check_all_ok, machine, markdown_table, run_on, sample_ids
from ._server import spawn_fast_server

UNCACHED = ", a lookup each"
CONNECTS = (
    "create_connection(ip)",
    "connect(ip)",
    "connect(localhost)",
    "connect(localhost)" + UNCACHED,
    "race(ip)",
)
FANOUTS = ("get_stats_many ip", "get_stats_many localhost", "get_stats_many localhost" + UNCACHED)
IP = "127.0.0.1"


def _opener(kind: str, port: int) -> Callable[[], Awaitable[asyncio.BaseTransport]]:
    """One new connection of *kind*, as its transport."""
    loop = asyncio.get_running_loop()
    request = httpx.Request("GET", f"http://{IP}:{port}/")

    async def direct() -> asyncio.BaseTransport:
        transport, _ = await loop.create_connection(asyncio.Protocol, IP, port)
        return transport

    async def raced() -> asyncio.BaseTransport:
        info = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (IP, port))
        connection = await connect_first(
            loop, [info], HAPPY_EYEBALLS_DELAY, _tcp_to(loop), Connection.close
        )
        assert connection.transport is not None
        return connection.transport

    def ours(host: str) -> Callable[[], Awaitable[asyncio.BaseTransport]]:
        async def opened() -> asyncio.BaseTransport:
            connection = await connect(
                loop, host, port, tls=None, connect_timeout=30.0, request=request
            )
            assert connection.transport is not None
            return connection.transport

        return opened

    return {
        "create_connection(ip)": direct,
        "connect(ip)": ours(IP),
        "connect(localhost)": ours("localhost"),
        "race(ip)": raced,
    }[kind.removesuffix(UNCACHED)]


async def child(kind: str, count: int, url: str) -> float:
    """Seconds *kind* takes for *count* connections (or one fan-out) at once."""
    port = int(url.rsplit(":", 1)[1])
    if kind.endswith(UNCACHED):
        # A resolver of its own for each connection: nothing kept, nothing shared.
        _connection.resolver_for = lambda loop: Resolver(ttl=0.0)  # type: ignore[attr-defined]
    if kind in FANOUTS:
        host = kind.removesuffix(UNCACHED).split()[-1].replace("ip", IP)
        ids = sample_ids(count)
        base_url = f"http://{host}:{port}"
        async with ja.AsyncJourneyClient(TOKEN, base_url=base_url, max_concurrency=count) as client:
            started = time.perf_counter()
            results = await client.get_stats_many(ids)
            elapsed = time.perf_counter() - started
        check_all_ok(results, count)
        return elapsed
    opener = _opener(kind, port)
    started = time.perf_counter()
    transports = await asyncio.gather(*(opener() for _ in range(count)))
    elapsed = time.perf_counter() - started
    for transport in transports:
        transport.close()
    await asyncio.sleep(0)
    return elapsed


def _measure(kind: str, count: int, url: str, loop: str) -> float:
    args = [sys.executable, "-m", "benchmarks.connect", "--child", kind, str(count), url, loop]
    output = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return float(output.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.connect", description=__doc__)
    parser.add_argument("--connections", type=int, nargs="+", default=[100, 1000], help="C")
    parser.add_argument("--rounds", type=int, default=7, help="fresh processes per cell")
    parser.add_argument("--loop", choices=LOOPS, nargs="+", default=["asyncio"])
    parser.add_argument(
        "--child", nargs=4, metavar=("KIND", "C", "URL", "LOOP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        kind, count, url, loop = args.child
        print(run_on(loop, child(kind, int(count), url)))
        return 0
    print(machine(["httpx", "uvloop"], loops=", ".join(args.loop)))
    print(f"medians of {args.rounds} fresh processes per cell, ms; ratio to the first row")
    with spawn_fast_server(0.0) as url:
        for loop in args.loop:
            for count in args.connections:
                for kinds in (CONNECTS, FANOUTS):
                    _measure(kinds[0], count, url, loop)  # warm the file cache, .pyc files
                    times: dict[str, list[float]] = {kind: [] for kind in kinds}
                    for round_ in range(args.rounds):
                        shift = round_ % len(kinds)
                        for kind in kinds[shift:] + kinds[:shift]:
                            times[kind].append(_measure(kind, count, url, loop))
                    medians = {kind: statistics.median(values) for kind, values in times.items()}
                    base = medians[kinds[0]]
                    what = "connections at once" if kinds is CONNECTS else "one fan-out"
                    print(f"\n{loop}, C={count}, {what}")
                    rows = [
                        (kind, f"{median * 1000:.1f}", f"{median / base:.2f}x")
                        for kind, median in medians.items()
                    ]
                    print("\n".join(markdown_table(["", "median ms", "ratio"], rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
