"""The emulator's rate limit: a token bucket, in-process, served and on the command line."""

from __future__ import annotations

import httpx
import pytest

from journey_async._emulator._limits import TokenBucket, parse_rate
from journey_async.testing import EmulatorTransport, Fault, JourneyEmulator, spawn_emulator_process

TOKEN = "limit-token"
AUTH = {"Authorization": f"Api {TOKEN}"}


def stats(journey_id: str) -> str:
    return f"/api/journey/{journey_id}/statistics/external"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_lets_its_burst_through_then_asks_to_wait() -> None:
    clock = Clock()
    bucket = TokenBucket(4, burst=2, clock=clock)
    assert [bucket.take(), bucket.take()] == [None, None]
    assert bucket.take() == 1  # a token in 0.25 s: whole seconds, at least 1
    clock.now += 0.25
    assert bucket.take() is None
    assert bucket.take() == 1
    clock.now += 10
    assert [bucket.take(), bucket.take(), bucket.take()] == [None, None, 1]


def test_a_slow_bucket_asks_for_the_whole_wait() -> None:
    bucket = TokenBucket(0.1, burst=1, clock=Clock())
    assert bucket.take() is None
    assert bucket.take() == 10


@pytest.mark.parametrize(("per_second", "burst"), [(100, 100), (0.5, 1), (12.9, 12)])
def test_the_burst_defaults_to_one_seconds_worth(per_second: float, burst: int) -> None:
    assert TokenBucket(per_second).burst == burst


@pytest.mark.parametrize(
    ("text", "rate"), [("100/s", 100.0), ("600/min", 10.0), ("2.5", 2.5), (" 30 / m ", 0.5)]
)
def test_rates_read_per_second_or_per_minute(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "0/s", "-1/s", "10/h", "nan/s", "inf"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="100/s"):
        parse_rate(text)


def test_bad_emulator_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        JourneyEmulator(rate_limit=0)
    with pytest.raises(ValueError, match="rate_limit_burst"):
        JourneyEmulator(rate_limit=1, rate_limit_burst=0)
    with pytest.raises(ValueError, match="needs a rate_limit"):
        JourneyEmulator(rate_limit_burst=3)


async def test_over_budget_is_a_429_with_retry_after_before_any_fault() -> None:
    # One request per 1000 s: the bucket never refills during the test.
    emulator = JourneyEmulator.with_sample_data(
        3, token=TOKEN, rate_limit=0.001, rate_limit_burst=2
    )
    journey = emulator.journey_ids[0]
    async with httpx.AsyncClient(
        transport=EmulatorTransport(emulator), base_url="http://emulator", headers=AUTH
    ) as client:
        assert (await client.get(stats(journey))).status_code == 200
        assert (await client.get(stats(journey))).status_code == 200
        emulator.inject(Fault.status(503))
        refused = await client.get(stats(journey))
        unauthorized = await client.get(stats(journey), headers={"Authorization": "Api nope"})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1000"
    assert refused.json() == {"success": False, "message": "rate limit exceeded"}
    assert emulator.pending_faults == 1  # the limit comes first
    assert unauthorized.status_code == 401  # not counted against the budget
    assert emulator.rate_limited == 1
    assert [r.status for r in emulator.requests] == [200, 200, 429, 401]
    emulator.reset_counters()
    assert emulator.rate_limited == 0


def test_the_command_line_emulator_takes_a_rate_limit() -> None:
    sample = JourneyEmulator.with_sample_data(3, seed=1)
    path = stats(sample.journey_ids[0])
    with spawn_emulator_process(
        journeys=3,
        seed=1,
        token=TOKEN,
        extra_args=["--rate-limit", "1/min", "--rate-limit-burst", "1"],
    ) as url:
        first = httpx.get(url + path, headers=AUTH)
        second = httpx.get(url + path, headers=AUTH)
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "60"
