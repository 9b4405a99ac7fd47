"""RedisRateLimit against a real redis-server on 127.0.0.1 (started here, stopped here)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis.asyncio
import respx
from payloads import BASE_URL, JOURNEY_ID, MIXED_EXAMPLE, TOKEN
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis_support import redis_server
from scripted import free_port

import journey_async as ja
from journey_async._ratelimit import paced
from journey_async.redis import RedisRateLimit

STATS_URL = f"{BASE_URL}/api/journey/{JOURNEY_ID}/statistics/external"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    await connection.flushdb()
    yield connection
    await connection.aclose()


def test_importing_journey_async_does_not_import_redis() -> None:
    code = "import sys, journey_async; assert 'redis' not in sys.modules, 'redis imported'"
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603


def test_arguments_are_checked(client: redis.asyncio.Redis) -> None:
    with pytest.raises(TypeError, match="redis"):
        RedisRateLimit(object(), key="k", per_second=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key"):
        RedisRateLimit(client, key="", per_second=1)
    with pytest.raises(ValueError, match="per_second"):
        RedisRateLimit(client, key="k", per_second=0)
    with pytest.raises(ValueError, match="burst"):
        RedisRateLimit(client, key="k", per_second=1, burst=0)
    limit = RedisRateLimit(client, key="k", per_second=20.5)
    assert (limit.per_second, limit.burst) == (20.5, 20)
    assert repr(limit) == "RedisRateLimit(key='k', per_second=20.5, burst=20)"
    assert isinstance(limit, ja.RateLimiter)


@pytest.mark.parametrize("kwargs", [{"key": "", "per_second": 1}, {"key": "k", "per_second": -1}])
def test_a_refused_limiter_can_be_reported_with_its_locals(kwargs: dict[str, Any]) -> None:
    # What Sentry and rich tracebacks do: repr every local of every frame.
    # No server: the connection is never used.
    with pytest.raises(ValueError, match=r"key|per_second") as info:
        RedisRateLimit(redis.asyncio.Redis(), **kwargs)
    report = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    assert "<RedisRateLimit, not made>" in "".join(report.format())


async def test_two_limiters_on_one_key_share_the_budget(client: redis.asyncio.Redis) -> None:
    # 20 a second between them: 40 acquires take about 2 s, not 1.
    first = RedisRateLimit(client, key="shared", per_second=20, burst=1)
    second = RedisRateLimit(client, key="shared", per_second=20, burst=1)
    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for limit in (first, second):
            for _ in range(20):
                tg.start_soon(limit.acquire)
    elapsed = time.monotonic() - start
    assert elapsed >= 39 / 20 * 0.95
    tat = await client.get("shared:tat")
    assert tat is not None


async def test_a_429_cools_every_process_down(client: redis.asyncio.Redis) -> None:
    here = RedisRateLimit(client, key="cool", per_second=1000)
    elsewhere = RedisRateLimit(client, key="cool", per_second=1000)
    await here.acquire()
    await elsewhere.report_rate_limited(0.4)
    start = time.monotonic()
    await here.acquire()
    assert time.monotonic() - start >= 0.3
    ttl = await client.pttl("cool:cool")
    assert ttl <= 400


async def _fan_out(
    limit: RedisRateLimit,
    client: redis.asyncio.Redis,
    refuses: Callable[[], bool],
    *,
    requests: int,
    concurrency: int = 16,
    bound: float = 15.0,
) -> tuple[float, int]:
    """*requests* through `paced` (the client's own wiring of a limiter) against a
    server answering 429 (``Retry-After: 1``) when ``refuses()``, 5 ms away, each
    refused one sent again at once; stopped after *bound* seconds. Returns the wall
    time and how many shared cool-downs were written (the key seen to appear, looked
    at every 10 ms: each lasts 1 s)."""

    async def send(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0.005)
        if refuses():
            return httpx.Response(429, headers={"Retry-After": "1"}, request=request)
        return httpx.Response(200, request=request)

    send_paced = paced(send, limit, max_cool_down=30.0)
    left = iter(range(requests))
    shared = 0
    done = anyio.Event()

    async def worker() -> None:
        for _ in left:
            while (await send_paced(httpx.Request("GET", STATS_URL))).status_code == 429:
                pass

    async def watch() -> None:
        nonlocal shared
        cooling = False
        while not done.is_set():
            now_cooling = bool(await client.exists(f"{key}:cool"))
            shared += now_cooling and not cooling
            cooling = now_cooling
            await anyio.sleep(0.01)

    key = limit._tat.removesuffix(":tat")
    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        with anyio.move_on_after(bound):
            async with anyio.create_task_group() as workers:
                for _ in range(concurrency):
                    workers.start_soon(worker)
        done.set()
    return time.monotonic() - start, shared


@pytest.mark.parametrize(("share", "requests", "most"), [(0.05, 600, 3.0), (0.1, 300, 10.0)])
async def test_random_429s_among_accepted_answers_cool_no_other_process_down(
    client: redis.asyncio.Redis, share: float, requests: int, most: float
) -> None:
    """A gateway refusing 5-10 % at random: each 429's episode is dismissed by the
    answers to the requests sent with or after it, or stands by chance after episodes
    that showed a random gateway (then this process alone waits it out, as one client
    would): no cool-down is written for every process, and the run takes a few
    seconds (before, each 429 paused every process for 1 s: 30 to 60 of them, the run
    stopped at 15 s with a dozen shared cool-downs)."""
    draws = random.Random(3)
    limit = RedisRateLimit(client, key="random", per_second=2000)
    wall, shared = await _fan_out(limit, client, lambda: draws.random() < share, requests=requests)
    assert shared <= 1  # a first episode may stand by chance, with no history yet
    assert wall < most


async def test_a_refusing_budget_still_cools_every_process_down(
    client: redis.asyncio.Redis,
) -> None:
    """A token bucket run dry (every answer a 429 for 0.3 s after the first 30): the
    episode stands on its evidence, the shared cool-down is written, and another
    process on the same key waits it out."""
    start = time.monotonic()
    accepted = 0

    def refuses() -> bool:
        nonlocal accepted
        if accepted < 30 or time.monotonic() - start > 0.3:
            accepted += 1
            return False
        return True

    limit = RedisRateLimit(client, key="dry", per_second=2000)
    elsewhere = RedisRateLimit(client, key="dry", per_second=2000)
    waited: list[float] = []

    async def other_process() -> None:
        for _ in range(600):  # 3 s at most
            if await client.exists("dry:cool"):
                break
            await anyio.sleep(0.005)
        began = time.monotonic()
        await elsewhere.acquire()
        waited.append(time.monotonic() - began)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other_process)
        wall, shared = await _fan_out(limit, client, refuses, requests=200)
    assert shared >= 1
    assert waited[0] >= 0.5  # most of the 1 s Retry-After
    assert wall >= 0.9


async def test_a_long_cool_down_fails_a_call_at_once_without_sending(
    client: redis.asyncio.Redis,
) -> None:
    limit = RedisRateLimit(client, key="long", per_second=100)
    await limit.report_rate_limited(120)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as api:
        route = api.get(STATS_URL).mock(return_value=httpx.Response(200, json=MIXED_EXAMPLE))
        async with ja.AsyncJourneyClient(TOKEN, rate_limit=limit) as journeys:
            with pytest.raises(ja.RateLimitError, match="not sent") as caught:
                await journeys.get_stats(JOURNEY_ID)
        assert route.call_count == 0
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 100


async def test_a_429_through_the_client_reaches_redis(client: redis.asyncio.Redis) -> None:
    limit = RedisRateLimit(client, key="via-client", per_second=100)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as api:
        api.get(STATS_URL).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "40"}),
                httpx.Response(200, json=MIXED_EXAMPLE),
            ]
        )
        async with ja.AsyncJourneyClient(TOKEN, rate_limit=limit) as journeys:
            with pytest.raises(ja.RateLimitError):
                await journeys.get_stats(JOURNEY_ID)
    assert await client.exists("via-client:cool")


async def test_unreachable_redis_is_a_typed_error_and_nothing_is_sent() -> None:
    # No retries inside redis-py: the first refusal is the answer.
    dead = redis.asyncio.Redis(
        host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0), socket_connect_timeout=1
    )
    limit = RedisRateLimit(dead, key="gone", per_second=10)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as api:
        route = api.get(STATS_URL).mock(return_value=httpx.Response(200, json=MIXED_EXAMPLE))
        async with ja.AsyncJourneyClient(TOKEN, rate_limit=limit) as journeys:
            with pytest.raises(ja.RateLimiterError, match="not sent"):
                await journeys.get_stats(JOURNEY_ID)
            results = await journeys.get_stats_many([JOURNEY_ID])
        assert route.call_count == 0
    assert isinstance(results[0].error, ja.RateLimiterError)
    await dead.aclose()


def test_under_trio_it_refuses_clearly(redis_url: str) -> None:
    async def main() -> None:
        limit = RedisRateLimit(redis.asyncio.Redis.from_url(redis_url), key="t", per_second=1)
        with pytest.raises(RuntimeError, match="asyncio only"):
            await limit.acquire()

    anyio.run(main, backend="trio")


def test_the_binary_is_found(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        assert url.startswith("redis://127.0.0.1:")
