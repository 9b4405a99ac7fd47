"""AsyncJourneyClient's settings: validation, read-only properties, with_options, slots."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from payloads import JOURNEY_ID, MIXED_EXAMPLE, TOKEN

import journey_async as ja


class Recorder(httpx.AsyncBaseTransport):
    """Answers every request with *status* (stats for 200) after *gate*, if
    set; records requests and the most in flight at once."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: anyio.Event | None = None
        self.expected = 0  # in flight at once, that sets *arrived*
        self.arrived = anyio.Event()
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight == self.expected:
            self.arrived.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await anyio.lowlevel.checkpoint()
        finally:
            self.in_flight -= 1
        if self.status == 200 and request.method == "POST":
            return httpx.Response(200, json={"success": True})
        if self.status == 200:
            return httpx.Response(200, json=MIXED_EXAMPLE)
        return httpx.Response(self.status)

    async def aclose(self) -> None:
        self.closed = True


async def instant(_: float) -> None:
    return None


FAST_RETRY = ja.RetryPolicy(max_attempts=3, sleep=instant)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


# Construction: every argument checked -------------------------------------


async def test_base_url_path_prefix_is_honoured(recorder: Recorder) -> None:
    async with ja.AsyncJourneyClient(
        TOKEN, base_url="https://gw.example/pushwoosh", transport=recorder, retry=None
    ) as client:
        await client.get_stats(JOURNEY_ID)
        await client.remove_users(["u1"], all_journeys=True)
    paths = [request.url.path for request in recorder.requests]
    assert paths[0] == f"/pushwoosh/api/journey/{JOURNEY_ID}/statistics/external"
    assert paths[1] == "/pushwoosh/api/journey/drop-users/external"


# Read-only settings --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", 1.0),
        ("attempt_timeout", 1.0),
        ("retry", None),
        ("max_concurrency", 1),
        ("batch_size", 1),
        ("rate_limit", None),
        ("base_url", "http://127.0.0.1"),
    ],
)
def test_settings_are_read_only(name: str, value: object) -> None:
    client = ja.AsyncJourneyClient(TOKEN)
    before = getattr(client, name)
    with pytest.raises(AttributeError):
        setattr(client, name, value)
    assert getattr(client, name) == before


def test_a_misspelt_setting_is_refused_with_the_likely_name() -> None:
    client = ja.AsyncJourneyClient(TOKEN)
    with pytest.raises(
        AttributeError, match=r"'max_concurency' \(did you mean 'max_concurrency'\?\)"
    ):
        client.max_concurency = 5
    with pytest.raises(AttributeError, match="no attribute 'colour': its settings are given"):
        client.colour = "blue"
    assert not hasattr(client, "max_concurency")


def test_a_method_can_still_be_replaced_on_a_client() -> None:
    # What a user's test does with monkeypatch.setattr(client, "get_stats", fake).
    client = ja.AsyncJourneyClient(TOKEN)

    async def fake(journey_id: str) -> ja.JourneyStats:
        return ja.JourneyStats(title="t", points=())

    client.get_stats = fake  # type: ignore[method-assign]
    assert client.get_stats is fake


async def test_assigning_retry_does_not_silently_keep_retrying(recorder: Recorder) -> None:
    recorder.status = 503
    async with ja.AsyncJourneyClient(TOKEN, transport=recorder, retry=FAST_RETRY) as client:
        with pytest.raises(AttributeError, match="with_options"):
            client.retry = None  # type: ignore[misc]
        with pytest.raises(ja.ServerError):
            await client.get_stats(JOURNEY_ID)
    assert len(recorder.requests) == 3


# with_options --------------------------------------------------------------


async def test_with_options_changes_the_copy_only(recorder: Recorder) -> None:
    recorder.status = 503
    async with ja.AsyncJourneyClient(TOKEN, transport=recorder, retry=FAST_RETRY) as client:
        copy = client.with_options(timeout=2.0, retry=None, attempt_timeout=4.0)
        assert (copy.timeout, copy.retry, copy.attempt_timeout) == (httpx.Timeout(2.0), None, 4.0)
        assert (client.timeout, client.retry, client.attempt_timeout) == (
            httpx.Timeout(10.0, connect=5.0),
            FAST_RETRY,
            30.0,
        )
        assert (copy.max_concurrency, copy.batch_size) == (client.max_concurrency, 1000)

        with pytest.raises(ja.ServerError):
            await copy.get_stats(JOURNEY_ID)
        assert len(recorder.requests) == 1  # no retries on the copy
        assert recorder.requests[0].extensions["timeout"] == httpx.Timeout(2.0).as_dict()

        with pytest.raises(ja.ServerError):
            await client.get_stats(JOURNEY_ID)
        assert len(recorder.requests) == 4  # the original still retries
        assert recorder.requests[-1].extensions["timeout"] == client.timeout.as_dict()


async def test_with_options_keeps_what_is_not_given() -> None:
    class Limiter:
        async def acquire(self) -> None:
            return None

        async def report_rate_limited(self, retry_after: float | None) -> None:
            return None

    limiter, other = Limiter(), Limiter()
    client = ja.AsyncJourneyClient(TOKEN, rate_limit=limiter, retry=FAST_RETRY, max_concurrency=8)
    copy = client.with_options(max_concurrency=4)
    assert copy.rate_limit is limiter  # the same rate budget
    assert (copy.retry, copy.timeout, copy.base_url) == (
        FAST_RETRY,
        client.timeout,
        client.base_url,
    )
    assert copy.with_options(rate_limit=other).rate_limit is other
    assert copy.with_options(rate_limit=None).rate_limit is None
    assert copy.with_options().max_concurrency == 4
    assert client.max_concurrency == 8


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"retry": "no"}, TypeError),
        ({"max_concurrency": 0}, ValueError),
        ({"max_concurrency": 33}, ValueError),
        ({"attempt_timeout": -1}, ValueError),
        ({"rate_limit": object()}, TypeError),
    ],
)
def test_with_options_checks_its_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    client = ja.AsyncJourneyClient(TOKEN, max_concurrency=32)
    with pytest.raises(error):
        client.with_options(**kwargs)


def test_with_options_cannot_exceed_the_pool_even_from_a_copy() -> None:
    client = ja.AsyncJourneyClient(TOKEN, max_concurrency=10)
    small = client.with_options(max_concurrency=2)
    assert small.with_options(max_concurrency=10).max_concurrency == 10
    with pytest.raises(ValueError, match=r"pool's size \(10\)"):
        small.with_options(max_concurrency=11)


async def test_copy_shares_connections_and_closing_it_closes_nothing(recorder: Recorder) -> None:
    client = ja.AsyncJourneyClient(TOKEN, transport=recorder, retry=None)
    copy = client.with_options(timeout=1.0)
    async with copy:
        await copy.get_stats(JOURNEY_ID)
    assert not recorder.closed
    await client.get_stats(JOURNEY_ID)
    await copy.get_stats(JOURNEY_ID)  # a closed copy still sends: it closed nothing
    assert len(recorder.requests) == 3

    await client.aclose()
    assert recorder.closed
    with pytest.raises(RuntimeError, match="closed"):
        await copy.get_stats(JOURNEY_ID)


async def test_copy_shares_the_real_connection_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    from journey_async.testing import JourneyEmulator, serve_emulator

    loop = asyncio.get_running_loop()
    connect = loop.create_connection
    connections = 0

    async def counting_connect(*args: Any, **kwargs: Any) -> Any:
        nonlocal connections
        connections += 1
        return await connect(*args, **kwargs)

    monkeypatch.setattr(loop, "create_connection", counting_connect)
    emulator = JourneyEmulator.with_sample_data(journeys=3)
    journey_id = emulator.journey_ids[0]
    with serve_emulator(emulator) as server:
        async with ja.AsyncJourneyClient(
            emulator.token, base_url=server.url, retry=None, max_concurrency=1
        ) as client:
            copy = client.with_options(timeout=3.0)
            for _ in range(3):
                await client.get_stats(journey_id)
                await copy.get_stats(journey_id)
    # Six requests, one connection: the copy opened none of its own.
    assert len(emulator.requests) == 6
    assert connections == 1


# Slots: max_concurrency bounds direct calls too ----------------------------


async def run_concurrently(count: int, call: Callable[[], Any]) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(call)


@pytest.mark.parametrize(("original", "copy"), [(3, None), (5, 2)])
async def test_direct_calls_wait_for_a_slot(
    recorder: Recorder, original: int, copy: int | None
) -> None:
    recorder.gate = anyio.Event()
    recorder.expected = original if copy is None else copy
    async with ja.AsyncJourneyClient(
        TOKEN, transport=recorder, retry=None, max_concurrency=original
    ) as client:
        target = client if copy is None else client.with_options(max_concurrency=copy)
        bound = original if copy is None else copy
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_concurrently, 20, lambda: target.get_stats(JOURNEY_ID))
            with anyio.fail_after(5):
                await recorder.arrived.wait()
            for _ in range(10):  # let any call that would overtake the bound do so
                await anyio.lowlevel.checkpoint()
            assert recorder.in_flight == bound
            recorder.gate.set()
    assert len(recorder.requests) == 20
    assert recorder.max_in_flight == bound


async def test_copy_fanout_concurrency_is_bounded_by_its_own_setting(recorder: Recorder) -> None:
    async with ja.AsyncJourneyClient(
        TOKEN, transport=recorder, retry=None, max_concurrency=8
    ) as client:
        copy = client.with_options(max_concurrency=2)
        with pytest.raises(ValueError, match="max_concurrency"):
            await copy.get_stats_many([JOURNEY_ID], concurrency=3)
        results = await copy.get_stats_many([JOURNEY_ID] * 10)
    assert all(result.ok for result in results)
    assert recorder.max_in_flight <= 2


async def test_a_wait_for_a_slot_is_bounded_by_the_calls_deadline(recorder: Recorder) -> None:
    recorder.gate = anyio.Event()  # the first call holds the only connection
    recorder.expected = 1
    async with ja.AsyncJourneyClient(
        TOKEN, transport=recorder, retry=None, max_concurrency=1
    ) as client:
        hurried = client.with_options(retry=ja.RetryPolicy(deadline=0.05))
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get_stats, JOURNEY_ID)
            await recorder.arrived.wait()
            with pytest.raises(ja.APITimeoutError, match="deadline"):
                await hurried.get_stats(JOURNEY_ID)
            recorder.gate.set()
    assert len(recorder.requests) == 1  # the hurried call never got a connection
