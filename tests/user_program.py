"""
A user's program that uses every public name as the README, the docs and the
docstrings show it: tests/test_readme_typing.py checks it with mypy --strict
and pyright strict (a documented use flagged there is a defect of the
library's types), and that it names every public name. Never run.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Sequence

import httpx
import redis.asyncio

import journey_async as ja
from journey_async.redis import RedisRateLimit
from journey_async.testing import (
    EmulatedPoint,
    EmulatorServer,
    EmulatorTransport,
    Fault,
    JourneyEmulator,
    RecordedRequest,
    emulator_client,
    in_app_point,
    message_point,
    raw_point,
    run_emulator,
    serve_emulator,
    spawn_emulator_process,
)


def describe(point: ja.JourneyPoint) -> str:
    stat: ja.PointStats = point.stat
    codes = f"{point.campaign_code} {point.preset_code}"
    match stat:
        case ja.MessageStats(sent=sent, opened=opened, conversion=conversion):
            return f"{point.title} {codes}: {opened}/{sent} ({conversion:.2f}%)"
        case ja.InAppStats(shows=shows, interactions=interactions, skipped=skipped):
            return f"{point.title}: {interactions}/{shows}, {skipped} skipped"
        case ja.UnknownStats(raw=raw):
            return f"{point.title}: {dict(raw)}"


def title_or_reason(result: ja.StatsResult) -> str:
    if result.ok is True:
        return result.stats.title
    return f"failed: {result.error}"


def title_by_class(result: ja.StatsResult) -> str:
    match result:
        case ja.StatsSuccess(journey_id=journey_id, stats=stats):
            return f"{journey_id}: {stats.title}"
        case ja.StatsFailure(journey_id=journey_id, error=error):
            return f"{journey_id}: {explain(error)}"


def explain(error: ja.JourneyError) -> str:
    if isinstance(error, ja.RateLimitError):
        retry_after: float | None = error.retry_after
        return f"slow down for {retry_after} s"
    if isinstance(error, ja.APIStatusError):
        response: httpx.Response = error.response
        request_id: str | None = error.request_id
        return f"{error.status_code} {response.status_code} {error.message} {request_id}"
    if isinstance(error, ja.NotAttemptedError):
        cause: ja.JourneyError = error.cause
        return f"not sent: {cause}"
    if isinstance(error, ja.ResponseTooLargeError):
        cap: str = error.cap
        limit: int = error.limit
        return f"over {cap} ({limit} bytes)"
    if isinstance(error, ja.RemovalError):
        errors: tuple[ja.JourneyError, ...] = error.errors
        return f"{len(error.removed)} removed, {len(error.failed)} not ({len(errors)} errors)"
    kinds = (
        ja.BadRequestError,
        ja.AuthenticationError,
        ja.NotFoundError,
        ja.RequestTooLargeError,
        ja.ServerError,
        ja.APITimeoutError,
        ja.APIConnectionError,
        ja.RateLimiterError,
        ja.ResponseFormatError,
    )
    return f"{type(error).__name__} {isinstance(error, kinds)}: {error}"


def count_retry(event: ja.RetryEvent) -> None:
    logging.info("%s %s attempt %d: %s, %.1f s", *event_fields(event))


def event_fields(event: ja.RetryEvent) -> tuple[str, str, int, str, float]:
    return event.method, event.path, event.attempt, event.reason, event.wait


class AllowAll:
    """A `ja.RateLimiter` of one's own."""

    async def acquire(self) -> None:
        return None

    async def report_rate_limited(self, retry_after: float | None) -> None:
        return None


def settled(count: int) -> None:
    print(count)


def confirmed(user_ids: Sequence[str]) -> None:
    print(list(user_ids))


async def use_the_client(server: EmulatorServer) -> None:
    policy = ja.RetryPolicy(
        max_attempts=3,
        initial_delay=0.1,
        max_delay=1.0,
        max_retry_after=5.0,
        deadline=10.0,
        on_retry=count_retry,
    )
    budget = ja.RateLimit(per_second=100, burst=5)
    limiter: ja.RateLimiter = budget
    client = ja.AsyncJourneyClient(
        server.emulator.token,
        base_url=server.url,
        timeout=httpx.Timeout(5.0, connect=2.0),
        retry=policy,
        max_concurrency=20,
        batch_size=100,
        attempt_timeout=3.0,
        rate_limit=limiter,
        max_response_bytes=1 << 20,
        verify=ssl.create_default_context(),
        cert=None,
        proxy=None,
        trust_env=False,
    )
    async with client:
        timeout: httpx.Timeout = client.timeout
        settings = (client.attempt_timeout, client.retry, client.max_concurrency, client.batch_size)
        print(
            timeout, settings, client.rate_limit, client.base_url, budget.per_second, budget.burst
        )
        ids = server.emulator.journey_ids
        stats: ja.JourneyStats = await client.get_stats(ids[0])
        print(stats.title, [describe(point) for point in stats.points])
        results: list[ja.StatsResult] = await client.get_stats_many(ids, 5, progress=settled)
        for result in results:
            print(title_or_reason(result), title_by_class(result))
            if result.stats is not None:
                print(result.stats.points)
            payload: dict[str, object] = ja.result_to_dict(result)
            print(ja.result_from_dict(payload).journey_id)
        async for result in client.iter_stats(iter(ids), concurrency=4):
            print(result.journey_id, result.ok)
        async with client.iter_stats(ids) as streamed:
            async for result in streamed:
                print(result.error)
        stream: AsyncIterator[ja.StatsResult] = client.iter_stats(ids)
        async with contextlib.aclosing(client.iter_stats(ids)) as closing:
            async for result in closing:
                print(result.journey_id)
                break
        print(stream)
        quick: ja.AsyncJourneyClient = client.with_options(
            timeout=2.0, attempt_timeout=None, retry=None, max_concurrency=5, rate_limit=AllowAll()
        )
        print((await quick.get_stats(ids[1])).points)
        try:
            removal: ja.RemovalResult = await client.remove_users(
                ["user-1", "user-2"],
                journey_ids=[ids[0]],
                batch_size=10,
                progress=settled,
                on_removed=confirmed,
            )
            print(removal.user_ids, removal.requests)
        except ja.JourneyError as exc:
            again: ja.JourneyError = ja.error_from_dict(ja.error_to_dict(exc))
            print(explain(again))
        await client.remove_users(["user-3"], all_journeys=True)
        batcher: ja.RemovalBatcher
        async with client.removal_batcher(max_batch_size=50, max_delay=0.01) as batcher:
            print(batcher.max_batch_size, batcher.max_delay)
            one: ja.RemovalResult = await batcher.remove(["user-4"], journey_ids=[ids[0]])
            await batcher.remove(["user-5"], all_journeys=True)
            print(one, ja.__version__)


async def use_the_emulator() -> None:
    emulator = JourneyEmulator(
        token="test-token",
        latency=0.0,
        fault_rate=0.0,
        seed=1,
        record_requests=True,
        max_user_ids_per_request=10,
        max_body_bytes=1000,
        rate_limit=100.0,
        rate_limit_burst=10,
    )
    point: EmulatedPoint = message_point("Push", sent=10, opened=5)
    journey_id: str = emulator.add_journey(
        title="Welcome",
        points=[point, in_app_point("In-app", shows=3, interactions=2, skipped=1)],
        users=["alice", "bob"],
    )
    emulator.add_journey(points=[raw_point("Webhook", {"delivered": 1})])
    emulator.inject(Fault.status(503), Fault.drop(), Fault.html(), endpoint="stats")
    emulator.inject(Fault.malformed_json(), Fault.delay(0.1), endpoint="remove")
    async with emulator_client(emulator, retry=None) as client:
        await client.remove_users(["alice"], journey_ids=[journey_id])
    users: frozenset[str] = emulator.users_in(journey_id)
    requests: list[RecordedRequest] = emulator.requests
    for request in requests:
        print(request.method, request.path, request.journey_id, request.status, request.fault)
    sample = JourneyEmulator.with_sample_data(journeys=10, unknown_shapes=True, token="t")
    transport = EmulatorTransport(sample)
    async with ja.AsyncJourneyClient("t", base_url="http://127.0.0.1", transport=transport) as c:
        print(await c.get_stats_many(sample.journey_ids), users)
    with serve_emulator(sample) as server:
        await use_the_client(server)
    with spawn_emulator_process(journeys=3) as url:
        print(url, run_emulator)


async def test_with_the_fixture(journey_emulator: JourneyEmulator) -> None:
    async with emulator_client(journey_emulator) as client:
        assert (await client.get_stats(journey_emulator.journey_ids[0])).points


async def test_with_the_served_fixture(journey_emulator_server: EmulatorServer) -> None:
    token = journey_emulator_server.emulator.token
    async with ja.AsyncJourneyClient(token, base_url=journey_emulator_server.url) as client:
        results = await client.get_stats_many(journey_emulator_server.emulator.journey_ids)
    assert all(result.ok for result in results)


async def with_redis(host: str) -> None:
    shared = RedisRateLimit(redis.asyncio.Redis(host=host), key="journeys", per_second=50)
    async with ja.AsyncJourneyClient(rate_limit=shared) as client:
        print(await client.get_stats("11111111-2222-3333-4444-555555555555"))
