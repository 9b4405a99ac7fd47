"""
Retries with backoff, as an httpx transport wrapper.

Placeholder until the retry issue lands: `RetryPolicy` holds the knobs, and
`RetryTransport` passes every request through once.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import datetime
import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import attrs
import httpx

__all__ = ["RetryPolicy", "RetryTransport", "SendRequest", "parse_retry_after", "retrying"]

SendRequest: TypeAlias = Callable[[httpx.Request], Awaitable[httpx.Response]]


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """
    Seconds to wait from a ``Retry-After`` header: whole seconds or an HTTP
    date; `None` when absent or unreadable. A date in the past means no wait.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; RFC 9110 dates are all GMT.
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now())


@attrs.frozen
class RetryPolicy:
    """
    How failed attempts are retried.

    .. versionadded:: 0.1.0
    """

    max_attempts: int = 4
    initial_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    deadline: float | None = 60.0


class RetryTransport(httpx.AsyncBaseTransport):
    """
    Wraps another transport and retries what `RetryPolicy` allows.

    .. versionadded:: 0.1.0
    """

    def __init__(self, transport: httpx.AsyncBaseTransport, policy: RetryPolicy) -> None:
        self._transport = transport
        self._policy = policy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


def retrying(send: SendRequest, policy: RetryPolicy) -> SendRequest:
    """
    Wrap *send* (such as a caller's `httpx.AsyncClient.send`) in *policy*'s
    retries: the same loop `RetryTransport` runs, for a client we do not own.
    """
    return send
