"""
The emulator of the Journey API (journey_async.testing), driven with plain httpx.

Most tests run in-process; those marked by the ``mode`` fixture run both
in-process and against the emulator served by uvicorn on 127.0.0.1, since a
socket is where dropped connections and timeouts really happen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Literal

import anyio
import httpx
import pytest

import journey_async
from journey_async.testing import (
    EmulatorServer,
    EmulatorTransport,
    Fault,
    JourneyEmulator,
    RecordedRequest,
    emulator_client,
    in_app_point,
    message_point,
    raw_point,
    serve_emulator,
    spawn_emulator_process,
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


@pytest.fixture(params=["in_process", "served"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


@pytest.fixture
def emulator() -> JourneyEmulator:
    return make_emulator()


# --- the two endpoints ----------------------------------------------------------------------


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


# --- auth, routing --------------------------------------------------------------------------


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


# --- state and sample data ------------------------------------------------------------------


def test_message_point_conversion_is_a_percentage() -> None:
    assert message_point("p", 22648, 60).stat["conversion"] == 0.26492405510420347
    assert message_point("p", 0, 0).stat == {"sent": 0, "opened": 0, "conversion": 0}
    whole = message_point("p", 4, 4).stat["conversion"]
    assert (whole, type(whole)) == (100, int)
    with pytest.raises(ValueError, match="sent"):
        message_point("p", -1, 0)


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


# --- faults ---------------------------------------------------------------------------------


async def check_fault(
    emulator: JourneyEmulator, client: httpx.AsyncClient, fault: Fault, kind: str
) -> None:
    """Send one statistics request and one removal through *fault*, and check both."""
    emulator.inject(fault, fault)
    timeout = 0.05 if kind == "delay" else 5.0
    removal = {"user_ids": ["u1"], "journey_uuids": ["j1"]}
    for request in (
        client.build_request("GET", stats("j1"), timeout=timeout),
        client.build_request("POST", REMOVE, json=removal, timeout=timeout),
    ):
        if kind == "drop":
            with pytest.raises(httpx.RemoteProtocolError):
                await client.send(request)
            continue
        if kind == "delay":
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await client.send(request)
            assert time.monotonic() - started < 0.25
            continue
        response = await client.send(request)
        if kind == "status-503":
            assert (response.status_code, response.json()) == (
                503,
                {"success": False, "message": "Service Unavailable"},
            )
            assert "retry-after" not in response.headers
        elif kind == "status-429":
            assert response.status_code == 429
            assert response.headers["retry-after"] == "Wed, 21 Oct 2037 07:28:00 GMT"
            assert response.json() == {"success": False, "message": "Too Many Requests"}
        elif kind == "html":
            assert response.status_code == 502
            assert response.headers["content-type"] == "text/html"
            assert response.text.startswith("<html>")
            assert "502 Bad Gateway" in response.text
        else:
            assert kind == "malformed"
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            with pytest.raises(json.JSONDecodeError):
                response.json()
    assert emulator.pending_faults == 0
    assert [r.fault for r in emulator.requests] == [fault, fault]
    # Applied before the request: nothing was removed.
    assert emulator.users_in("j1") == {"u1", "u2", "u3"}
    assert emulator.removals_applied == 0


FAULTS = [
    pytest.param(Fault.status(503), "status-503", id="503"),
    pytest.param(
        Fault.status(429, retry_after="Wed, 21 Oct 2037 07:28:00 GMT"), "status-429", id="429"
    ),
    pytest.param(Fault.html(502), "html", id="html"),
    pytest.param(Fault.malformed_json(), "malformed", id="malformed"),
    pytest.param(Fault.drop(), "drop", id="drop"),
    pytest.param(Fault.delay(0.3), "delay", id="delay"),
]


@pytest.mark.parametrize(("fault", "kind"), FAULTS)
async def test_faults_in_process(emulator: JourneyEmulator, fault: Fault, kind: str) -> None:
    async with connect(emulator) as client:
        await check_fault(emulator, client, fault, kind)
        # The queue is used up: the next requests are served normally.
        assert (await client.get(stats("j1"))).json() == J1_BODY


@pytest.mark.parametrize(("fault", "kind"), FAULTS)
async def test_faults_served(
    emulator: JourneyEmulator, fault: Fault, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with connect(emulator, "served") as client:
        await check_fault(emulator, client, fault, kind)
        assert (await client.get(stats("j1"))).json() == J1_BODY
    # A deliberate drop is not reported as a crash of the app.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_delay_without_a_timeout_answers_late(emulator: JourneyEmulator) -> None:
    emulator.inject(Fault.delay(0.1))
    async with connect(emulator) as client:
        started = time.monotonic()
        response = await client.get(stats("j1"))
    assert time.monotonic() - started >= 0.1
    assert response.json() == J1_BODY


async def test_latency_is_added_and_can_time_out() -> None:
    emulator = make_emulator(latency=0.2)
    async with connect(emulator, timeout=0.05) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(stats("j1"))
    assert [(r.journey_id, r.status) for r in emulator.requests] == [(None, None)]
    assert emulator.in_flight == 0


async def test_retry_after_a_fault_after_apply_lands_once(
    emulator: JourneyEmulator, mode: Mode
) -> None:
    body = {"user_ids": ["u1"], "journey_uuids": ["j1"]}
    emulator.inject(Fault.status(503, after_apply=True), endpoint="remove")
    async with connect(emulator, mode) as client:
        failed = await client.post(REMOVE, json=body)
        assert failed.status_code == 503
        # The client saw a failure, yet the removal happened.
        assert emulator.users_in("j1") == {"u2", "u3"}
        retried = await client.post(REMOVE, json=body)
        assert retried.status_code == 200
    assert emulator.users_in("j1") == {"u2", "u3"}
    assert emulator.users_in("j2") == {"u1", "u2"}
    assert emulator.removals_applied == 2
    assert [(r.status, r.fault) for r in emulator.requests] == [
        (503, Fault.status(503, after_apply=True)),
        (200, None),
    ]


@pytest.mark.parametrize(
    "fault", [Fault.drop(after_apply=True), Fault.delay(0.3, after_apply=True)]
)
async def test_transport_faults_after_apply(emulator: JourneyEmulator, fault: Fault) -> None:
    emulator.inject(fault)
    async with connect(emulator, timeout=0.05) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadTimeout)):
            await client.post(REMOVE, json={"user_ids": ["u1"], "all_journeys": True})
    assert emulator.users_in("j1") == {"u2", "u3"}
    assert emulator.users_in("j2") == {"u2"}
    assert emulator.removals_applied == 1


async def test_scripted_faults_are_used_in_order_by_matching_requests(
    emulator: JourneyEmulator,
) -> None:
    emulator.inject(Fault.status(500), Fault.status(502), endpoint="stats", journey_id="j2")
    emulator.inject(Fault.status(503), endpoint="remove", journey_id="j2")
    emulator.inject(Fault.status(504))
    assert emulator.pending_faults == 4

    async with connect(emulator) as client:
        # Nothing matches but the catch-all 504: it is used up first.
        assert (await client.get(stats("j1"))).status_code == 504
        assert (await client.get(stats("j1"))).status_code == 200
        assert (await client.get(stats("j2"))).status_code == 500
        to_j1 = {"user_ids": ["u3"], "journey_uuids": ["j1"]}
        assert (await client.post(REMOVE, json=to_j1)).status_code == 200
        assert (await client.get(stats("j2"))).status_code == 502
        everywhere = {"user_ids": ["u1"], "all_journeys": True}
        assert (await client.post(REMOVE, json=everywhere)).status_code == 503
        assert (await client.get(stats("j2"))).status_code == 200
        assert (await client.post(REMOVE, json=everywhere)).status_code == 200
    assert emulator.pending_faults == 0
    assert emulator.users_in("j1") == {"u2"}

    emulator.inject(Fault.drop())
    emulator.clear_faults()
    assert emulator.pending_faults == 0


def fault_trace(emulator: JourneyEmulator) -> list[tuple[int | None, Fault | None]]:
    return [(r.status, r.fault) for r in emulator.requests]


async def run_requests(emulator: JourneyEmulator, count: int) -> None:
    async with connect(emulator) as client:
        for index in range(count):
            journey_id = emulator.journey_ids[index % len(emulator.journey_ids)]
            with suppress(httpx.RemoteProtocolError):  # Fault.drop
                await client.get(stats(journey_id))


async def test_fault_rate_is_deterministic_with_a_seed() -> None:
    runs = []
    for seed in (7, 7, 8):
        emulator = JourneyEmulator.with_sample_data(5, fault_rate=0.5, seed=seed)
        await run_requests(emulator, 60)
        runs.append(fault_trace(emulator))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    faults = [fault for _, fault in runs[0] if fault is not None]
    assert 15 <= len(faults) <= 45
    assert {f.status_code for f in faults} <= {None, 429, 500, 502, 503, 504}
    assert all(f.kind in ("status", "html", "drop") and not f.after_apply for f in faults)
    assert all(status == 200 for status, fault in runs[0] if fault is None)

    always = JourneyEmulator.with_sample_data(2, fault_rate=1.0, seed=1)
    await run_requests(always, 80)
    kinds = {(f.kind, f.status_code, f.retry_after) for _, f in fault_trace(always) if f}
    assert len(always.requests) == 80
    assert all(f is not None for _, f in fault_trace(always))
    assert kinds == {
        ("status", 429, None),
        ("status", 429, "0"),
        ("status", 500, None),
        ("status", 502, None),
        ("status", 503, None),
        ("status", 504, None),
        ("html", 502, None),
        ("drop", None, None),
    }


# --- concurrency ----------------------------------------------------------------------------


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


# --- the ways to run it ---------------------------------------------------------------------


def test_serve_emulator_from_sync_code(emulator: JourneyEmulator) -> None:
    with serve_emulator(emulator) as server:
        assert isinstance(server, EmulatorServer)
        assert server.url == f"http://127.0.0.1:{server.port}"
        response = httpx.get(server.url + stats("j1"), headers=AUTH)
        assert response.json() == J1_BODY
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + stats("j1"), headers=AUTH)


def test_serving_without_uvicorn_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, emulator: JourneyEmulator
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with (
        pytest.raises(ImportError, match=r"pip install 'journey-async\[emulator\]'"),
        serve_emulator(emulator),
    ):
        pass


def test_spawn_emulator_process_starts_and_stops() -> None:
    sample = JourneyEmulator.with_sample_data(3, seed=5)
    with spawn_emulator_process(journeys=3, seed=5, token="proc-token") as url:
        assert url.startswith("http://127.0.0.1:")
        headers = {"Authorization": "Api proc-token"}
        response = httpx.get(url + stats(sample.journey_ids[2]), headers=headers)
        assert response.status_code == 200
        assert response.json()["payload"]["title"] == "Sample journey 3"
        assert httpx.get(url + stats(sample.journey_ids[0]), headers=AUTH).status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + stats(sample.journey_ids[0]), headers=headers)


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


async def test_emulator_client(emulator: JourneyEmulator) -> None:
    emulator.inject(Fault.status(503), endpoint="stats")
    retry = journey_async.RetryPolicy(initial_delay=0.01, max_delay=0.01)
    async with emulator_client(emulator, retry=retry) as client:
        journey_stats = await client.get_stats("j1")
        await client.remove_users(["u1"], journey_ids=["j1", "j2"])
    assert journey_stats.title == "Welcome"
    assert [p.title for p in journey_stats.points] == ["Push", "Banner", "Webhook"]
    # The client retried past the 503.
    assert [r.status for r in emulator.requests] == [503, 200, 200]
    assert emulator.users_in("j1") == {"u2", "u3"}
    assert emulator.users_in("j2") == {"u2"}
