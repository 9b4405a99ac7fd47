"""
`aclose()` from another task while a fan-out or a batched removal runs,
against the emulator served on 127.0.0.1 (on asyncio and uvloop): nothing
is dropped and nothing raw escapes. The requests that meet the closed client
end with an `APIConnectionError` that says so, the rest are not attempted;
`get_stats_many` returns every journey, `iter_stats` yields every one, and
`remove_users` accounts for every user. A client closed before the call
still raises httpx's `RuntimeError`.

The default transport lets the requests in flight at the close finish, so
their journeys end as stats. A pool that closes their sockets under them, as
httpcore's does, is `ClosesUnderRequests` (httpcore's own, on uvloop, leaves
those sockets unclosed: a ResourceWarning that is httpx's, not under test):
its requests in flight then fail with what such a transport raises, raw
(anyio's `ClosedResourceError`) or mapped (httpx's `ReadError`), and end
with the closed client's error too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

import journey_async as ja
from journey_async._guard import CLOSED_DURING_CALL
from journey_async._http import HTTP11Transport
from journey_async.testing import EmulatorServer, Fault, JourneyEmulator, serve_emulator

TOKEN = "test-token"  # the emulator's default
LATENCY = 0.05  # seconds a response takes: the close lands mid-call
CONCURRENCY = 5
SETTLED_BEFORE_CLOSE = 10


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    with serve_emulator(JourneyEmulator.with_sample_data(40, seed=7)) as server:
        yield server


@pytest.fixture
def emulator(served: EmulatorServer) -> JourneyEmulator:
    emulator = served.emulator
    # The test before closed its client mid-call: its requests still in the
    # server are recorded as they end, so they are let end before the count starts.
    quiet_by = time.monotonic() + 10.0
    while emulator.in_flight and time.monotonic() < quiet_by:
        time.sleep(0.01)
    emulator.latency = LATENCY
    emulator.clear_faults()
    emulator.reset_counters()
    return emulator


class ClosesUnderRequests(httpx.AsyncBaseTransport):
    """The default transport, but its aclose ends the requests in flight as a
    pool that closes their sockets does: with *error*."""

    def __init__(self, error: type[Exception]) -> None:
        self._inner = HTTP11Transport(max_connections=CONCURRENCY)
        self._error = error
        self._closed = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        inner = asyncio.ensure_future(self._inner.handle_async_request(request))
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({inner, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not inner.done():
                inner.cancel()  # its socket closed under it
                with contextlib.suppress(asyncio.CancelledError):
                    await inner
        if inner.cancelled():
            raise self._error("the connection was closed")
        return inner.result()

    async def aclose(self) -> None:
        self._closed.set()
        await self._inner.aclose()


TRANSPORTS = {"default": None, "raw": anyio.ClosedResourceError, "mapped": httpx.ReadError}


@pytest.fixture(params=list(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def make_client(served: EmulatorServer, transport: str) -> ja.AsyncJourneyClient:
    options: dict[str, Any] = {}
    error = TRANSPORTS[transport]
    if error is not None:
        options["transport"] = ClosesUnderRequests(error)
    return ja.AsyncJourneyClient(TOKEN, base_url=served.url, max_concurrency=CONCURRENCY, **options)


class Closer:
    """Closes the client from a task of its own once *count* items settled."""

    def __init__(self, client: ja.AsyncJourneyClient, count: int) -> None:
        self.client = client
        self.count = count
        self.settled = 0
        self.settled_at_close: int | None = None
        self._enough = asyncio.Event()
        self._task = asyncio.ensure_future(self._close())

    def progress(self, settled: int) -> None:
        self.settled += settled
        if self.settled >= self.count:
            self._enough.set()

    async def _close(self) -> None:
        await self._enough.wait()
        self.settled_at_close = self.settled
        await self.client.aclose()

    async def done(self) -> None:
        async with asyncio.timeout(10):
            await self._task


def is_closed_error(error: object) -> bool:
    return type(error) is ja.APIConnectionError and str(error) == CLOSED_DURING_CALL


def check_stats(results: list[ja.StatsResult], ids: list[str], closer: Closer) -> None:
    """Every journey is stats or a typed error, and the close shows as it should."""
    assert sorted(result.journey_id for result in results) == sorted(ids)
    assert closer.settled_at_close is not None
    ok = [result for result in results if result.ok]
    errors = [result.error for result in results if result.error is not None]
    assert len(ok) >= closer.settled_at_close
    assert len(ok) + len(errors) == len(ids)
    met = [error for error in errors if is_closed_error(error)]
    skipped = [error for error in errors if isinstance(error, ja.NotAttemptedError)]
    assert met, "a request met the closed client"
    assert len(met) + len(skipped) == len(errors), [repr(e) for e in errors]
    assert skipped, "the call stopped: journeys not sent yet are not attempted"
    assert all(is_closed_error(error.cause) for error in skipped)


async def test_get_stats_many_closed_under_it_returns_every_journey(
    served: EmulatorServer, emulator: JourneyEmulator, transport: str
) -> None:
    ids = list(emulator.journey_ids)
    client = make_client(served, transport)
    closer = Closer(client, SETTLED_BEFORE_CLOSE)
    results = await client.get_stats_many(ids, progress=closer.progress)
    await closer.done()
    assert [result.journey_id for result in results] == ids
    check_stats(results, ids, closer)
    if transport == "default":
        # Its requests in flight at the close finish: only one request
        # meets the closed client, the first one sent after.
        assert sum(is_closed_error(result.error) for result in results) == 1
    sent = len(emulator.requests)
    assert sent <= closer.settled + CONCURRENCY


async def test_iter_stats_closed_under_it_yields_every_journey(
    served: EmulatorServer, emulator: JourneyEmulator, transport: str
) -> None:
    ids = list(emulator.journey_ids)
    client = make_client(served, transport)
    closer = Closer(client, SETTLED_BEFORE_CLOSE)
    results = [result async for result in client.iter_stats(ids, progress=closer.progress)]
    await closer.done()
    check_stats(results, ids, closer)


async def test_remove_users_closed_under_it_accounts_for_every_user(
    served: EmulatorServer, emulator: JourneyEmulator, transport: str
) -> None:
    users = [f"user-{n}" for n in range(200)]
    confirmed: list[str] = []
    client = make_client(served, transport)
    closer = Closer(client, SETTLED_BEFORE_CLOSE * 10)
    with pytest.raises(ja.RemovalError) as caught:
        await client.remove_users(
            users,
            all_journeys=True,
            batch_size=10,
            progress=closer.progress,
            on_removed=confirmed.extend,
        )
    await closer.done()
    error = caught.value
    assert sorted(confirmed) == sorted(error.removed)
    assert sorted([*error.removed, *error.failed]) == sorted(users)
    assert not set(error.removed) & set(error.failed)
    assert len(error.removed) >= SETTLED_BEFORE_CLOSE * 10
    assert any(is_closed_error(e) for e in error.errors)
    not_attempted = [e for e in error.errors if isinstance(e, ja.NotAttemptedError)]
    assert len(not_attempted) == 1
    assert is_closed_error(not_attempted[0].cause)


async def test_remove_users_closed_before_any_confirmation_raises_the_closed_error(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    # The sockets of the requests in flight closed under them: none is confirmed.
    client = make_client(served, "raw")
    async with asyncio.timeout(10):
        # The server's count, in its thread: first what earlier tests left,
        # then the removal's first batches, held LATENCY before their answer.
        while emulator.in_flight:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        task = asyncio.ensure_future(
            client.remove_users([f"user-{n}" for n in range(100)], all_journeys=True, batch_size=10)
        )
        while emulator.in_flight < CONCURRENCY:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    await client.aclose()
    with pytest.raises(ja.APIConnectionError) as caught:
        await task
    assert is_closed_error(caught.value)
    assert isinstance(caught.value.__cause__, anyio.ClosedResourceError)


Call = Callable[[ja.AsyncJourneyClient, list[str]], Awaitable[object]]


async def _many(client: ja.AsyncJourneyClient, ids: list[str]) -> object:
    return await client.get_stats_many(ids)


async def _iter(client: ja.AsyncJourneyClient, ids: list[str]) -> object:
    return [result async for result in client.iter_stats(ids)]


async def _remove(client: ja.AsyncJourneyClient, ids: list[str]) -> object:
    return await client.remove_users(ids, all_journeys=True)


async def _one(client: ja.AsyncJourneyClient, ids: list[str]) -> object:
    return await client.get_stats(ids[0])


@pytest.mark.parametrize(
    "call", [_one, _many, _iter, _remove], ids=["one", "many", "iter", "remove"]
)
async def test_a_client_closed_before_the_call_raises_runtime_error(
    served: EmulatorServer, emulator: JourneyEmulator, call: Call
) -> None:
    client = make_client(served, "default")
    await client.aclose()
    with pytest.raises(RuntimeError, match="client has been closed"):
        await call(client, list(emulator.journey_ids[:3]))
    assert emulator.requests == []


async def test_get_stats_closed_while_it_waits_to_retry_raises_the_closed_error(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    emulator.inject(Fault.status(503), endpoint="stats")
    client = make_client(served, "default")

    async def close_instead_of_sleeping(seconds: float) -> None:
        await client.aclose()

    retrying = client.with_options(retry=ja.RetryPolicy(sleep=close_instead_of_sleeping))
    with pytest.raises(ja.APIConnectionError) as info:
        await retrying.get_stats(emulator.journey_ids[0])
    assert is_closed_error(info.value)
    # One attempt: the retry met the closed client.
    assert [request.endpoint for request in emulator.requests] == ["stats"]


@pytest.mark.parametrize("transport", ["raw", "mapped"])
async def test_get_stats_closed_under_its_request_raises_the_closed_error(
    served: EmulatorServer, emulator: JourneyEmulator, transport: str
) -> None:
    emulator.inject(Fault.delay(1.0), endpoint="stats")  # recorded as it arrives, answered late
    client = make_client(served, transport)
    call = asyncio.ensure_future(client.get_stats(emulator.journey_ids[0]))
    while not emulator.requests:  # noqa: ASYNC110 - the emulator records, it has no event
        await asyncio.sleep(0.01)
    await client.aclose()
    with pytest.raises(ja.APIConnectionError) as info:
        await call
    assert is_closed_error(info.value)
