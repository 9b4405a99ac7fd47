"""
A fixed-answer HTTP/1.1 server for client benchmarks, in its own process.

It answers the statistics GETs of the emulator's sample journeys with the
very bytes the emulator would send (computed once at start-up through
`EmulatorTransport`), after an optional fixed delay. It parses nothing but
the end of each request head and its path, on an asyncio protocol (on uvloop
when installed), so it costs a small fraction of what the fastest client
spends per request: the clients measured against it are the limit, not the
server. The emulator served by uvicorn is the faithful server, but its ASGI
app and uvicorn's HTTP layer cost more per request than the raw floor
client does, which would hide the differences being measured.

Run it by hand (it prints its URL, then serves until stdin closes or it is
terminated)::

    python -m benchmarks._server --delay-ms 50

Requests with a body are not supported (no GET carries one); a request
without the token gets 401 and an unknown path 404, so a broken client
shows as failures rather than as speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import select
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import cast

import httpx

from journey_async.testing import EmulatorTransport, JourneyEmulator

from ._common import AUTH, SAMPLE_JOURNEYS, STATS_PATH, TOKEN

BACKLOG = 4096
"""Pending connections the listening socket queues: above the largest C, so
a burst of C connects is never dropped into SYN retries."""

START_TIMEOUT = 30.0
"""Seconds the server may take to print its URL."""


def _response(status: int, reason: bytes, content_type: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (
        status,
        reason,
        content_type,
        len(body),
    )
    return head + body


async def emulator_answers() -> dict[bytes, bytes]:
    """Path -> the whole response the emulator gives for it."""
    emulator = JourneyEmulator.with_sample_data(SAMPLE_JOURNEYS, seed=0, token=TOKEN)
    answers: dict[bytes, bytes] = {}
    transport = EmulatorTransport(emulator)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://emulator", headers=AUTH
    ) as client:
        for journey_id in emulator.journey_ids:
            path = STATS_PATH.format(journey_id)
            response = await client.get(path)
            response.raise_for_status()
            content_type = response.headers["content-type"].encode()
            answers[path.encode()] = _response(200, b"OK", content_type, response.content)
    return answers


NOT_FOUND = _response(404, b"Not Found", b"application/json", b'{"message":"not found"}')
UNAUTHORIZED = _response(401, b"Unauthorized", b"application/json", b'{"message":"bad token"}')
AUTHORIZATION = f"Api {TOKEN}".encode()


class _Server(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, answers: dict[bytes, bytes], delay: float):
        self._loop = loop
        self._answers = answers
        self._delay = delay
        self._buffer = b""
        self._transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but write alike.
        self._transport = cast("asyncio.WriteTransport", transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head, buffer = buffer[:end], buffer[end + 4 :]
            start = head.find(b" ") + 1
            path = head[start : head.find(b" ", start)]
            if AUTHORIZATION not in head:
                answer = UNAUTHORIZED
            else:
                answer = self._answers.get(path, NOT_FOUND)
            if self._delay:
                self._loop.call_later(self._delay, self._write, answer)
            else:
                self._write(answer)
        self._buffer = buffer

    def _write(self, answer: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(delay: float) -> None:
    loop = asyncio.get_running_loop()
    answers = await emulator_answers()
    server = await loop.create_server(
        lambda: _Server(loop, answers, delay), "127.0.0.1", 0, backlog=BACKLOG
    )
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Also stop when the parent goes away: its end of our stdin closes.
    loop.add_reader(sys.stdin.fileno(), stop.set)
    async with server:
        await stop.wait()


def run(delay: float) -> None:
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(delay))
    else:
        asyncio.run(serve(delay))


@contextlib.contextmanager
def spawn_fast_server(latency: float) -> Iterator[str]:
    """Run the server in a child process; yield its base URL; stop it on exit."""
    args = [sys.executable, "-m", "benchmarks._server", f"--delay-ms={latency * 1000!r}"]
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None  # asked for above
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
        line = process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            raise RuntimeError(f"the benchmark server did not start (said {line!r})")
        yield line
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._server", description=__doc__)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added to every answer")
    args = parser.parse_args(argv)
    run(args.delay_ms / 1000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
