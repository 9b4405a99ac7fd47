"""
What a client and its `AsyncJourneyClient.with_options` copies share
(`Shared`): the connections and how a request goes out on them, the
client-wide slots that bound attempts in flight to the pool's size, and
whether this process was forked after they were used.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any, Final

import httpx

from ._http import (
    OTHER_LOOP_MESSAGE,
    HTTP11Transport,
    default_transport,
    sender_for_client,
    sender_for_owned,
)
from ._ratelimit import adaptive_limiter
from ._retry import RetryPolicy, SendRequest
from ._slots import Slots

__all__ = ["FORKED_MESSAGE", "Shared", "shared_resources"]


class Shared:
    """
    What a client and its `with_options` copies share: the connections, and
    the client-wide slots that bound attempts in flight to the pool's size.
    """

    __slots__ = (
        "__weakref__",
        "adaptive",
        "bounds_attempts",
        "forked",
        "http",
        "loop",
        "owns_http",
        "pool_size",
        "send",
        "slots",
        "used",
    )

    def __init__(
        self,
        http: httpx.AsyncClient,
        send: SendRequest,
        *,
        owns_http: bool,
        pool_size: int,
        retry: RetryPolicy | None,
        bounds_attempts: bool = False,
    ) -> None:
        self.http = http
        self.send = send
        self.owns_http = owns_http
        self.pool_size = pool_size
        # Whether *send* ends at attempt_timeout by itself (our transport
        # does, on the timer it has anyway), or needs a bound around it.
        self.bounds_attempts = bounds_attempts
        self.slots = Slots(pool_size)
        # The rate limiter of the client and its copies given no rate_limit:
        # the shared cool-down after a 429, and the learned rate. It waits
        # with the retry policy's sleep and clock, which tests swap.
        self.adaptive = (
            adaptive_limiter()
            if retry is None
            else adaptive_limiter(clock=retry.clock, sleep=retry.sleep)
        )
        self.used = False  # a request was sent
        # The event loop of the last attempt (None: trio's, or none yet).
        self.loop: asyncio.AbstractEventLoop | None = None
        self.forked = False  # ...and then this process was forked from the one that sent it
        _LIVE.add(self)

    def enter_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """
        Make *loop* the one attempts run in, unless the last one is still
        running (in another thread, then): a `RuntimeError` saying so. The
        slots would otherwise hang it, waiting for slots given back from the
        other thread, which never wakes this loop.
        """
        previous = self.loop
        if previous is not None and previous.is_running():
            raise RuntimeError(OTHER_LOOP_MESSAGE)
        self.loop = loop

    def is_closed(self) -> bool:
        """Whether the connections are closed (the client's `aclose`, or the
        caller's own httpx client closed): what a call's guard asks."""
        return self.http.is_closed


def shared_resources(
    *,
    pool_size: int,
    retry: RetryPolicy | None,
    http_client: httpx.AsyncClient | None,
    transport: httpx.AsyncBaseTransport | None,
    network: dict[str, Any],
) -> Shared:
    """A new client's `Shared`: over the caller's *http_client*, or over an
    `httpx.AsyncClient` of its own around *transport* (by default the
    client's own, built with the *network* options); *pool_size* slots, and
    the adaptive rate limiter waiting with *retry*'s sleep and clock."""
    if http_client is not None:
        # Their client, their auth, hooks and mounts: retry around its
        # send, the body read within its cap by us.
        return Shared(
            http_client,
            sender_for_client(http_client),
            owns_http=False,
            pool_size=pool_size,
            retry=retry,
        )
    inner = transport or default_transport(pool_size, **network)
    # trust_env=False: environment proxies are the inner transport's
    # job (under the retries), not mounts that would bypass them.
    # The AsyncClient is only the owner of the transport (aclose,
    # is_closed): requests go straight to the transport, since
    # AsyncClient.send's per-request work (auth, cookies, hooks,
    # redirects) has nothing to do for a client nobody else
    # configures, and is measurable per request (benchmarks/hotpath.py).
    owned = httpx.AsyncClient(transport=inner, trust_env=False)
    ours = isinstance(inner, HTTP11Transport)
    return Shared(
        owned,
        sender_for_owned(owned, inner, whole=ours),
        owns_http=True,
        pool_size=pool_size,
        retry=retry,
        bounds_attempts=ours,
    )


_LIVE: Final[weakref.WeakSet[Shared]] = weakref.WeakSet()


def _mark_forked() -> None:
    # In a forked child: connections opened by the parent are the parent's
    # (the same sockets, TLS state and event loop), unusable and unclosable here.
    for shared in list(_LIVE):
        if shared.used:
            shared.forked = True


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_mark_forked)

FORKED_MESSAGE: Final = (
    "this client sent requests before the process was forked: its connections belong "
    "to the parent process; create a new AsyncJourneyClient in this one"
)
