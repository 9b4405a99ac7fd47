"""
journey_async against a raw floor and the fastest peers, on the asyncio
loop and on uvloop, in one run.

Run from the project root (or ``nox -s bench -- peers``)::

    python -m benchmarks.peers                          # configs A and B, 5 processes each
    python -m benchmarks.peers --config A --repeat 3    # a quick look
    python -m benchmarks.peers --config A --clients floor journey_async --loops uvloop
    python -m benchmarks.peers --server emulator        # against the emulator under uvicorn
    python -m benchmarks.peers --config B --clients journey_async ja+otel --repeat 1
    python -m benchmarks.peers --measure instructions   # config A under callgrind

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
- ``floor+json``: the floor plus ``json.loads`` of each body (what decoding
  the JSON costs), shown for reference.
- ``floor+models``: the floor plus journey_async's own ``structure_stats`` of
  each body (the stdlib's ``json.loads``, then the typed models): the least
  any client that builds journey_async's models with the stdlib's json can
  spend, shown for reference.
- ``raw-protocol``: the floor on a bare `asyncio.Protocol` (no streams):
  about the least a Python client can spend per request, shown for reference.
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

``--measure instructions`` counts instead of timing: each cell's figure is
the marginal instructions per request under valgrind's callgrind, that is the
instructions of a child doing its warm-up and its run of N requests, less
those of the same child doing its warm-up alone, over N (the fresh client
and its connections included, as in the wall times). Counts hardly depend
on the load of the machine: four runs agreed within about 1 % in every
cell but pyreqwest's (2 %: its threads), so each cell is one pair of runs
(``--repeat`` is not used), and ``--jobs`` children (one per CPU) are
counted at once. The server runs outside callgrind, as in a timed run; every
client is first run once natively, so that no counted run compiles a
module; the children have ``PYTHONHASHSEED=0``, and, since callgrind makes
them tens of times slower, journey_async's and httpx2's timeouts raised
(``--patient``; a timeout's length does not change what a client does). The
table gives thousands of instructions per request and the ratios to the
floor on each loop asked for. callgrind counts what the process runs, not
the kernel's work in its system calls nor the cost of cache misses: ratios
by instructions are not ratios of CPU seconds, and come out larger where
more of the floor's time is in the kernel (on uvloop, whose floor runs half
the instructions of asyncio's). Limits:

- Slow: each child's start (the interpreter and its imports, a billion
  instructions) takes 15 to 20 s of CPU under callgrind, and there are two
  children per cell: config A on both loops takes about 12 minutes of CPU
  (10 to 11 minutes on the two shared cores). ``httpx2``, millions of instructions
  a request, would take about as long as all the others together: it is
  left out unless named with ``--clients`` (it adds about 5 minutes of CPU).
- Config B runs (floor and journey_async on one loop in a few minutes), but
  callgrind makes a round of C requests take seconds, which hides its 50 ms
  of server delay: its counts are those of C=1000 without delay. Config A
  is the one counted by default.
- callgrind runs one thread at a time: pyreqwest's Rust threads run
  serialised, and their instructions are counted with the process's, so its
  count stays valid (all it spends, in every thread); only its wall time
  under callgrind would mean nothing.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gc
import importlib
import importlib.util
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, NamedTuple, cast

import attrs

import journey_async as ja
from journey_async._converter import structure_stats
from journey_async.testing import spawn_emulator_process

from ._common import (
    AUTH,
    LOOPS,
    STATS_PATH,
    TOKEN,
    check_all_ok,
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
CALLGRIND_TIMEOUT: Final = 3600.0
"""The same under callgrind, which runs a child tens of times slower."""

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


def floor_client(parse: Callable[[bytes], object] | None = None) -> Runner:
    """The floor; with *parse*, the floor plus *parse* of each body, its result
    kept instead of the body (the references ``floor+json`` and ``floor+models``)."""

    async def run(url: str, ids: Sequence[str], concurrency: int) -> None:
        host, port = _host_port(url)
        failed = 0
        pending = enumerate(ids)
        kept: list[object] = [None] * len(ids)

        async def work() -> None:
            nonlocal failed
            reader, writer = await asyncio.open_connection(host, port)
            try:
                for index, journey_id in pending:
                    writer.write(_raw_request(url, journey_id))
                    head = await reader.readuntil(b"\r\n\r\n")
                    body = await reader.readexactly(_content_length(head))
                    kept[index] = body if parse is None else parse(body)
                    failed += head[9:12] != b"200"
            finally:
                writer.close()

        await asyncio.gather(*(work() for _ in range(concurrency)))
        _check_raw(failed, len(ids))

    return run


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


@attrs.define
class _Patience:
    """The timeouts of a run under callgrind (``--patient``), which runs a
    client tens of times slower than its defaults expect: long enough never to
    end a request; None (every default) otherwise. A timeout's length does not
    change what the client does while it waits."""

    seconds: float | None = None


_PATIENCE = _Patience()


async def run_ja(url: str, ids: Sequence[str], concurrency: int) -> None:
    """`run_journey_async`; under callgrind, with its timeouts and deadline raised."""
    seconds = _PATIENCE.seconds
    if seconds is None:
        await run_journey_async(url, ids, concurrency)
        return
    async with ja.AsyncJourneyClient(
        TOKEN,
        base_url=url,
        max_concurrency=concurrency,
        timeout=seconds,
        attempt_timeout=seconds,
        retry=ja.RetryPolicy(deadline=seconds),
    ) as client:
        check_all_ok(await client.get_stats_many(ids), len(ids))


async def run_journey_async_otel(url: str, ids: Sequence[str], concurrency: int) -> None:
    if _SPANS.exporter is None:
        instrument()
    await run_ja(url, ids, concurrency)


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
        if _PATIENCE.seconds is not None:
            client.timeout = _PATIENCE.seconds

        async def one(journey_id: str) -> object:
            response = await client.get(STATS_PATH.format(journey_id))
            response.raise_for_status()
            return response.json()

        await workers(concurrency, ids, one)


CLIENTS: Final[dict[str, Runner]] = {
    "floor": floor_client(),
    "floor+json": floor_client(json.loads),
    "floor+models": floor_client(structure_stats),
    "raw-protocol": run_raw_protocol,
    "journey_async": run_ja,
    "ja+otel": run_journey_async_otel,
    "pyreqwest": run_pyreqwest,
    "aiohttp": run_aiohttp,
    "httpx2": run_httpx2,
}
PEERS: Final = ("pyreqwest", "aiohttp", "httpx2")
MEASURES: Final = ("wall", "instructions")
INSTRUCTIONS_SKIPPED: Final = ("httpx2",)
"""Left out of ``--measure instructions`` unless asked for with ``--clients``:
it spends millions of instructions a request, so that under callgrind it
takes about as long as all the other clients together."""


# --- one run, in a fresh process ----------------------------------------------------------------


async def child_run(
    name: str, url: str, n: int, concurrency: int, warm_up_only: bool = False
) -> dict[str, float]:
    runner = CLIENTS[name]
    ids = sample_ids(n)
    await runner(url, ids[:concurrency], concurrency)  # imports, first-call caches
    if _SPANS.exporter is not None:
        _SPANS.exporter.clear()
    gc.collect()
    started, cpu_started = time.perf_counter(), time.process_time()
    if not warm_up_only:  # the baseline of --measure instructions
        await runner(url, ids, concurrency)
    result = {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu_started}
    if _SPANS.exporter is not None:
        result["spans"] = len(_SPANS.exporter.get_finished_spans())
    return result


def child(
    name: str, loop: str, url: str, n: int, concurrency: int, warm_up_only: bool, patient: bool
) -> None:
    if patient:
        _PATIENCE.seconds = CALLGRIND_TIMEOUT
    print(json.dumps(run_on(loop, child_run(name, url, n, concurrency, warm_up_only))))


class Outcome(NamedTuple):
    wall: float
    cpu: float
    spans: int | None
    instructions: int | None = None
    """The whole process's, under callgrind (``--measure instructions``)."""


def spawn_child(
    name: str,
    loop: str,
    url: str,
    config: Config,
    *,
    warm_up_only: bool = False,
    callgrind: bool = False,
) -> Outcome | str:
    """One run in a fresh interpreter, under callgrind if asked (its
    instructions counted): its outcome, or why it failed."""
    args = [sys.executable, "-m", "benchmarks.peers", "--child", name, "--loop", loop]
    args += ["--url", url, "--n", str(config.n), "--c", str(config.concurrency)]
    args += ["--warm-up-only"] if warm_up_only else []
    if not callgrind:
        return _outcome(args, CHILD_TIMEOUT)
    with tempfile.TemporaryDirectory(prefix="peers-callgrind-") as scratch:
        log = os.path.join(scratch, "valgrind.log")
        # valgrind's messages to a file of their own, so that the child's
        # stderr stays the child's; no profile written, only the total kept.
        tool = [
            "valgrind",
            "--tool=callgrind",
            f"--log-file={log}",
            "--callgrind-out-file=/dev/null",
        ]
        # One hash seed for every child: the orders of sets and dicts of
        # strings, and so the paths taken, are the same from run to run.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        outcome = _outcome([*tool, *args, "--patient"], CALLGRIND_TIMEOUT, env)
        if isinstance(outcome, str):
            return outcome
        with open(log) as messages:
            collected = re.search(r"Collected : (\d+)", messages.read())
    if collected is None:
        return "callgrind reported no instruction count"
    return outcome._replace(instructions=int(collected.group(1)))


def _outcome(args: list[str], timeout: float, env: dict[str, str] | None = None) -> Outcome | str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:g} s"
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


def measure_instructions(
    url: str, config: Config, loops: Sequence[str], clients: Sequence[str], jobs: int
) -> dict[Cell, Outcome | str]:
    """Each cell under callgrind, *jobs* children at a time: the full run's
    outcome, its ``instructions`` those of the N requests alone (the full
    child's count less that of the same child doing its warm-up only)."""
    pairs = [(loop, name) for loop in loops for name in clients]
    runs = [(loop, name, warm_up_only) for loop, name in pairs for warm_up_only in (True, False)]

    def run(loop: str, name: str, warm_up_only: bool) -> Outcome | str:
        outcome = spawn_child(name, loop, url, config, warm_up_only=warm_up_only, callgrind=True)
        what = "warm-up only" if warm_up_only else f"warm-up and {config.n} requests"
        shown = (
            f"{outcome.instructions:,} instructions" if isinstance(outcome, Outcome) else outcome
        )
        print(f"  {loop} {name}, {what}: {shown}", file=sys.stderr)
        return outcome

    for loop, name in pairs:
        # Natively first, so that every module it imports is compiled and
        # cached before the counted runs, not in one of them.
        spawn_child(name, loop, url, config, warm_up_only=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = dict(zip(runs, pool.map(lambda args: run(*args), runs), strict=True))
    cells: dict[Cell, Outcome | str] = {}
    for loop, name in pairs:
        base, full = outcomes[loop, name, True], outcomes[loop, name, False]
        if isinstance(base, str):
            cells[loop, name] = base
        elif isinstance(full, str):
            cells[loop, name] = full
        else:
            assert base.instructions is not None  # counted under callgrind
            assert full.instructions is not None
            cells[loop, name] = full._replace(instructions=full.instructions - base.instructions)
    return cells


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
    lines += ["", *verdicts(config, loops, clients, medians, _spans(config, runs), "wall")]
    if config.delay and "floor" in clients:
        ideal = config.ideal()
        for loop in loops:
            if floor := medians.get((loop, "floor")):
                lines.append(f"- {loop}: the floor is {floor / ideal:.2f}x the ideal {ideal:g} s.")
    return lines


def report_instructions(
    config: Config,
    loops: Sequence[str],
    clients: Sequence[str],
    cells: dict[Cell, Outcome | str],
) -> list[str]:
    per_request = {
        cell: outcome.instructions / config.n
        if isinstance(outcome, Outcome) and outcome.instructions is not None
        else None
        for cell, outcome in cells.items()
    }
    header = ["client"]
    for loop in loops:
        header += [f"{loop} k instructions", f"{loop} x floor"]
    rows: list[list[str]] = []
    for name in clients:
        row = [name]
        for loop in loops:
            figure, outcome = per_request[loop, name], cells[loop, name]
            if figure is None:
                row += [f"failed: {str(outcome)[:60]}", ""]
            else:
                row += [f"{figure / 1000:.0f}", _ratio(figure, per_request.get((loop, "floor")))]
        rows.append(row)
    lines = [
        f"{config.describe()}; marginal instructions per request under callgrind "
        "(a child's warm-up and N requests, less its warm-up alone, over N), "
        "one run of each per cell:",
        "",
    ]
    lines += markdown_table(header, rows)
    spans = _spans(config, {cell: [outcome] for cell, outcome in cells.items()})
    lines += ["", *verdicts(config, loops, clients, per_request, spans, "instructions")]
    return lines


def _ratio(figure: float, floor: float | None) -> str:
    return f"{figure / floor:.2f}" if floor else "-"


def _spans(config: Config, runs: dict[Cell, list[Outcome | str]]) -> dict[Cell, float]:
    """Spans per request, the median of the runs, in the cells that count them."""
    spans = {}
    for cell, outcomes in runs.items():
        counts = [o.spans for o in outcomes if isinstance(o, Outcome) and o.spans is not None]
        if counts:
            spans[cell] = statistics.median(counts) / config.n
    return spans


def verdicts(
    config: Config,
    loops: Sequence[str],
    clients: Sequence[str],
    figures: dict[Cell, float | None],
    spans: dict[Cell, float],
    what: str,
) -> list[str]:
    """journey_async against the floor, the peers and ja+otel by *figures*
    (lower is better), *what* they are, one line per loop."""
    lines = []
    for loop in loops:
        ja = figures.get((loop, "journey_async"))
        floor = figures.get((loop, "floor"))
        if ja is None:
            continue
        said = []
        if floor:
            said.append(f"journey_async {ja / floor:.2f}x the floor")
        peers = {name: figures[loop, name] for name in PEERS if name in clients}
        behind = [name for name, figure in peers.items() if figure is not None and figure <= ja]
        if peers:
            said.append(
                "ahead of every peer" if not behind else f"not ahead of {', '.join(behind)}"
            )
        otel = figures.get((loop, "ja+otel"))
        if otel is not None:
            said.append(
                f"instrumentation on: {otel / ja:.2f}x journey_async's {what} "
                f"({spans.get((loop, 'ja+otel'), 0):g} spans per request)"
            )
        if said:
            lines.append(f"- {loop}: {'; '.join(said)}.")
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
    parser.add_argument(
        "--config",
        nargs="+",
        choices=list(CONFIGS),
        help="the configurations to run (default: A and B; A with --measure instructions)",
    )
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=list(CLIENTS),
        help="the clients to run (default: all; with --measure instructions, all but httpx2)",
    )
    parser.add_argument("--loops", nargs="+", choices=LOOPS, default=list(LOOPS))
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per cell (5)")
    parser.add_argument("--server", choices=("fast", "emulator"), default="fast")
    parser.add_argument(
        "--measure",
        choices=MEASURES,
        default="wall",
        help="wall and CPU seconds (the default), or instructions per request under callgrind",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="callgrind runs at once with --measure instructions (default: one per CPU)",
    )
    parser.add_argument("--child", choices=list(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--loop", choices=LOOPS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--c", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warm-up-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--patient", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child(args.child, args.loop, args.url, args.n, args.c, args.warm_up_only, args.patient)
        return 0

    instructions = args.measure == "instructions"
    if instructions and shutil.which("valgrind") is None:
        parser.error("--measure instructions counts under valgrind, which is not on PATH")
    loops = [loop for loop in LOOPS if loop in args.loops]
    if "uvloop" in loops and importlib.util.find_spec("uvloop") is None:
        print("uvloop is not installed: its columns are left out", file=sys.stderr)
        loops.remove("uvloop")
    skipped = INSTRUCTIONS_SKIPPED if instructions else ()
    default = [name for name in CLIENTS if name not in skipped]
    clients = [name for name in CLIENTS if name in (args.clients or default)]
    packages = ("journey-async", "httpx", "httptools", "aiohttp", "pyreqwest", "httpx2", "uvloop")
    counted = f"; counted by {valgrind_version()}" if instructions else ""
    print(f"Machine: {machine(packages, loops=' and '.join(loops))}{counted}")
    print(f"Command: python -m benchmarks.peers {' '.join(argv or sys.argv[1:])}".rstrip())
    for key in args.config or (["A"] if instructions else list(CONFIGS)):
        config = CONFIGS[key]
        with server(args.server, config.delay) as url:
            if instructions:
                cells = measure_instructions(url, config, loops, clients, args.jobs)
                lines = report_instructions(config, loops, clients, cells)
            else:
                runs = measure(url, config, loops, clients, args.repeat)
                lines = report(config, loops, clients, runs, args.repeat)
        print()
        print(f"Config {key}, {args.server} server: ", end="")
        print("\n".join(lines))
    return 0


def valgrind_version() -> str:
    done = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
