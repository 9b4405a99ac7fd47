"""RateLimit, the adaptive default and their place in the client: fake clocks, no real sleeping."""

from __future__ import annotations

import math
import random
import traceback
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest
import respx
import trio
import trio.testing
from payloads import BASE_URL, JOURNEY_ID, MIXED_EXAMPLE, TOKEN
from served import nginx

import journey_async as ja
from journey_async._ratelimit import (
    BACKOFF,
    DEFAULT_COOL_DOWN,
    EVIDENCE,
    HOLD,
    MIN_EVIDENCE,
    _Budget,
    adaptive_limiter,
    paced,
)
from journey_async.testing import Fault, JourneyEmulator, emulator_client, serve_emulator

STATS_URL = f"{BASE_URL}/api/journey/{JOURNEY_ID}/statistics/external"


@attrs.define
class FakeTime:
    """A clock that moves only when someone sleeps."""

    now: float = 1000.0
    waits: list[float] = attrs.Factory(list)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()

    def clock(self) -> float:
        return self.now

    def limit(self, per_second: float, burst: int | None = None) -> ja.RateLimit:
        return ja.RateLimit(per_second, burst, clock=self.clock, sleep=self.sleep)

    def policy(self, **kwargs: Any) -> ja.RetryPolicy:
        return ja.RetryPolicy(sleep=self.sleep, clock=self.clock, **kwargs)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


# --- RateLimit: arguments ----------------------------------------------------------------------


@pytest.mark.parametrize("per_second", [0, -1, math.nan, math.inf])
def test_per_second_must_be_finite_and_positive(per_second: float) -> None:
    with pytest.raises(ValueError, match="per_second"):
        ja.RateLimit(per_second)


@pytest.mark.parametrize(("per_second", "burst"), [(-1, None), (1, 0)])
def test_a_refused_rate_limit_can_be_reported_with_its_locals(
    per_second: float, burst: int | None
) -> None:
    # What Sentry and rich tracebacks do: repr every local of every frame,
    # the half-made limiter of the refusing __init__ included.
    with pytest.raises(ValueError, match=r"per_second|burst") as info:
        ja.RateLimit(per_second, burst)
    report = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    assert "<RateLimit, not made>" in "".join(report.format())


@pytest.mark.parametrize("per_second", ["10", True, None])
def test_per_second_must_be_a_number(per_second: Any) -> None:
    with pytest.raises(TypeError, match="per_second"):
        ja.RateLimit(per_second)


@pytest.mark.parametrize(("burst", "error"), [(0, ValueError), (-2, ValueError), (1.5, TypeError)])
def test_burst_must_be_a_positive_int(burst: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="burst"):
        ja.RateLimit(10, burst)


@pytest.mark.parametrize(("per_second", "burst"), [(20.7, 20), (0.5, 1), (1, 1), (100, 100)])
def test_burst_defaults_to_one_seconds_worth(per_second: float, burst: int) -> None:
    limit = ja.RateLimit(per_second)
    assert (limit.per_second, limit.burst) == (per_second, burst)
    assert repr(limit) == f"RateLimit(per_second={per_second:g}, burst={burst})"


def test_both_are_rate_limiters() -> None:
    assert isinstance(ja.RateLimit(1), ja.RateLimiter)
    assert isinstance(adaptive_limiter(), ja.RateLimiter)


# --- RateLimit: pacing ---------------------------------------------------------------------------


async def test_a_fresh_budget_is_spaced_from_the_first_request(fake: FakeTime) -> None:
    limit = fake.limit(10)
    start = fake.now
    sent = []
    for _ in range(5):
        await limit.acquire()
        sent.append(round(fake.now - start, 6))
    assert sent == [0.0, 0.1, 0.2, 0.3, 0.4]


async def test_an_idle_budget_saves_up_its_burst(fake: FakeTime) -> None:
    limit = fake.limit(10, burst=4)
    await limit.acquire()
    fake.now += 60  # idle
    start = fake.now
    sent = []
    for _ in range(6):
        await limit.acquire()
        sent.append(round(fake.now - start, 6))
    assert sent == [0.0, 0.0, 0.0, 0.0, 0.1, 0.2]


async def test_a_late_wake_up_is_no_reason_to_burst(fake: FakeTime) -> None:
    limit = fake.limit(10)  # burst 10 after an idle moment, but this one is busy
    start = fake.now
    late = True
    sent: list[float] = []

    async def oversleep(seconds: float) -> None:
        nonlocal late
        await fake.sleep(seconds + (0.5 if late else 0.0))  # an event loop busy once
        late = False

    limit._sleep = oversleep

    async def one() -> None:
        await limit.acquire()
        sent.append(round(fake.now - start, 6))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
    assert sent == [0.0, 0.6, 0.7, 0.8, 0.9]


async def test_concurrent_requests_share_one_budget(fake: FakeTime) -> None:
    limit = fake.limit(20)
    start = fake.now
    sent: list[float] = []

    async def one() -> None:
        await limit.acquire()
        sent.append(fake.now - start)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    assert len(sent) == 20
    assert max(sent) == pytest.approx(19 / 20)


# --- 429s: the cool-down and the learned rate ----------------------------------------------------


async def test_a_429_pauses_every_request_until_retry_after(fake: FakeTime) -> None:
    limiter = adaptive_limiter(clock=fake.clock, sleep=fake.sleep)
    await limiter.acquire()
    assert fake.waits == []  # not paced before any 429
    await limiter.report_rate_limited(3.0)
    assert limiter.cooling_down_for == 3.0
    start = fake.now

    async def one() -> None:
        await limiter.acquire()
        assert fake.now - start >= 3.0

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)


async def test_a_429_without_retry_after_pauses_for_the_default(fake: FakeTime) -> None:
    limiter = adaptive_limiter(clock=fake.clock, sleep=fake.sleep)
    await limiter.acquire()
    await limiter.report_rate_limited(None)
    assert limiter.cooling_down_for == DEFAULT_COOL_DOWN


@pytest.mark.parametrize("retry_after", [-1.0, math.nan, math.inf])
async def test_report_refuses_a_bad_retry_after(retry_after: float) -> None:
    with pytest.raises(ValueError, match="retry_after"):
        await ja.RateLimit(1).report_rate_limited(retry_after)


async def test_an_explicit_budget_slows_below_its_rate_then_climbs_back(fake: FakeTime) -> None:
    limit = fake.limit(100, burst=10)
    for _ in range(50):
        await limit.acquire()
    await limit.report_rate_limited(1.0)
    await limit.acquire()  # through the cool-down
    lowered = limit.rate
    assert lowered is not None
    assert lowered < 100
    seen = []
    for _ in range(3000):
        await limit.acquire()
        seen.append(limit.rate)
    assert max(r for r in seen if r is not None) == 100  # back, and never above


def test_the_learned_rate_stays_above_its_floor() -> None:
    budget = _Budget(None, 1)
    for round_ in range(20):  # 429 after 429, nothing accepted
        now = float(round_ * 10)
        budget.take(now)
        budget.rate_limited(now, 1.0)
        assert budget.next_slot(now + 2, math.inf) >= 0
    rate = budget.rate(1000.0)
    assert rate is not None
    assert rate >= 0.1


def test_a_phase_the_server_took_nothing_of_steps_the_rate_down_not_to_its_floor() -> None:
    """After a first episode, a phase whose every request failed (dropped, 5xx) or
    was refused says nothing of the budget's rate: learned from, it set MIN_RATE,
    and behind a budget with random faults (the emulator's rate_limit=50,
    fault_rate=0.2) 10,000 users had 11 batches applied after 60 s; now 21 s."""
    budget = _Budget(None, 1)
    for i in range(6):
        budget.take(i / 100)
    budget.rate_limited(0.06, 1.0, sent_at=0.05)  # 5 taken, then a 429
    assert budget.next_slot(1.5, math.inf) == 0
    before = budget.rate(1.5)
    assert before is not None
    assert before > 1
    budget.take(1.5)
    budget.rate_limited(1.51, 1.0, sent_at=1.5)  # the phase's one request, refused
    assert budget.next_slot(3.0, math.inf) == 0
    after = budget.rate(3.0)
    assert after is not None
    assert after >= BACKOFF * before


def _token_bucket(rate: float, burst: int) -> Any:
    """A token-bucket server on trio's clock (*rate* a second, *burst* full at start):
    ``refuses()`` is whether the request arriving now is answered 429."""
    tokens, last = float(burst), 0.0  # trio.testing.MockClock starts at 0

    def refuses() -> bool:
        nonlocal tokens, last
        now = trio.current_time()
        tokens = min(burst, tokens + (now - last) * rate)
        last = now
        if tokens >= 1:
            tokens -= 1
            return False
        return True

    return refuses


Attempt = Callable[[], Awaitable[bool]]


async def _workers(worker: Callable[[], Awaitable[None]], concurrency: int) -> float:
    """*concurrency* copies of *worker* run to their end; the (virtual) seconds they took."""
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return trio.current_time() - start


def _virtual_run(
    make: Any, wire: Callable[[Any], Attempt], *, requests: int, concurrency: int
) -> dict[str, Any]:
    """Run *requests* on trio's virtual clock through the limiter *make()* builds, in
    *concurrency* workers: ``wire(limiter)`` gives one attempt (True when accepted); a
    refused request is retried after 1 s, as the retry loop would (Retry-After: 1)."""
    outcome: dict[str, Any] = {"accepted": 0, "429": 0}

    async def main() -> None:
        limiter = make()
        attempt = wire(limiter)
        left = iter(range(requests))

        async def worker() -> None:
            for _ in left:
                while not await attempt():
                    outcome["429"] += 1
                    await trio.sleep(1.0)
                outcome["accepted"] += 1

        outcome["wall"] = await _workers(worker, concurrency)
        outcome["rate"] = limiter.rate

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return outcome


def _token_bucket_run(
    make: Any, *, rate: float, burst: int, requests: int, concurrency: int
) -> dict[str, Any]:
    """A limiter's own acquire and report against a token-bucket server (429 with
    Retry-After: 1 over budget)."""

    def wire(limiter: Any) -> Attempt:
        refuses = _token_bucket(rate, burst)

        async def attempt() -> bool:
            await limiter.acquire()
            await trio.sleep(0.001)
            if refuses():
                await limiter.report_rate_limited(1.0)
                return False
            return True

        return attempt

    return _virtual_run(make, wire, requests=requests, concurrency=concurrency)


def _paced_run(
    make: Any, refuses: Any, *, requests: int, concurrency: int, latency: float = 0.005
) -> dict[str, Any]:
    """Through `paced` (the client's own wiring of a limiter) against a server that
    answers 429 (no Retry-After) when ``refuses()``."""

    def wire(limiter: Any) -> Attempt:
        async def send(request: httpx.Request) -> httpx.Response:
            await trio.sleep(latency)
            return httpx.Response(429 if refuses() else 200, request=request)

        send_paced = paced(send, limiter, max_cool_down=30.0)

        async def attempt() -> bool:
            response = await send_paced(httpx.Request("GET", STATS_URL))
            return response.status_code != 429

        return attempt

    return _virtual_run(make, wire, requests=requests, concurrency=concurrency)


def _adaptive() -> Any:
    return adaptive_limiter(clock=trio.current_time, sleep=trio.sleep)


def test_429s_at_random_among_accepted_answers_do_not_slow_the_client() -> None:
    """A gateway refusing 2 % of requests at random, whatever the rate: each 429's
    episode is dismissed by the answers to the requests sent with or after it, so the
    client neither cools down for long nor learns a rate. (This run took 20 to 40
    minutes of virtual time when every 429 was read as the budget.)"""
    draws = random.Random(7)
    ran = _paced_run(_adaptive, lambda: draws.random() < 0.02, requests=3000, concurrency=32)
    assert ran["accepted"] == 3000
    assert ran["429"] > 30  # the server did refuse at random
    assert ran["rate"] is None  # nothing learned: still not paced
    # The ideal is 0.5 s; each refused request's own retry waits 1 s (2 s in all,
    # spread over 32 workers), and a dismissed cool-down lasts up to HOLD.
    assert ran["wall"] < 10.0


@pytest.mark.parametrize(("share", "before"), [(0.05, "53 min"), (0.1, "2.9 h")])
def test_random_429s_do_not_collapse_the_rate_once_it_paces_few_in_flight(
    share: float, before: str
) -> None:
    """At 5-10 % of random 429s, one episode in many stands by chance (6 of 31 answers
    refused) and paces the client, with a request or two in flight; the next 429s then
    had no evidence, stood, and were learned from their short phases, down to a few
    requests a second where no 429 had evidence again (this run took *before* of virtual
    time). Now those thin episodes follow the well-evidenced ones before them: dismissed,
    or a step down from the rate they had."""
    draws = random.Random(0)
    ran = _paced_run(_adaptive, lambda: draws.random() < share, requests=2000, concurrency=32)
    assert ran["accepted"] == 2000
    # The ideal is 0.3 s; each refused request's own retry waits 1 s (100 to 240 of
    # them over 32 workers: 3 to 8 s), and an episode standing by chance pauses all
    # for 1 s. It takes 10 s at 5 %, 17 s at 10 %.
    assert ran["wall"] < 30.0
    assert ran["rate"] is None or ran["rate"] > 100


def test_through_paced_a_token_bucket_run_dry_is_still_learned() -> None:
    """Most answers after the first 429 are 429s too: the episodes stand, the rate is
    learned, and 600 requests at 100/s take under twice the ideal 6 s."""
    ran = _paced_run(_adaptive, _token_bucket(100, 10), requests=600, concurrency=32)
    assert ran["accepted"] == 600
    assert ran["rate"] is not None
    assert ran["wall"] < 2 * 6
    assert ran["429"] < 0.1 * 600


def test_a_lone_429_is_dismissed_by_the_answers_after_it() -> None:
    budget = _Budget(None, 1)
    for i in range(5):
        budget.take(float(i))
    for i in range(30):  # the refused request, and 29 in flight with it
        budget.take(4.0 + i / 100)
    budget.rate_limited(5.0, 2.0, sent_at=4.0)
    assert budget.next_slot(5.0, math.inf) == pytest.approx(2.0)  # cooling down
    budget.accepted(3.5)  # sent before the refused one: no evidence
    for i in range(EVIDENCE - 1):
        budget.accepted(4.0 + i / 100)
    assert budget.next_slot(5.0, math.inf) > 0, "not yet enough evidence"
    budget.accepted(4.5)
    assert budget.next_slot(5.0, math.inf) == 0  # dismissed: the cool-down is over
    assert budget.rate(5.0) is None  # and nothing was learned
    budget.rate_limited(5.1, 2.0, sent_at=3.9)  # a late 429 of that episode
    assert budget.next_slot(5.1, math.inf) == 0


@pytest.mark.parametrize(("refused", "learned"), [(4, False), (12, True)])
def test_an_episode_with_more_refused_after_it_than_the_share_stands(
    refused: int, learned: bool
) -> None:
    """4 of 20 refused: over one in six, it stands, but a gateway refusing a fifth of
    requests is no token bucket run dry (RANDOM_SHARE): no rate is learned from its
    phase (unpaced, it stays so). 12 of 20: a budget, learned from."""
    budget = _Budget(None, 1)
    budget.take(0.0)
    for i in range(30):
        budget.take(0.5 + i / 100)
    budget.rate_limited(1.0, 1.0, sent_at=0.5)
    for i in range(EVIDENCE - refused):
        budget.accepted(0.6 + i / 100)
    for i in range(refused):
        budget.rate_limited(1.0, 1.0, sent_at=0.7 + i / 100)
    assert budget.next_slot(1.5, math.inf) > 0  # still cooling down
    assert budget.next_slot(2.5, math.inf) == 0
    assert (budget.rate(2.5) is not None) is learned  # the cool-down ended


def _episode(budget: _Budget, at: float, *, in_flight: int, refused: int) -> None:
    """At *at*, a 429 for a request sent with *in_flight* others, *refused* of
    which are answered 429 too (with Retry-After: 1) and the rest accepted."""
    for i in range(in_flight + 1):
        budget.take(at + i / 10_000)
    budget.rate_limited(at + 0.005, 1.0, sent_at=at)
    for i in range(1, in_flight + 1):
        if i <= refused:
            budget.rate_limited(at + 0.006, 1.0, sent_at=at + i / 10_000)
        else:
            budget.accepted(at + i / 10_000)


def test_an_episode_is_decided_once_all_the_requests_sent_after_it_are_answered() -> None:
    """3 in flight with the refused one, all accepted: dismissed then and there, not
    after the hold (a fan-out paced to a few in flight was paused HOLD each time)."""
    budget = _Budget(None, 1)
    _episode(budget, 1.0, in_flight=3, refused=0)
    assert budget.next_slot(1.006, math.inf) == 0
    assert budget.rate(1.006) is None
    budget = _Budget(None, 1)
    _episode(budget, 1.0, in_flight=4, refused=0)
    budget.rate_limited(1.006, 1.0, sent_at=0.9)  # sent before it: no evidence
    budget.accepted(0.95)
    assert budget.next_slot(1.006, math.inf) == 0
    budget = _Budget(None, 1)
    for i in range(4):
        budget.take(1.0 + i / 10_000)
    budget.rate_limited(1.005, 1.0, sent_at=1.0)
    budget.accepted(1.0001)
    budget.accepted(1.0002)
    assert budget.next_slot(1.006, math.inf) > 0  # an answer still to come
    assert budget.next_slot(1.0 + HOLD, math.inf) > 0  # and 2 are too thin, with no history
    budget.accepted(1.0003)
    assert budget.next_slot(1.0 + HOLD, math.inf) == 0


@pytest.mark.parametrize("in_flight", [0, 2])
def test_a_thin_episode_follows_the_recent_well_evidenced_ones(in_flight: int) -> None:
    """After episodes dismissed on their answers, a 429 with fewer than MIN_EVIDENCE
    answers after it is dismissed too; after a token bucket run dry, it stands."""
    random_gateway = _Budget(None, 1)
    for at in (1.0, 2.0):
        _episode(random_gateway, at, in_flight=20, refused=1)
    _episode(random_gateway, 5.0, in_flight=in_flight, refused=0)
    assert random_gateway.next_slot(5.006, math.inf) == 0  # dismissed at once

    bucket = _Budget(None, 1)
    _episode(bucket, 1.0, in_flight=20, refused=19)
    assert bucket.next_slot(2.5, math.inf) == 0  # that one learned
    rate = bucket.rate(2.5)
    _episode(bucket, 5.0, in_flight=in_flight, refused=0)
    assert bucket.next_slot(5.0 + HOLD, math.inf) > 0  # this one stands
    bucket.next_slot(6.5, math.inf)
    assert bucket.rate(6.5) != rate  # and is learned from


def test_a_thin_episode_standing_against_a_random_gateway_only_steps_the_rate_down() -> None:
    """Its own answers refused it stand, but its phase is no budget's: the rate goes on
    at BACKOFF of what it was, instead of a few a second learned from a short phase."""
    budget = _Budget(200.0, 10)  # a RateLimit's: paced at 200 a second
    for at in (1.0, 2.0):
        _episode(budget, at, in_flight=20, refused=1)
    _episode(budget, 3.0, in_flight=1, refused=1)
    assert budget.next_slot(3.006, math.inf) > 0  # stands
    assert budget.next_slot(4.1, math.inf) == 0
    assert budget.rate(4.1) == pytest.approx(BACKOFF * 200)
    assert budget.rate(5.0) == 200  # and climbs back


def test_a_429_reported_without_its_sending_time_stands_whatever_came_before() -> None:
    """report_rate_limited (a RateLimiter's own use) tells no sending time: no evidence
    can come, and no history dismisses it."""
    budget = _Budget(None, 1)
    _episode(budget, 1.0, in_flight=20, refused=0)
    budget.take(2.0)
    budget.rate_limited(2.005, 1.0)
    assert budget.next_slot(2.0 + HOLD, math.inf) > 0


def test_a_429_without_retry_after_wait_is_decided_after_the_hold() -> None:
    budget = _Budget(None, 1)
    budget.take(0.0)
    budget.rate_limited(1.0, 0.0, sent_at=0.5)  # Retry-After: 0
    assert budget.next_slot(1.0, math.inf) == 0  # no cool-down
    assert budget.rate(1.0) is None  # and not learned yet: the answers may dismiss it
    for i in range(MIN_EVIDENCE):
        budget.accepted(0.6 + i / 100)
    budget.next_slot(1.0 + HOLD, math.inf)
    assert budget.rate(1.0 + HOLD) is None  # dismissed at the end of the hold


def _limit_req(rate: float, burst: int) -> Any:
    """nginx's ``limit_req zone=... burst=N nodelay`` on trio's clock: a leaky bucket of
    *burst* over its rate; a request over it is refused at once and leaves no trace."""
    excess, last = 0.0, 0.0

    def refuses() -> bool:
        nonlocal excess, last
        now = trio.current_time()
        after = max(0.0, excess - (now - last) * rate) + 1
        if after > burst + 1:
            return True
        excess, last = after, now
        return False

    return refuses


def _retry_after_zero_run(
    refuses: Any, *, requests: int, concurrency: int, attempts: int = 6, make: Any = _adaptive
) -> dict[str, Any]:
    """Through `paced` against a gateway answering 429 with ``Retry-After: 0``: a
    refused request is retried at once, as the retry loop does, *attempts* at most."""
    outcome: dict[str, Any] = {"accepted": 0, "429": 0, "failed": 0}

    async def main() -> None:
        limiter = make()

        async def send(request: httpx.Request) -> httpx.Response:
            await trio.sleep(0.005)
            refused = refuses()
            headers = {"Retry-After": "0"} if refused else {}
            return httpx.Response(429 if refused else 200, headers=headers, request=request)

        send_paced = paced(send, limiter, max_cool_down=30.0)
        left = iter(range(requests))

        async def worker() -> None:
            for _ in left:
                for _ in range(attempts):
                    response = await send_paced(httpx.Request("GET", STATS_URL))
                    if response.status_code != 429:
                        outcome["accepted"] += 1
                        break
                    outcome["429"] += 1
                else:
                    outcome["failed"] += 1

        outcome["wall"] = await _workers(worker, concurrency)
        outcome["rate"] = limiter.rate

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return outcome


def test_behind_limit_req_with_retry_after_0_the_client_settles_near_its_rate() -> None:
    """nginx's limit_req (50 r/s, burst 10) answering ``Retry-After: 0``: the 429s of
    an episode that its answers already say stands pause the client until it is
    decided (HOLD), not only until the server's 0 s; and the phase is learned from
    the 429s of its own requests. Measured behind a real nginx before: the client
    went on unpaced through the hold (2,264 answers in 0.2 s, 2,255 refused), 281 of
    300 journeys used up their retries, and the rate learned from the phase less all
    those 429s was the floor, 0.1 a second (1,000 journeys would take hours)."""
    ran = _retry_after_zero_run(_limit_req(50, 10), requests=600, concurrency=100)
    assert ran["failed"] == 0
    assert ran["accepted"] == 600
    # The ideal is (600 - 10) / 50 = 11.8 s.
    assert ran["wall"] < 1.5 * 11.8
    assert ran["429"] < 0.5 * 600
    assert ran["rate"] is not None
    assert 25 < ran["rate"] < 60


def test_a_budget_above_the_gateway_s_is_lowered_not_kept_by_one_thin_history() -> None:
    """RateLimit(100) behind limit_req at 50 r/s answering ``Retry-After: 0``: about
    1 in flight, so nearly every episode is thin. One early episode of 3 answers, 1
    refused, made the gateway look random, every thin 429 after it was dismissed, and
    the client went on at 100 a second: 506 429s for 600 requests, 58 of them out of
    retries. Now a random gateway takes EVIDENCE pooled answers: the rate is lowered."""

    def make() -> ja.RateLimit:
        return ja.RateLimit(100, 10, clock=trio.current_time, sleep=trio.sleep)

    ran = _retry_after_zero_run(_limit_req(50, 10), requests=600, concurrency=100, make=make)
    assert ran["failed"] == 0
    assert ran["429"] < 0.1 * 600
    assert ran["rate"] is not None
    assert ran["rate"] < 60


NGINX_LIMIT_REQ_RETRY_AFTER_0 = (
    "limit_req_zone $binary_remote_addr zone=api:1m rate=100r/s;\nlimit_req_status 429;\n",
    "limit_req zone=api burst=10 nodelay;\n"
    "error_page 429 = @limited;\n"
    "}\n"
    "location @limited {\n"
    "add_header Retry-After 0 always;\n"
    "return 429;\n",
)


async def test_behind_a_real_nginx_limit_req_answering_retry_after_0(tmp_path: Path) -> None:
    """The same behind nginx itself (skipped without the binary), 150 journeys at
    100 r/s: before, 130 or so used up their retries within a fifth of a second."""
    emulator = JourneyEmulator.with_sample_data(50, token=TOKEN, record_requests=False)
    ids = [emulator.journey_ids[i % 50] for i in range(150)]
    http, location = NGINX_LIMIT_REQ_RETRY_AFTER_0
    with (
        serve_emulator(emulator) as server,
        nginx(tmp_path, server.url, http=http, location=location) as url,
    ):
        refused: list[ja.RetryEvent] = []
        policy = ja.RetryPolicy(on_retry=refused.append)
        async with ja.AsyncJourneyClient(TOKEN, base_url=url, retry=policy) as client:
            results = await client.get_stats_many(ids)
    assert [result.error for result in results if not result.ok] == []
    assert refused, "the gateway refused some: the test exercises its limit"
    assert len(refused) < 100


def test_429s_of_requests_sent_during_the_hold_are_not_the_phase_s() -> None:
    """The phase ended when its refused request went; requests sent after its 429
    came back (Retry-After: 0, during the hold) are not among the phase's, so their
    429s are not taken off what the phase had accepted."""
    budget = _Budget(None, 1)
    for i in range(20):  # a burst: 20 at once, 10 accepted
        budget.take(0.001 * i)
    budget.rate_limited(0.03, 0.0, sent_at=0.010)
    for i in range(10, 19):
        budget.rate_limited(0.03, 0.0, sent_at=0.001 * i + 0.0001)
    for _ in range(50):  # sent during the hold, all refused
        budget.take(0.05)
        budget.rate_limited(0.055, 0.0, sent_at=0.05)
    budget.next_slot(0.03 + HOLD, math.inf)  # decided: it stands, and is learned
    rate = budget.rate(0.03 + HOLD)
    assert rate is not None
    assert rate == pytest.approx(BACKOFF * 10)  # its 10 accepted over 1 s


def test_retry_after_0_pauses_until_the_hold_once_the_answers_say_it_stands() -> None:
    budget = _Budget(None, 1)
    for i in range(10):
        budget.take(0.001 * i)
    budget.rate_limited(0.02, 0.0, sent_at=0.0)
    assert budget.next_slot(0.02, math.inf) == 0  # Retry-After: 0, no evidence yet
    budget.rate_limited(0.02, 0.0, sent_at=0.001)
    budget.rate_limited(0.02, 0.0, sent_at=0.002)
    assert budget.next_slot(0.02, math.inf) == 0  # 2 answers: thin
    budget.rate_limited(0.02, 0.0, sent_at=0.003)
    # 3 of 3 refused: it stands; what is sent now would be refused too.
    assert budget.next_slot(0.02, math.inf) == pytest.approx(HOLD)
    # Answers that dismiss it after all end the pause at once.
    for i in range(4, 10):
        budget.accepted(0.001 * i)
    for _ in range(20):
        budget.take(0.021)
        budget.accepted(0.021)
    assert budget.next_slot(0.03, math.inf) == 0
    assert budget.rate(0.03) is None


# --- in the client ---------------------------------------------------------------------------


def test_the_client_refuses_what_is_not_a_rate_limiter() -> None:
    with pytest.raises(TypeError, match="rate_limit"):
        ja.AsyncJourneyClient(TOKEN, rate_limit=object())  # type: ignore[arg-type]


async def test_copies_share_the_budget(fake: FakeTime) -> None:
    limit = fake.limit(5)
    async with ja.AsyncJourneyClient(TOKEN, rate_limit=limit) as client:
        assert client.with_options(timeout=2.0).rate_limit is limit
        other = fake.limit(1)
        assert client.with_options(rate_limit=other).rate_limit is other


async def test_every_attempt_asks_the_limiter_and_reports_429s(api: respx.MockRouter) -> None:
    @attrs.define
    class Counting:
        acquired: int = 0
        reported: list[float | None] = attrs.Factory(list)

        async def acquire(self) -> None:
            self.acquired += 1

        async def report_rate_limited(self, retry_after: float | None) -> None:
            self.reported.append(retry_after)

    api.get(STATS_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(429),
            httpx.Response(200, json=MIXED_EXAMPLE),
        ]
    )
    counting = Counting()
    fake = FakeTime()
    async with ja.AsyncJourneyClient(
        TOKEN, rate_limit=counting, retry=fake.policy(initial_delay=0.1)
    ) as client:
        await client.get_stats(JOURNEY_ID)
    assert counting.acquired == 3
    assert counting.reported == [2.0, None]


@pytest.mark.parametrize("retry", [True, False])
async def test_a_cool_down_past_max_retry_after_fails_at_once_without_sending(
    api: respx.MockRouter, fake: FakeTime, retry: bool
) -> None:
    # Without retries, the default policy's max_retry_after (30 s) still bounds the cool-down.
    retry_after = 10 if retry else 40
    route = api.get(STATS_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": str(retry_after)}),
            httpx.Response(200, json=MIXED_EXAMPLE),
        ]
    )
    policy = fake.policy(max_retry_after=5.0) if retry else None
    async with ja.AsyncJourneyClient(TOKEN, retry=policy) as client:
        with pytest.raises(ja.RateLimitError):
            await client.get_stats(JOURNEY_ID)
        with pytest.raises(ja.RateLimitError, match="not sent") as caught:
            await client.get_stats(JOURNEY_ID)
        assert caught.value.retry_after == retry_after
    assert route.call_count == 1
    assert fake.waits == []


async def test_without_retries_a_short_cool_down_is_waited_out(
    api: respx.MockRouter, fake: FakeTime
) -> None:
    route = api.get(STATS_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(200, json=MIXED_EXAMPLE),
        ]
    )
    limit = fake.limit(50)
    async with ja.AsyncJourneyClient(TOKEN, retry=None, rate_limit=limit) as client:
        with pytest.raises(ja.RateLimitError):
            await client.get_stats(JOURNEY_ID)
        start = fake.now
        await client.get_stats(JOURNEY_ID)
        assert fake.now - start >= 2.0
    assert route.call_count == 2


async def test_a_429_on_one_request_pauses_the_others_of_a_fan_out(fake: FakeTime) -> None:
    emulator = JourneyEmulator.with_sample_data(journeys=20)
    ids = emulator.journey_ids
    emulator.inject(Fault.status(429, retry_after=3), endpoint="stats", journey_id=ids[0])
    async with emulator_client(emulator, retry=fake.policy(), max_concurrency=4) as client:
        results = await client.get_stats_many(ids)
    assert all(r.ok for r in results)
    # The retry of ids[0] waited 3 s; so did the whole client, and its rate was learned.
    assert client._shared.adaptive.rate is not None


async def test_fan_out_and_batcher_obey_an_explicit_budget(fake: FakeTime) -> None:
    emulator = JourneyEmulator.with_sample_data(journeys=20)
    ids = emulator.journey_ids
    limit = fake.limit(10)
    async with emulator_client(emulator, rate_limit=limit, retry=fake.policy()) as client:
        start = fake.now
        await client.get_stats_many(ids)
        assert fake.now - start == pytest.approx(1.9)  # 20 requests at 10 a second
        start = fake.now
        async with (
            client.removal_batcher(max_batch_size=1) as batcher,
            anyio.create_task_group() as tg,
        ):
            for i in range(5):
                tg.start_soon(batcher.remove, [f"user-{i}"], None, True)
        assert fake.now - start == pytest.approx(0.5)
