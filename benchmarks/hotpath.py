"""
The shortcuts of journey_async's hot path, each against what it replaces,
timed in one process with `timeit` (no server: these are pure CPU).

Run from the project root::

    python -m benchmarks.hotpath

- the URL filled into httpx's parsed form (``_prepared.url_builder``) against
  ``httpx.URL(base_url + path)``;
- a request built with ``stream=`` and the prepared headers against one
  built with ``content=`` (httpx encodes the body and derives the headers);
- a response made whole by the transport (``_response``) against one built
  as a stream and read with ``aread()``;
- a request sent straight to the transport against ``AsyncClient.send``
  (auth, cookies, hooks, redirects), over `httpx.MockTransport`.

Each figure is the best of 5 repeats, in µs per call.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import argparse
import asyncio
import timeit
from collections.abc import Awaitable, Callable, Sequence

import httpx

from journey_async._http._transport import _response
from journey_async._http._wire import ParsedResponse
from journey_async._prepared import url_builder

BASE_URL = "https://journey.pushwoosh.com"
PATH = "/api/journey/3f2b1c4e-8d9a-4b7c-9e1f-2a3b4c5d6e7f/statistics/external"
HEADERS = httpx.Headers(
    [
        (b"Host", b"journey.pushwoosh.com"),
        (b"Authorization", b"Api bench-token"),
        (b"User-Agent", b"journey-async"),
        (b"Accept", b"application/json"),
    ]
)
BODY = b'{"payload":{"title":"t","points":[]}}'


def per_call(func: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def parsed() -> ParsedResponse:
    response = ParsedResponse()
    response.status = 200
    response.headers = [(b"content-type", b"application/json"), (b"content-length", b"38")]
    response.body = [BODY]
    return response


async def async_per_call(func: Callable[[], Awaitable[object]], number: int) -> float:
    loop = asyncio.get_running_loop()
    best = float("inf")
    for _ in range(5):
        started = loop.time()
        for _ in range(number):
            await func()
        best = min(best, (loop.time() - started) / number * 1e6)
    return best


async def async_rows(number: int) -> list[tuple[str, float, float]]:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=BODY))
    request = httpx.Request("GET", BASE_URL + PATH, headers=HEADERS)

    async def read_streamed() -> None:
        response = httpx.Response(200, headers=parsed().headers, stream=httpx.ByteStream(BODY))
        await response.aread()

    async def made_whole() -> None:
        _response(parsed(), request, 0.0)

    async with httpx.AsyncClient(transport=transport) as client:
        return [
            (
                "response",
                await async_per_call(read_streamed, number),
                await async_per_call(made_whole, number),
            ),
            (
                "send",
                await async_per_call(lambda: client.send(request), number),
                await async_per_call(lambda: transport.handle_async_request(request), number),
            ),
        ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpath", description=__doc__)
    parser.add_argument("--number", type=int, default=20_000, help="calls per repeat")
    number = parser.parse_args(argv).number
    url = url_builder(BASE_URL)
    rows = [
        (
            "URL",
            per_call(lambda: httpx.URL(BASE_URL + PATH), number),
            per_call(lambda: url(PATH), number),
        ),
        (
            "request",
            per_call(lambda: httpx.Request("GET", url(PATH), headers=HEADERS, content=b""), number),
            per_call(
                lambda: httpx.Request(
                    "GET", url(PATH), headers=HEADERS, stream=httpx.ByteStream(b"")
                ),
                number,
            ),
        ),
        *asyncio.run(async_rows(number)),
    ]
    print("| step | what it replaces, µs | journey_async's shortcut, µs |")
    print("|---|---:|---:|")
    for name, replaced, shortcut in rows:
        print(f"| {name} | {replaced:.1f} | {shortcut:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
