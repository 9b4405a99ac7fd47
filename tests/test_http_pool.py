"""
The pool (`journey_async._http._pool`): reuse, the bound on open
connections, waiting for a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

import httpx
import pytest
from scripted import OK, constant, scripted, send

from journey_async._http._connection import Connection
from journey_async._http._pool import Pool


async def test_connections_are_kept_alive_and_reused() -> None:
    async with scripted(constant(OK)) as (url, server, transport):
        for _ in range(10):
            assert (await send(transport, url + "/a?b=1")).json() == {}
    assert server.connections == 1
    assert server.heads[0].startswith(b"GET /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_the_pool_bounds_open_connections() -> None:
    async with scripted(constant(OK, delay=0.01), max_connections=4) as (url, server, transport):
        responses = await asyncio.gather(*(send(transport, url) for _ in range(20)))
    assert {response.status_code for response in responses} == {200}
    assert server.peak_open == 4
    assert server.connections == 4


async def test_waiting_for_a_connection_is_bounded_by_the_pool_timeout() -> None:
    async with scripted(constant(OK, delay=1.0), max_connections=1) as (url, _, transport):
        slow = asyncio.ensure_future(send(transport, url))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await send(transport, url, timeouts=httpx.Timeout(2.0, pool=0.05))
        slow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slow


async def test_a_request_cancelled_while_waiting_for_a_slot_takes_none() -> None:
    async with scripted(constant(OK, delay=0.1), max_connections=1) as (url, server, transport):
        holder = asyncio.ensure_future(send(transport, url))
        await asyncio.sleep(0.02)
        waiting = [asyncio.ensure_future(send(transport, url)) for _ in range(3)]
        await asyncio.sleep(0.02)
        waiting[1].cancel()
        assert (await holder).status_code == 200
        assert [(await task).status_code for task in (waiting[0], waiting[2])] == [200, 200]
        with pytest.raises(asyncio.CancelledError):
            await waiting[1]
        async with asyncio.timeout(5):  # a lost slot would make this wait forever
            assert (await send(transport, url)).status_code == 200
    assert server.connections == 1
    assert len(server.heads) == 4


async def test_a_waiter_cancelled_as_a_slot_is_released_leaves_cleanly() -> None:
    # The release pops the cancelled waiter before its task runs again: the
    # task must end with its CancelledError, not a ValueError from the queue.
    from journey_async._http._pool import Pool

    pool = Pool(asyncio.get_running_loop(), max_connections=1, keepalive_expiry=5.0)
    assert pool.try_acquire()
    waiting = asyncio.ensure_future(pool.acquire(None))
    await asyncio.sleep(0)  # in the queue
    waiting.cancel()  # cancels the waiter's future at once; the task runs later
    pool.release()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.free == 1
    assert not pool.waiters


async def test_idle_connections_expire() -> None:
    async with scripted(constant(OK), keepalive_expiry=0.05) as (url, server, transport):
        await send(transport, url)
        await send(transport, url)
        assert server.connections == 1, "reused while fresh"
        await asyncio.sleep(0.1)
        await send(transport, url)
    assert server.connections == 2, "expired: a new connection"


async def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_is_passed_on() -> None:
    loop = asyncio.get_running_loop()
    pool = Pool(loop, 1, 5.0)
    assert pool.try_acquire()
    first = asyncio.ensure_future(pool.acquire(None))
    second = asyncio.ensure_future(pool.acquire(None))
    await asyncio.sleep(0)
    pool.release()  # hands the slot to the first waiter...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    async with asyncio.timeout(5):
        await second  # the slot went on to the next waiter
    pool.release()
    assert pool.free == 1
    assert not pool.waiters


async def test_every_slot_released_is_free_again() -> None:
    pool = Pool(asyncio.get_running_loop(), 3, 5.0)
    assert [pool.try_acquire() for _ in range(4)] == [True, True, True, False]
    for _ in range(3):
        pool.release()
    assert pool.free == 3
    assert [pool.try_acquire() for _ in range(4)] == [True, True, True, False]


class Clock:
    """A loop whose time is set by the test (all the pool asks a loop for here)."""

    def __init__(self) -> None:
        self.now = 100.0

    def time(self) -> float:
        return self.now


class Idle:
    """A connection as the pool sees one: usable, closed when dropped."""

    def __init__(self) -> None:
        self.idle_since = 0.0
        self.closed = False

    def is_usable(self) -> bool:
        return not self.closed

    def close(self) -> None:
        self.closed = True


def test_a_connection_idle_for_exactly_the_keepalive_expiry_is_expired() -> None:
    clock = Clock()
    pool = Pool(cast(asyncio.AbstractEventLoop, clock), 1, 5.0)
    origin = ("http", b"127.0.0.1", 80)
    fresh, expired = Idle(), Idle()
    pool.put_idle(origin, cast(Connection, fresh))
    clock.now += 4.999
    assert pool.take_idle(origin) is cast(Connection, fresh)
    pool.put_idle(origin, cast(Connection, expired))
    clock.now += 5.0
    assert pool.take_idle(origin) is None
    assert expired.closed
