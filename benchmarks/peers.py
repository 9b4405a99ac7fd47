"""
journey_async against a raw floor and the fastest peers, on the asyncio
loop and on uvloop, in one run.

Run from the project root (or ``nox -s bench -- peers``)::

    python -m benchmarks.peers                          # configs A and B, 5 processes each
    python -m benchmarks.peers --config A --repeat 3    # a quick look
    python -m benchmarks.peers --config A --clients floor journey_async --loops uvloop
    python -m benchmarks.peers --server emulator        # against the emulator under uvicorn
    python -m benchmarks.peers --config B --clients journey_async ja+otel --repeat 1

Configurations:

- ``A``: N=1000 statistics GETs, C=100 in flight, no server delay: the
  client's CPU per request is all there is to measure.
- ``B``: N=10000, C=1000, 50 ms of server delay: at scale, where the ideal is
  ``ceil(N / C) * delay`` and what a client adds to it is its CPU per round.

Clients, each in a fresh Python process per run (``--child``), on the loop
under test, with C workers pulling from one iterator of ids:

- ``floor``: a minimal raw asyncio keep-alive client: C connections opened
  with `asyncio.open_connection`, requests written by hand, each response's
  head read to its blank line and its body by its ``Content-Length``, the
  status checked, nothing else parsed. The ratios are to it.
- ``raw-protocol``: the same on a bare `asyncio.Protocol` (no streams): about
  the least a Python client can spend per request, shown for reference.
- ``journey_async``: ``AsyncJourneyClient(max_concurrency=C).get_stats_many(ids)``
  with everything else at its default: retries, timeouts, typed models.
- ``ja+otel``: the same with OpenTelemetry's
  ``HTTPXClientInstrumentor().instrument()`` on, spans going to an in-memory
  exporter: the cost of instrumentation (the spans are counted). journey_async
  still sends on its own transport, through OpenTelemetry's wrappers, so
  what it adds is the spans' own cost.
- ``pyreqwest`` (the Rust reqwest client), ``aiohttp`` (a ``ClientSession``,
  ``json.loads`` of each body) and ``httpx2`` (the httpx successor's
  ``AsyncClient``, limits raised to C): each parses the JSON, and each checks
  the status.

Every client keeps what it got for each id until the run ends (the floor its
bodies, the peers their parsed JSON, journey_async its results), as a caller
of a fan-out does: the memory held, and the garbage collector's passes over
it, are part of what a fan-out costs.

A child imports its client and does one throwaway run of C requests first
(imports, first-call caches), then times one run with a fresh client,
connections included, and prints its wall and CPU seconds. Every run checks
that all N answers arrived with status 200. Each round runs every client on
every loop, the order rotated from round to round; the tables show the
median of the rounds and each median over the floor's of the same loop (the
lower, the better; "ahead" means a lower median in the same run).

The server runs in its own process on 127.0.0.1: by default
``benchmarks._server``, a fixed-answer server on uvloop that sends the
emulator's own response bytes at a fraction of the floor's cost per request,
so the clients, not the server, are the limit; ``--server emulator`` uses
`spawn_emulator_process` (uvicorn and the emulator's ASGI app) instead.

The machine is shared (two cores, other work running): that is why every
run is a fresh process, why there are several per cell, and why only ratios
within one run are compared, never figures across runs.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, NamedTuple, cast

import attrs

from journey_async.testing import spawn_emulator_process

from ._common import (
    AUTH,
    LOOPS,
    STATS_PATH,
    TOKEN,
    machine,
    markdown_table,
    run_aiohttp,
    run_journey_async,
    run_on,
    sample_ids,
    workers,
)
from ._server import spawn_fast_server

CHILD_TIMEOUT: Final = 600.0
"""Seconds one child process may take before its run counts as failed."""

Runner = Callable[[str, Sequence[str], int], Awaitable[None]]


class Config(NamedTuple):
    n: int
    concurrency: int
    delay: float

    def ideal(self) -> float:
        return math.ceil(self.n / self.concurrency) * self.delay

    def describe(self) -> str:
        return f"N={self.n}, C={self.concurrency}, server delay {self.delay * 1000:g} ms"


CONFIGS: Final = {"A": Config(1000, 100, 0.0), "B": Config(10_000, 1000, 0.05)}


# --- the floor --------------------------------------------------------------------------------


class _RawConnection(asyncio.Protocol):
    """One keep-alive connection: a request out, a response in by Content-Length."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buffer = bytearray()
        self._end = -1  # where the response being read ends, once its head is in
        self._waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.WriteTransport", transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._end < 0:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            self._end = head_end + 4 + _content_length(bytes(buffer[: head_end + 2]))
        if len(buffer) >= self._end:
            response = bytes(buffer[: self._end])
            del buffer[: self._end]
            self._end = -1
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(response)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ConnectionError("closed by the server"))

    async def exchange(self, request: bytes) -> bytes:
        assert self.transport is not None
        self._waiter = self._loop.create_future()
        self.transport.write(request)
        return await self._waiter


async def run_raw_protocol(url: str, ids: Sequence[str], concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    host, port = _host_port(url)
    failed = 0
    pending = enumerate(ids)
    responses: list[bytes] = [b""] * len(ids)

    async def work() -> None:
        nonlocal failed
        _, connection = await loop.create_connection(lambda: _RawConnection(loop), host, port)
        try:
            for index, journey_id in pending:
                response = responses[index] = await connection.exchange(
                    _raw_request(url, journey_id)
                )
                failed += response[9:12] != b"200"
        finally:
            assert connection.transport is not None
            connection.transport.close()

    await asyncio.gather(*(work() for _ in range(concurrency)))
    _check_raw(failed, len(ids))


async def run_floor(url: str, ids: Sequence[str], concurrency: int) -> None:
    host, port = _host_port(url)
    failed = 0
    pending = enumerate(ids)
    bodies: list[bytes] = [b""] * len(ids)

    async def work() -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index, journey_id in pending:
                writer.write(_raw_request(url, journey_id))
                head = await reader.readuntil(b"\r\n\r\n")
                bodies[index] = await reader.readexactly(_content_length(head))
                failed += head[9:12] != b"200"
        finally:
            writer.close()

    await asyncio.gather(*(work() for _ in range(concurrency)))
    _check_raw(failed, len(ids))


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _raw_request(url: str, journey_id: str) -> bytes:
    host = url.removeprefix("http://")
    return (
        f"GET {STATS_PATH.format(journey_id)} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Api {TOKEN}\r\nAccept: application/json\r\n\r\n"
    ).encode()


def _content_length(head: bytes) -> int:
    head = head.lower()
    start = head.index(b"\r\ncontent-length:") + 17
    return int(head[start : head.index(b"\r\n", start)])


def _check_raw(failed: int, count: int) -> None:
    if failed:
        raise RuntimeError(f"{failed} of {count} failed")


# --- journey_async ----------------------------------------------------------------------------


@attrs.define
class _Spans:
    """The in-memory exporter of ``ja+otel``, once instrumented."""

    exporter: Any = None


_SPANS = _Spans()


def instrument() -> None:
    """OpenTelemetry's httpx instrumentation on, spans kept in memory."""
    sdk_trace = importlib.import_module("opentelemetry.sdk.trace")
    export = importlib.import_module("opentelemetry.sdk.trace.export")
    in_memory = importlib.import_module("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    instrumentation = importlib.import_module("opentelemetry.instrumentation.httpx")
    exporter = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    instrumentation.HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _SPANS.exporter = exporter


async def run_journey_async_otel(url: str, ids: Sequence[str], concurrency: int) -> None:
    if _SPANS.exporter is None:
        instrument()
    await run_journey_async(url, ids, concurrency)


# --- peers ------------------------------------------------------------------------------------


async def run_pyreqwest(url: str, ids: Sequence[str], concurrency: int) -> None:
    from pyreqwest.client import ClientBuilder

    builder = ClientBuilder().base_url(url).default_headers(AUTH).error_for_status(True)
    async with builder.max_connections(concurrency).build() as client:

        async def one(journey_id: str) -> object:
            response = await client.get(STATS_PATH.format(journey_id)).build().send()
            return await response.json()

        await workers(concurrency, ids, one)


async def run_httpx2(url: str, ids: Sequence[str], concurrency: int) -> None:
    import httpx2

    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(base_url=url, headers=AUTH, limits=limits) as client:

        async def one(journey_id: str) -> object:
            response = await client.get(STATS_PATH.format(journey_id))
            response.raise_for_status()
            return response.json()

        await workers(concurrency, ids, one)


CLIENTS: Final[dict[str, Runner]] = {
    "floor": run_floor,
    "raw-protocol": run_raw_protocol,
    "journey_async": run_journey_async,
    "ja+otel": run_journey_async_otel,
    "pyreqwest": run_pyreqwest,
    "aiohttp": run_aiohttp,
    "httpx2": run_httpx2,
}
PEERS: Final = ("pyreqwest", "aiohttp", "httpx2")


# --- one run, in a fresh process ----------------------------------------------------------------


async def child_run(name: str, url: str, n: int, concurrency: int) -> dict[str, float]:
    runner = CLIENTS[name]
    ids = sample_ids(n)
    await runner(url, ids[:concurrency], concurrency)  # imports, first-call caches
    if _SPANS.exporter is not None:
        _SPANS.exporter.clear()
    gc.collect()
    started, cpu_started = time.perf_counter(), time.process_time()
    await runner(url, ids, concurrency)
    result = {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu_started}
    if _SPANS.exporter is not None:
        result["spans"] = len(_SPANS.exporter.get_finished_spans())
    return result


def child(name: str, loop: str, url: str, n: int, concurrency: int) -> None:
    print(json.dumps(run_on(loop, child_run(name, url, n, concurrency))))


class Outcome(NamedTuple):
    wall: float
    cpu: float
    spans: int | None


def spawn_child(name: str, loop: str, url: str, config: Config) -> Outcome | str:
    """One run in a fresh interpreter: its outcome, or why it failed."""
    args = [sys.executable, "-m", "benchmarks.peers", "--child", name, "--loop", loop]
    args += ["--url", url, "--n", str(config.n), "--c", str(config.concurrency)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"no answer within {CHILD_TIMEOUT:g} s"
    if done.returncode:
        lines = done.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit status {done.returncode}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Outcome(result["wall"], result["cpu"], result.get("spans"))


# --- the run and its tables -------------------------------------------------------------------


Cell = tuple[str, str]  # (loop, client)


def measure(
    url: str, config: Config, loops: Sequence[str], clients: Sequence[str], repeat: int
) -> dict[Cell, list[Outcome | str]]:
    runs: dict[Cell, list[Outcome | str]] = {(loop, name): [] for loop in loops for name in clients}
    for round_number in range(repeat):
        shift = round_number % len(clients)
        for loop in loops:
            for name in [*clients[shift:], *clients[:shift]]:
                outcome = spawn_child(name, loop, url, config)
                runs[loop, name].append(outcome)
                shown = f"{outcome.wall:.3f} s" if isinstance(outcome, Outcome) else outcome
                print(f"  [{round_number + 1}/{repeat}] {loop} {name}: {shown}", file=sys.stderr)
    return runs


def median_wall(outcomes: Sequence[Outcome | str]) -> float | None:
    """The median wall time, or None when any run failed (a partial median would flatter)."""
    walls = [outcome.wall for outcome in outcomes if isinstance(outcome, Outcome)]
    return statistics.median(walls) if walls and len(walls) == len(outcomes) else None


def report(
    config: Config,
    loops: Sequence[str],
    clients: Sequence[str],
    runs: dict[Cell, list[Outcome | str]],
    repeat: int,
) -> list[str]:
    medians = {cell: median_wall(outcomes) for cell, outcomes in runs.items()}
    header = ["client"]
    for loop in loops:
        header += [f"{loop} wall s", f"{loop} CPU s", f"{loop} x floor"]
    rows: list[list[str]] = []
    if config.delay:
        ideal = config.ideal()
        row = ["ideal"]
        for loop in loops:
            row += [f"{ideal:.3f}", "", _ratio(ideal, medians.get((loop, "floor")))]
        rows.append(row)
    for name in clients:
        row = [name]
        for loop in loops:
            wall = medians[loop, name]
            cpus = [o.cpu for o in runs[loop, name] if isinstance(o, Outcome)]
            if wall is None:
                failures = [o for o in runs[loop, name] if isinstance(o, str)]
                row += [f"failed: {failures[0][:60]}", "", ""]
            else:
                row += [f"{wall:.3f}", f"{statistics.median(cpus):.3f}"]
                row.append(_ratio(wall, medians.get((loop, "floor"))))
        rows.append(row)
    lines = [f"{config.describe()}; median of {repeat} fresh processes per cell:", ""]
    lines += markdown_table(header, rows)
    lines += ["", *verdicts(config, loops, clients, medians, runs)]
    return lines


def _ratio(wall: float, floor: float | None) -> str:
    return f"{wall / floor:.2f}" if floor else "-"


def verdicts(
    config: Config,
    loops: Sequence[str],
    clients: Sequence[str],
    medians: dict[Cell, float | None],
    runs: dict[Cell, list[Outcome | str]],
) -> list[str]:
    lines = []
    for loop in loops:
        ja_wall = medians.get((loop, "journey_async"))
        floor = medians.get((loop, "floor"))
        if ja_wall is None:
            continue
        said = []
        if floor:
            said.append(f"journey_async {ja_wall / floor:.2f}x the floor")
        peers = {name: medians[loop, name] for name in PEERS if name in clients}
        behind = [name for name, wall in peers.items() if wall is not None and wall <= ja_wall]
        if peers:
            said.append(
                "ahead of every peer" if not behind else f"not ahead of {', '.join(behind)}"
            )
        otel = medians.get((loop, "ja+otel"))
        if otel is not None:
            spans = [o.spans for o in runs[loop, "ja+otel"] if isinstance(o, Outcome)]
            per_request = statistics.median(s or 0 for s in spans) / config.n
            said.append(
                f"instrumentation on: {otel / ja_wall:.2f}x journey_async's wall "
                f"({per_request:g} spans per request)"
            )
        if said:
            lines.append(f"- {loop}: {'; '.join(said)}.")
    if config.delay and "floor" in clients:
        ideal = config.ideal()
        for loop in loops:
            if floor := medians.get((loop, "floor")):
                lines.append(f"- {loop}: the floor is {floor / ideal:.2f}x the ideal {ideal:g} s.")
    return lines


@contextlib.contextmanager
def server(kind: str, delay: float) -> Iterator[str]:
    if kind == "emulator":
        with spawn_emulator_process(journeys=300, latency=delay, token=TOKEN) as url:
            yield url
    else:
        with spawn_fast_server(delay) as url:
            yield url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=list(CLIENTS),
        help="the clients to run (default: all)",
    )
    parser.add_argument("--loops", nargs="+", choices=LOOPS, default=list(LOOPS))
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per cell (5)")
    parser.add_argument("--server", choices=("fast", "emulator"), default="fast")
    parser.add_argument("--child", choices=list(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--loop", choices=LOOPS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--c", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child(args.child, args.loop, args.url, args.n, args.c)
        return 0

    loops = [loop for loop in LOOPS if loop in args.loops]
    if "uvloop" in loops and importlib.util.find_spec("uvloop") is None:
        print("uvloop is not installed: its columns are left out", file=sys.stderr)
        loops.remove("uvloop")
    clients = [name for name in CLIENTS if not args.clients or name in args.clients]
    packages = ("journey-async", "httpx", "httptools", "aiohttp", "pyreqwest", "httpx2", "uvloop")
    print(f"Machine: {machine(packages, loops=' and '.join(loops))}")
    print(f"Command: python -m benchmarks.peers {' '.join(argv or sys.argv[1:])}".rstrip())
    for key in args.config:
        config = CONFIGS[key]
        with server(args.server, config.delay) as url:
            runs = measure(url, config, loops, clients, args.repeat)
        print()
        print(f"Config {key}, {args.server} server: ", end="")
        print("\n".join(report(config, loops, clients, runs, args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
