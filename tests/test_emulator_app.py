"""
`JourneyEmulator` as an ASGI app (journey_async._emulator._app), driven with
plain httpx: the two endpoints, auth and routing, concurrency counters. Tests
taking the ``mode`` fixture run in-process and served on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from emulator_support import (
    J1_BODY,
    JOURNEY_UUIDS_MISSING,
    REMOVE,
    TOKEN,
    USER_IDS_MISSING,
    Mode,
    connect,
    make_emulator,
    stats,
)

from journey_async.testing import EmulatorTransport, JourneyEmulator


async def test_stats_and_removals_end_to_end(emulator: JourneyEmulator, mode: Mode) -> None:
    async with connect(emulator, mode) as client:
        response = await client.get(stats("j1"))
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == J1_BODY

        missing = await client.get(stats("nope"))
        assert (missing.status_code, missing.json()) == (
            404,
            {"success": False, "message": "journey not found"},
        )

        bad = await client.post(REMOVE, json={"user_ids": []})
        assert (bad.status_code, bad.json()) == (
            400,
            {"success": False, "message": USER_IDS_MISSING},
        )
        bad = await client.post(REMOVE, json={"user_ids": ["u1"]})
        assert (bad.status_code, bad.json()) == (
            400,
            {"success": False, "message": JOURNEY_UUIDS_MISSING},
        )

        removed = await client.post(
            REMOVE, json={"user_ids": ["u1", "ghost"], "journey_uuids": ["j1", "unknown"]}
        )
        assert (removed.status_code, removed.json()) == (200, {"success": True})
        assert emulator.users_in("j1") == {"u2", "u3"}
        assert emulator.users_in("j2") == {"u1", "u2"}

        removed = await client.post(REMOVE, json={"user_ids": ["u2"], "all_journeys": True})
        assert (removed.status_code, removed.json()) == (200, {"success": True})
        assert emulator.users_in("j1") == {"u3"}
        assert emulator.users_in("j2") == {"u1"}

    assert emulator.removals_applied == 2
    assert [(r.method, r.endpoint, r.journey_id, r.status) for r in emulator.requests] == [
        ("GET", "stats", "j1", 200),
        ("GET", "stats", "nope", 404),
        ("POST", "remove", None, 400),
        ("POST", "remove", None, 400),
        ("POST", "remove", None, 200),
        ("POST", "remove", None, 200),
    ]
    assert emulator.requests[-1].json == {"user_ids": ["u2"], "all_journeys": True}
    assert all(r.authorized and r.fault is None for r in emulator.requests)


async def test_removal_is_a_set_operation(emulator: JourneyEmulator) -> None:
    body = {"user_ids": ["u1", "u1", "u3"], "journey_uuids": ["j1"]}
    async with connect(emulator) as client:
        first = await client.post(REMOVE, json=body)
        second = await client.post(REMOVE, json=body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert emulator.users_in("j1") == {"u2"}
    assert emulator.removals_applied == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, USER_IDS_MISSING),
        ({"all_journeys": True}, USER_IDS_MISSING),
        ({"user_ids": [], "all_journeys": True}, USER_IDS_MISSING),
        ({"user_ids": "u1", "all_journeys": True}, USER_IDS_MISSING),
        ({"user_ids": ["u1", 2], "all_journeys": True}, USER_IDS_MISSING),
        ({"user_ids": ["u1"]}, JOURNEY_UUIDS_MISSING),
        ({"user_ids": ["u1"], "all_journeys": False}, JOURNEY_UUIDS_MISSING),
        ({"user_ids": ["u1"], "all_journeys": "true"}, JOURNEY_UUIDS_MISSING),
        ({"user_ids": ["u1"], "journey_uuids": []}, JOURNEY_UUIDS_MISSING),
        ({"user_ids": ["u1"], "journey_uuids": "j1"}, JOURNEY_UUIDS_MISSING),
        (["u1"], "request body must be a JSON object"),
    ],
)
async def test_invalid_removals_get_400_and_change_nothing(
    emulator: JourneyEmulator, body: Any, message: str
) -> None:
    async with connect(emulator) as client:
        response = await client.post(REMOVE, json=body)
    assert (response.status_code, response.json()) == (400, {"success": False, "message": message})
    assert emulator.users_in("j1") == {"u1", "u2", "u3"}
    assert emulator.removals_applied == 0


async def test_body_that_is_not_json_gets_400(emulator: JourneyEmulator) -> None:
    async with connect(emulator) as client:
        response = await client.post(REMOVE, content=b"user_ids=u1")
    assert response.status_code == 400
    assert response.json() == {"success": False, "message": "request body must be valid JSON"}
    assert emulator.requests[0].json is None


async def test_max_user_ids_per_request() -> None:
    emulator = make_emulator(max_user_ids_per_request=2)
    async with connect(emulator) as client:
        too_many = await client.post(
            REMOVE, json={"user_ids": ["u1", "u2", "u3"], "journey_uuids": ["j1"]}
        )
        enough = await client.post(REMOVE, json={"user_ids": ["u1", "u2"], "journey_uuids": ["j1"]})
    assert too_many.status_code == 400
    assert "2" in too_many.json()["message"]
    assert enough.status_code == 200
    assert emulator.users_in("j1") == {"u3"}
    assert emulator.removals_applied == 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Api wrong-token"}, {"Authorization": f"Bearer {TOKEN}"}],
    ids=["missing", "wrong-token", "wrong-scheme"],
)
async def test_requests_without_the_token_get_401(
    emulator: JourneyEmulator, headers: dict[str, str]
) -> None:
    async with connect(emulator, headers=headers) as client:
        got_stats = await client.get(stats("j1"))
        removal = await client.post(REMOVE, json={"user_ids": ["u1"], "all_journeys": True})
    for response in (got_stats, removal):
        assert response.status_code == 401
        assert response.json()["success"] is False
        assert isinstance(response.json()["message"], str)
    assert emulator.users_in("j1") == {"u1", "u2", "u3"}
    assert [(r.authorized, r.status) for r in emulator.requests] == [(False, 401), (False, 401)]


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/api/journey/j1/statistics", 404, None),
        ("GET", "/api/journey//statistics/external", 404, None),
        ("GET", "/api/journey/a/b/statistics/external", 404, None),
        ("GET", "/", 404, None),
        ("POST", stats("j1"), 405, "GET"),
        ("GET", REMOVE, 405, "POST"),
        ("DELETE", REMOVE, 405, "POST"),
    ],
)
async def test_unknown_paths_and_wrong_methods(
    emulator: JourneyEmulator, method: str, path: str, status: int, allow: str | None
) -> None:
    async with connect(emulator) as client:
        response = await client.request(method, path)
    assert response.status_code == status
    assert response.json()["success"] is False
    assert response.headers.get("allow") == allow
    assert emulator.requests[0].endpoint is None


async def test_the_token_is_never_recorded() -> None:
    secret = "s3cret-T0ken-value"
    emulator = make_emulator(token=secret)
    async with connect(emulator, headers={"Authorization": f"Api {secret}"}) as client:
        assert (await client.get(stats("j1"))).status_code == 200
        assert (
            await client.post(REMOVE, json={"user_ids": ["u1"], "all_journeys": True})
        ).is_success
    async with connect(emulator, headers={"Authorization": "Api other-s3cret"}) as client:
        assert (await client.get(stats("j1"))).status_code == 401
    assert len(emulator.requests) == 3
    everything = repr(emulator.requests) + repr(emulator) + repr(EmulatorTransport(emulator))
    assert secret not in everything
    assert "other-s3cret" not in everything
    assert emulator.token == secret


async def test_max_in_flight_counts_concurrent_requests(mode: Mode) -> None:
    emulator = make_emulator(latency=0.05)
    async with connect(emulator, mode) as client:
        responses = await asyncio.gather(*(client.get(stats("j1")) for _ in range(8)))
        assert [r.status_code for r in responses] == [200] * 8
        assert emulator.max_in_flight == 8

        emulator.reset_counters()
        assert (emulator.max_in_flight, emulator.requests, emulator.removals_applied) == (0, [], 0)
        limiter = anyio.CapacityLimiter(3)

        async def bounded() -> None:
            async with limiter:
                assert (await client.get(stats("j2"))).status_code == 200

        async with anyio.create_task_group() as tg:
            for _ in range(9):
                tg.start_soon(bounded)
    assert emulator.max_in_flight == 3
    assert emulator.in_flight == 0
    assert len(emulator.requests) == 9
