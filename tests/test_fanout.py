"""
Fan-out.

- The bounded map primitive (`_fanout`): order, bound, laziness, failure,
  cancellation, the as-completed iterator's lifetime. Pure asyncio, no I/O.
- `get_stats_many` / `iter_stats` against the emulator served on 127.0.0.1:
  what a user sees, the bound as the server counts it, stopping early.

The default transport has test files of its own: tests/test_http_*.py.

No test asserts a duration: speed is for benchmarks/fanout.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from emulator_support import stats

import journey_async as ja
from journey_async._fanout import map_as_completed, map_ordered
from journey_async.testing import EmulatorServer, Fault, JourneyEmulator, serve_emulator

TOKEN = "test-token"  # the emulator's default


class Probe:
    """An async function that records how many calls run at once."""

    def __init__(self, delays: Callable[[int], float] = lambda item: 0.0) -> None:
        self.delays = delays
        self.started: list[int] = []
        self.finished: list[int] = []
        self.in_flight = 0
        self.peak = 0
        self._started = asyncio.Event()

    async def until_in_flight(self, count: int) -> None:
        while self.in_flight < count:
            self._started.clear()
            await self._started.wait()

    async def __call__(self, item: int) -> int:
        self.started.append(item)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self._started.set()
        try:
            await asyncio.sleep(self.delays(item))
        finally:
            self.in_flight -= 1
        self.finished.append(item)
        return item * 10


class Pulled:
    """A lazy iterable that counts how far it was read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        for item in range(self.count):
            self.pulled += 1
            yield item


def reversed_delays(count: int) -> Callable[[int], float]:
    """Later items finish first."""
    return lambda item: (count - item) * 0.001


# --- the primitive: map_ordered ----------------------------------------------------------


async def test_map_ordered_keeps_input_order_within_the_bound() -> None:
    probe = Probe(reversed_delays(40))
    results = await map_ordered(probe, range(40), concurrency=7)
    assert results == [item * 10 for item in range(40)]
    assert probe.peak == 7
    assert probe.finished != sorted(probe.finished), "completion order differed"


async def test_map_ordered_pulls_only_as_calls_settle() -> None:
    items = Pulled(1000)
    probe = Probe()

    async def check_then_call(item: int) -> int:
        # Pulled but not yet settled never exceeds the bound.
        assert items.pulled - len(probe.finished) <= 5
        return await probe(item)

    await map_ordered(check_then_call, items, concurrency=5)
    assert items.pulled == 1000


async def test_map_ordered_starts_no_more_tasks_than_items() -> None:
    probe = Probe()
    assert await map_ordered(probe, [1, 2], concurrency=100) == [10, 20]
    assert probe.peak == 2
    assert await map_ordered(probe, [], concurrency=3) == []


async def test_map_ordered_reports_progress_per_item() -> None:
    calls: list[int] = []
    await map_ordered(Probe(), range(25), concurrency=4, progress=calls.append)
    assert calls == [1] * 25


async def test_first_failure_cancels_the_rest_and_is_raised_unwrapped() -> None:
    probe = Probe(lambda item: 0.0 if item == 3 else 10.0)

    async def fail_on_3(item: int) -> int:
        if item == 3:
            await asyncio.sleep(0.01)
            raise KeyError("boom")
        return await probe(item)

    with pytest.raises(KeyError, match="boom"):
        await map_ordered(fail_on_3, range(100), concurrency=4)
    assert probe.in_flight == 0, "the others were cancelled"
    assert max(probe.started) < 8, "nothing new started after the failure"


async def test_a_failing_iterable_fails_the_map() -> None:
    def ids() -> Iterator[int]:
        yield 1
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await map_ordered(Probe(lambda item: 10.0), ids(), concurrency=2)


@pytest.mark.parametrize(("concurrency", "error"), [(0, ValueError), (1.5, TypeError)])
async def test_bad_concurrency_is_refused(concurrency: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        await map_ordered(Probe(), [1], concurrency=concurrency)
    with pytest.raises(error):
        map_as_completed(Probe(), [1], concurrency=concurrency)


async def test_cancelling_map_ordered_cancels_the_calls() -> None:
    probe = Probe(lambda item: 10.0)
    task = asyncio.ensure_future(map_ordered(probe, range(10), concurrency=3))
    await probe.until_in_flight(3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert probe.in_flight == 0


async def test_a_cancellation_is_raised_once_every_call_has_wound_down() -> None:
    wound_down: list[int] = []

    async def slow_to_stop(item: int) -> int:
        try:
            await asyncio.sleep(10.0)
        finally:
            await asyncio.sleep(0.02)  # cleanup that awaits, as closing a connection may
            wound_down.append(item)
        return item

    task = asyncio.ensure_future(map_ordered(slow_to_stop, range(3), concurrency=3))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()  # cancelled again while the calls wind down: still waited for
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(wound_down) == [0, 1, 2]


async def test_an_anyio_cancel_scope_around_the_map_cancels_the_calls() -> None:
    # anyio cancels its scope's task again at every turn of the loop until
    # the scope is left: the workers must still be waited out, and the map end.
    probe = Probe(lambda item: 10.0)
    with anyio.move_on_after(0.05) as scope:
        await map_ordered(probe, range(10), concurrency=3)
    assert scope.cancelled_caught
    assert probe.in_flight == 0


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.eager_task_factory is new in 3.12")
async def test_an_eager_task_factory_starts_no_worker_after_a_failure() -> None:
    started: list[int] = []

    async def fail_at_once(item: int) -> int:
        started.append(item)
        raise KeyError("boom")

    loop = asyncio.get_running_loop()
    if type(loop).__module__.startswith("uvloop"):
        pytest.skip("uvloop's create_task refuses asyncio's eager task factory on 3.13")
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    try:
        with pytest.raises(KeyError, match="boom"):
            await map_ordered(fail_at_once, range(10), concurrency=5)
    finally:
        loop.set_task_factory(None)
    assert started == [0]


async def test_a_task_factory_that_raises_leaves_no_worker_running() -> None:
    # The factory's error is the call's, and the workers it did start are
    # cancelled and waited out, not left running after the call has failed.
    probe = Probe(lambda item: 10.0)
    loop = asyncio.get_running_loop()
    made = 0

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        nonlocal made
        made += 1
        if made == 3:
            raise RuntimeError("the factory broke")
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        with pytest.raises(RuntimeError, match="the factory broke"):
            await map_ordered(probe, range(10), concurrency=5)
    finally:
        loop.set_task_factory(None)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert probe.in_flight == 0
    assert probe.finished == []


# On trio the workers are an anyio task group's: the same rules, run there.


async def _on_trio_in_order_within_the_bound() -> None:
    running = peak = 0

    async def probe(item: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep((20 - item) * 0.001)
        running -= 1
        return item * 10

    assert await map_ordered(probe, range(20), concurrency=4) == [i * 10 for i in range(20)]
    assert peak == 4


async def _on_trio_the_first_failure_cancels_the_rest() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def fail_on_3(item: int) -> int:
        started.append(item)
        if item == 3:
            await anyio.sleep(0.01)
            raise KeyError("boom")
        try:
            await anyio.sleep(10.0)
        except anyio.get_cancelled_exc_class():
            cancelled.append(item)
            raise
        return item

    with pytest.raises(KeyError, match="boom"):
        await map_ordered(fail_on_3, range(100), concurrency=4)
    assert sorted(cancelled) == [0, 1, 2]
    assert max(started) == 3, "nothing new started after the failure"


async def _on_trio_a_failing_iterable_fails_the_map() -> None:
    def ids() -> Iterator[int]:
        yield 1
        raise ValueError("bad input")

    async def slow(item: int) -> int:
        await anyio.sleep(10.0)
        return item

    with pytest.raises(ValueError, match="bad input"):
        await map_ordered(slow, ids(), concurrency=2)


@pytest.mark.parametrize(
    "scenario",
    [
        _on_trio_in_order_within_the_bound,
        _on_trio_the_first_failure_cancels_the_rest,
        _on_trio_a_failing_iterable_fails_the_map,
    ],
)
def test_map_ordered_on_trio(scenario: Callable[[], Awaitable[None]]) -> None:
    anyio.run(scenario, backend="trio")


# --- the primitive: map_as_completed -----------------------------------------------------


async def test_as_completed_yields_in_completion_order_within_the_bound() -> None:
    probe = Probe(reversed_delays(30))
    seen = [result async for result in map_as_completed(probe, range(30), concurrency=6)]
    assert sorted(seen) == [item * 10 for item in range(30)]
    assert seen == [item * 10 for item in probe.finished]
    assert probe.peak == 6


async def test_as_completed_starts_nothing_before_iteration() -> None:
    probe = Probe()
    results = map_as_completed(probe, range(3), concurrency=2)
    await asyncio.sleep(0.01)
    assert probe.started == []
    assert "not started" in repr(results)
    assert [r async for r in results] != []
    assert [r async for r in results] == [], "results are consumed once"


async def test_break_stops_further_calls() -> None:
    probe = Probe(lambda item: 0.01)
    items = Pulled(10**6)
    async for _ in map_as_completed(probe, items, concurrency=4):
        break
    await asyncio.sleep(0.05)
    started = len(probe.started)
    assert probe.in_flight == 0
    await asyncio.sleep(0.05)
    assert len(probe.started) == started
    # At most: the first batch, what filled the buffer, and one more each.
    assert items.pulled <= 3 * 4


async def test_aclose_cancels_what_is_in_flight_and_waits() -> None:
    probe = Probe(lambda item: 0.0 if item == 0 else 10.0)
    results = map_as_completed(probe, range(100), concurrency=5)
    assert await anext(results) == 0
    await results.aclose()
    assert probe.in_flight == 0
    assert "closed" in repr(results)
    with pytest.raises(StopAsyncIteration):
        await anext(results)
    await results.aclose()  # twice is fine


async def test_two_tasks_reading_one_iterator_share_its_results_and_both_end() -> None:
    results = map_as_completed(Probe(lambda item: 0.01), range(20), concurrency=4)

    async def read() -> list[int]:
        return [result async for result in results]

    first, second = await asyncio.gather(read(), read())
    assert sorted(first + second) == [item * 10 for item in range(20)]


async def test_aclose_from_another_task_ends_a_waiting_iteration() -> None:
    results = map_as_completed(Probe(lambda item: 10.0), range(5), concurrency=5)
    waiting = asyncio.ensure_future(anext(results))
    await asyncio.sleep(0.01)
    await results.aclose()
    with pytest.raises(StopAsyncIteration):
        await waiting


async def test_async_with_closes_on_exit() -> None:
    probe = Probe(lambda item: 0.0 if item == 0 else 10.0)
    async with map_as_completed(probe, range(100), concurrency=5) as results:
        async for _ in results:
            break
    assert probe.in_flight == 0


async def test_an_exception_that_ends_the_consuming_task_stops_the_calls() -> None:
    probe = Probe(lambda item: 0.0 if item == 0 else 10.0)

    async def consume() -> None:
        async for _ in map_as_completed(probe, range(100), concurrency=5):
            raise RuntimeError("consumer bug")

    task = asyncio.ensure_future(consume())
    with pytest.raises(RuntimeError, match="consumer bug"):
        # The task keeps its traceback, and with it the iterator, alive.
        await task
    await asyncio.sleep(0.01)
    assert probe.in_flight == 0


async def test_an_exception_caught_in_the_same_task_leaves_bounded_work() -> None:
    probe = Probe(lambda item: 0.001)
    items = Pulled(10**6)
    iterator = map_as_completed(probe, items, concurrency=5)
    with contextlib.suppress(RuntimeError):
        async for _ in iterator:
            raise RuntimeError("caught below")
    await asyncio.sleep(0.05)
    assert probe.in_flight == 0, "blocked on the full buffer, not calling"
    assert items.pulled <= 3 * 5
    await iterator.aclose()


async def test_cancelled_consumer_cancels_the_calls() -> None:
    probe = Probe(lambda item: 10.0)

    async def consume() -> None:
        async for _ in map_as_completed(probe, range(100), concurrency=5):
            pass

    task = asyncio.ensure_future(consume())
    await probe.until_in_flight(5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.01)
    assert probe.in_flight == 0


async def test_failure_after_results_is_raised_after_them() -> None:
    async def fail_on_5(item: int) -> int:
        await asyncio.sleep(0.05 if item == 5 else 0.0)
        if item == 5:
            raise KeyError("boom")
        return item

    seen: list[int] = []

    async def consume() -> None:
        async for result in map_as_completed(fail_on_5, range(6), concurrency=6):
            seen.append(result)

    with pytest.raises(KeyError, match="boom"):
        await consume()
    assert sorted(seen) == [0, 1, 2, 3, 4]


async def test_as_completed_memory_is_bounded_by_the_concurrency() -> None:
    items = Pulled(20_000)
    consumed = 0
    async for _ in map_as_completed(Probe(), items, concurrency=8, progress=lambda n: None):
        consumed += 1
        # In flight (8) plus buffered (8) plus the one being pulled.
        assert items.pulled - consumed <= 2 * 8 + 1
    assert consumed == 20_000


# --- get_stats_many and iter_stats against the served emulator ---------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    with serve_emulator(JourneyEmulator.with_sample_data(300, seed=5)) as server:
        yield server


@pytest.fixture
def emulator(served: EmulatorServer) -> JourneyEmulator:
    emulator = served.emulator
    emulator.latency = 0.0
    emulator.clear_faults()
    emulator.reset_counters()
    return emulator


def served_client(served: EmulatorServer, **kwargs: Any) -> ja.AsyncJourneyClient:
    kwargs.setdefault("retry", None)
    return ja.AsyncJourneyClient(TOKEN, base_url=served.url, **kwargs)


async def test_300_journeys_in_input_order_never_more_than_20_in_flight(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    emulator.latency = 0.02
    ids = list(emulator.journey_ids)
    ids.insert(150, "no-such-journey")
    async with served_client(served, max_concurrency=20) as client:
        results = await client.get_stats_many(ids)
        emulator.latency = 0.0
        first = await client.get_stats(ids[0])
    assert [result.journey_id for result in results] == ids
    failed = [result for result in results if not result.ok]
    assert [result.journey_id for result in failed] == ["no-such-journey"]
    assert isinstance(failed[0].error, ja.NotFoundError)
    assert failed[0].stats is None
    assert results[0].stats == first
    assert emulator.max_in_flight == 20


async def test_iter_stats_yields_every_journey_once(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    ids = emulator.journey_ids[:50]
    async with served_client(served, max_concurrency=8) as client:
        results = [result async for result in client.iter_stats(ids)]
    assert sorted(result.journey_id for result in results) == sorted(ids)
    assert all(result.ok and result.stats is not None for result in results)


async def test_one_failing_journey_is_its_own_error(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    ids = emulator.journey_ids[:20]
    emulator.inject(Fault.status(503), endpoint="stats", journey_id=ids[7])
    async with served_client(served) as client:
        results = await client.get_stats_many(ids, concurrency=4)
    errors = {result.journey_id: result.error for result in results if result.error}
    assert list(errors) == [ids[7]]
    assert isinstance(errors[ids[7]], ja.ServerError)


async def test_progress_is_called_once_per_journey(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    calls: list[int] = []
    ids = [*emulator.journey_ids[:30], "missing"]
    async with served_client(served) as client:
        await client.get_stats_many(ids, progress=calls.append)
        async for _ in client.iter_stats(ids, progress=calls.append):
            pass
    assert calls == [1] * (2 * len(ids))


async def test_per_call_concurrency_bounds_the_call(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    emulator.latency = 0.01
    async with served_client(served, max_concurrency=10) as client:
        await client.get_stats_many(emulator.journey_ids[:30], concurrency=3)
    assert emulator.max_in_flight == 3


@pytest.mark.parametrize(
    ("ids", "error", "match"),
    [
        (["ok-1", "a/b"], ValueError, r"journey_ids\[1\]: .*URL path"),
        (("ok-1", None), TypeError, r"journey_ids\[1\]: journey id must be a string"),
        ({"../x"}, ValueError, r"journey_ids\[0\]"),
        ("just-one-id", TypeError, "bare str"),
        (b"bytes", TypeError, "bare bytes"),
        (42, TypeError, "iterable of strings"),
    ],
)
async def test_bad_ids_in_a_collection_send_nothing(
    served: EmulatorServer, emulator: JourneyEmulator, ids: Any, error: type[Exception], match: str
) -> None:
    async with served_client(served) as client:
        with pytest.raises(error, match=match):
            await client.get_stats_many(ids)
        with pytest.raises(error, match=match):
            client.iter_stats(ids)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("concurrency", "error"), [(0, ValueError), (True, TypeError), (11, ValueError)]
)
async def test_bad_concurrency_sends_nothing(
    served: EmulatorServer, emulator: JourneyEmulator, concurrency: Any, error: type[Exception]
) -> None:
    async with served_client(served, max_concurrency=10) as client:
        with pytest.raises(error, match="concurrency"):
            await client.get_stats_many(emulator.journey_ids[:3], concurrency=concurrency)
        with pytest.raises(error, match="concurrency"):
            client.iter_stats(emulator.journey_ids[:3], concurrency=concurrency)
    assert emulator.requests == []


class _AsyncCall:
    async def __call__(self, count: int) -> None:
        pass


async def _async_progress(count: int) -> None:
    pass


@pytest.mark.parametrize(
    "progress",
    [_async_progress, functools.partial(_async_progress), _AsyncCall()],
    ids=["async-def", "partial", "async-call"],
)
async def test_an_async_progress_is_refused_before_any_request(
    served: EmulatorServer, emulator: JourneyEmulator, progress: Any
) -> None:
    # Called and never awaited, it never ran: a bar that never moved, and a
    # "coroutine was never awaited" warning per journey.
    ids = emulator.journey_ids[:3]
    async with served_client(served) as client:
        with pytest.raises(TypeError, match="progress must be a plain function"):
            await client.get_stats_many(ids, progress=progress)
        with pytest.raises(TypeError, match="progress must be a plain function"):
            client.iter_stats(ids, progress=progress)
        with pytest.raises(TypeError, match="progress must be a plain function"):
            await client.remove_users(["user-1"], all_journeys=True, progress=progress)
        with pytest.raises(TypeError, match="on_removed must be a plain function"):
            await client.remove_users(["user-1"], all_journeys=True, on_removed=progress)
    assert emulator.requests == []


async def test_a_list_that_grows_during_the_call_sends_only_the_ids_checked(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    # Checked at the call and iterated again as the fan-out went, the list
    # sent what was appended unchecked: here a GET to another API path.
    ids = emulator.journey_ids[:3]

    def grow(count: int) -> None:
        if len(ids) == 3:
            ids.append("../drop-users/external?")

    async with served_client(served, max_concurrency=1) as client:
        results = await client.get_stats_many(ids, progress=grow)
        assert [result.journey_id for result in results] == emulator.journey_ids[:3]
        del ids[3:]
        streamed = [result async for result in client.iter_stats(ids, progress=grow)]
        assert len(streamed) == 3
    assert [request.path for request in emulator.requests] == 2 * [
        stats(journey_id) for journey_id in emulator.journey_ids[:3]
    ]


async def test_a_bad_id_in_a_lazy_iterable_stops_the_call_where_it_is_reached(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    emulator.latency = 0.01

    def ids() -> Iterator[str]:
        yield from emulator.journey_ids[:30]
        yield "a/b"
        yield from emulator.journey_ids[30:]

    async with served_client(served, max_concurrency=4) as client:
        with pytest.raises(ValueError, match=r"journey_ids\[30\]"):
            await client.get_stats_many(ids())
        sent = len(emulator.requests)
        assert 27 <= sent <= 30
        with pytest.raises(ValueError, match=r"journey_ids\[30\]"):
            await drain(client.iter_stats(ids()))
        # The client is still usable.
        assert (await client.get_stats(emulator.journey_ids[0])).title


async def drain(results: AsyncIterator[ja.StatsResult]) -> list[ja.StatsResult]:
    return [result async for result in results]


async def test_break_stops_the_requests_and_the_client_stays_usable(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    emulator.latency = 0.02
    endless = itertools.cycle(emulator.journey_ids)
    async with served_client(served, max_concurrency=5) as client:
        async for result in client.iter_stats(endless):
            assert result.ok
            break
        await asyncio.sleep(0.1)
        sent = len(emulator.requests)
        await asyncio.sleep(0.1)
        assert len(emulator.requests) == sent
        assert sent <= 3 * 5
        emulator.latency = 0.0
        assert len(await client.get_stats_many(emulator.journey_ids[:20])) == 20


async def test_cancelling_the_caller_cancels_the_requests_and_the_client_stays_usable(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    emulator.latency = 0.5
    async with served_client(served, max_concurrency=5) as client:
        task = asyncio.ensure_future(client.get_stats_many(emulator.journey_ids))
        while emulator.in_flight < 5:  # noqa: ASYNC110 - the server's count, in its thread
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await settled(emulator)
        assert len(emulator.requests) == 5, "nothing sent after the cancel"
        emulator.latency = 0.0
        # Every connection slot came back: a leak would make this wait forever.
        async with asyncio.timeout(10):
            results = await client.get_stats_many(emulator.journey_ids[:20])
        assert all(result.ok for result in results)
    await settled(emulator)


async def settled(emulator: JourneyEmulator) -> None:
    """Wait for the server to finish requests the client gave up on."""
    async with asyncio.timeout(10):
        while emulator.in_flight:  # noqa: ASYNC110 - the server's count, in its thread
            await asyncio.sleep(0.01)
