"""
Retries against the emulator served for real on 127.0.0.1: dropped
connections, timeouts and faults as a socket shows them. Backoff waits are
recorded, not slept; the timeouts are real (tenths of a second).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

import journey_async as ja
from journey_async.testing import EmulatorServer, Fault, JourneyEmulator, serve_emulator

TOKEN = "test-token"  # the emulator fixtures' token


class NoWaits:
    """The policy's sleep and clock: records each wait and returns at once,
    moving the clock on (the client's rate limiter waits with both)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.events: list[ja.RetryEvent] = []
        self.now = 1000.0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def policy(self, **kwargs: Any) -> ja.RetryPolicy:
        return ja.RetryPolicy(
            sleep=self.sleep, clock=self.clock, on_retry=self.events.append, **kwargs
        )


@pytest.fixture
def no_waits() -> NoWaits:
    return NoWaits()


@pytest.fixture
def journey_id(journey_emulator: JourneyEmulator) -> str:
    return journey_emulator.journey_ids[0]


@pytest.fixture
async def client(
    journey_emulator_server: EmulatorServer, no_waits: NoWaits
) -> AsyncIterator[ja.AsyncJourneyClient]:
    async with ja.AsyncJourneyClient(
        TOKEN, base_url=journey_emulator_server.url, retry=no_waits.policy()
    ) as client:
        yield client


def statuses(emulator: JourneyEmulator) -> list[int | None]:
    return [request.status for request in emulator.requests]


async def test_dropped_connections_are_retried(
    client: ja.AsyncJourneyClient, journey_emulator: JourneyEmulator, journey_id: str
) -> None:
    journey_emulator.inject(Fault.drop(), Fault.drop(), endpoint="stats")
    stats = await client.get_stats(journey_id)
    assert stats.points
    assert statuses(journey_emulator) == [None, None, 200]


async def test_dropped_connections_to_the_end_are_a_connection_error(
    journey_emulator_server: EmulatorServer,
    journey_emulator: JourneyEmulator,
    journey_id: str,
    no_waits: NoWaits,
) -> None:
    journey_emulator.inject(*[Fault.drop()] * 3, endpoint="stats")
    async with ja.AsyncJourneyClient(
        TOKEN, base_url=journey_emulator_server.url, retry=no_waits.policy(max_attempts=3)
    ) as client:
        with pytest.raises(ja.APIConnectionError) as info:
            await client.get_stats(journey_id)
    assert type(info.value) is ja.APIConnectionError
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)
    assert statuses(journey_emulator) == [None, None, None]
    assert [e.reason for e in no_waits.events] == ["RemoteProtocolError"] * 2


async def test_a_real_timeout_is_retried(
    journey_emulator_server: EmulatorServer,
    journey_emulator: JourneyEmulator,
    journey_id: str,
    no_waits: NoWaits,
) -> None:
    journey_emulator.inject(Fault.delay(0.6), endpoint="stats")
    async with ja.AsyncJourneyClient(
        TOKEN, base_url=journey_emulator_server.url, timeout=0.2, retry=no_waits.policy()
    ) as client:
        stats = await client.get_stats(journey_id)
    assert stats.points
    assert [e.reason for e in no_waits.events] == ["ReadTimeout"]


async def test_real_timeouts_to_the_end_are_a_timeout_error(
    journey_emulator_server: EmulatorServer,
    journey_emulator: JourneyEmulator,
    journey_id: str,
    no_waits: NoWaits,
) -> None:
    journey_emulator.inject(Fault.delay(0.6), Fault.delay(0.6), endpoint="stats")
    async with ja.AsyncJourneyClient(
        TOKEN,
        base_url=journey_emulator_server.url,
        timeout=0.2,
        retry=no_waits.policy(max_attempts=2),
    ) as client:
        with pytest.raises(ja.APITimeoutError) as info:
            await client.get_stats(journey_id)
    assert "deadline" not in str(info.value)
    assert len(no_waits.events) == 1
    assert journey_emulator.pending_faults == 0


async def test_the_deadline_cuts_a_real_attempt_short(
    journey_emulator_server: EmulatorServer,
    journey_emulator: JourneyEmulator,
    journey_id: str,
    no_waits: NoWaits,
) -> None:
    # The attempt's own timeout (5 s) is lowered to the 0.3 s deadline, which
    # also bounds the call as a whole: whichever ends it names the deadline.
    journey_emulator.inject(Fault.delay(0.6), endpoint="stats")
    async with ja.AsyncJourneyClient(
        TOKEN,
        base_url=journey_emulator_server.url,
        timeout=5.0,
        # The real clock: the deadline is measured against a real attempt.
        retry=ja.RetryPolicy(sleep=no_waits.sleep, on_retry=no_waits.events.append, deadline=0.3),
    ) as client:
        with pytest.raises(ja.APITimeoutError, match=r"deadline of 0\.3 s"):
            await client.get_stats(journey_id)
    assert no_waits.events == []


async def test_retry_after_is_waited_and_no_more(
    client: ja.AsyncJourneyClient,
    journey_emulator: JourneyEmulator,
    journey_id: str,
    no_waits: NoWaits,
) -> None:
    journey_emulator.inject(Fault.status(429, retry_after="1"), endpoint="stats")
    await client.get_stats(journey_id)
    assert no_waits.waits == [1.0]
    assert statuses(journey_emulator) == [429, 200]


async def test_retry_after_above_the_cap_is_a_rate_limit_error(
    client: ja.AsyncJourneyClient,
    journey_emulator: JourneyEmulator,
    journey_id: str,
    no_waits: NoWaits,
) -> None:
    journey_emulator.inject(Fault.status(429, retry_after="3600"), endpoint="stats")
    with pytest.raises(ja.RateLimitError) as info:
        await client.get_stats(journey_id)
    assert info.value.retry_after == 3600.0
    assert no_waits.waits == []
    assert statuses(journey_emulator) == [429]


async def test_permanent_500_is_server_error_after_max_attempts(
    client: ja.AsyncJourneyClient, journey_emulator: JourneyEmulator, journey_id: str
) -> None:
    journey_emulator.inject(*[Fault.status(500)] * 10, endpoint="stats")
    with pytest.raises(ja.ServerError):
        await client.get_stats(journey_id)
    assert statuses(journey_emulator) == [500] * ja.RetryPolicy().max_attempts


async def test_a_removal_retried_after_a_503_lands_exactly_once(
    client: ja.AsyncJourneyClient, journey_emulator: JourneyEmulator
) -> None:
    journey_id = journey_emulator.add_journey(users=["alice", "bob", "carol"])
    journey_emulator.inject(Fault.status(503), endpoint="remove")
    result = await client.remove_users(["alice", "bob"], journey_ids=[journey_id])
    assert result.user_ids == ("alice", "bob")
    assert journey_emulator.users_in(journey_id) == {"carol"}
    assert journey_emulator.removals_applied == 1
    assert statuses(journey_emulator) == [503, 200]


@pytest.mark.parametrize(
    "fault", [Fault.status(503, after_apply=True), Fault.drop(after_apply=True)]
)
async def test_a_removal_applied_before_its_failure_is_safely_repeated(
    client: ja.AsyncJourneyClient, journey_emulator: JourneyEmulator, fault: Fault
) -> None:
    # The server removed them, then the answer was lost: the retry removes
    # them again, which changes nothing (removal is a set operation).
    journey_id = journey_emulator.add_journey(users=["alice", "bob"])
    journey_emulator.inject(fault, endpoint="remove")
    await client.remove_users(["alice"], journey_ids=[journey_id])
    assert journey_emulator.users_in(journey_id) == {"bob"}
    assert journey_emulator.removals_applied == 2


async def test_failed_attempts_give_their_connection_back(
    journey_emulator_server: EmulatorServer,
    journey_emulator: JourneyEmulator,
    journey_id: str,
    no_waits: NoWaits,
) -> None:
    # One connection in the pool: an attempt that kept its response open
    # would leave the next one waiting for the pool until PoolTimeout.
    journey_emulator.inject(*[Fault.status(503)] * 3, Fault.html(502), endpoint="stats")
    async with ja.AsyncJourneyClient(
        TOKEN,
        base_url=journey_emulator_server.url,
        timeout=httpx.Timeout(5.0, pool=0.5),
        max_concurrency=1,
        retry=no_waits.policy(),
    ) as client:
        await client.get_stats(journey_id)
    assert statuses(journey_emulator) == [503, 503, 503, 502, 200]


@pytest.fixture
def faulty_server() -> Iterator[EmulatorServer]:
    emulator = JourneyEmulator.with_sample_data(journeys=20, fault_rate=0.2, seed=7)
    with serve_emulator(emulator) as server:
        yield server


async def test_every_call_succeeds_at_a_20_percent_fault_rate(
    faulty_server: EmulatorServer, no_waits: NoWaits
) -> None:
    # One call at a time, so the seeded fault draws are the same every run.
    emulator = faulty_server.emulator
    ids = emulator.journey_ids * 20
    async with ja.AsyncJourneyClient(
        TOKEN, base_url=faulty_server.url, retry=no_waits.policy()
    ) as client:
        results = [await client.get_stats(journey_id) for journey_id in ids]
    assert len(results) == 400
    faulted = [r for r in emulator.requests if r.fault is not None]
    assert len(faulted) > 40  # the faults did happen...
    assert len(no_waits.events) == len(faulted)  # ...and each one was retried
    assert len(emulator.requests) == 400 + len(faulted)
