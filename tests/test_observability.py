"""Request ids on errors, structured log records, JOURNEY_ASYNC_LOG, and fork safety."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import subprocess
import sys
import warnings

import httpx
import pytest
import respx
from payloads import BASE_URL, JOURNEY_ID, MIXED_EXAMPLE, TOKEN

import journey_async as ja
from journey_async.testing import Fault, JourneyEmulator, emulator_client

STATS_URL = f"{BASE_URL}/api/journey/{JOURNEY_ID}/statistics/external"
EXTRA_FIELDS = ("journey_id", "attempt", "status_code", "elapsed", "url")


async def instant(_: float) -> None:
    return None


# request_id -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-request-id": "req-123"}, "req-123"),
        ({"Request-Id": "abc"}, "abc"),
        ({"x-request-id": "first", "request-id": "second"}, "first"),
        ({}, None),
        ({"x-request-id": ""}, None),
        ({"x-request-id": "a" * 500}, "a" * 125 + "..."),
        ({"x-request-id": f"id-{TOKEN}"}, "id-[secret]"),
    ],
)
async def test_status_errors_carry_the_request_id(
    headers: dict[str, str], expected: str | None
) -> None:
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).respond(404, headers=headers, json={"message": "no such journey"})
        async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
            with pytest.raises(ja.NotFoundError) as info:
                await client.get_stats(JOURNEY_ID)
    assert info.value.request_id == expected
    if expected is None:
        assert "request id" not in str(info.value)
    else:
        assert str(info.value).endswith(f"no such journey (request id {expected})")
    assert TOKEN not in str(info.value)


async def test_a_rate_limit_error_carries_its_request_id_through_pickle() -> None:
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).respond(429, headers={"x-request-id": "r-9", "Retry-After": "99"})
        async with ja.AsyncJourneyClient(TOKEN) as client:
            with pytest.raises(ja.RateLimitError) as info:
                await client.get_stats(JOURNEY_ID)
    assert (info.value.request_id, info.value.retry_after) == ("r-9", 99.0)
    restored = pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own pickle
    assert restored.request_id == "r-9"
    assert ja.error_from_dict(ja.error_to_dict(info.value)).request_id == "r-9"  # type: ignore[attr-defined]


# Structured log records ---------------------------------------------------------


async def test_every_attempt_and_retry_is_logged_with_its_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="journey_async")
    emulator = JourneyEmulator.with_sample_data(journeys=2)
    journey_id = emulator.journey_ids[0]
    emulator.inject(Fault.status(503), endpoint="stats")
    policy = ja.RetryPolicy(sleep=instant)
    async with emulator_client(emulator, retry=policy) as client:
        await client.get_stats(journey_id)
        await client.remove_users(["u1"], all_journeys=True)

    records = [r for r in caplog.records if r.name == "journey_async"]
    for record in records:
        for field in EXTRA_FIELDS:
            assert hasattr(record, field), (field, record.getMessage())
        assert emulator.token not in record.getMessage()
        assert emulator.token not in str(vars(record))
    stats = [r for r in records if r.__dict__["journey_id"] == journey_id]
    assert [(r.levelno, r.__dict__["attempt"], r.__dict__["status_code"]) for r in stats] == [
        (logging.DEBUG, 1, 503),  # the attempt
        (logging.INFO, 1, 503),  # the retry
        (logging.DEBUG, 2, 200),
    ]
    assert all(isinstance(r.__dict__["elapsed"], float) for r in stats)
    assert stats[0].__dict__["url"].endswith(f"/api/journey/{journey_id}/statistics/external")
    removal = [r for r in records if r.__dict__["journey_id"] is None]
    assert [(r.__dict__["attempt"], r.__dict__["status_code"]) for r in removal] == [(1, 200)]
    assert removal[0].__dict__["url"].endswith("/api/journey/drop-users/external")


async def test_a_connection_failure_is_logged_without_a_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="journey_async")
    transport = httpx.MockTransport(lambda request: (_ for _ in ()).throw(httpx.ConnectError("x")))
    async with ja.AsyncJourneyClient(TOKEN, transport=transport, retry=None) as client:
        with pytest.raises(ja.APIConnectionError):
            await client.get_stats(JOURNEY_ID)
    (record,) = [r for r in caplog.records if r.name == "journey_async"]
    assert (record.__dict__["status_code"], record.__dict__["attempt"]) == (None, 1)
    assert "ConnectError" in record.getMessage()


LOG_SCRIPT = """
import asyncio
import journey_async as ja
from journey_async.testing import JourneyEmulator, emulator_client

async def main():
    emulator = JourneyEmulator.with_sample_data(journeys=1)
    async with emulator_client(emulator) as client:
        await client.get_stats(emulator.journey_ids[0])

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("value", "shown"),
    [("debug", True), ("DEBUG", True), ("info", False), ("", False), ("nonsense", False)],
)
def test_journey_async_log_switches_on_a_stderr_handler(value: str, shown: bool) -> None:
    env = {**os.environ, "JOURNEY_ASYNC_LOG": value}
    result = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", LOG_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout == ""
    if shown:
        assert "journey_async DEBUG GET /api/journey/" in result.stderr
        assert "attempt 1 -> 200" in result.stderr
        assert "test-token" not in result.stderr
    else:
        assert result.stderr == ""


def test_journey_async_log_info_shows_retries() -> None:
    script = LOG_SCRIPT.replace(
        "async with emulator_client(emulator) as client:",
        "emulator.inject(ja.testing.Fault.status(503), endpoint='stats')\n"
        "    policy = ja.RetryPolicy(sleep=lambda s: asyncio.sleep(0))\n"
        "    async with emulator_client(emulator, retry=policy) as client:",
    ).replace(
        "import journey_async as ja", "import journey_async as ja\nimport journey_async.testing"
    )
    env = {**os.environ, "JOURNEY_ASYNC_LOG": "info"}
    result = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "journey_async INFO GET /api/journey/" in result.stderr
    assert "attempt 1 of 6 failed (HTTP 503); retrying" in result.stderr
    assert "DEBUG" not in result.stderr


# Fork safety --------------------------------------------------------------------


def run_in_fork(client: ja.AsyncJourneyClient, journey_id: str) -> str:
    """get_stats in a forked child; what it ended with, as text."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process that has threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report and leave, whatever happens
        try:
            try:
                stats = asyncio.run(client.get_stats(journey_id))
                outcome = f"stats {stats.title}"
            except BaseException as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            os.write(write_end, outcome.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return b"".join(chunks).decode()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_client_used_before_a_fork_refuses_in_the_child() -> None:
    emulator = JourneyEmulator.with_sample_data(journeys=1)
    journey_id = emulator.journey_ids[0]
    client = emulator_client(emulator, retry=None)
    asyncio.run(client.get_stats(journey_id))

    outcome = run_in_fork(client, journey_id)
    assert outcome.startswith("RuntimeError: this client sent requests before the process was")
    assert "create a new AsyncJourneyClient" in outcome
    # The parent's client is untouched.
    assert asyncio.run(client.get_stats(journey_id)).title


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_client_not_used_before_a_fork_works_in_the_child() -> None:
    emulator = JourneyEmulator.with_sample_data(journeys=1)
    client = emulator_client(emulator, retry=None)
    outcome = run_in_fork(client, emulator.journey_ids[0])
    assert outcome.startswith("stats ")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_copy_of_a_used_client_refuses_in_the_child_too() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=MIXED_EXAMPLE))
    client = ja.AsyncJourneyClient(TOKEN, transport=transport, retry=None)
    asyncio.run(client.with_options(timeout=1.0).get_stats(JOURNEY_ID))
    outcome = run_in_fork(client.with_options(timeout=2.0), JOURNEY_ID)
    assert outcome.startswith("RuntimeError: this client sent requests before")


async def test_log_records_blot_out_a_token_in_the_url(caplog: pytest.LogCaptureFixture) -> None:
    # Absurd but possible: the token handed in as a journey id puts it in the path.
    caplog.set_level(logging.DEBUG, logger="journey_async")
    answers = iter([httpx.Response(503), httpx.Response(404)])
    transport = httpx.MockTransport(lambda request: next(answers))
    policy = ja.RetryPolicy(sleep=instant)
    async with ja.AsyncJourneyClient(TOKEN, transport=transport, retry=policy) as client:
        with pytest.raises(ja.NotFoundError):
            await client.get_stats(TOKEN)
    records = [r for r in caplog.records if r.name == "journey_async"]
    assert len(records) == 3  # two attempts and a retry
    for record in records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in record.__dict__["url"]
        assert "[secret]" in record.__dict__["url"]
        assert TOKEN not in str(vars(record))
