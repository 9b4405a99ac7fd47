"""
The connections of one event loop: slots that bound them, and the idle ones
kept per origin for reuse; and the pool of the next loop when a client
outlives one (`pool_for`).

A connection belongs to the loop it was opened in. A client used in one
``asyncio.run`` and then another gets a new pool in the second, and the first
loop's idle connections are closed, never reused: when that loop shuts down
(``asyncio.run``, ``asyncio.Runner``, ``uvloop.run`` and pytest-asyncio all
close the loop's async generators first, and each pool registers one that
closes its idle connections then), or else when the next loop's pool replaces
it, their sockets closed directly, since a closed loop cannot run the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import AsyncGenerator
from typing import Final, TypeAlias

from ._connection import Connection

__all__ = ["OTHER_LOOP_MESSAGE", "Origin", "Pool", "pool_for"]

OTHER_LOOP_MESSAGE: Final = (
    "this client's connections belong to an event loop that is running in another "
    "thread: a client serves one event loop at a time; create one client per event loop"
)

Origin: TypeAlias = tuple[str, bytes, int]
"""Scheme, host and port: what a connection can be reused for."""


class Pool:
    """
    Slots that bound the open connections, and idle connections per origin.

    A connection is open only while a request holding a slot uses it or it
    is idle, and an idle one is taken before a new one is opened: so open
    connections never outnumber the slots. The slots are a counter and a
    queue rather than an `asyncio.Semaphore`, whose every acquire scans its
    waiters; a released slot goes straight to the first live waiter.
    """

    __slots__ = (
        "__weakref__",
        "_at_shutdown",
        "free",
        "idle",
        "keepalive_expiry",
        "loop",
        "waiters",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_connections: int, keepalive_expiry: float
    ) -> None:
        self.loop = loop
        self.free = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.idle: dict[Origin, deque[Connection]] = {}
        self._at_shutdown: AsyncGenerator[None, None] | None = None

    def discard_at_shutdown(self) -> None:
        """
        Close the idle connections when the loop shuts down, while it can
        still run their close. Called in the running loop: the async
        generator started here is one the loop's ``shutdown_asyncgens``
        closes (asyncio.run and the other runners call it before closing
        the loop). It is started without an await, so this costs one
        generator per pool, that is per loop.
        """
        generator = _discarding_at_shutdown(weakref.ref(self))
        step = generator.asend(None)  # the loop's first-iteration hook takes note of it
        with contextlib.suppress(StopIteration):  # at its yield, till the loop closes it
            step.send(None)
        # The loop refers to it weakly: kept alive by the pool.
        self._at_shutdown = generator

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits for one."""
        if self.free and not self.waiters:
            self.free -= 1
            return True
        return False

    async def acquire(self, pool_timeout: float | None) -> None:
        """Wait for a slot, first come first served; TimeoutError after *pool_timeout*."""
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(pool_timeout):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
                # A release may have dropped it already, cancelled, from the queue.
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the count."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1

    def take_idle(self, origin: Origin) -> Connection | None:
        """An idle connection to *origin* still fit for a request, or None.
        Those found closed or idle past the keep-alive expiry are closed."""
        connections = self.idle.get(origin)
        if not connections:
            return None
        expired_before = self.loop.time() - self.keepalive_expiry
        while connections:
            # Newest first: the likeliest to be still open at the other end.
            connection = connections.pop()
            if connection.idle_since > expired_before and connection.is_usable():
                return connection
            connection.close()
        return None

    def put_idle(self, origin: Origin, connection: Connection) -> None:
        """Keep *connection* for the next request to *origin*."""
        connection.idle_since = self.loop.time()
        self.idle.setdefault(origin, deque()).append(connection)

    def discard(self) -> None:
        """Close every idle connection: through the loop, or directly once the
        loop is closed (which could not run the close any more)."""
        unlooped = self.loop.is_closed()
        for connections in self.idle.values():
            for connection in connections:
                if unlooped:
                    connection.close_unlooped()
                else:
                    connection.close()
        self.idle.clear()


async def _discarding_at_shutdown(pool: weakref.ref[Pool]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if (alive := pool()) is not None:
            alive.discard()


def pool_for(
    loop: asyncio.AbstractEventLoop,
    previous: Pool | None,
    max_connections: int,
    keepalive_expiry: float,
) -> Pool:
    """
    A new pool for *loop*, the running one, in place of *previous*, another
    loop's: its idle connections are closed, never reused.

    Raises:
        RuntimeError: *previous*'s loop is running, in another thread: its
            requests in flight hold its connections and slots.
    """
    if previous is not None:
        if previous.loop.is_running():
            raise RuntimeError(OTHER_LOOP_MESSAGE)
        previous.discard()
    pool = Pool(loop, max_connections, keepalive_expiry)
    pool.discard_at_shutdown()
    return pool
