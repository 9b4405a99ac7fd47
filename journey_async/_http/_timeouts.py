"""
Wall-clock bounds, on top of httpx's per-phase timeouts: one on an attempt
(``attempt_timeout``, the whole response included), one on a whole call
(``RetryPolicy.deadline``: attempts, backoff sleeps and every wait).

httpx's ``read`` timeout bounds the silence between two reads, so a server
that trickles a byte a second is never timed out by it; these bound the total.

On asyncio they keep `asyncio.timeout`'s meaning with one timer per loop
and bound for all the calls in flight (`_Watchdog`), rather than a timer set
and cancelled per call; elsewhere (trio) anyio's cancel scopes.
`HTTP11Transport` bounds its own attempts with the timer its connections
already have for the read timeout, so the default path pays nothing for the
attempt bound.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import anyio
import httpx

__all__ = [
    "ATTEMPT_TIMEOUT_EXTENSION",
    "AttemptTimeout",
    "CallDeadlineExceeded",
    "attempt_timed_out",
    "run_within",
]

ATTEMPT_TIMEOUT_EXTENSION: Final = "journey_async.attempt_timeout"
"""The request extension that carries the attempt's wall-clock bound, in
seconds (a `float`), to a transport that enforces it itself."""

_T = TypeVar("_T")


class AttemptTimeout(httpx.TimeoutException):
    """An attempt took longer than ``attempt_timeout``: retried as any timeout."""


class CallDeadlineExceeded(httpx.TimeoutException):
    """The whole call ran past ``RetryPolicy.deadline``: not retried (no time is left)."""


def attempt_timed_out(seconds: float) -> AttemptTimeout:
    return AttemptTimeout(
        f"the attempt took longer than attempt_timeout ({seconds:g} s), the whole response included"
    )


async def run_within(
    seconds: float,
    func: Callable[[httpx.Request], Awaitable[_T]],
    request: httpx.Request,
    error: Callable[[], httpx.TimeoutException],
) -> _T:
    """``await func(request)``, cancelled after *seconds* of wall clock, when
    it raises ``error()`` instead."""
    loop = asyncio._get_running_loop()
    task = asyncio.current_task(loop) if loop is not None else None
    if loop is not None and task is not None:
        # What asyncio.timeout does, watched by the loop's _Watchdog; here
        # rather than in a coroutine of its own, whose frame a fan-out would
        # pay for on every call.
        watchdog = _watchdog(loop, seconds)
        bound = _Bound(task, loop.time() + seconds)
        watchdog.watch(loop, bound)
        try:
            result = await func(request)
        except BaseException as exc:
            watchdog.unwatch(bound)
            # As asyncio.timeout: our cancellation, and no other one since the
            # call began, becomes the timeout error.
            if (
                bound.expiring
                and task.uncancel() <= bound.cancelling
                and isinstance(exc, asyncio.CancelledError)
            ):
                raise _with_request(error(), request) from None
            raise
        watchdog.unwatch(bound)
        if bound.expiring:
            task.uncancel()
        return result
    if loop is not None:
        return await _within_by_hand(loop, seconds, func, request, error)
    with anyio.move_on_after(seconds) as scope:
        return await func(request)
    assert scope.cancelled_caught
    raise _with_request(error(), request)


async def _within_by_hand(
    loop: asyncio.AbstractEventLoop,
    seconds: float,
    func: Callable[[httpx.Request], Awaitable[_T]],
    request: httpx.Request,
    error: Callable[[], httpx.TimeoutException],
) -> _T:
    """`run_within` for a coroutine stepped by hand (``coro.send(None)`` from
    a loop callback), outside any task: asyncio cancels only tasks, and
    `asyncio.timeout` refuses to run there, so the call runs in a task of its
    own, which a loop timer cancels at the bound; awaited from here as any
    future, so the hand that steps this coroutine needs nothing more."""
    inner = asyncio.ensure_future(func(request), loop=loop)
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        inner.cancel()

    timer = loop.call_at(loop.time() + seconds, expire)
    try:
        return await inner
    except asyncio.CancelledError:
        if expired and inner.cancelled():
            raise _with_request(error(), request) from None
        raise
    finally:
        timer.cancel()
        if not inner.done():
            # This coroutine was cancelled or closed by its driver: the call goes too.
            inner.cancel()
            inner.add_done_callback(_consume)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class _Bound:
    """One call under watch: its task, when it ends, and whether the
    watchdog has cancelled it."""

    __slots__ = ("cancelling", "ends_at", "expiring", "task")

    def __init__(self, task: asyncio.Task[Any], ends_at: float) -> None:
        self.task = task
        self.ends_at = ends_at
        self.cancelling = task.cancelling()
        self.expiring = False


class _Watchdog:
    """
    The calls of one event loop bounded by the same number of seconds, and
    one timer for all of them, in place of an `asyncio.timeout` (a timer
    set and cancelled) per call, whose cost shows in a fan-out
    (docs/performance.md).

    Calls are watched in the order they start, which with the same bound is
    the order their deadlines come: the timer is set for the first one, and
    when it fires it cancels every call whose deadline has passed, as
    `asyncio.timeout` would, and is set again for the next one. A call that
    ends just leaves the watch; the timer, if it was set for that call,
    finds the next one when it fires. It holds no reference to its loop
    (the loop's timer holds it), so a loop that is gone takes it along.
    """

    __slots__ = ("_armed", "_calls")

    def __init__(self) -> None:
        self._calls: dict[_Bound, None] = {}  # insertion order: deadline order
        self._armed = False

    def watch(self, loop: asyncio.AbstractEventLoop, bound: _Bound) -> None:
        self._calls[bound] = None
        if not self._armed:
            self._armed = True
            loop.call_at(bound.ends_at, self._fire, loop)

    def unwatch(self, bound: _Bound) -> None:
        self._calls.pop(bound, None)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._armed = False
        calls = self._calls
        now = loop.time()
        while calls:
            bound = next(iter(calls))
            if bound.ends_at > now:
                self._armed = True
                loop.call_at(bound.ends_at, self._fire, loop)
                return
            del calls[bound]
            bound.expiring = True
            bound.task.cancel()


# Per event loop (weakly: a closed loop goes), per bound in seconds; and the
# last one used, since a fan-out asks for the same one every call.
_watchdogs: Final[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Watchdog]]] = (
    weakref.WeakKeyDictionary()
)
_last_watchdog: list[tuple[weakref.ref[asyncio.AbstractEventLoop], float, _Watchdog]] = []


def _watchdog(loop: asyncio.AbstractEventLoop, seconds: float) -> _Watchdog:
    if _last_watchdog:
        last_loop, last_seconds, watchdog = _last_watchdog[0]
        if last_seconds == seconds and last_loop() is loop:
            return watchdog
    watchdog = _watchdogs.setdefault(loop, {}).setdefault(seconds, _Watchdog())
    _last_watchdog[:] = [(weakref.ref(loop), seconds, watchdog)]
    return watchdog


def _with_request(exc: httpx.TimeoutException, request: httpx.Request) -> httpx.TimeoutException:
    exc.request = request
    return exc
