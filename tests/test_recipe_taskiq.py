"""
The taskiq recipe (examples/taskiq_fanout), for real: a redis-server, the
emulator served on 127.0.0.1 with the budget as its own rate limit, and two
``taskiq worker`` processes sharing one RedisRateLimit.
"""

from __future__ import annotations

import collections
import importlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from redis_support import redis_server

from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

TOKEN = "taskiq-token"
RATE = 150
"""Requests a second: the workers' shared budget."""
SERVER_RATE = 200
"""The emulator's own limit, with a second's worth of burst: above the budget,
since the emulator's thread shares a GIL with the test and answers requests in
bunches when the machine is busy."""
JOURNEYS = 1000
WORKERS = 2
ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    # Over the budget, the emulator answers 429: none may come back.
    emulator = JourneyEmulator.with_sample_data(
        JOURNEYS, token=TOKEN, rate_limit=SERVER_RATE, rate_limit_burst=SERVER_RATE
    )
    with serve_emulator(emulator) as server:
        yield server


@pytest.fixture(scope="module")
def environment(redis_url: str, served: EmulatorServer) -> dict[str, str]:
    return {
        "JOURNEY_REDIS_URL": redis_url,
        "JOURNEY_BASE_URL": served.url,
        "JOURNEY_RATE": str(RATE),
        "PUSHWOOSH_API_TOKEN": TOKEN,
    }


@pytest.fixture(scope="module")
def workers(environment: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {**os.environ, **environment, "PYTHONPATH": str(ROOT)}
    taskiq = str(Path(sys.executable).with_name("taskiq"))
    command = [
        taskiq,
        "worker",
        "examples.taskiq_fanout.broker:broker",
        "examples.taskiq_fanout.tasks",
        "--workers",
        "1",
    ]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)  # noqa: S603
        for _ in range(WORKERS)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def recipe(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ModuleType]:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for name in [m for m in sys.modules if m.startswith("examples.taskiq_fanout")]:
        del sys.modules[name]
    monkeypatch.syspath_prepend(str(ROOT))
    dispatch = importlib.import_module("examples.taskiq_fanout.dispatch")
    broker = importlib.import_module("examples.taskiq_fanout.broker").broker
    await broker.startup()
    yield dispatch
    await broker.shutdown()


async def test_two_workers_fetch_every_journey_once_within_the_budget(
    served: EmulatorServer, workers: list[subprocess.Popen[bytes]], recipe: ModuleType
) -> None:
    emulator = served.emulator
    ids = emulator.journey_ids
    assert len(ids) == JOURNEYS
    results = await recipe.fetch_all(ids, shard_size=50)
    assert [r.journey_id for r in results] == ids
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:1]
    assert results[0].stats.title == "Sample journey 1"
    fetched = collections.Counter(
        r.journey_id for r in emulator.requests if r.endpoint == "stats" and r.status == 200
    )
    assert fetched == dict.fromkeys(ids, 1)  # every journey exactly once
    assert emulator.rate_limited == 0  # the two workers together kept to the budget
    assert all(process.poll() is None for process in workers)

    journey = ids[0]
    users = sorted(emulator.users_in(journey))[:3]
    removed, failed = await recipe.remove_everywhere(users)
    assert (sorted(removed), failed) == (users, [])
    assert emulator.users_in(journey).isdisjoint(users)
