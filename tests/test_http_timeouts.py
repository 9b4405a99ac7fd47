"""
Wall-clock bounds (`journey_async._http._timeouts`): ``attempt_timeout`` on
one attempt and ``RetryPolicy(deadline=...)`` on a whole call, against a raw
asyncio server that trickles its answer a byte at a time (so httpx's read
timeout, a bound on silence, never trips), on asyncio, uvloop and trio.

Which bound ended a call is read from its error, never from a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx
import pytest
from manual_clock import ManualClockLoop
from scripted import serving

import journey_async as ja
from journey_async._http import AttemptTimeout, CallDeadlineExceeded, run_within
from journey_async._http._timeouts import _Watchdog, _watchdogs
from journey_async.testing import EmulatorServer, Fault, JourneyEmulator, serve_emulator

TOKEN = "test-token"
BODY = b'{"payload": {"title": "t", "points": []}}'


class Trickling:
    """Answers every request with a status line and headers at once, then
    the body one byte every *pause* seconds: never silent for long, never done."""

    def __init__(self, pause: float = 0.02) -> None:
        self.pause = pause
        self.requests = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(BODY) * 1000))
            for byte in BODY * 1000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(self.pause)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def running(self) -> AbstractAsyncContextManager[str]:
        return serving(self._serve)


async def no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


async def test_attempt_timeout_ends_a_trickling_attempt() -> None:
    trickle = Trickling()
    async with (
        trickle.running() as url,
        ja.AsyncJourneyClient(
            TOKEN, base_url=url, timeout=5.0, attempt_timeout=0.3, retry=None
        ) as client,
    ):
        with pytest.raises(ja.APITimeoutError, match=r"attempt_timeout \(0\.3 s\)") as info:
            await client.get_stats("j")
    assert isinstance(info.value.__cause__, AttemptTimeout)


async def test_an_attempt_cut_short_is_retried() -> None:
    trickle = Trickling()
    policy = ja.RetryPolicy(max_attempts=3, deadline=None, sleep=no_sleep)
    async with (
        trickle.running() as url,
        ja.AsyncJourneyClient(TOKEN, base_url=url, attempt_timeout=0.2, retry=policy) as client,
    ):
        with pytest.raises(ja.APITimeoutError, match="attempt_timeout"):
            await client.get_stats("j")
    assert trickle.requests == 3


async def test_the_deadline_ends_the_whole_call() -> None:
    trickle = Trickling()
    policy = ja.RetryPolicy(deadline=0.4, sleep=no_sleep)
    async with (
        trickle.running() as url,
        ja.AsyncJourneyClient(
            TOKEN, base_url=url, timeout=5.0, attempt_timeout=None, retry=policy
        ) as client,
    ):
        with pytest.raises(ja.APITimeoutError, match=r"call's deadline of 0\.4 s") as info:
            await client.get_stats("j")
    assert isinstance(info.value.__cause__, CallDeadlineExceeded)
    assert trickle.requests == 1


async def test_whichever_bound_comes_first_ends_the_call() -> None:
    trickle = Trickling()
    # No backoff: the third attempt starts with 0.1 s left of the deadline.
    policy = ja.RetryPolicy(deadline=0.5, initial_delay=0, max_delay=0, sleep=no_sleep)
    async with (
        trickle.running() as url,
        ja.AsyncJourneyClient(TOKEN, base_url=url, attempt_timeout=0.2, retry=policy) as client,
    ):
        with pytest.raises(ja.APITimeoutError, match=r"call's deadline of 0\.5 s"):
            await client.get_stats("j")
    assert trickle.requests == 3, "two attempts cut short and retried, the third by the deadline"


async def test_the_deadline_covers_the_wait_for_a_slot() -> None:
    trickle = Trickling()
    async with (
        trickle.running() as url,
        ja.AsyncJourneyClient(
            TOKEN, base_url=url, max_concurrency=1, attempt_timeout=None, retry=None
        ) as client,
    ):
        holder = asyncio.ensure_future(client.get_stats("slow"))
        await asyncio.sleep(0.05)
        bounded = client.with_options(retry=ja.RetryPolicy(deadline=0.2, sleep=no_sleep))
        with pytest.raises(ja.APITimeoutError, match="call's deadline"):
            await bounded.get_stats("waits")
        assert trickle.requests == 1, "never sent: it waited for the slot the whole time"
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder


@pytest.fixture(scope="module")
def slow_server() -> Iterator[EmulatorServer]:
    with serve_emulator(JourneyEmulator.with_sample_data(1, seed=1)) as server:
        yield server


@pytest.mark.parametrize("transport", ["default", "httpcore"])
def test_the_bounds_hold_on_trio_and_on_a_caller_transport(
    slow_server: EmulatorServer, transport: str
) -> None:
    # On trio the default transport hands over to httpcore; a caller's
    # transport gets the bound from the client around it.
    emulator = slow_server.emulator
    journey_id = emulator.journey_ids[0]

    async def scenario() -> None:
        # httpcore picks its backend on first use: a transport per event loop.
        inner = None if transport == "default" else httpx.AsyncHTTPTransport()
        async with ja.AsyncJourneyClient(
            TOKEN, base_url=slow_server.url, attempt_timeout=0.2, retry=None, transport=inner
        ) as client:
            with pytest.raises(ja.APITimeoutError, match="attempt_timeout"):
                await client.get_stats(journey_id)
            with pytest.raises(ja.APITimeoutError, match="call's deadline"):
                await client.with_options(
                    attempt_timeout=None, retry=ja.RetryPolicy(deadline=0.3)
                ).get_stats(journey_id)

    for backend in ("trio", "asyncio"):
        emulator.clear_faults()
        emulator.inject(Fault.delay(3.0), Fault.delay(3.0), endpoint="stats")
        anyio.run(scenario, backend=backend)


# --- run_within on asyncio: one watchdog timer for the calls of a loop ------------------------


def _bound_error() -> httpx.TimeoutException:
    return CallDeadlineExceeded("bounded")


REQUEST = httpx.Request("GET", "http://127.0.0.1/")


async def test_concurrent_calls_each_end_at_their_own_deadline() -> None:
    ended: list[str] = []

    async def hang(name: str) -> None:
        async def forever(request: httpx.Request) -> None:
            await asyncio.Event().wait()

        try:
            await run_within(0.05, forever, REQUEST, _bound_error)
        except CallDeadlineExceeded:
            ended.append(name)

    async def quick(request: httpx.Request) -> str:
        return "done"

    async with asyncio.timeout(5):  # a watchdog that stopped watching hangs here
        tasks = []
        for name in "abc":
            tasks.append(asyncio.ensure_future(hang(name)))
            await asyncio.sleep(0.01)  # later starts, later deadlines
        assert await run_within(0.05, quick, REQUEST, _bound_error) == "done"
        await asyncio.gather(*tasks)
    assert ended == ["a", "b", "c"]


async def test_a_task_goes_on_after_its_call_timed_out() -> None:
    async def slow(request: httpx.Request) -> None:
        await asyncio.sleep(5)

    with pytest.raises(CallDeadlineExceeded):
        await run_within(0.02, slow, REQUEST, _bound_error)
    await asyncio.sleep(0.05)  # no cancellation left pending on this task
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    started = asyncio.Event()

    async def forever(request: httpx.Request) -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(run_within(30, forever, REQUEST, _bound_error))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_finished_calls_leave_nothing_watched() -> None:
    async def quick(request: httpx.Request) -> int:
        return 1

    results = await asyncio.gather(
        *(run_within(7.5, quick, REQUEST, _bound_error) for _ in range(50))
    )
    assert sum(results) == 50
    watchdog = _watchdogs[asyncio.get_running_loop()][7.5]
    assert not watchdog._calls


def test_a_loop_that_is_gone_takes_its_watchdog_along() -> None:
    async def quick(request: httpx.Request) -> int:
        return 1

    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(run_within(7.5, quick, REQUEST, _bound_error)) == 1
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None


async def forever(request: httpx.Request) -> None:
    await asyncio.Event().wait()


async def quick(request: httpx.Request) -> str:
    return "done"


async def test_the_timeout_error_carries_its_request() -> None:
    with pytest.raises(CallDeadlineExceeded) as info:
        await run_within(0.02, forever, REQUEST, _bound_error)
    assert info.value.request is REQUEST


async def test_calls_with_other_bounds_are_not_left_to_the_first_ones_timer() -> None:
    # Each bound has its own watchdog: a 30 s call's timer must not be the
    # only one a 0.02 s call started after it has.
    long = asyncio.ensure_future(run_within(30, forever, REQUEST, _bound_error))
    await asyncio.sleep(0)
    try:
        async with asyncio.timeout(3):  # the mutant hangs here instead
            with pytest.raises(CallDeadlineExceeded):
                await run_within(0.02, forever, REQUEST, _bound_error)
    finally:
        long.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await long


def test_a_watchdog_serves_only_its_own_loop() -> None:
    # The first loop's watchdog for 0.05 s stays armed on that loop (its
    # timer never runs: the loop is stopped); another loop's call of the same
    # bound needs a timer of its own.
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()

    async def bounded_hang() -> None:
        async with asyncio.timeout(3):  # the mutant hangs here instead
            await run_within(0.05, forever, REQUEST, _bound_error)

    try:
        assert first.run_until_complete(run_within(0.05, quick, REQUEST, _bound_error)) == "done"
        with pytest.raises(CallDeadlineExceeded):
            second.run_until_complete(bounded_hang())
    finally:
        first.close()
        second.close()


async def turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def on_manual_clock(scenario: Callable[[ManualClockLoop], Awaitable[None]]) -> None:
    loop = ManualClockLoop(_Watchdog._fire)
    try:
        loop.run_until_complete(scenario(loop))
    finally:
        loop.close()


def bounded(seconds: float, func: Any = forever) -> asyncio.Future[Any]:
    return asyncio.ensure_future(run_within(seconds, func, REQUEST, _bound_error))


def timed_out(task: asyncio.Future[Any]) -> bool:
    return task.done() and isinstance(task.exception(), CallDeadlineExceeded)


def test_one_timer_for_every_call_in_flight() -> None:
    async def scenario(loop: ManualClockLoop) -> None:
        first = bounded(10)  # ends at 1010
        await turns()
        loop.now = 1005.0
        second = bounded(10)  # ends at 1015: the timer set for the first stays
        await turns()
        for _ in range(5):
            assert await run_within(10, quick, REQUEST, _bound_error) == "done"
        assert loop.timers == 1
        loop.now = 1010.0
        await turns()
        assert timed_out(first)
        assert not second.done()
        assert loop.timers == 2, "set again, for the second call"
        for _ in range(5):
            assert await run_within(10, quick, REQUEST, _bound_error) == "done"
        assert loop.timers == 2, "the timer set for the second call serves them"
        loop.now = 1015.0
        await turns()
        assert timed_out(second)
        assert loop.timers == 2, "nothing left to watch: not set again"
        # A watchdog that emptied is armed again by the next call.
        third = bounded(10)
        await turns()
        assert loop.timers == 3
        loop.now = 1025.0
        await turns()
        assert timed_out(third)

    on_manual_clock(scenario)


def test_a_call_whose_deadline_is_now_is_cancelled_now() -> None:
    async def scenario(loop: ManualClockLoop) -> None:
        call = bounded(10)
        await turns()
        loop.now = 1009.5
        await turns()
        assert not call.done()
        loop.now = 1000.0 + 10  # the deadline itself, to the last bit
        await turns()
        assert timed_out(call), "at its deadline, not a pass of the loop later"

    on_manual_clock(scenario)


# --- run_within for a coroutine stepped by hand, outside any task ------------------------------


def step_by_hand(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Future[Any]:
    """Drive *coro* as some frameworks do: ``send`` from loop callbacks, with
    no task, resumed when the future it yields is done."""
    outcome: asyncio.Future[Any] = loop.create_future()

    def step(_: object = None) -> None:
        assert asyncio.current_task() is None, "stepped outside any task"
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            outcome.set_result(stop.value)
        except BaseException as exc:  # handed to the test
            outcome.set_exception(exc)
        else:
            yielded.add_done_callback(step)

    loop.call_soon(step)
    return outcome


async def brief(request: httpx.Request) -> str:
    await asyncio.sleep(0.001)
    return "done"


def test_a_call_stepped_by_hand_returns_within_its_bound() -> None:
    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(
            step_by_hand(loop, run_within(5, brief, REQUEST, _bound_error))
        )
    finally:
        loop.close()
    assert result == "done"


def test_a_call_stepped_by_hand_past_its_bound_is_the_typed_timeout() -> None:
    loop = asyncio.new_event_loop()
    try:
        outcome = step_by_hand(loop, run_within(0.02, forever, REQUEST, _bound_error))
        with pytest.raises(CallDeadlineExceeded) as info:
            loop.run_until_complete(outcome)
        assert info.value.request is REQUEST
        assert asyncio.all_tasks(loop) == set(), "the call's own task ended too"
    finally:
        loop.close()
