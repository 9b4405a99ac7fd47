"""
Wall-clock bounds, on top of httpx's per-phase timeouts: one on an attempt
(``attempt_timeout``, the whole response included), one on a whole call
(``RetryPolicy.deadline``: attempts, backoff sleeps and every wait).

httpx's ``read`` timeout bounds the silence between two reads, so a server
that trickles a byte a second is never timed out by it; these bound the total.

On asyncio they use `asyncio.timeout`; elsewhere (trio) anyio's cancel
scopes. `HTTP11Transport` bounds its own attempts with the timer its
connections already have for the read timeout, so the default path pays
nothing for the attempt bound.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

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
    if asyncio._get_running_loop() is not None:
        # asyncio's own: a fraction of the cost of an anyio cancel scope, paid
        # on every call.
        bound = asyncio.timeout(seconds)
        try:
            async with bound:
                return await func(request)
        except TimeoutError:
            if not bound.expired():
                raise
            raise _with_request(error(), request) from None
    with anyio.move_on_after(seconds) as scope:
        return await func(request)
    assert scope.cancelled_caught
    raise _with_request(error(), request)


def _with_request(exc: httpx.TimeoutException, request: httpx.Request) -> httpx.TimeoutException:
    exc.request = request
    return exc
