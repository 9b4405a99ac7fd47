"""
Retries with backoff, as an httpx transport wrapper.

`RetryPolicy` says what is retried and how long to wait; one loop
(`_RetryLoop`) carries it out, either under an `httpx.AsyncClient` we own
(`RetryTransport`) or around the ``send`` of a client the caller owns
(`retrying`). The loop stays at the httpx level: it returns the final
response (the last 503, or a 429 whose ``Retry-After`` is too long) and
raises the last `httpx.TransportError`; the client maps both to the
`JourneyError` tree.
"""

from __future__ import annotations

import datetime
import email.utils
import functools
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeAlias

import anyio
import attrs
import httpx

from ._guard import call_stopped, sleep_unless_stopped
from ._http import Misconfigured, send_and_read
from ._logging import logged_path, logger, request_extra
from ._validation import callback, number, positive_int

__all__ = [
    "RETRY_STATUSES",
    "RetryEvent",
    "RetryPolicy",
    "RetryTransport",
    "SendRequest",
    "parse_retry_after",
    "retrying",
]


SendRequest: TypeAlias = Callable[[httpx.Request], Awaitable[httpx.Response]]

RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses that say "try again": a timeout, a rate limit, a failing service or
gateway. Other 4xx would fail the same way again; 501 and 505 are permanent."""

# What a retry can fix: the connection could not be made, broke, or was too
# slow. Not LocalProtocolError, UnsupportedProtocol or ProxyError: those are
# our configuration, and would fail the same way every time.
_RETRYABLE_ERRORS: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


_DELAY_SECONDS: Final = re.compile(r"[0-9]+")  # ASCII only: "²".isdigit() is True


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """
    Seconds to wait from a ``Retry-After`` header: whole seconds in ASCII
    digits, or an HTTP date; `None` when absent or anything else, so the
    caller falls back to its backoff. A date in the past means no wait.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)  # digits past float's range: inf, above any cap
    if not value.isascii():
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000" parses naive; RFC 9110 dates are all GMT.
            when = when.replace(tzinfo=datetime.UTC)
        return max(0.0, when.timestamp() - now())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@attrs.frozen(kw_only=True)
class RetryEvent:
    """
    A retry about to happen, as the ``on_retry`` hook of `RetryPolicy` sees it.

    Attributes:
        method: The request's method, ``"GET"`` or ``"POST"``.
        path: The request's URL path (never a header: no token here).
        attempt: The number of the attempt that just failed, from 1.
        reason: Why it failed: ``"HTTP 503"``, or the name of the httpx
            exception, such as ``"ConnectError"`` or ``"ReadTimeout"``. A short,
            fixed vocabulary, fit for a metrics label.
        wait: Seconds until the next attempt.

    .. versionadded:: 0.1.0
    """

    method: str
    path: str
    attempt: int
    reason: str
    wait: float


def _number(
    low: float, *, above: bool = False, optional: bool = False
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        number(value, attribute.name, minimum=low, exclusive=above)

    return check


def _attempts(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    positive_int(value, attribute.name)


def _callable(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not callable(value):
        raise TypeError(f"{attribute.name} must be callable, not {type(value).__name__}")


def _hook(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # A hook is called, never awaited: an async one would never run.
    callback(value, attribute.name)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """
    How failed attempts are retried: what, how often, how long to wait.

    Retried: connection errors (connect, read, write, a dropped connection),
    timeouts, and the statuses 408, 429, 500, 502, 503 and 504, on both
    endpoints (removal is idempotent). Any other status fails at once.

    The wait before retry *n* is drawn uniformly from
    ``[0, min(max_delay, initial_delay * 2 ** (n - 1))]`` ("full jitter"), so
    that many clients failing together do not come back together. A
    ``Retry-After`` header (seconds or an HTTP date) replaces that draw; one
    longer than *max_retry_after* is not waited on: the call fails at once
    (`RateLimitError` for a 429, with its ``retry_after``).

    A call stops at *max_attempts* requests, or when the next wait would end
    past *deadline* seconds after the call started, whichever comes first; it
    then fails with the error of its last attempt. The timeout of each attempt
    still applies, lowered to what is left of the deadline, and an attempt cut
    short that way fails with an `APITimeoutError` that names the deadline.

    The defaults (see docs/retries.md for the reasoning): 6 attempts, waits
    from 0.5 s growing to at most 8 s, ``Retry-After`` honoured up to 30 s,
    and 60 s in all.

    Args:
        max_attempts: Requests per call at most, the first one included;
            1 means no retries.
        initial_delay: Seconds: the ceiling of the first wait.
        max_delay: Seconds: no wait's ceiling is above it.
        max_retry_after: Seconds: the longest ``Retry-After`` waited on.
        deadline: Seconds from the start of a call after which no new
            attempt is started; `None` for no limit in time.
        on_retry: Called with a `RetryEvent` before each wait, e.g. to count
            retries in your metrics. It runs in the event loop: keep it quick.
            What it raises ends the call.
        sleep: ``await sleep(seconds)`` does the waiting (`anyio.sleep`).
            Tests swap it for one that returns at once.
        clock: Monotonic seconds, for the deadline (`time.monotonic`).
            Tests swap it together with *sleep*.

    *on_retry*, *sleep* and *clock* take no part in equality.

    .. versionadded:: 0.1.0
    """

    max_attempts: int = attrs.field(default=6, validator=_attempts)
    initial_delay: float = attrs.field(default=0.5, validator=_number(0))
    max_delay: float = attrs.field(default=8.0, validator=_number(0))
    max_retry_after: float = attrs.field(default=30.0, validator=_number(0))
    deadline: float | None = attrs.field(
        default=60.0,
        validator=_number(0, above=True, optional=True),
    )
    on_retry: Callable[[RetryEvent], object] | None = attrs.field(
        default=None, validator=attrs.validators.optional(_hook), eq=False
    )
    sleep: Callable[[float], Awaitable[object]] = attrs.field(
        default=anyio.sleep, validator=_callable, eq=False, repr=False
    )
    clock: Callable[[], float] = attrs.field(
        default=time.monotonic, validator=_callable, eq=False, repr=False
    )

    @max_delay.validator
    def _max_delay_not_below_initial(self, attribute: attrs.Attribute[float], value: float) -> None:
        if value < self.initial_delay:
            raise ValueError(
                f"max_delay ({value!r}) must not be below initial_delay ({self.initial_delay!r})"
            )

    def _backoff_ceiling(self, attempt: int) -> float:
        """The longest wait after attempt number *attempt* failed."""
        try:
            return min(self.max_delay, self.initial_delay * 2.0 ** (attempt - 1))
        except OverflowError:  # attempt in the thousands: far past max_delay
            return self.max_delay

    def _backoff(self, attempt: int) -> float:
        """The jittered wait after attempt number *attempt* failed."""
        # Jitter spreads load; it needs no cryptographic randomness.
        return random.uniform(0.0, self._backoff_ceiling(attempt))  # noqa: S311


class _RetryLoop:
    """
    The one retry loop: calls *send* until an outcome is final.

    Re-sending the same `httpx.Request` is safe here: journey_async's
    requests carry small in-memory bodies (``content=bytes``), which httpx
    can stream again on every attempt.
    """

    __slots__ = ("_policy", "_send", "_within_deadline")

    def __init__(self, send: SendRequest, policy: RetryPolicy) -> None:
        if not isinstance(policy, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, not {type(policy).__name__}")
        self._send = send
        self._policy = policy
        # The last timeouts found all within the deadline: a client's
        # requests share their timeouts, so a fan-out checks them once.
        self._within_deadline: Mapping[str, float | None] | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        policy = self._policy
        send = self._send
        timeouts: Mapping[str, float | None] | None = request.extensions.get("timeout")
        ends_at = None
        capped = None
        if policy.deadline is not None:
            ends_at = policy.clock() + policy.deadline
            if timeouts is not self._within_deadline:
                capped = _cap_timeouts(request, timeouts, policy.deadline)
                if capped is None:
                    self._within_deadline = timeouts

        attempt = 1
        waited: httpx.Response | httpx.TransportError | None = None  # before this attempt
        while True:
            if waited is not None and call_stopped() is not None:
                # Stopped while this request waited: its last attempt is its outcome.
                if isinstance(waited, httpx.Response):
                    return waited
                raise waited
            failure: httpx.TransportError | None = None
            try:
                response = await send(request)
            except _RETRYABLE_ERRORS as exc:
                if isinstance(exc, Misconfigured):
                    raise  # the next attempt would fail alike (a refused certificate)
                failure = exc
            else:
                # The fast path: one set lookup for a first attempt that worked.
                if response.status_code not in RETRY_STATUSES:
                    return response

            # A failure a retry may fix: decide whether, and after what wait.
            if failure is None:
                reason = f"HTTP {response.status_code}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            else:
                reason = type(failure).__name__
                retry_after = None
            wait = policy._backoff(attempt) if retry_after is None else retry_after
            give_up = _why_stop(policy, attempt, wait, retry_after, ends_at)
            if give_up is not None:
                logger.debug(
                    "%s %s: giving up after attempt %d (%s): %s",
                    request.method,
                    logged_path(request),
                    attempt,
                    reason,
                    give_up,
                    extra=request_extra(request, None if failure else response.status_code),
                )
                if failure is None:
                    return response
                if _was_cut_short(failure, timeouts, capped):
                    raise type(failure)(
                        f"{failure} (this attempt's timeout was cut short by the "
                        f"retry deadline of {policy.deadline:g} s)",
                        request=request,
                    ) from failure
                raise failure

            if failure is None:
                # Hand the connection back to the pool before waiting.
                await response.aclose()
            logger.info(
                "%s %s: attempt %d of %d failed (%s); retrying in %.2f s",
                request.method,
                logged_path(request),
                attempt,
                policy.max_attempts,
                reason,
                wait,
                extra=request_extra(request, None if failure else response.status_code),
            )
            if policy.on_retry is not None:
                policy.on_retry(
                    RetryEvent(
                        method=request.method,
                        path=request.url.path,
                        attempt=attempt,
                        reason=reason,
                        wait=wait,
                    )
                )
            waited = response if failure is None else failure
            await sleep_unless_stopped(policy.sleep, wait)
            attempt += 1
            if ends_at is not None:
                capped = _cap_timeouts(request, timeouts, ends_at - policy.clock())


def _why_stop(
    policy: RetryPolicy,
    attempt: int,
    wait: float,
    retry_after: float | None,
    ends_at: float | None,
) -> str | None:
    """Why the loop must not retry after *attempt* and *wait*, or None to go on."""
    if (stopped := call_stopped()) is not None:
        return stopped
    if retry_after is not None and retry_after > policy.max_retry_after:
        return (
            f"Retry-After of {retry_after:g} s is above max_retry_after "
            f"({policy.max_retry_after:g} s)"
        )
    if attempt >= policy.max_attempts:
        return f"max_attempts ({policy.max_attempts}) reached"
    if ends_at is not None:
        left = ends_at - policy.clock()
        if left - wait <= 0:
            return (
                f"a wait of {wait:.2f} s would pass the deadline "
                f"({policy.deadline:g} s; {max(left, 0.0):.2f} s left)"
            )
    return None


_TIMEOUT_KEYS: Final[Mapping[type[httpx.TransportError], str]] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}


def _was_cut_short(
    failure: httpx.TransportError,
    timeouts: Mapping[str, float | None] | None,
    capped: Mapping[str, float] | None,
) -> bool:
    """Whether *failure* is a timeout that the deadline had lowered."""
    key = _TIMEOUT_KEYS.get(type(failure))
    return (
        key is not None
        and capped is not None
        and timeouts is not None
        and capped.get(key) != timeouts.get(key)
    )


def _cap_timeouts(
    request: httpx.Request, timeouts: Mapping[str, float | None] | None, left: float
) -> dict[str, float] | None:
    """
    Lower *request*'s per-attempt timeouts to the *left* seconds of the
    deadline; the lowered ones, or None when none needed lowering. *timeouts*
    are the call's own, kept aside so that each attempt is capped from them.
    """
    if timeouts is None:
        # No timeout set yet: the client sets its own after us; leave it be.
        return None
    left = max(left, 0.0)
    for value in timeouts.values():
        if value is None or value > left:
            break
    else:
        return None
    capped = {k: left if v is None or v > left else v for k, v in timeouts.items()}
    # A new dict: the extensions may be shared with other requests.
    request.extensions = {**request.extensions, "timeout": capped}
    return capped


class RetryTransport(httpx.AsyncBaseTransport):
    """
    Wraps another transport and retries what *policy* allows.

    Each attempt's body is read here, inside the loop, so that a connection
    dropped mid-body is retried like any other; the client above finds the
    body already read. Discarded responses are closed, so no connection is
    held by a failed attempt while the loop waits.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport, policy: RetryPolicy) -> None:
        self._transport = transport
        self._loop = _RetryLoop(functools.partial(send_and_read, transport), policy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._loop(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


def retrying(send: SendRequest, policy: RetryPolicy) -> SendRequest:
    """
    Wrap *send* (such as a caller's `httpx.AsyncClient.send`) in *policy*'s
    retries: the same loop `RetryTransport` runs, for a client we do not own.
    *send* must return responses with their body read, as
    `httpx.AsyncClient.send` does by default.
    """
    return _RetryLoop(send, policy)
