"""
A name's addresses (`journey_async._http._resolver`): asked once for the
connections that open together, kept for a few seconds (on a clock the test
moves), never a failure kept, a cancelled caller not cancelling the lookup
of the others; and through `connect`, one lookup for a burst of connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from typing import Any

import httpx
import pytest

from journey_async._http._connection import connect
from journey_async._http._resolver import RESOLVE_TTL, Resolver, resolver_for

NAME = "resolver.test"
V4 = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 80))
V6 = (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("::1", 80, 0, 0))


class Lookups:
    """The running loop's ``getaddrinfo`` for `NAME`, counted; each answer
    waits for `release` when *held*, then gives *answer* (or raises it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answer: Any, *, held: bool = False):
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo
        self.answer = answer
        self.calls = 0
        self.released = asyncio.Event()
        if not held:
            self.released.set()

        async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> list[Any]:
            if host != NAME:
                return await real(host, port, **kwargs)
            self.calls += 1
            await self.released.wait()
            if isinstance(self.answer, BaseException):
                raise self.answer
            return list(self.answer)

        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)

    def release(self) -> None:
        self.released.set()


async def test_lookups_of_one_name_at_once_ask_once_and_share_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    lookups = Lookups(monkeypatch, [V4, V6, V4], held=True)
    resolver = Resolver()
    waiting = [asyncio.ensure_future(resolver.resolve(loop, NAME, 80)) for _ in range(50)]
    await asyncio.sleep(0)
    lookups.release()
    async with asyncio.timeout(5):
        answers = await asyncio.gather(*waiting)
    assert lookups.calls == 1
    assert all(list(answer) == [V4, V6] for answer in answers), "interleaved, repeats dropped"


async def test_an_answer_is_kept_for_the_ttl_then_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    lookups = Lookups(monkeypatch, [V4])
    now = [100.0]
    resolver = Resolver(ttl=5.0, clock=lambda: now[0])
    await resolver.resolve(loop, NAME, 80)
    now[0] += 4.9
    await resolver.resolve(loop, NAME, 80)
    await resolver.resolve(loop, NAME, 443)  # another port, another entry
    assert lookups.calls == 2
    now[0] += 0.2
    lookups.answer = [V6]
    assert list(await resolver.resolve(loop, NAME, 80)) == [V6]
    assert lookups.calls == 3
    assert RESOLVE_TTL == 5.0, "the documented default"


async def test_a_failure_reaches_every_caller_and_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    lookups = Lookups(monkeypatch, socket.gaierror(-2, "Name or service not known"), held=True)
    resolver = Resolver()
    waiting = [asyncio.ensure_future(resolver.resolve(loop, NAME, 80)) for _ in range(3)]
    await asyncio.sleep(0)
    lookups.release()
    async with asyncio.timeout(5):
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [socket.gaierror] * 3
    lookups.answer = []
    with pytest.raises(OSError, match=f"^{re.escape(NAME)} resolves to no address$"):
        await resolver.resolve(loop, NAME, 80)
    lookups.answer = [V4]
    assert list(await resolver.resolve(loop, NAME, 80)) == [V4]
    assert lookups.calls == 3, "asked again after each failure"


async def test_a_caller_cancelled_leaves_the_lookup_to_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    lookups = Lookups(monkeypatch, [V4], held=True)
    resolver = Resolver()
    first = asyncio.ensure_future(resolver.resolve(loop, NAME, 80))
    second = asyncio.ensure_future(resolver.resolve(loop, NAME, 80))
    await asyncio.sleep(0)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    lookups.release()
    async with asyncio.timeout(5):
        assert list(await second) == [V4]
    assert first.cancelled()
    assert lookups.calls == 1


async def test_each_loop_has_its_own_resolver() -> None:
    loop = asyncio.get_running_loop()
    assert resolver_for(loop) is resolver_for(loop)
    other = asyncio.new_event_loop()
    try:
        assert resolver_for(other) is not resolver_for(loop)
    finally:
        other.close()


async def test_a_burst_of_connections_to_a_name_asks_the_resolver_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(100)
        port = listener.getsockname()[1]
        lookups = Lookups(
            monkeypatch,
            [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))],
        )
        request = httpx.Request("GET", f"http://{NAME}:{port}/")
        async with asyncio.timeout(5):
            connections = await asyncio.gather(
                *(
                    connect(loop, NAME, port, tls=None, connect_timeout=5.0, request=request)
                    for _ in range(20)
                )
            )
        for connection in connections:
            connection.close()
    assert lookups.calls == 1
