"""
The broker (a Redis list) and the result backend (Redis, JSON), and the one
`AsyncJourneyClient` each worker process keeps, created at start-up.

Configured from the environment, as workers are:

- ``JOURNEY_REDIS_URL``: the Redis of the queue, the results and the budget;
- ``JOURNEY_BASE_URL``: the API root (default: Pushwoosh's);
- ``JOURNEY_RATE``: requests a second for all workers together (default: 50);
- ``PUSHWOOSH_API_TOKEN``: the API token, read by the client.
"""

from __future__ import annotations

import os

import redis.asyncio
from taskiq import TaskiqEvents, TaskiqState
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

import journey_async as ja
from journey_async.redis import RedisRateLimit

REDIS_URL = os.environ.get("JOURNEY_REDIS_URL", "redis://127.0.0.1:6379/0")
BASE_URL = os.environ.get("JOURNEY_BASE_URL", "https://journey.pushwoosh.com")
RATE = float(os.environ.get("JOURNEY_RATE", "50"))
BUDGET_KEY = "journey-async:budget"
"""The Redis key of the budget: every worker with the same key shares it."""

# socket_timeout=None: the broker waits on a blocking pop for the next task,
# which redis-py's default read timeout (5 s in redis-py 8) would break.
broker = ListQueueBroker(REDIS_URL, socket_timeout=None).with_result_backend(
    RedisAsyncResultBackend(REDIS_URL, result_ex_time=3600)
)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_client(state: TaskiqState) -> None:
    """One client per worker process, every request paced by the shared budget."""
    state.redis = redis.asyncio.Redis.from_url(REDIS_URL)
    budget = RedisRateLimit(state.redis, key=BUDGET_KEY, per_second=RATE, burst=1)
    state.client = ja.AsyncJourneyClient(base_url=BASE_URL, rate_limit=budget)


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def close_client(state: TaskiqState) -> None:
    await state.client.aclose()
    await state.redis.aclose()
