"""
Faults (journey_async._emulator._faults): each kind in-process and served,
scripted and drawn by *fault_rate*, before and after the request is applied.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import suppress

import httpx
import pytest
from emulator_support import J1_BODY, REMOVE, Mode, connect, make_emulator, stats

from journey_async.testing import Fault, JourneyEmulator


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
