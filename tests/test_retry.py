"""RetryPolicy and the retry loop, against respx and hand-made transports: no real sleeping."""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st
from payloads import BASE_URL, JOURNEY_ID, MIXED_EXAMPLE, TOKEN

import journey_async as ja
from journey_async._ratelimit import DEFAULT_COOL_DOWN
from journey_async._retry import RetryTransport, retrying

STATS_URL = f"{BASE_URL}/api/journey/{JOURNEY_ID}/statistics/external"
STATS_PATH = f"/api/journey/{JOURNEY_ID}/statistics/external"
REMOVAL_URL = f"{BASE_URL}/api/journey/drop-users/external"


@attrs.define
class FakeTime:
    """A clock that moves only when the loop sleeps (or a test moves it)."""

    now: float = 1000.0
    waits: list[float] = attrs.Factory(list)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def policy(self, **kwargs: Any) -> ja.RetryPolicy:
        return ja.RetryPolicy(sleep=self.sleep, clock=self.clock, **kwargs)


def ok() -> httpx.Response:
    return httpx.Response(200, json=MIXED_EXAMPLE)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def client(fake: FakeTime) -> AsyncIterator[ja.AsyncJourneyClient]:
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy()) as client:
        yield client


# The policy -----------------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    policy = ja.RetryPolicy()
    assert attrs.asdict(policy, filter=lambda a, _: a.eq is True) == {
        "max_attempts": 6,
        "initial_delay": 0.5,
        "max_delay": 8.0,
        "max_retry_after": 30.0,
        "deadline": 60.0,
    }
    assert ja.AsyncJourneyClient(TOKEN).retry == policy


async def _async_hook(event: ja.RetryEvent) -> None:
    pass


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_attempts": 0}, ValueError, "max_attempts must be at least 1"),
        ({"max_attempts": 2.0}, TypeError, "max_attempts must be an int"),
        ({"max_attempts": True}, TypeError, "max_attempts must be an int"),
        ({"initial_delay": -0.1}, ValueError, "initial_delay must be at least 0"),
        ({"initial_delay": float("nan")}, ValueError, "initial_delay"),
        ({"initial_delay": "1"}, TypeError, "initial_delay must be a number"),
        ({"max_delay": float("inf")}, ValueError, "max_delay must be a finite number"),
        ({"initial_delay": 2.0, "max_delay": 1.0}, ValueError, "must not be below initial_delay"),
        ({"max_retry_after": -1}, ValueError, "max_retry_after"),
        ({"deadline": 0}, ValueError, "deadline must be greater than 0"),
        ({"deadline": float("inf")}, ValueError, "deadline"),
        ({"on_retry": "print"}, TypeError, "on_retry must be callable"),
        # Called, never awaited: an async hook would never run.
        ({"on_retry": _async_hook}, TypeError, "on_retry must be a plain function"),
        ({"sleep": None}, TypeError, "sleep must be callable"),
        ({"clock": 0.0}, TypeError, "clock must be callable"),
    ],
)
def test_bad_policy_is_refused(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ja.RetryPolicy(**kwargs)


def test_policy_equality_ignores_hooks(fake: FakeTime) -> None:
    assert fake.policy(on_retry=print) == ja.RetryPolicy()
    assert ja.RetryPolicy(deadline=None) != ja.RetryPolicy()
    assert "sleep" not in repr(fake.policy())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ja.RetryPolicy().max_attempts = 2  # type: ignore[misc]


def test_client_refuses_a_retry_that_is_not_a_policy() -> None:
    with pytest.raises(TypeError, match="retry must be a RetryPolicy or None, not int"):
        ja.AsyncJourneyClient(TOKEN, retry=3)  # type: ignore[arg-type]


delays = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(
    initial=delays,
    extra=delays,
    attempt=st.integers(min_value=1, max_value=5000),
)
def test_backoff_is_full_jitter_within_bounds(initial: float, extra: float, attempt: int) -> None:
    policy = ja.RetryPolicy(initial_delay=initial, max_delay=initial + extra)
    ceiling = policy._backoff_ceiling(attempt)
    try:
        expected = min(policy.max_delay, initial * 2.0 ** (attempt - 1))
    except OverflowError:
        expected = policy.max_delay
    assert ceiling == expected
    assert 0.0 <= policy._backoff(attempt) <= ceiling


def test_backoff_spreads_over_the_whole_range() -> None:
    # Full jitter, not "delay plus a little": waits land near 0 and near the
    # ceiling alike (each bound is missed by chance with p = 0.9**500).
    policy = ja.RetryPolicy(initial_delay=1.0, max_delay=4.0)
    waits = [policy._backoff(3) for _ in range(500)]
    assert min(waits) < 0.4
    assert max(waits) > 3.6
    assert policy._backoff_ceiling(1) == 1.0
    assert policy._backoff_ceiling(2) == 2.0
    assert policy._backoff_ceiling(4) == 4.0


# What is retried -------------------------------------------------------------


async def test_503_503_200_succeeds_on_the_third_request(
    api: respx.MockRouter, fake: FakeTime
) -> None:
    route = api.get(STATS_URL).mock(side_effect=[httpx.Response(503), httpx.Response(503), ok()])
    events: list[ja.RetryEvent] = []
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy(on_retry=events.append)) as client:
        stats = await client.get_stats(JOURNEY_ID)
    assert stats.title == "Journey Title"
    assert route.call_count == 3
    assert len(fake.waits) == 2
    assert 0 <= fake.waits[0] <= 0.5
    assert 0 <= fake.waits[1] <= 1.0
    assert events == [
        ja.RetryEvent(
            method="GET", path=STATS_PATH, attempt=1, reason="HTTP 503", wait=fake.waits[0]
        ),
        ja.RetryEvent(
            method="GET", path=STATS_PATH, attempt=2, reason="HTTP 503", wait=fake.waits[1]
        ),
    ]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_transient_statuses_are_retried(
    api: respx.MockRouter, client: ja.AsyncJourneyClient, status: int
) -> None:
    route = api.get(STATS_URL).mock(side_effect=[httpx.Response(status), ok()])
    await client.get_stats(JOURNEY_ID)
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ja.BadRequestError),
        (401, ja.AuthenticationError),
        (403, ja.AuthenticationError),
        (404, ja.NotFoundError),
        (409, ja.APIStatusError),
        (501, ja.ServerError),
    ],
)
async def test_other_statuses_fail_at_once(
    api: respx.MockRouter,
    client: ja.AsyncJourneyClient,
    fake: FakeTime,
    status: int,
    error: type[ja.APIStatusError],
) -> None:
    route = api.get(STATS_URL).mock(side_effect=[httpx.Response(status), ok()])
    with pytest.raises(error):
        await client.get_stats(JOURNEY_ID)
    assert route.call_count == 1
    assert fake.waits == []


@pytest.mark.parametrize(
    "exception",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.WriteError("broken pipe"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message"),
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
        httpx.WriteTimeout("timed out"),
        httpx.PoolTimeout("timed out"),
    ],
)
async def test_connection_errors_and_timeouts_are_retried(
    api: respx.MockRouter, client: ja.AsyncJourneyClient, exception: Exception
) -> None:
    route = api.get(STATS_URL).mock(side_effect=[exception, ok()])
    await client.get_stats(JOURNEY_ID)
    assert route.call_count == 2


async def test_retry_reason_names_the_exception(api: respx.MockRouter, fake: FakeTime) -> None:
    events: list[ja.RetryEvent] = []
    api.get(STATS_URL).mock(side_effect=[httpx.ConnectError("refused"), ok()])
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy(on_retry=events.append)) as client:
        await client.get_stats(JOURNEY_ID)
    assert [e.reason for e in events] == ["ConnectError"]


async def test_a_local_mistake_is_not_retried(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    route = api.get(STATS_URL).mock(side_effect=[httpx.LocalProtocolError("bad header"), ok()])
    with pytest.raises(ja.APIConnectionError):
        await client.get_stats(JOURNEY_ID)
    assert route.call_count == 1


async def test_removal_is_retried_with_the_same_body(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    route = api.post(REMOVAL_URL).mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"success": True})]
    )
    result = await client.remove_users(["u1", "u2"], journey_ids=[JOURNEY_ID])
    assert result.user_ids == ("u1", "u2")
    assert route.call_count == 2
    bodies = [json.loads(call.request.content) for call in route.calls]
    assert bodies == [{"user_ids": ["u1", "u2"], "journey_uuids": [JOURNEY_ID]}] * 2


@pytest.mark.parametrize("max_attempts", [1, 2, 6])
async def test_permanent_500_is_server_error_after_exactly_max_attempts(
    api: respx.MockRouter, fake: FakeTime, max_attempts: int
) -> None:
    route = api.get(STATS_URL).respond(500)
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy(max_attempts=max_attempts)) as c:
        with pytest.raises(ja.ServerError) as info:
            await c.get_stats(JOURNEY_ID)
    assert info.value.status_code == 500
    assert route.call_count == max_attempts
    assert len(fake.waits) == max_attempts - 1


async def test_persistent_connection_error_raises_the_last_one(
    api: respx.MockRouter, fake: FakeTime
) -> None:
    errors = [httpx.ConnectError(f"refused {n}") for n in range(3)]
    route = api.get(STATS_URL).mock(side_effect=errors)
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy(max_attempts=3)) as client:
        with pytest.raises(ja.APIConnectionError) as info:
            await client.get_stats(JOURNEY_ID)
    assert route.call_count == 3
    assert info.value.__cause__ is errors[-1]


async def test_no_retries_when_retry_is_none(api: respx.MockRouter) -> None:
    route = api.get(STATS_URL).mock(side_effect=[httpx.Response(503), ok()])
    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        with pytest.raises(ja.ServerError):
            await client.get_stats(JOURNEY_ID)
    assert route.call_count == 1


async def test_callers_own_http_client_is_retried_around(
    api: respx.MockRouter, fake: FakeTime
) -> None:
    route = api.get(STATS_URL).mock(side_effect=[httpx.Response(502), httpx.ReadError("x"), ok()])
    async with (
        httpx.AsyncClient() as http_client,
        ja.AsyncJourneyClient(TOKEN, http_client=http_client, retry=fake.policy()) as client,
    ):
        await client.get_stats(JOURNEY_ID)
    assert route.call_count == 3
    assert len(fake.waits) == 2


# Retry-After ------------------------------------------------------------------


async def test_429_retry_after_seconds_is_the_wait(
    api: respx.MockRouter, client: ja.AsyncJourneyClient, fake: FakeTime
) -> None:
    route = api.get(STATS_URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "1"}), ok()]
    )
    await client.get_stats(JOURNEY_ID)
    assert route.call_count == 2
    assert fake.waits == [1.0]


async def test_503_retry_after_is_honoured_too(
    api: respx.MockRouter, client: ja.AsyncJourneyClient, fake: FakeTime
) -> None:
    api.get(STATS_URL).mock(side_effect=[httpx.Response(503, headers={"Retry-After": "7"}), ok()])
    await client.get_stats(JOURNEY_ID)
    assert fake.waits == [7.0]


async def test_retry_after_as_http_date(
    api: respx.MockRouter, client: ja.AsyncJourneyClient, fake: FakeTime
) -> None:
    when = email.utils.formatdate(time.time() + 5, usegmt=True)  # whole seconds: 4 < wait <= 5
    api.get(STATS_URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": when}), ok()])
    await client.get_stats(JOURNEY_ID)
    assert len(fake.waits) == 1
    assert 3.0 < fake.waits[0] <= 5.0


async def test_unreadable_retry_after_falls_back_to_backoff(
    api: respx.MockRouter, client: ja.AsyncJourneyClient, fake: FakeTime
) -> None:
    api.get(STATS_URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "soon"}), ok()]
    )
    await client.get_stats(JOURNEY_ID)
    # The backoff draw; the client's rate limiter then waits out the rest of
    # its cool-down for a 429 that named none (docs/ratelimits.md).
    assert 0.0 <= fake.waits[0] <= 0.5
    assert sum(fake.waits) == pytest.approx(max(fake.waits[0], DEFAULT_COOL_DOWN))


async def test_retry_after_above_the_cap_is_rate_limit_error_at_once(
    api: respx.MockRouter, fake: FakeTime
) -> None:
    route = api.get(STATS_URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "120"}), ok()]
    )
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy(max_retry_after=60)) as client:
        with pytest.raises(ja.RateLimitError) as info:
            await client.get_stats(JOURNEY_ID)
    assert info.value.retry_after == 120.0
    assert route.call_count == 1
    assert fake.waits == []


async def test_retry_after_at_the_cap_is_waited(api: respx.MockRouter, fake: FakeTime) -> None:
    api.get(STATS_URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "60"}), ok()])
    policy = fake.policy(max_retry_after=60, deadline=None)
    async with ja.AsyncJourneyClient(TOKEN, retry=policy) as client:
        await client.get_stats(JOURNEY_ID)
    assert fake.waits == [60.0]


# The deadline ------------------------------------------------------------------


async def test_deadline_cuts_the_retry_loop_short(api: respx.MockRouter, fake: FakeTime) -> None:
    # Waits of 4 s (Retry-After): attempts start at 0, 4 and 8 s; a fourth at
    # 12 s would pass the 10 s deadline, so the third 503 is the outcome.
    route = api.get(STATS_URL).respond(503, headers={"Retry-After": "4"})
    policy = fake.policy(max_attempts=10, deadline=10)
    async with ja.AsyncJourneyClient(TOKEN, retry=policy) as client:
        with pytest.raises(ja.ServerError):
            await client.get_stats(JOURNEY_ID)
    assert route.call_count == 3
    assert fake.waits == [4.0, 4.0]


@pytest.mark.parametrize(
    ("deadline", "attempts"),
    [
        (8, 2),  # at 4 s a wait of 4 s ends exactly at the deadline: not waited
        (8.5, 3),  # ... with half a second to spare: waited
        (9, 3),
    ],
)
async def test_a_wait_is_taken_only_if_it_ends_before_the_deadline(
    api: respx.MockRouter, fake: FakeTime, deadline: float, attempts: int
) -> None:
    route = api.get(STATS_URL).respond(503, headers={"Retry-After": "4"})
    policy = fake.policy(max_attempts=10, deadline=deadline)
    async with ja.AsyncJourneyClient(TOKEN, retry=policy) as client:
        with pytest.raises(ja.ServerError):
            await client.get_stats(JOURNEY_ID)
    assert route.call_count == attempts
    assert fake.waits == [4.0] * (attempts - 1)


async def test_retry_after_past_the_deadline_is_not_waited(
    api: respx.MockRouter, fake: FakeTime
) -> None:
    route = api.get(STATS_URL).respond(429, headers={"Retry-After": "20"})
    policy = fake.policy(max_retry_after=30, deadline=10)
    async with ja.AsyncJourneyClient(TOKEN, retry=policy) as client:
        with pytest.raises(ja.RateLimitError) as info:
            await client.get_stats(JOURNEY_ID)
    assert info.value.retry_after == 20.0
    assert route.call_count == 1
    assert fake.waits == []


async def test_deadline_lowers_each_attempts_timeout(api: respx.MockRouter, fake: FakeTime) -> None:
    seen: list[dict[str, float | None]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(503, headers={"Retry-After": "4"})

    api.get(STATS_URL).mock(side_effect=respond)
    policy = fake.policy(max_attempts=3, deadline=10)
    async with ja.AsyncJourneyClient(
        TOKEN, timeout=httpx.Timeout(10, connect=3), retry=policy
    ) as c:
        with pytest.raises(ja.ServerError):
            await c.get_stats(JOURNEY_ID)
    assert seen == [
        {"connect": 3, "read": 10, "write": 10, "pool": 10},
        {"connect": 3, "read": 6, "write": 6, "pool": 6},
        {"connect": 2, "read": 2, "write": 2, "pool": 2},
    ]


async def test_an_attempt_cut_short_by_the_deadline_says_so(
    api: respx.MockRouter, fake: FakeTime
) -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        fake.now += request.extensions["timeout"]["read"]  # as a real timeout would
        raise httpx.ReadTimeout("timed out", request=request)

    script: list[Any] = [httpx.Response(503, headers={"Retry-After": "8"}), time_out]
    route = api.get(STATS_URL).mock(side_effect=script)
    policy = fake.policy(deadline=10)
    async with ja.AsyncJourneyClient(TOKEN, retry=policy) as client:
        with pytest.raises(ja.APITimeoutError, match="cut short by the retry deadline of 10 s"):
            await client.get_stats(JOURNEY_ID)
    assert route.call_count == 2


async def test_an_ordinary_timeout_does_not_blame_the_deadline(
    api: respx.MockRouter, fake: FakeTime
) -> None:
    api.get(STATS_URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy(max_attempts=2)) as client:
        with pytest.raises(ja.APITimeoutError) as info:
            await client.get_stats(JOURNEY_ID)
    assert "deadline" not in str(info.value)


async def test_only_the_timeout_that_was_lowered_blames_the_deadline(
    api: respx.MockRouter, fake: FakeTime
) -> None:
    # No pool timeout at all: the deadline lowers that one to 60 s, not the
    # 10 s read timeout that fired.
    api.get(STATS_URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    timeout = httpx.Timeout(10, pool=None)
    async with ja.AsyncJourneyClient(TOKEN, timeout=timeout, retry=fake.policy()) as client:
        with pytest.raises(ja.APITimeoutError) as info:
            await client.get_stats(JOURNEY_ID)
    assert "deadline" not in str(info.value)


async def test_no_deadline_leaves_timeouts_alone(api: respx.MockRouter, fake: FakeTime) -> None:
    route = api.get(STATS_URL).mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": "25"})] * 3 + [ok()]
    )
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy(deadline=None)) as client:
        await client.get_stats(JOURNEY_ID)
    assert route.call_count == 4
    assert route.calls.last.request.extensions["timeout"] == httpx.Timeout(10, connect=5).as_dict()


# Reporting ---------------------------------------------------------------------


async def test_each_retry_is_logged_without_the_token(
    api: respx.MockRouter, client: ja.AsyncJourneyClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="journey_async")
    api.get(STATS_URL).mock(side_effect=[httpx.Response(503), httpx.ConnectError("refused"), ok()])
    await client.get_stats(JOURNEY_ID)
    retries = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.getMessage().split(";")[0] for r in retries] == [
        f"GET {STATS_PATH}: attempt 1 of 6 failed (HTTP 503)",
        f"GET {STATS_PATH}: attempt 2 of 6 failed (ConnectError)",
    ]
    assert all("retrying in " in r.getMessage() for r in retries)
    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in record.getMessage()


async def test_giving_up_is_logged_at_debug(
    api: respx.MockRouter, fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="journey_async")
    api.get(STATS_URL).respond(503)
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy(max_attempts=2)) as client:
        with pytest.raises(ja.ServerError):
            await client.get_stats(JOURNEY_ID)
    (record,) = [r for r in caplog.records if "giving up" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert "max_attempts (2) reached" in record.getMessage()


async def test_a_failing_hook_ends_the_call(api: respx.MockRouter, fake: FakeTime) -> None:
    def broken(event: ja.RetryEvent) -> None:
        raise RuntimeError("metrics backend down")

    route = api.get(STATS_URL).mock(side_effect=[httpx.Response(503), ok()])
    async with ja.AsyncJourneyClient(TOKEN, retry=fake.policy(on_retry=broken)) as client:
        with pytest.raises(RuntimeError, match="metrics backend down"):
            await client.get_stats(JOURNEY_ID)
    assert route.call_count == 1


# Under the client: bodies read inside the loop, discarded responses closed ----------


class TrackedStream(httpx.AsyncByteStream):
    """A body that records being closed, and can break off like a dropped connection."""

    def __init__(self, body: bytes, *, drop: bool = False) -> None:
        self.body = body
        self.drop = drop
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body[:5]
        if self.drop:
            raise httpx.RemoteProtocolError("peer closed connection mid-body")
        yield self.body[5:]

    async def aclose(self) -> None:
        self.closed = True


class ScriptedTransport(httpx.AsyncBaseTransport):
    def __init__(self, *script: tuple[int, bool]) -> None:
        self.script = list(script)
        self.streams: list[TrackedStream] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        status, drop = self.script.pop(0)
        stream = TrackedStream(json.dumps(MIXED_EXAMPLE).encode(), drop=drop)
        self.streams.append(stream)
        return httpx.Response(status, stream=stream)


async def test_discarded_responses_are_closed(fake: FakeTime) -> None:
    inner = ScriptedTransport((503, False), (502, False), (200, False))
    async with httpx.AsyncClient(transport=RetryTransport(inner, fake.policy())) as http:
        response = await http.get(STATS_URL)
    assert response.json() == MIXED_EXAMPLE
    assert len(inner.streams) == 3
    assert all(stream.closed for stream in inner.streams)


async def test_a_body_cut_off_mid_way_is_retried(fake: FakeTime) -> None:
    inner = ScriptedTransport((200, True), (200, False))
    async with ja.AsyncJourneyClient(TOKEN, transport=inner, retry=fake.policy()) as client:
        stats = await client.get_stats(JOURNEY_ID)
    assert stats.title == "Journey Title"
    assert len(inner.streams) == 2
    assert all(stream.closed for stream in inner.streams)


async def test_retrying_closes_what_it_discards(fake: FakeTime) -> None:
    responses = [httpx.Response(503, stream=TrackedStream(b"{}")) for _ in range(2)]
    final = httpx.Response(200, json={"success": True})

    async def send(request: httpx.Request) -> httpx.Response:
        return responses.pop(0) if responses else final

    tracked = [r.stream for r in responses]
    send_with_retries = retrying(send, fake.policy())
    assert await send_with_retries(httpx.Request("GET", STATS_URL)) is final
    assert all(isinstance(s, TrackedStream) and s.closed for s in tracked)
