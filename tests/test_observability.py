"""Structured log records and JOURNEY_ASYNC_LOG (`_logging`), on every attempt and retry.

Request ids on errors are in tests/test_outcomes.py, fork safety in tests/test_shared.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import httpx
import pytest
from payloads import JOURNEY_ID, TOKEN

import journey_async as ja
from journey_async.testing import Fault, JourneyEmulator, emulator_client

EXTRA_FIELDS = ("journey_id", "attempt", "status_code", "elapsed", "url")


async def instant(_: float) -> None:
    return None


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
    [("debug", True), ("DEBUG", True), ("info", False), ("", False), (" ", False)],
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


@pytest.mark.parametrize("value", ["verbose", "warning", "1"])
def test_an_unknown_journey_async_log_says_so_once_and_logs_nothing(value: str) -> None:
    # Imported twice over and configured again: still said once. Under -W error
    # (as a strict application runs) the import must not fail.
    script = "import journey_async._logging as log; log.configure_from_environment()\n"
    env = {**os.environ, "JOURNEY_ASYNC_LOG": value}
    result = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-W", "error", "-c", script + LOG_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stderr == (
        f"journey_async: ignoring JOURNEY_ASYNC_LOG={value!r}: "
        "use debug or info (any case), or leave it unset\n"
    )


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
