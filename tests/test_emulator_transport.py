"""The emulator in-process under httpx (journey_async._emulator._transport)."""

from __future__ import annotations

import asyncio

import pytest

import journey_async
from journey_async.testing import Fault, JourneyEmulator, emulator_client


async def test_emulator_client(emulator: JourneyEmulator) -> None:
    emulator.inject(Fault.status(503), endpoint="stats")
    retry = journey_async.RetryPolicy(initial_delay=0.01, max_delay=0.01)
    async with emulator_client(emulator, retry=retry) as client:
        journey_stats = await client.get_stats("j1")
        await client.remove_users(["u1"], journey_ids=["j1", "j2"])
    assert journey_stats.title == "Welcome"
    assert [p.title for p in journey_stats.points] == ["Push", "Banner", "Webhook"]
    # The client retried past the 503.
    assert [r.status for r in emulator.requests] == [503, 200, 200]
    assert emulator.users_in("j1") == {"u2", "u3"}
    assert emulator.users_in("j2") == {"u2"}


class CallbackBug(Exception):
    """A caller's callback failing."""


async def test_a_request_yields_to_the_loop_as_a_wire_does() -> None:
    # Cancellation lands only where a task yields: a transport that never
    # did let a fan-out run through every journey after its first failure
    # (served on a socket, the same fan-out stops at once), and starved every
    # other task of the loop meanwhile.
    def raising(_: object) -> None:
        raise CallbackBug

    emulator = JourneyEmulator.with_sample_data(journeys=40)
    emulator.inject(Fault.status(503), endpoint="stats")
    retry = journey_async.RetryPolicy(on_retry=raising, initial_delay=0.0, max_delay=0.0)
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async with emulator_client(emulator, retry=retry, max_concurrency=2) as client:
        with pytest.raises(CallbackBug):
            await client.get_stats_many(emulator.journey_ids)
        assert len(emulator.requests) < 5
        ticker = asyncio.create_task(ticking())
        await client.with_options(retry=None).get_stats_many(emulator.journey_ids)
        ticker.cancel()
    assert ticks > 10
