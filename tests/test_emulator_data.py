"""
What the emulator holds (journey_async._emulator._data): points computed
as the API computes them, deterministic sample data.
"""

from __future__ import annotations

import uuid

import pytest
from emulator_support import connect, stats

from journey_async.testing import JourneyEmulator, message_point


def test_message_point_conversion_is_a_percentage() -> None:
    assert message_point("p", 22648, 60).stat["conversion"] == 0.26492405510420347
    assert message_point("p", 0, 0).stat == {"sent": 0, "opened": 0, "conversion": 0}
    whole = message_point("p", 4, 4).stat["conversion"]
    assert (whole, type(whole)) == (100, int)
    with pytest.raises(ValueError, match="sent"):
        message_point("p", -1, 0)


async def test_sample_data_is_deterministic() -> None:
    first = JourneyEmulator.with_sample_data(40, users_per_journey=5, unknown_shapes=True, seed=3)
    again = JourneyEmulator.with_sample_data(40, users_per_journey=5, unknown_shapes=True, seed=3)
    other = JourneyEmulator.with_sample_data(40, users_per_journey=5, seed=4)
    assert len(first.journey_ids) == 40
    assert first.journey_ids == again.journey_ids
    assert set(first.journey_ids).isdisjoint(other.journey_ids)
    assert all(uuid.UUID(j).version == 4 for j in first.journey_ids)
    assert [first.users_in(j) for j in first.journey_ids] == [
        again.users_in(j) for j in again.journey_ids
    ]
    assert all(len(first.users_in(j)) == 5 for j in first.journey_ids)

    bodies = []
    for em in (first, again):
        async with connect(em) as client:
            responses = [await client.get(stats(j)) for j in em.journey_ids]
        bodies.append([r.json() for r in responses])
    assert bodies[0] == bodies[1]
    points = [p for body in bodies[0] for p in body["payload"]["points"]]
    kinds = {p["pointTitle"].split()[0] for p in points}
    assert kinds == {"Push", "Email", "In-app", "Webhook"}
    webhooks = [p for p in points if p["pointTitle"] == "Webhook"]
    assert len(webhooks) == 10  # every fourth of 40 journeys
    assert set(webhooks[0]["pointStat"]) == {"delivered", "failed"}
    assert bodies[0][0]["payload"]["points"][-1]["pointTitle"] == "Webhook"
