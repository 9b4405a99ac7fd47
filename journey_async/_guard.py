"""
The call guard: what one call learns that makes the rest of its requests
pointless, so that they are not sent.

A call here is one `get_stats_many`, one `iter_stats` or one `remove_users`
(and a `RemovalBatcher` for its whole life). Three failures end it early:

* an `AuthenticationError` (401/403): the token is wrong, or not allowed to
  do this, for every request alike;
* the circuit: a request could not connect to the API (refused, DNS, TLS, a
  connect timeout, a proxy refusing the tunnel to it) on any of the attempts
  its retry policy allows. The rest
  would each fail the same way after retries of their own, so a wrong base
  URL would cost a retry sequence per request instead of one for the call.
  A batcher lives as long as an application does and rides out outages, so
  it opens no circuit.
* the client closed (``aclose()``, from another task) while the call runs:
  every request after that would raise httpx's raw `RuntimeError`, so the
  first request to meet the closed client ends with an `APIConnectionError`
  saying so (`CLOSED_DURING_CALL`), and the others are not attempted. A
  client closed before the call began is the caller's mistake, not an
  outcome: its `RuntimeError` is raised as it is, as httpx raises it.

Once the call is stopped, a request not yet sent ends as a `NotAttemptedError`
without being sent; a request waiting to be retried stops waiting and ends
with the failure of its last attempt (the retry loop asks `call_stopped`
before each retry and sleeps through `sleep_unless_stopped`).

The guard travels in a `contextvars.ContextVar`, set around each request of
the call by `CallGuard.run`, so that the retry loop finds it without an
argument threaded through the transports, whatever task the request runs in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Final, ParamSpec, TypeAlias, TypeVar

import anyio
import httpx

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    JourneyError,
    NotAttemptedError,
)

__all__ = [
    "CLOSED_DURING_CALL",
    "CallGuard",
    "IsClosed",
    "call_stopped",
    "sleep_unless_stopped",
    "stops_call",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

# The failures that show the origin cannot be reached at all, as opposed to a
# connection that broke or an answer that was slow: those say the server is there.
# A proxy's refusal of the tunnel (CONNECT answered 407, 502) is one: every
# request of the call would be refused alike, as at a wrong proxy password.
_UNREACHABLE: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)

CLOSED_DURING_CALL: Final = (
    "the client was closed (aclose()) while this call was running: the request could not "
    "be sent or its answer could not be received"
)
"""The message of the `APIConnectionError` a request meets when the client is
closed under its call."""

IsClosed: TypeAlias = Callable[[], bool]
"""Whether the client of a call is closed now."""

_current: ContextVar[CallGuard | None] = ContextVar("journey_async_call_guard", default=None)


class CallGuard:
    """
    The shared state of one call: the failure that stopped it, if any, and
    the retry waits to cut short when it stops.

    *circuit*: whether a request that could not connect stops the call too.
    *is_closed*: whether the call's client is closed now; given, a client
    closed under the call stops it, with the `APIConnectionError` of
    `CLOSED_DURING_CALL`. Asked once here, and then only when a request
    failed: nothing per request.
    """

    __slots__ = ("_circuit", "_is_closed", "_stopped_by", "_waiting")

    def __init__(self, *, circuit: bool = True, is_closed: IsClosed | None = None) -> None:
        self._circuit = circuit
        # A client closed before the call: its RuntimeError stays as it is.
        self._is_closed = None if is_closed is None or is_closed() else is_closed
        self._stopped_by: JourneyError | None = None
        self._waiting: set[anyio.CancelScope] = set()

    def __repr__(self) -> str:
        state = "running" if self._stopped_by is None else f"stopped by {self._stopped_by!r}"
        return f"<{type(self).__name__} {state}>"

    @property
    def stopped_by(self) -> JourneyError | None:
        """The failure that stopped the call, or `None` while it runs."""
        return self._stopped_by

    def check(self) -> None:
        """Raise `NotAttemptedError` if the call is stopped."""
        if self._stopped_by is not None:
            raise NotAttemptedError(self._stopped_by)

    async def run(
        self, func: Callable[_P, Awaitable[_R]], *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        """
        ``await func(*args, **kwargs)``: one request of the call, unless the
        call is stopped (`NotAttemptedError` then, and nothing is sent). A
        failure that stops the call is raised as itself, after stopping it;
        a failure met because the client was closed meanwhile (httpx's or
        the transport's `RuntimeError`, a connection closed under the
        request) as the `APIConnectionError` of `CLOSED_DURING_CALL`.
        """
        self.check()
        token = _current.set(self)
        try:
            return await func(*args, **kwargs)
        except (AuthenticationError, APIConnectionError) as exc:
            if self._closed_meanwhile(exc):
                raise self._stop_closed() from exc
            if stops_call(exc, circuit=self._circuit):
                self.stop(exc)
            raise
        except JourneyError:
            raise
        except Exception as exc:
            if self._closed_meanwhile(exc):
                raise self._stop_closed() from exc
            raise
        finally:
            _current.reset(token)

    def _closed_meanwhile(self, error: Exception) -> bool:
        """Whether *error* came of the client closed under the call: anything
        but a status or a timeout, met once it is closed."""
        is_closed = self._is_closed
        return (
            is_closed is not None
            and not isinstance(error, (AuthenticationError, APITimeoutError))
            and is_closed()
        )

    def _stop_closed(self) -> APIConnectionError:
        error = APIConnectionError(CLOSED_DURING_CALL)
        self.stop(error)
        return error

    def stop(self, error: JourneyError) -> None:
        """Stop the call because of *error* (the first one stays), and wake
        the requests waiting to retry, so that they give up now."""
        if self._stopped_by is not None:
            return
        self._stopped_by = error
        waiting, self._waiting = self._waiting, set()
        for scope in waiting:
            scope.cancel()


def stops_call(error: BaseException, *, circuit: bool = True) -> bool:
    """Whether *error* ends the call it happened in: a 401/403, or (with
    *circuit*) an API that could not be reached at all."""
    if isinstance(error, AuthenticationError):
        return True
    return (
        circuit
        and isinstance(error, APIConnectionError)
        and isinstance(error.__cause__, _UNREACHABLE)
    )


def call_stopped() -> str | None:
    """Why the current call was stopped, for the retry loop's log; `None`
    when it was not, or when the request is not part of a guarded call."""
    guard = _current.get()
    if guard is None or guard._stopped_by is None:
        return None
    return f"the call was stopped by an earlier failure ({type(guard._stopped_by).__name__})"


async def sleep_unless_stopped(sleep: Callable[[float], Awaitable[object]], seconds: float) -> None:
    """``await sleep(seconds)``, returning early if the current call stops meanwhile."""
    guard = _current.get()
    if guard is None:
        await sleep(seconds)
        return
    if guard._stopped_by is not None:
        return
    with anyio.CancelScope() as scope:
        guard._waiting.add(scope)
        try:
            await sleep(seconds)
        finally:
            guard._waiting.discard(scope)
