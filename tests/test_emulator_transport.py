"""The emulator in-process under httpx (journey_async._emulator._transport)."""

from __future__ import annotations

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
