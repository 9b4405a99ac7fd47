"""
The connections of one event loop: slots that bound them, and the idle ones
kept per origin for reuse.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TypeAlias

from ._connection import Connection

__all__ = ["Origin", "Pool"]

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

    __slots__ = ("free", "idle", "keepalive_expiry", "loop", "waiters")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_connections: int, keepalive_expiry: float
    ) -> None:
        self.loop = loop
        self.free = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.idle: dict[Origin, deque[Connection]] = {}

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
        """Close every idle connection."""
        for connections in self.idle.values():
            for connection in connections:
                with contextlib.suppress(RuntimeError):  # its loop is closed
                    connection.close()
        self.idle.clear()
