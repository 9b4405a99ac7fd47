"""The emulator's state and configuration (journey_async._emulator._state)."""

from __future__ import annotations

import traceback
import uuid
from typing import Any

import pytest
from emulator_support import connect, stats

from journey_async.testing import Fault, JourneyEmulator, message_point


async def test_journeys_users_and_updates(emulator: JourneyEmulator) -> None:
    new_id = emulator.add_journey(users=["a"])
    assert str(uuid.UUID(new_id)) == new_id
    assert emulator.journey_ids == ["j1", "j2", new_id]
    emulator.add_users(new_id, ["b", "c"])
    assert emulator.users_in(new_id) == frozenset({"a", "b", "c"})
    with pytest.raises(ValueError, match="already exists"):
        emulator.add_journey("j1")
    with pytest.raises(KeyError):
        emulator.users_in("nope")
    with pytest.raises(TypeError):
        emulator.add_users("j1", "u9")

    async with connect(emulator) as client:
        before = (await client.get(stats(new_id))).json()["payload"]
        emulator.update_journey(new_id, title="Renamed", points=[message_point("Push", 10, 5)])
        after = (await client.get(stats(new_id))).json()["payload"]
    assert before["title"] == f"Journey {new_id}"
    assert len(before["points"]) == 2
    assert after == {
        "title": "Renamed",
        "points": [
            {
                "pointTitle": "Push",
                "campaignCode": "AAAAA-00000",
                "presetCode": "12345-67890",
                "pointStat": {"sent": 10, "opened": 5, "conversion": 50},
            }
        ],
    }


def test_constructor_validation() -> None:
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="fault_rate"):
            JourneyEmulator(fault_rate=bad)
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="latency"):
            JourneyEmulator(latency=bad)
    with pytest.raises(ValueError, match="token"):
        JourneyEmulator(token="")
    with pytest.raises(ValueError, match="max_user_ids_per_request"):
        JourneyEmulator(max_user_ids_per_request=0)
    with pytest.raises(ValueError, match="status_code"):
        Fault.status(99)
    with pytest.raises(ValueError, match="seconds"):
        Fault.delay(-1)
    with pytest.raises(ValueError, match="endpoint"):
        JourneyEmulator().inject(Fault.drop(), endpoint="stat")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "refusal"),
    [({"fault_rate": 2.0}, "fault_rate"), ({"latency": -1.0}, "latency"), ({"token": ""}, "token")],
)
def test_a_refused_argument_can_be_reported_with_the_locals(
    options: dict[str, Any], refusal: str
) -> None:
    # The repr of the half-built emulator in __init__'s frame must not raise.
    with pytest.raises(ValueError, match=refusal) as info:
        JourneyEmulator(**options)
    shown = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    assert str(info.value) in "".join(shown.format())
