"""
Direct calls beyond max_concurrency wait their turn for a connection: against
the emulator served for real, not a mock.
"""

from __future__ import annotations

import anyio
import httpx

import journey_async as ja
from journey_async.testing import JourneyEmulator, serve_emulator


async def test_a_thousand_direct_calls_at_ten_connections_all_succeed() -> None:
    # 1000 calls through 10 connections, 20 ms each: the last waits seconds for
    # a connection, far past the pool timeout of half a second; waiting for a
    # slot instead, none of them meets it.
    emulator = JourneyEmulator.with_sample_data(journeys=20, latency=0.02)
    emulator.record_requests = False
    retries: list[ja.RetryEvent] = []
    policy = ja.RetryPolicy(on_retry=retries.append, deadline=None)
    timeout = httpx.Timeout(10.0, pool=0.5)
    outcomes: list[object] = []

    async def call(client: ja.AsyncJourneyClient, journey_id: str) -> None:
        try:
            outcomes.append(await client.get_stats(journey_id))
        except ja.JourneyError as exc:
            outcomes.append(exc)

    with serve_emulator(emulator) as server:
        async with (
            ja.AsyncJourneyClient(
                emulator.token,
                base_url=server.url,
                max_concurrency=10,
                retry=policy,
                timeout=timeout,
            ) as client,
            anyio.create_task_group() as tg,
        ):
            for index in range(1000):
                tg.start_soon(call, client, emulator.journey_ids[index % 20])

    errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert errors == []
    assert len(outcomes) == 1000
    assert retries == []  # no PoolTimeout, nor anything else, was retried
    assert emulator.max_in_flight <= 10
