"""
Streams that end, on asyncio and on trio (`_tasks`, `AsCompleted`): an
`iter_stats` abandoned by a ``break`` without ``async with``, by ``aclose``,
by garbage collection or by the end of the task that iterates starts no new
request and leaves no task behind; and every public call works under
``trio.run`` and ``anyio.run(backend="trio")``.

Requests are counted by a transport wrapper as they start, tasks by the
event loop; the emulator is served on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import sniffio
import trio

import journey_async as ja
from journey_async._fanout import map_as_completed
from journey_async._http import default_transport
from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

HANG_GUARD = 10  # seconds; reached only when something hangs
CONCURRENCY = 8

BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    with serve_emulator(JourneyEmulator.with_sample_data(50, seed=11)) as server:
        yield server


@pytest.fixture
def journeys(served: EmulatorServer) -> JourneyEmulator:
    served.emulator.latency = 0.02  # requests are in flight when the consumer leaves
    served.emulator.clear_faults()
    served.emulator.reset_counters()
    return served.emulator


class Counting(httpx.AsyncBaseTransport):
    """Counts the requests that start."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.started = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.started += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def tasks_alive() -> int:
    if sniffio.current_async_library() == "trio":
        return trio.lowlevel.current_statistics().tasks_living
    return len(asyncio.all_tasks())


async def until_tasks(baseline: int) -> None:
    with anyio.fail_after(HANG_GUARD):
        while tasks_alive() > baseline:  # noqa: ASYNC110 - the loop's own count
            await anyio.sleep(0.005)


def endless(served: EmulatorServer) -> Iterator[str]:
    while True:
        yield from served.emulator.journey_ids


def counting_client(served: EmulatorServer) -> tuple[ja.AsyncJourneyClient, Counting]:
    transport = Counting(default_transport(CONCURRENCY))
    client = ja.AsyncJourneyClient(
        served.emulator.token,
        base_url=served.url,
        transport=transport,
        max_concurrency=CONCURRENCY,
    )
    return client, transport


async def quiet_after(transport: Counting, baseline: int) -> int:
    """Requests started once the tasks are back to *baseline* and a while after."""
    await until_tasks(baseline)
    started = transport.started
    await anyio.sleep(0.1)  # room for a leftover worker to send, were there one
    return transport.started - started


async def warm(client: ja.AsyncJourneyClient, served: EmulatorServer) -> None:
    # Every connection open before the stream starts: a connect cancelled
    # half way on asyncio 3.11 can leave its socket to the garbage collector
    # (its happy-eyeballs race), which is the transport's business, not this.
    await client.get_stats_many(served.emulator.journey_ids[: 2 * CONCURRENCY])


def run(backend: str, scenario: Callable[..., Awaitable[None]], *args: Any) -> None:
    anyio.run(scenario, *args, backend=backend)


# --- abandoned streams ----------------------------------------------------------------------


async def break_without_async_with(served: EmulatorServer) -> None:
    client, transport = counting_client(served)
    async with client:
        await warm(client, served)
        baseline = tasks_alive()
        before = transport.started
        async for result in client.iter_stats(endless(served)):
            assert result.ok
            break
        at_break = transport.started
        assert await quiet_after(transport, baseline) == 0
        # Nothing started after the break but what was in flight at it.
        assert transport.started == at_break
        assert at_break - before <= 2 * CONCURRENCY  # the first wave, and those it freed
        assert tasks_alive() == baseline
        # The client is still usable.
        assert len(await client.get_stats_many(served.emulator.journey_ids[:10])) == 10


@BACKENDS
def test_a_break_without_async_with_stops_requests_and_tasks(
    backend: str, served: EmulatorServer, journeys: JourneyEmulator
) -> None:
    run(backend, break_without_async_with, served)


async def aclose_mid_stream(served: EmulatorServer) -> None:
    client, transport = counting_client(served)
    async with client:
        await warm(client, served)
        baseline = tasks_alive()
        results = client.iter_stats(endless(served))
        await anext(results)
        await results.aclose()
        at_close = transport.started
        assert tasks_alive() == baseline, "aclose waits for the workers"
        assert await quiet_after(transport, baseline) == 0
        assert transport.started == at_close
        with pytest.raises(StopAsyncIteration):
            await anext(results)


@BACKENDS
def test_aclose_stops_requests_and_waits_for_the_tasks(
    backend: str, served: EmulatorServer, journeys: JourneyEmulator
) -> None:
    run(backend, aclose_mid_stream, served)


async def collected_in_a_cycle(served: EmulatorServer) -> None:
    client, transport = counting_client(served)
    async with client:
        await warm(client, served)
        baseline = tasks_alive()
        holder: dict[str, Any] = {}
        holder["results"] = client.iter_stats(endless(served))
        holder["self"] = holder  # a cycle: only the garbage collector frees it
        await anext(holder["results"])
        del holder
        gc.collect()
        assert await quiet_after(transport, baseline) == 0


@BACKENDS
def test_an_iterator_garbage_collected_stops_its_work(
    backend: str, served: EmulatorServer, journeys: JourneyEmulator
) -> None:
    run(backend, collected_in_a_cycle, served)


async def consumer_task_fails() -> None:
    started: list[int] = []
    kept: list[BaseException] = []

    async def slow(item: int) -> int:
        started.append(item)
        await anyio.sleep(0 if item == 0 else 3600)
        return item

    async def consume() -> None:
        # A local: the traceback kept below keeps the frame, and it, alive.
        results = map_as_completed(slow, range(100), concurrency=5)
        async for _ in results:
            raise RuntimeError("consumer bug")

    baseline = tasks_alive()
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(consume)
    except BaseException as exc:
        kept.append(exc)
    assert kept
    await until_tasks(baseline)  # the workers sleeping an hour were cancelled
    assert len(started) <= 6  # the first five, and the one item 0 freed a slot for


@BACKENDS
def test_the_end_of_the_consuming_task_stops_the_work(backend: str) -> None:
    run(backend, consumer_task_fails)


async def cancelled_consumer() -> None:
    started: list[int] = []

    async def forever(item: int) -> int:
        started.append(item)
        await anyio.sleep(3600)
        return item

    baseline = tasks_alive()
    with anyio.move_on_after(0.05):
        async for _ in map_as_completed(forever, range(100), concurrency=4):
            pass
    await until_tasks(baseline)
    assert len(started) == 4


@BACKENDS
def test_a_cancelled_consumer_stops_the_work(backend: str) -> None:
    run(backend, cancelled_consumer)


async def failure_is_raised_after_the_results() -> None:
    async def fail_on_3(item: int) -> int:
        await anyio.sleep(0.05 if item == 3 else 0)
        if item == 3:
            raise KeyError("boom")
        return item

    seen: list[int] = []

    async def consume() -> None:
        async for result in map_as_completed(fail_on_3, range(4), concurrency=4):
            seen.append(result)

    with pytest.raises(KeyError, match="boom"):
        await consume()
    assert sorted(seen) == [0, 1, 2]


@BACKENDS
def test_a_workers_failure_comes_out_of_the_iteration(backend: str) -> None:
    run(backend, failure_is_raised_after_the_results)


# --- every public call on trio --------------------------------------------------------------


async def every_public_call(served: EmulatorServer) -> None:
    emulator = served.emulator
    ids = emulator.journey_ids[:20]
    users = [f"trio-user-{n}" for n in range(30)]
    emulator.add_users(ids[0], users)
    async with ja.AsyncJourneyClient(emulator.token, base_url=served.url) as client:
        assert (await client.get_stats(ids[0])).title
        assert all(r.ok for r in await client.get_stats_many(ids))
        streamed = [r async for r in client.iter_stats(ids)]
        assert sorted(r.journey_id for r in streamed) == sorted(ids)
        async with client.iter_stats(ids) as results:
            async for _ in results:
                break
        removed = await client.remove_users(users[:20], journey_ids=[ids[0]], batch_size=7)
        assert removed.requests == 3
        async with client.removal_batcher() as batcher, anyio.create_task_group() as tg:
            for user in users[20:]:
                tg.start_soon(batcher.remove, [user], [ids[0]])
        assert not emulator.users_in(ids[0]) & set(users)
        fast = client.with_options(retry=None)
        assert len(await fast.get_stats_many(ids[:3])) == 3


def test_every_public_call_under_trio_run(
    served: EmulatorServer, journeys: JourneyEmulator
) -> None:
    trio.run(every_public_call, served)


def test_every_public_call_under_anyio_on_trio(
    served: EmulatorServer, journeys: JourneyEmulator
) -> None:
    anyio.run(every_public_call, served, backend="trio")
