"""
What a client and its copies share (`_shared`): the connections (the
caller's client, or one of its own over the caller's transport or the
default one) and who closes them, and fork safety: a client used before
``os.fork`` refuses in the child instead of writing to the parent's sockets.
"""

from __future__ import annotations

import asyncio
import os
import threading
import warnings

import httpx
import pytest
import respx
from payloads import JOURNEY_ID, MIXED_EXAMPLE, STATS_URL, TOKEN

import journey_async as ja
from journey_async._http import HTTP11Transport
from journey_async._shared import shared_resources
from journey_async.testing import JourneyEmulator, emulator_client, serve_emulator

# The connections -----------------------------------------------------------------


async def test_callers_http_client_is_used_and_not_closed(api: respx.MockRouter) -> None:
    api.get(STATS_URL).respond(json=MIXED_EXAMPLE)
    async with httpx.AsyncClient(timeout=3.0) as http_client:
        async with ja.AsyncJourneyClient(TOKEN, http_client=http_client) as client:
            await client.get_stats(JOURNEY_ID)
        assert not http_client.is_closed
        assert api.calls.last.request.extensions["timeout"] == httpx.Timeout(3.0).as_dict()


async def test_owned_http_client_is_closed() -> None:
    client = ja.AsyncJourneyClient(TOKEN)
    async with client:
        pass
    assert client._http.is_closed


async def test_custom_transport_is_used() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=MIXED_EXAMPLE)

    transport = httpx.MockTransport(handler)
    async with ja.AsyncJourneyClient(TOKEN, transport=transport) as client:
        stats = await client.get_stats(JOURNEY_ID)
    assert stats.title == "Journey Title"
    assert len(seen) == 1


async def test_only_the_clients_own_transport_keeps_attempt_timeouts_itself() -> None:
    own = shared_resources(pool_size=3, retry=None, http_client=None, transport=None, network={})
    assert own.owns_http
    assert own.bounds_attempts
    assert own.pool_size == 3
    assert isinstance(own.http._transport, HTTP11Transport)
    mock = httpx.MockTransport(lambda request: httpx.Response(204))
    theirs = shared_resources(pool_size=3, retry=None, http_client=None, transport=mock, network={})
    assert theirs.owns_http
    assert not theirs.bounds_attempts
    async with httpx.AsyncClient() as http_client:
        caller = shared_resources(
            pool_size=3, retry=None, http_client=http_client, transport=None, network={}
        )
        assert caller.http is http_client
        assert not caller.owns_http
        assert not caller.bounds_attempts
    await own.http.aclose()
    await theirs.http.aclose()


# Fork safety --------------------------------------------------------------------


def run_in_fork(client: ja.AsyncJourneyClient, journey_id: str) -> str:
    """get_stats in a forked child; what it ended with, as text."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process that has threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report and leave, whatever happens
        try:
            try:
                stats = asyncio.run(client.get_stats(journey_id))
                outcome = f"stats {stats.title}"
            except BaseException as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            os.write(write_end, outcome.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return b"".join(chunks).decode()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_client_used_before_a_fork_refuses_in_the_child() -> None:
    emulator = JourneyEmulator.with_sample_data(journeys=1)
    journey_id = emulator.journey_ids[0]
    client = emulator_client(emulator, retry=None)
    asyncio.run(client.get_stats(journey_id))

    outcome = run_in_fork(client, journey_id)
    assert outcome.startswith("RuntimeError: this client sent requests before the process was")
    assert "create a new AsyncJourneyClient" in outcome
    # The parent's client is untouched.
    assert asyncio.run(client.get_stats(journey_id)).title


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_client_not_used_before_a_fork_works_in_the_child() -> None:
    emulator = JourneyEmulator.with_sample_data(journeys=1)
    client = emulator_client(emulator, retry=None)
    outcome = run_in_fork(client, emulator.journey_ids[0])
    assert outcome.startswith("stats ")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_copy_of_a_used_client_refuses_in_the_child_too() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=MIXED_EXAMPLE))
    client = ja.AsyncJourneyClient(TOKEN, transport=transport, retry=None)
    asyncio.run(client.with_options(timeout=1.0).get_stats(JOURNEY_ID))
    outcome = run_in_fork(client.with_options(timeout=2.0), JOURNEY_ID)
    assert outcome.startswith("RuntimeError: this client sent requests before")


# One event loop at a time ----------------------------------------------------------


def test_a_loop_of_another_thread_holding_every_slot_is_refused_not_waited_for() -> None:
    # The other thread's request holds the only slot: a call from this
    # thread's loop would wait for it, and the slot given back from that
    # thread never wakes this loop, so the call would hang.
    emulator = JourneyEmulator(token=TOKEN, latency=0.5)
    emulator.add_journey(JOURNEY_ID, title="J", points=[])
    with serve_emulator(emulator) as server:
        client = ja.AsyncJourneyClient(TOKEN, base_url=server.url, max_concurrency=1, retry=None)
        holding = threading.Event()

        async def hold() -> None:
            request = asyncio.ensure_future(client.get_stats(JOURNEY_ID))
            while client._shared.slots.free:  # noqa: ASYNC110 - until it holds the slot
                await asyncio.sleep(0.001)
            holding.set()
            await request
            await client.aclose()

        other = threading.Thread(target=asyncio.run, args=(hold(),))
        other.start()
        try:
            assert holding.wait(10)

            async def use() -> None:
                with pytest.raises(RuntimeError, match="running in another thread"):
                    await asyncio.wait_for(client.get_stats(JOURNEY_ID), 5)

            asyncio.run(use())
        finally:
            other.join(10)
        assert not other.is_alive()
