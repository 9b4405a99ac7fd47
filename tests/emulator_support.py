"""
What the emulator's tests share: a two-journey emulator with a point of each
shape, the body its first journey answers with, and an httpx client talking
to it in-process or over a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx

from journey_async.testing import (
    EmulatorTransport,
    JourneyEmulator,
    in_app_point,
    message_point,
    raw_point,
    serve_emulator,
)

TOKEN = "test-token"
AUTH = {"Authorization": f"Api {TOKEN}"}
REMOVE = "/api/journey/drop-users/external"
USER_IDS_MISSING = "user_ids must be provided"
JOURNEY_UUIDS_MISSING = "journey_uuids must be provided if all_journeys is false"

Mode = Literal["in_process", "served"]


def stats(journey_id: str) -> str:
    return f"/api/journey/{journey_id}/statistics/external"


def make_emulator(**kwargs: Any) -> JourneyEmulator:
    emulator = JourneyEmulator(**kwargs)
    emulator.add_journey(
        "j1",
        title="Welcome",
        points=[
            message_point(
                "Push", 22648, 60, campaign_code="AAAAA-00000", preset_code="12345-67890"
            ),
            in_app_point("Banner", 3148, 2759, 36, campaign_code="BBBBB-11111", preset_code="p"),
            raw_point(
                "Webhook", {"delivered": 10, "failed": 1}, campaign_code="C", preset_code="P"
            ),
        ],
        users=["u1", "u2", "u3"],
    )
    emulator.add_journey("j2", title="Winback", points=[], users=["u1", "u2"])
    return emulator


J1_BODY = {
    "payload": {
        "title": "Welcome",
        "points": [
            {
                "pointTitle": "Push",
                "campaignCode": "AAAAA-00000",
                "presetCode": "12345-67890",
                "pointStat": {"sent": 22648, "opened": 60, "conversion": 0.26492405510420347},
            },
            {
                "pointTitle": "Banner",
                "campaignCode": "BBBBB-11111",
                "presetCode": "p",
                "pointStat": {"shows": 3148, "interactions": 2759, "skipped": 36},
            },
            {
                "pointTitle": "Webhook",
                "campaignCode": "C",
                "presetCode": "P",
                "pointStat": {"delivered": 10, "failed": 1},
            },
        ],
    }
}


@asynccontextmanager
async def connect(
    emulator: JourneyEmulator, mode: Mode = "in_process", **kwargs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to *emulator* in-process or over a socket."""
    kwargs.setdefault("headers", AUTH)
    if mode == "in_process":
        transport = EmulatorTransport(emulator)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", **kwargs
        ) as client:
            yield client
    else:
        with serve_emulator(emulator) as server:
            assert server.emulator is emulator
            async with httpx.AsyncClient(base_url=server.url, **kwargs) as client:
                yield client
