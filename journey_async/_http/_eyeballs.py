"""
Happy eyeballs (RFC 8305) for a name with several addresses: connects
staggered over the addresses, interleaved by family; the first to connect
wins and every other connection is closed.

asyncio has a race of its own (``loop.create_connection(happy_eyeballs_delay=)``),
but on Python 3.11 it (`asyncio.staggered`) drops the socket that won when
its caller is cancelled before it returns (fixed in later CPython
versions): a fan-out cancelled while its connections open left sockets
unclosed. uvloop has none (it tries the addresses one after the other).
This race runs on both, each attempt the loop's own connect to one address
(all in C on uvloop). It owns what every attempt made until it hands the
winner back, and leaves nothing open behind it, whether it returns, fails
or is cancelled at any point.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias, TypeVar

__all__ = ["AddrInfo", "AllAttemptsFailed", "connect_first", "interleave"]

_T = TypeVar("_T")

AddrInfo: TypeAlias = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
"""One address as `socket.getaddrinfo` gives it: family, type, proto,
canonical name, socket address."""


class AllAttemptsFailed(OSError):
    """
    No address accepted: the message names each with what failed.

    Attributes:
        failures: Each address with what its attempt raised, in the order
            they were started.
    """

    def __init__(self, failures: Sequence[tuple[AddrInfo, OSError]]) -> None:
        described = "; ".join(f"{_shown(info)}: {_reason(exc)}" for info, exc in failures)
        super().__init__(f"all {len(failures)} addresses failed: {described}")
        self.failures = list(failures)


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
    seen: set[tuple[Any, ...]] = set()
    for info in infos:
        if info[4] not in seen:  # an address of one family only
            seen.add(info[4])
            families.setdefault(info[0], []).append(info)
    turns = list(families.values())
    ordered: list[AddrInfo] = []
    for index in range(max(map(len, turns), default=0)):
        ordered.extend(family[index] for family in turns if index < len(family))
    return ordered


async def connect_first(
    loop: asyncio.AbstractEventLoop,
    infos: Sequence[AddrInfo],
    delay: float,
    attempt: Callable[[AddrInfo], Awaitable[_T]],
    discard: Callable[[_T], object],
) -> _T:
    """
    What *attempt* makes of the first of *infos* to connect. They are tried
    in order: the next attempt starts *delay* seconds after the previous one
    started, or as soon as that one fails; the first to succeed wins, the
    others are cancelled, and what any of them made is given to *discard*
    (to close) before this returns, or raises: cancelled at any point, it
    leaves nothing open.

    An *attempt* must close what it opened when it fails or is cancelled
    (``loop.create_connection`` to one address does); an `OSError` from it
    is that address failing.

    Raises `AllAttemptsFailed` when no address accepts.
    """
    attempts: list[asyncio.Task[_T]] = []
    try:
        winner = await _race(loop, infos, delay, attempt, attempts)
    except BaseException:  # cancelled, or no address accepted
        await _stop_losers(attempts, None, discard)
        raise
    try:
        await _stop_losers(attempts, winner, discard)
    except BaseException:
        # Cancelled while the losers stop: nobody else will close the winner.
        discard(winner.result())
        raise
    return winner.result()


async def _race(
    loop: asyncio.AbstractEventLoop,
    infos: Sequence[AddrInfo],
    delay: float,
    attempt: Callable[[AddrInfo], Awaitable[_T]],
    attempts: list[asyncio.Task[_T]],
) -> asyncio.Task[_T]:
    """The first of *attempts* (appended as they start) to succeed."""
    failures: list[tuple[AddrInfo, OSError]] = []
    pending: set[asyncio.Task[_T]] = set()
    start_now = True
    next_at = 0.0
    latest: asyncio.Task[_T] | None = None
    while True:
        if start_now and len(attempts) < len(infos):
            latest = loop.create_task(_run(attempt, infos[len(attempts)]))
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
        for index, started in enumerate(attempts):  # in the order they started
            if started not in done:
                continue
            exc = started.exception()
            if exc is None:
                return started
            if not isinstance(exc, OSError):
                raise exc  # not a connect that failed: a defect, not an address to skip
            failures.append((infos[index], exc))
            latest_failed = latest_failed or started is latest
        start_now = not done or latest_failed or loop.time() >= next_at


async def _run(attempt: Callable[[AddrInfo], Awaitable[_T]], info: AddrInfo) -> _T:
    return await attempt(info)


async def _stop_losers(
    attempts: Sequence[asyncio.Task[_T]],
    winner: asyncio.Task[_T] | None,
    discard: Callable[[_T], object],
) -> None:
    """Every attempt but *winner* ended, nothing of theirs left open: what
    one made is discarded here, the ones still running are cancelled (each
    then closes what it opened, even if this wait is itself cancelled) and
    waited for."""
    running = []
    for started in attempts:
        if started is winner:
            continue
        if not started.done():
            started.cancel()
            running.append(started)
        elif not started.cancelled() and started.exception() is None:
            discard(started.result())  # connected, too late
    if running:
        await asyncio.wait(running)
