"""The FastAPI recipe (examples/fastapi_app), served by uvicorn in its own process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from scripted import free_port
from served import running

from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

TOKEN = "fastapi-token"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    with serve_emulator(JourneyEmulator.with_sample_data(5, token=TOKEN)) as server:
        yield server


@pytest.fixture(scope="module")
def app_url(served: EmulatorServer) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "examples.fastapi_app.app:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with running(
        command,
        port,
        PUSHWOOSH_API_TOKEN=TOKEN,
        JOURNEY_BASE_URL=served.url,
        PYTHONPATH=str(ROOT),
    ):
        yield f"http://127.0.0.1:{port}"


def test_the_app_serves_stats_through_its_one_client(served: EmulatorServer, app_url: str) -> None:
    emulator = served.emulator
    journey = emulator.journey_ids[2]
    before = len(emulator.requests)
    for _ in range(3):
        response = httpx.get(f"{app_url}/journeys/{journey}/stats")
        assert response.status_code == 200
        assert response.json()["title"] == "Sample journey 3"
    missing = httpx.get(f"{app_url}/journeys/no-such-journey/stats")
    assert missing.status_code == 404
    sent = emulator.requests[before:]
    assert [r.status for r in sent] == [200, 200, 200, 404]
    assert all(r.authorized for r in sent)


def test_a_failing_api_is_a_502_not_a_crash(served: EmulatorServer, app_url: str) -> None:
    from journey_async.testing import Fault

    emulator = served.emulator
    emulator.inject(Fault.status(500), Fault.status(500), endpoint="stats")
    response = httpx.get(f"{app_url}/journeys/{emulator.journey_ids[0]}/stats")
    assert response.status_code == 502
    assert emulator.pending_faults == 0  # both attempts of the request's retry policy


def test_a_journey_id_the_client_refuses_is_a_404_not_a_crash(app_url: str) -> None:
    # Path parameters arrive percent-decoded: "%2E%2E" is "..", "a%3Fb" is
    # "a?b", which the client refuses with ValueError before sending; the
    # example let that through as a 500 Internal Server Error.
    for journey in ("%2E%2E", "a%3Fb", "a%20b", "%E2%80%8B"):
        response = httpx.get(f"{app_url}/journeys/{journey}/stats")
        assert response.status_code == 404, journey
        assert response.json() == {"detail": "no such journey"}
