"""
Fail fast (`_guard`): a call stops at its first 401/403, and at a request
that could not connect at all; what was not sent by then ends as
`NotAttemptedError` without a request, and requests waiting to retry give up.

Each scenario is written on anyio alone and runs on asyncio and on trio.
Requests are counted by the emulator served on 127.0.0.1 or, for a port
where nothing listens, by a transport wrapper; no test asserts a duration.
"""

from __future__ import annotations

import contextlib
import pickle
import socketserver
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import anyio
import httpx
import pytest
from scripted import free_port

import journey_async as ja
from journey_async._guard import CallGuard
from journey_async._http import default_transport
from journey_async.testing import EmulatorServer, Fault, JourneyEmulator, serve_emulator

RIGHT = "right-token"
WRONG = "wrong-token"
HANG_GUARD = 10  # seconds; reached only when something hangs

BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


def run(backend: str, scenario: Callable[..., Awaitable[None]], *args: Any) -> None:
    anyio.run(scenario, *args, backend=backend)


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    with serve_emulator(JourneyEmulator.with_sample_data(300, seed=3, token=RIGHT)) as server:
        yield server


@pytest.fixture
def emulator(served: EmulatorServer) -> JourneyEmulator:
    served.emulator.latency = 0.0
    served.emulator.clear_faults()
    served.emulator.reset_counters()
    return served.emulator


class Counting(httpx.AsyncBaseTransport):
    """Counts the attempts that reach the transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def by_error(results: Sequence[ja.StatsResult]) -> dict[type[object], int]:
    counts: dict[type[object], int] = {}
    for result in results:
        kind = type(result.error) if result.error is not None else type(None)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


# --- the error ------------------------------------------------------------------------------


def test_not_attempted_error_carries_its_cause_and_pickles() -> None:
    cause = ja.APIConnectionError("GET /x failed: connection refused")
    error = ja.NotAttemptedError(cause)
    assert isinstance(error, ja.JourneyError)
    assert error.cause is cause
    assert error.__cause__ is cause
    assert str(error) == f"not attempted: an earlier request of this call failed: {cause}"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is ja.NotAttemptedError
    assert str(copy) == str(error)
    assert type(copy.cause) is ja.APIConnectionError


async def test_a_stopped_guard_sends_nothing_more() -> None:
    sent: list[str] = []

    async def send(item: str) -> str:
        sent.append(item)
        return item

    guard = CallGuard()
    assert await guard.run(send, "a") == "a"
    guard.stop(ja.APIConnectionError("down"))
    guard.stop(ja.APIConnectionError("later"))  # the first one stays
    with pytest.raises(ja.NotAttemptedError, match="down") as info:
        await guard.run(send, "b")
    assert str(info.value.cause) == "down"
    assert sent == ["a"]
    assert "stopped by" in repr(guard)


# --- a wrong token --------------------------------------------------------------------------


async def wrong_token_fanout(served: EmulatorServer) -> None:
    emulator = served.emulator
    ids = emulator.journey_ids
    async with ja.AsyncJourneyClient(WRONG, base_url=served.url) as client:  # default settings
        results = await client.get_stats_many(ids)
        streamed = [r async for r in client.iter_stats(ids)]
    sent = emulator.requests
    for outcome in (results, streamed):
        counts = by_error(outcome)
        assert set(counts) == {ja.AuthenticationError, ja.NotAttemptedError}
        # Sent: at most what was in flight when the first 401 came back.
        assert counts[ja.AuthenticationError] <= client.max_concurrency
    assert [r.journey_id for r in results] == ids
    assert (
        len(sent)
        == by_error(results)[ja.AuthenticationError] + by_error(streamed)[ja.AuthenticationError]
    )
    not_attempted = [r.error for r in results if isinstance(r.error, ja.NotAttemptedError)]
    assert all(isinstance(e.cause, ja.AuthenticationError) for e in not_attempted)
    assert "401" in str(not_attempted[0])


@BACKENDS
def test_a_wrong_token_stops_a_fanout_after_the_requests_in_flight(
    backend: str, served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    run(backend, wrong_token_fanout, served)


async def retrying_requests_stop_at_a_401() -> None:
    first_attempts: dict[str, int] = {}
    others_waiting = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        journey = request.url.path.split("/")[3]
        first_attempts[journey] = first_attempts.get(journey, 0) + 1
        if journey == "j0":
            await others_waiting.wait()
            return httpx.Response(401, json={"message": "bad token"})
        return httpx.Response(503)

    sleeping: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeping.append(seconds)
        if len(sleeping) == 3:  # j1, j2 and j3 wait to retry: now the 401
            others_waiting.set()
        await anyio.sleep(3600)  # only the call stopping ends this wait

    policy = ja.RetryPolicy(max_attempts=6, sleep=sleep)
    transport = httpx.MockTransport(handler)
    ids = [f"j{n}" for n in range(100)]
    async with ja.AsyncJourneyClient(
        WRONG, retry=policy, transport=transport, max_concurrency=4
    ) as client:
        with anyio.fail_after(HANG_GUARD):
            results = await client.get_stats_many(ids)
    assert by_error(results) == {
        ja.AuthenticationError: 1,
        ja.ServerError: 3,  # their last attempt's own error
        ja.NotAttemptedError: 96,
    }
    assert first_attempts == {"j0": 1, "j1": 1, "j2": 1, "j3": 1}, "no retry after the 401"


@BACKENDS
def test_requests_waiting_to_retry_give_up_at_a_401(backend: str) -> None:
    run(backend, retrying_requests_stop_at_a_401)


async def wrong_token_removals(served: EmulatorServer) -> None:
    emulator = served.emulator
    users = [f"user-{n}" for n in range(50)]
    async with ja.AsyncJourneyClient(WRONG, base_url=served.url, max_concurrency=2) as client:
        with pytest.raises(ja.AuthenticationError):
            await client.remove_users(users, all_journeys=True, batch_size=5)
    assert len(emulator.requests) == 2


@BACKENDS
def test_a_wrong_token_stops_remove_users(
    backend: str, served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    run(backend, wrong_token_removals, served)


async def removals_confirmed_then_401(served: EmulatorServer) -> None:
    emulator = served.emulator
    journey = emulator.add_journey(users=[f"u{n}" for n in range(20)])
    # The first request goes through, the second is refused.
    emulator.inject(Fault.delay(0), Fault.status(403), endpoint="remove", journey_id=journey)
    users = [f"u{n}" for n in range(20)]
    landed: list[str] = []
    async with ja.AsyncJourneyClient(RIGHT, base_url=served.url, max_concurrency=1) as client:
        with pytest.raises(ja.RemovalError) as info:
            await client.remove_users(
                users, journey_ids=[journey], batch_size=5, on_removed=landed.extend
            )
    error = info.value
    assert error.removed == tuple(users[:5]) == tuple(landed)
    assert error.failed == tuple(users[5:])
    assert [type(e) for e in error.errors] == [ja.AuthenticationError, ja.NotAttemptedError]
    assert len([r for r in emulator.requests if r.endpoint == "remove"]) == 2
    assert emulator.users_in(journey) == frozenset(users[5:])


@BACKENDS
def test_remove_users_reports_the_users_not_attempted_as_failed(
    backend: str, served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    run(backend, removals_confirmed_then_401, served)


async def batcher_after_a_401(served: EmulatorServer) -> None:
    emulator = served.emulator
    first, second = emulator.journey_ids[:2]
    async with (
        ja.AsyncJourneyClient(WRONG, base_url=served.url, max_concurrency=1) as client,
        client.removal_batcher(max_delay=0) as batcher,
    ):
        outcomes: dict[str, BaseException] = {}

        async def remove(user: str, journey: str) -> None:
            try:
                await batcher.remove([user], [journey])
            except ja.JourneyError as exc:
                outcomes[user] = exc

        async with anyio.create_task_group() as task_group:
            # Two targets, one sender: the second batch waits for the first.
            task_group.start_soon(remove, "a", first)
            task_group.start_soon(remove, "b", second)
        with pytest.raises(ja.NotAttemptedError) as info:
            await batcher.remove(["c"], [first])
    # Whichever was sent first (trio runs new tasks in any order).
    assert sorted(type(e).__name__ for e in outcomes.values()) == [
        "AuthenticationError",
        "NotAttemptedError",
    ]
    assert isinstance(info.value.cause, ja.AuthenticationError)
    assert len(emulator.requests) == 1


@BACKENDS
def test_a_401_fails_a_batchers_pending_and_later_removals(
    backend: str, served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    run(backend, batcher_after_a_401, served)


# --- nothing listening: the circuit ---------------------------------------------------------


async def closed_port_fanout() -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    woken = anyio.Event()
    exhausted: list[bool] = []

    async def sleep(seconds: float) -> None:
        # One request retries at once and runs out of attempts; every other
        # one waits for good, unless the call stopping wakes it.
        if not exhausted:
            exhausted.append(True)
            return
        await anyio.sleep(3600)
        woken.set()

    policy = ja.RetryPolicy(max_attempts=2, sleep=sleep)
    transport = Counting(default_transport(32))
    async with ja.AsyncJourneyClient(
        "t", base_url=base_url, retry=policy, transport=transport
    ) as client:
        with anyio.fail_after(HANG_GUARD):
            results = await client.get_stats_many([f"j{n}" for n in range(300)])
    counts = by_error(results)
    assert counts[ja.NotAttemptedError] >= 300 - 32
    assert counts[ja.NotAttemptedError] + counts[ja.APIConnectionError] == 300
    assert transport.attempts <= 32 + 1, "one retry in all, none after the circuit opened"
    cause = next(r.error for r in results if isinstance(r.error, ja.NotAttemptedError))
    assert isinstance(cause, ja.NotAttemptedError)
    assert isinstance(cause.cause, ja.APIConnectionError)
    assert isinstance(cause.cause.__cause__, httpx.ConnectError)


@BACKENDS
def test_a_closed_port_ends_all_ids_after_one_requests_retries(backend: str) -> None:
    run(backend, closed_port_fanout)


async def closed_port_removals() -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    transport = Counting(default_transport(4))
    async with ja.AsyncJourneyClient(
        "t", base_url=base_url, retry=None, transport=transport, max_concurrency=4
    ) as client:
        with pytest.raises(ja.APIConnectionError):
            await client.remove_users(
                [f"u{n}" for n in range(100)], all_journeys=True, batch_size=1
            )
    assert transport.attempts <= 4


@BACKENDS
def test_a_closed_port_stops_remove_users(backend: str) -> None:
    run(backend, closed_port_removals)


@contextlib.contextmanager
def refusing_proxy() -> Iterator[tuple[str, list[bytes]]]:
    """A proxy on 127.0.0.1 that answers every CONNECT 407, in a thread (for
    asyncio and trio alike); yields its URL and the request lines it got."""
    lines: list[bytes] = []

    class Refuse(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            lines.append(self.rfile.readline().rstrip())
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Refuse) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", lines
        finally:
            server.shutdown()
            thread.join()


async def refused_tunnel_fanout() -> None:
    with refusing_proxy() as (proxy, lines):
        async with ja.AsyncJourneyClient(
            "t", base_url="https://127.0.0.1:9", proxy=proxy, retry=None, max_concurrency=2
        ) as client:
            with anyio.fail_after(HANG_GUARD):
                results = await client.get_stats_many([f"j{n}" for n in range(30)])
    counts = by_error(results)
    assert counts.get(ja.NotAttemptedError, 0) >= 27, counts
    assert len(lines) <= 3, "stopped at the first refusal, not one CONNECT per journey"


@BACKENDS
def test_a_proxy_refusing_the_tunnel_stops_the_call(backend: str) -> None:
    # The API cannot be reached as configured, as at a refused connection.
    run(backend, refused_tunnel_fanout)


async def broken_connections_open_no_circuit(served: EmulatorServer) -> None:
    # A connection dropped mid-answer says the server is there: no circuit.
    emulator = served.emulator
    ids = emulator.journey_ids[:10]
    emulator.inject(Fault.drop(), endpoint="stats", journey_id=ids[0])
    async with ja.AsyncJourneyClient(
        RIGHT, base_url=served.url, retry=None, max_concurrency=1
    ) as client:
        results = await client.get_stats_many(ids)
    assert by_error(results) == {ja.APIConnectionError: 1, type(None): 9}


@BACKENDS
def test_a_dropped_connection_does_not_stop_the_call(
    backend: str, served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    run(backend, broken_connections_open_no_circuit, served)


async def a_batcher_opens_no_circuit() -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    async with (
        ja.AsyncJourneyClient("t", base_url=base_url, retry=None) as client,
        client.removal_batcher(max_delay=0) as batcher,
    ):
        for user in ("a", "b"):
            with pytest.raises(ja.APIConnectionError):
                await batcher.remove([user], all_journeys=True)


@BACKENDS
def test_a_batcher_keeps_trying_after_connection_failures(backend: str) -> None:
    run(backend, a_batcher_opens_no_circuit)
