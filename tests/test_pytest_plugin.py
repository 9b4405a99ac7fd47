"""The pytest11 plugin's fixtures (journey_async._pytest_plugin)."""

from __future__ import annotations

import httpx
from emulator_support import AUTH, stats

from journey_async.testing import EmulatorServer, JourneyEmulator, RecordedRequest


def test_pytest_plugin_fixtures(
    journey_emulator: JourneyEmulator, journey_emulator_server: EmulatorServer
) -> None:
    assert journey_emulator_server.emulator is journey_emulator
    assert len(journey_emulator.journey_ids) == 10
    journey_id = journey_emulator.journey_ids[0]
    response = httpx.get(journey_emulator_server.url + stats(journey_id), headers=AUTH)
    assert response.json()["payload"]["title"] == "Sample journey 1"
    assert journey_emulator.requests == [
        RecordedRequest("GET", stats(journey_id), "stats", journey_id, None, True, 200, None)
    ]
