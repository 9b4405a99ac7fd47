"""
Happy eyeballs (RFC 8305) for a name with several addresses: TCP connects
staggered over the addresses, interleaved by family; the first to connect
wins and every other socket is closed.

asyncio has a race of its own (``loop.create_connection(happy_eyeballs_delay=)``),
but on Python 3.11 it (`asyncio.staggered`) drops the socket that won when
its caller is cancelled before it returns (fixed in later CPython
versions): a fan-out cancelled while its connections open left sockets
unclosed. uvloop has none (it tries the addresses one after the other).
This race runs on both. As asyncio's, it races the TCP connects alone: TLS
follows on the winner (``loop.create_connection(sock=...)``). It owns every
socket it opens until it hands the winner back, and leaves none open behind
it, whether it returns, fails or is cancelled at any point.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

__all__ = ["AddrInfo", "AllAttemptsFailed", "connect_socket", "interleave"]

AddrInfo: TypeAlias = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
"""One address as `socket.getaddrinfo` gives it: family, type, proto,
canonical name, socket address."""


class AllAttemptsFailed(OSError):
    """
    No address accepted: the message names each with what failed.

    Attributes:
        errors: What each attempt raised, in the order they were started.
    """

    def __init__(self, failures: Sequence[tuple[AddrInfo, OSError]]) -> None:
        described = "; ".join(f"{_shown(info)}: {_reason(exc)}" for info, exc in failures)
        super().__init__(f"all {len(failures)} addresses failed: {described}")
        self.errors = [exc for _, exc in failures]


def _shown(info: AddrInfo) -> str:
    host = str(info[4][0])
    return f"[{host}]" if ":" in host else host


def _reason(exc: OSError) -> str:
    # asyncio's "Connect call failed (address)" hides the reason in errno.
    if exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def interleave(infos: Iterable[AddrInfo]) -> list[AddrInfo]:
    """
    *infos* without repeats, the families taking turns from the first one's
    (RFC 8305, section 4; asyncio's ``interleave=1``): IPv6, IPv4, IPv6...
    so that a family that does not work costs one delay, not one per address.
    """
    families: dict[int, list[AddrInfo]] = {}
    seen: set[tuple[int, tuple[Any, ...]]] = set()
    for info in infos:
        key = (info[0], info[4])
        if key not in seen:
            seen.add(key)
            families.setdefault(info[0], []).append(info)
    turns = list(families.values())
    ordered: list[AddrInfo] = []
    for index in range(max(map(len, turns), default=0)):
        ordered.extend(family[index] for family in turns if index < len(family))
    return ordered


async def connect_socket(
    loop: asyncio.AbstractEventLoop, infos: Sequence[AddrInfo], delay: float
) -> socket.socket:
    """
    A non-blocking socket connected to the first of *infos* to accept. They
    are tried in order: the next attempt starts *delay* seconds after the
    previous one started, or as soon as that one fails; the first to connect
    wins, the others are cancelled and their sockets closed before this
    returns (or raises: cancelled, every socket it opened is closed).

    Raises `AllAttemptsFailed` when no address accepts.
    """
    attempts: list[asyncio.Task[socket.socket]] = []
    try:
        winner = await _race(loop, infos, delay, attempts)
    except BaseException:  # cancelled, or no address accepted
        await _stop_losers(attempts, None)
        raise
    try:
        await _stop_losers(attempts, winner)
    except BaseException:
        # Cancelled while the losers stop: nobody else will close the winner.
        winner.result().close()
        raise
    return winner.result()


async def _race(
    loop: asyncio.AbstractEventLoop,
    infos: Sequence[AddrInfo],
    delay: float,
    attempts: list[asyncio.Task[socket.socket]],
) -> asyncio.Task[socket.socket]:
    """The first of *attempts* (appended as they start) to connect."""
    failures: list[tuple[AddrInfo, OSError]] = []
    pending: set[asyncio.Task[socket.socket]] = set()
    start_now = True
    next_at = 0.0
    latest: asyncio.Task[socket.socket] | None = None
    while True:
        if start_now and len(attempts) < len(infos):
            latest = loop.create_task(_attempt(loop, infos[len(attempts)]))
            attempts.append(latest)
            pending.add(latest)
            next_at = loop.time() + delay
        if not pending:
            raise AllAttemptsFailed(failures)
        timeout = max(0.0, next_at - loop.time()) if len(attempts) < len(infos) else None
        done, pending = await asyncio.wait(
            pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        latest_failed = False
        for index, attempt in enumerate(attempts):  # in the order they started
            if attempt not in done:
                continue
            exc = attempt.exception()
            if exc is None:
                return attempt
            if not isinstance(exc, OSError):
                raise exc  # not a connect that failed: a defect, not an address to skip
            failures.append((infos[index], exc))
            latest_failed = latest_failed or attempt is latest
        start_now = not done or latest_failed or loop.time() >= next_at


async def _attempt(loop: asyncio.AbstractEventLoop, info: AddrInfo) -> socket.socket:
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _stop_losers(
    attempts: Sequence[asyncio.Task[socket.socket]], winner: asyncio.Task[socket.socket] | None
) -> None:
    """Every attempt but *winner* ended, its socket closed: one that
    connected is closed here, the ones still running are cancelled (each
    then closes its own, even if this wait is itself cancelled) and waited
    for."""
    running = []
    for attempt in attempts:
        if attempt is winner:
            continue
        if not attempt.done():
            attempt.cancel()
            running.append(attempt)
        elif not attempt.cancelled() and attempt.exception() is None:
            attempt.result().close()  # connected, too late
    if running:
        await asyncio.wait(running)
