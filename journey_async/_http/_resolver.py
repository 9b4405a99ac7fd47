"""
The addresses of a name, asked of the loop's resolver (``loop.getaddrinfo``)
once for every connection that opens within a few seconds: a fan-out opens
its C connections at once, and each would otherwise be one lookup in the
loop's thread pool (asyncio's default executor, a handful of threads), one
DNS query where the system caches nothing.

Cached per event loop (the lookups in flight are the loop's tasks), for
`RESOLVE_TTL` seconds, as aiohttp caches for 10 s by default; a failure is
not kept.
"""

from __future__ import annotations

import asyncio
import socket
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Final

from ._eyeballs import AddrInfo, interleave

__all__ = ["RESOLVE_TTL", "Resolver", "resolver_for"]

RESOLVE_TTL: Final = 5.0
"""Seconds a name's addresses are reused for new connections: long enough
for a fan-out's burst of connects to ask once, short enough to follow a
change of address (DNS failover) within seconds."""


class Resolver:
    """The TCP addresses of (host, port), in the order to try them
    (`interleave`), kept for *ttl* seconds of *clock*; concurrent lookups
    of one name share one."""

    def __init__(self, ttl: float = RESOLVE_TTL, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._known: dict[tuple[str, int], tuple[float, Sequence[AddrInfo]]] = {}
        self._asked: dict[tuple[str, int], asyncio.Task[Sequence[AddrInfo]]] = {}

    async def resolve(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int
    ) -> Sequence[AddrInfo]:
        """
        The addresses of *host*:*port*, asking *loop*'s resolver unless they
        are known and fresh. Raises `OSError` as ``getaddrinfo`` does
        (`socket.gaierror`), or when *host* has no address.
        """
        key = (host, port)
        known = self._known.get(key)
        if known is not None and known[0] > self._clock():
            return known[1]
        asked = self._asked.get(key)
        if asked is None:
            asked = self._asked[key] = loop.create_task(self._ask(loop, host, port))
        # A caller cancelled leaves the lookup to the others waiting for it.
        return await asyncio.shield(asked)

    async def _ask(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int
    ) -> Sequence[AddrInfo]:
        key = (host, port)
        try:
            infos = tuple(interleave(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
            if not infos:
                raise OSError(f"{host} resolves to no address")
            self._known[key] = (self._clock() + self._ttl, infos)
            return infos
        finally:
            del self._asked[key]


_RESOLVERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Resolver] = (
    weakref.WeakKeyDictionary()
)


def resolver_for(loop: asyncio.AbstractEventLoop) -> Resolver:
    """*loop*'s resolver, made on first use and gone with the loop."""
    resolver = _RESOLVERS.get(loop)
    if resolver is None:
        resolver = _RESOLVERS[loop] = Resolver()
    return resolver
