"""
`RemovalBatcher`: its lifecycle and checks, and who gets what when
concurrent calls share requests.

respx for request bodies; the emulator served on 127.0.0.1 for concurrency,
scripted faults and the state the removals leave behind;
`httpx.MockTransport` where a test must hold a request in flight. The
batcher's 413 halving is in tests/test_batching.py, with the sender it uses.
"""

from __future__ import annotations

import asyncio
import functools
import json
import traceback
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
import respx
from batching_support import (
    HANG_GUARD,
    OK,
    bodies,
    fresh_emulator,
    mock_client,
    new_ids,
    removals,
    serve_one,
    served_client,
)
from payloads import JOURNEY_ID, REMOVAL_URL, TOKEN

import journey_async as ja
from journey_async.testing import EmulatorServer, Fault, JourneyEmulator

served = pytest.fixture(serve_one, scope="module")
emulator = pytest.fixture(fresh_emulator)


# --- RemovalBatcher: lifecycle and validation ---------------------------------------------


async def test_2000_concurrent_single_user_removals_take_at_most_3_requests(
    journey_emulator_server: EmulatorServer,
) -> None:
    emulator = journey_emulator_server.emulator
    users = new_ids(2000)
    for journey in emulator.journey_ids[:3]:
        emulator.add_users(journey, users)
    results: dict[str, ja.RemovalResult] = {}

    async def remove(batcher: ja.RemovalBatcher, user: str) -> None:
        results[user] = await batcher.remove([user], all_journeys=True)

    async with (
        served_client(journey_emulator_server, batch_size=1000) as client,
        client.removal_batcher() as batcher,
        anyio.create_task_group() as task_group,
    ):
        for user in users:
            task_group.start_soon(remove, batcher, user)
    sent = removals(emulator)
    assert len(sent) <= 3
    assert sorted(u for body in sent for u in body["user_ids"]) == sorted(users)  # each once
    assert all(body == {"user_ids": body["user_ids"], "all_journeys": True} for body in sent)
    assert results == {u: ja.RemovalResult(user_ids=(u,), requests=1) for u in users}
    for journey in emulator.journey_ids:
        assert not emulator.users_in(journey) & set(users)


async def test_calls_group_by_target(served: EmulatorServer, emulator: JourneyEmulator) -> None:
    first = emulator.add_journey()
    second = emulator.add_journey()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("a", {"all_journeys": True}),
        ("b", {"journey_ids": [first, second]}),
        ("c", {"journey_ids": [second, first]}),  # the same set: the same request
        ("d", {"journey_ids": [first]}),
        ("e", {"journey_ids": (first, first)}),
        ("f", {"all_journeys": True}),
    ]
    async with (
        served_client(served) as client,
        client.removal_batcher() as batcher,
        anyio.create_task_group() as task_group,
    ):
        for user, target in calls:
            task_group.start_soon(functools.partial(batcher.remove, [user], **target))
    # Users in the order they joined, which is the order their tasks ran (any, on trio).
    joined = [
        {k: sorted(v) if isinstance(v, list) else v for k, v in body.items()}
        for body in removals(emulator)
    ]
    sent = sorted(joined, key=lambda body: body["user_ids"])
    assert sent == [
        {"user_ids": ["a", "f"], "all_journeys": True},
        {"user_ids": ["b", "c"], "journey_uuids": sorted([first, second])},
        {"user_ids": ["d", "e"], "journey_uuids": [first]},
    ]


async def test_a_full_batch_is_sent_without_waiting(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    journey = emulator.add_journey(users=["a", "b", "c"])
    async with (
        served_client(served) as client,
        client.removal_batcher(max_batch_size=2, max_delay=3600) as batcher,
    ):
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as task_group:
                for user in ("a", "b"):
                    task_group.start_soon(batcher.remove, [user], [journey])
        # Both returned inside the block: the full batch did not wait an hour.
        assert emulator.users_in(journey) == {"c"}


async def test_a_batch_is_sent_max_delay_after_its_first_call(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    journey = emulator.add_journey(users=["a", "b"])
    async with (
        served_client(served) as client,
        client.removal_batcher(max_batch_size=100, max_delay=0.01) as batcher,
    ):
        with anyio.fail_after(HANG_GUARD):
            result = await batcher.remove(["a"], journey_ids=[journey])
        assert result.user_ids == ("a",)
        assert emulator.users_in(journey) == {"b"}


async def test_exit_flushes_at_once_and_waits_for_the_request(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    journey = emulator.add_journey(users=["a", "b", "c"])
    results: list[ja.RemovalResult] = []

    async def remove(batcher: ja.RemovalBatcher, user: str) -> None:
        results.append(await batcher.remove([user], journey_ids=[journey]))

    async with served_client(served) as client:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as task_group:
                async with client.removal_batcher(max_delay=3600) as batcher:
                    task_group.start_soon(remove, batcher, "a")
                    task_group.start_soon(remove, batcher, "b")
                    await anyio.wait_all_tasks_blocked()
                    assert removals(emulator) == []  # held for the hour...
                # ... until the block was left, which waited for the request.
                [body] = removals(emulator)
                assert sorted(body["user_ids"]) == ["a", "b"]  # in joining order: any, on trio
                assert body["journey_uuids"] == [journey]
                assert emulator.users_in(journey) == {"c"}
    assert sorted(r.user_ids for r in results) == [("a",), ("b",)]


async def test_exit_by_an_error_still_sends_and_the_error_propagates(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    journey = emulator.add_journey(users=["a"])
    results: list[ja.RemovalResult] = []

    async def remove(batcher: ja.RemovalBatcher) -> None:
        results.append(await batcher.remove(["a"], journey_ids=[journey]))

    async def app(client: ja.AsyncJourneyClient, task_group: anyio.abc.TaskGroup) -> None:
        async with client.removal_batcher(max_delay=3600) as batcher:
            task_group.start_soon(remove, batcher)
            await anyio.wait_all_tasks_blocked()
            raise LookupError("the app failed")

    async with served_client(served) as client, anyio.create_task_group() as task_group:
        with pytest.raises(LookupError, match="the app failed"):
            await app(client, task_group)
    assert results == [ja.RemovalResult(user_ids=("a",), requests=1)]
    assert emulator.users_in(journey) == frozenset()


async def test_remove_outside_the_block_is_a_clear_error() -> None:
    async with ja.AsyncJourneyClient(TOKEN) as client:
        batcher = client.removal_batcher()
        with pytest.raises(RuntimeError, match=r"outside its `async with` block$"):
            await batcher.remove(["u"], all_journeys=True)
        async with batcher:
            pass
        with pytest.raises(RuntimeError, match=r"\(it has exited\)"):
            await batcher.remove(["u"], all_journeys=True)
        with pytest.raises(RuntimeError, match="entered only once"):
            async with batcher:
                pass


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"user_ids": "alice", "all_journeys": True}, TypeError),
        ({"user_ids": [], "all_journeys": True}, ValueError),
        ({"user_ids": ["u", 7], "all_journeys": True}, TypeError),
        ({"user_ids": ["u"]}, ValueError),
        ({"user_ids": ["u"], "journey_ids": [JOURNEY_ID], "all_journeys": True}, ValueError),
        ({"user_ids": ["u"], "journey_ids": ["a/b"]}, ValueError),
    ],
)
async def test_bad_input_is_refused_and_queues_nothing(
    api: respx.MockRouter, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    route = api.post(REMOVAL_URL).mock(return_value=OK)
    async with ja.AsyncJourneyClient(TOKEN) as client, client.removal_batcher() as batcher:
        with pytest.raises(error):
            await batcher.remove(**kwargs)
        assert "open_batches=0" in repr(batcher)
    assert not route.called


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_batch_size": 0}, ValueError),
        ({"max_batch_size": True}, TypeError),
        ({"max_delay": -0.1}, ValueError),
        ({"max_delay": float("inf")}, ValueError),
        ({"max_delay": "0.1"}, TypeError),
    ],
)
def test_bad_bounds_are_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    client = ja.AsyncJourneyClient(TOKEN)
    with pytest.raises(error):
        client.removal_batcher(**kwargs)


def test_defaults_come_from_the_client() -> None:
    batcher = ja.AsyncJourneyClient(TOKEN, batch_size=123).removal_batcher()
    assert (batcher.max_batch_size, batcher.max_delay) == (123, 0.05)


# --- RemovalBatcher: who gets what ---------------------------------------------------------


async def test_duplicates_are_sent_once_and_every_caller_is_answered(
    api: respx.MockRouter,
) -> None:
    route = api.post(REMOVAL_URL).mock(return_value=OK)
    results: list[ja.RemovalResult] = []

    async def remove(batcher: ja.RemovalBatcher, users: list[str]) -> None:
        results.append(await batcher.remove(users, all_journeys=True))

    async with (
        ja.AsyncJourneyClient(TOKEN, retry=None) as client,
        client.removal_batcher() as batcher,
        anyio.create_task_group() as task_group,
    ):
        task_group.start_soon(remove, batcher, ["u1", "u1", "u2"])
        task_group.start_soon(remove, batcher, ["u2", "u3"])
    [body] = bodies(route)
    assert sorted(body["user_ids"]) == ["u1", "u2", "u3"]  # in joining order: any, on trio
    assert body["all_journeys"] is True
    assert sorted(r.user_ids for r in results) == [("u1", "u2"), ("u2", "u3")]


async def test_a_failed_batch_fails_exactly_its_own_callers(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    users = new_ids(6)
    other_users = new_ids(2, "other")
    journey = emulator.add_journey(users=users)
    other = emulator.add_journey(users=other_users)
    emulator.inject(Fault.status(500), endpoint="remove", journey_id=journey)
    outcomes: dict[str, ja.RemovalResult | BaseException] = {}

    async def remove(batcher: ja.RemovalBatcher, user: str, target: str) -> None:
        try:
            outcomes[user] = await batcher.remove([user], journey_ids=[target])
        except ja.JourneyError as exc:
            outcomes[user] = exc

    async with (
        served_client(served) as client,
        client.removal_batcher(max_batch_size=3) as batcher,
        anyio.create_task_group() as task_group,
    ):
        for user in users:
            task_group.start_soon(remove, batcher, user, journey)
        for user in other_users:
            task_group.start_soon(remove, batcher, user, other)

    failed_request = next(r for r in emulator.requests if r.status == 500)
    failed_users = set(failed_request.json["user_ids"])
    assert len(failed_users) == 3
    errors = [outcomes[u] for u in failed_users]
    assert all(isinstance(e, ja.ServerError) and e.status_code == 500 for e in errors)
    # Each caller raises its own copy: tracebacks of different tasks do not mix.
    assert len({id(e) for e in errors}) == 3
    for user in set(users + other_users) - failed_users:
        assert outcomes[user] == ja.RemovalResult(user_ids=(user,), requests=1)
    assert emulator.users_in(journey) == failed_users
    assert emulator.users_in(other) == frozenset()


async def test_a_caller_larger_than_a_batch_gets_the_full_accounting(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    users = new_ids(5)
    journey = emulator.add_journey(users=users)
    emulator.inject(Fault.html(502), endpoint="remove", journey_id=journey)
    async with (
        served_client(served) as client,
        client.removal_batcher(max_batch_size=2) as batcher,
    ):
        with pytest.raises(ja.RemovalError) as caught:
            await batcher.remove(users, journey_ids=[journey])
    failed_request = next(r for r in emulator.requests if r.status == 502)
    assert len(removals(emulator)) == 3
    assert caught.value.failed == tuple(u for u in users if u in failed_request.json["user_ids"])
    assert caught.value.removed == tuple(u for u in users if u not in caught.value.failed)
    assert [type(e) for e in caught.value.errors] == [ja.ServerError]
    assert emulator.users_in(journey) == set(caught.value.failed)


async def test_a_crash_reaches_only_the_callers_of_its_batch() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("all_journeys"):
            raise RuntimeError("a bug below the client")
        return OK

    async with mock_client(handler) as client, client.removal_batcher() as batcher:
        with pytest.raises(RuntimeError, match="a bug"):
            await batcher.remove(["a"], all_journeys=True)
        result = await batcher.remove(["b"], journey_ids=[JOURNEY_ID])
    assert result.user_ids == ("b",)


async def test_a_cancelled_caller_leaves_its_neighbours_request_alone() -> None:
    request_started = anyio.Event()
    release = anyio.Event()
    sent: list[list[str]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["user_ids"])
        request_started.set()
        await release.wait()
        return OK

    outcomes: dict[str, ja.RemovalResult] = {}
    scopes: dict[str, anyio.CancelScope] = {}

    async def remove(batcher: ja.RemovalBatcher, user: str) -> None:
        with anyio.CancelScope() as scope:
            scopes[user] = scope
            outcomes[user] = await batcher.remove([user], all_journeys=True)

    async with mock_client(handler) as client:
        with anyio.fail_after(HANG_GUARD):
            async with (
                client.removal_batcher(max_delay=0) as batcher,
                anyio.create_task_group() as task_group,
            ):
                task_group.start_soon(remove, batcher, "a")
                task_group.start_soon(remove, batcher, "b")
                await request_started.wait()
                scopes["a"].cancel()  # while the shared request is in flight
                await anyio.wait_all_tasks_blocked()
                release.set()
    assert [sorted(users) for users in sent] == [["a", "b"]]
    assert outcomes == {"b": ja.RemovalResult(user_ids=("b",), requests=1)}


async def test_a_caller_cancelled_before_the_send_does_not_stop_it(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    journey = emulator.add_journey(users=["a", "b"])
    async with (
        served_client(served) as client,
        client.removal_batcher(max_delay=3600) as batcher,
    ):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await batcher.remove(["a"], journey_ids=[journey])
        assert scope.cancelled_caught
        assert removals(emulator) == []
    # Its users were queued, and go out with the flush: removal is idempotent.
    assert removals(emulator) == [{"user_ids": ["a"], "journey_uuids": [journey]}]


async def test_a_batch_keeps_filling_while_every_sender_is_busy() -> None:
    release = anyio.Event()
    sent: list[list[str]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["user_ids"])
        await release.wait()
        return OK

    async with mock_client(handler, max_concurrency=1) as client:
        with anyio.fail_after(HANG_GUARD):
            async with (
                client.removal_batcher(max_delay=0) as batcher,
                anyio.create_task_group() as task_group,
            ):
                task_group.start_soon(batcher.remove, ["a"], None, True)
                await anyio.wait_all_tasks_blocked()  # "a" is in flight
                for user in ("b", "c", "d"):
                    # Each joins after the batch before it is past its delay.
                    task_group.start_soon(batcher.remove, [user], None, True)
                    await anyio.wait_all_tasks_blocked()
                release.set()
    assert sent == [["a"], ["b", "c", "d"]]


async def test_cancelling_the_batcher_tells_its_waiting_callers() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    outcomes: list[BaseException] = []

    async def remove(batcher: ja.RemovalBatcher) -> None:
        try:
            await batcher.remove(["a"], all_journeys=True)
        except RuntimeError as exc:
            outcomes.append(exc)

    async with mock_client(handler) as client:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as callers:
                with anyio.CancelScope() as owner:
                    async with client.removal_batcher(max_delay=0) as batcher:
                        callers.start_soon(remove, batcher)  # in another task group
                        await anyio.wait_all_tasks_blocked()
                        owner.cancel()
                        await anyio.sleep_forever()
    assert [str(e) for e in outcomes] == [
        "the removal batcher was cancelled before this removal was confirmed"
    ]


async def test_a_caller_returns_once_all_its_batches_are_settled() -> None:
    release = anyio.Event()
    sent: list[list[str]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        users = json.loads(request.content)["user_ids"]
        sent.append(users)
        if users[0] != "a":
            await release.wait()
        return OK

    results: list[ja.RemovalResult] = []

    async def remove(batcher: ja.RemovalBatcher) -> None:
        results.append(await batcher.remove(["a", "b", "c", "d", "e"], all_journeys=True))

    async with mock_client(handler) as client:
        with anyio.fail_after(HANG_GUARD):
            async with (
                client.removal_batcher(max_batch_size=2, max_delay=0) as batcher,
                anyio.create_task_group() as task_group,
            ):
                task_group.start_soon(remove, batcher)
                await anyio.wait_all_tasks_blocked()
                assert sorted(sent) == [["a", "b"], ["c", "d"], ["e"]]
                assert results == []  # the first batch is confirmed, the others not yet
                release.set()
    assert results == [ja.RemovalResult(user_ids=("a", "b", "c", "d", "e"), requests=3)]


async def test_batches_go_out_within_the_clients_bound(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    journeys = [emulator.add_journey(users=["a"]) for _ in range(4)]
    for journey in journeys:
        # Held long enough for the other requests to arrive, were they allowed.
        emulator.inject(Fault.delay(0.2, after_apply=True), endpoint="remove", journey_id=journey)
    async with (
        served_client(served, max_concurrency=2) as client,
        client.removal_batcher(max_delay=0) as batcher,
        anyio.create_task_group() as task_group,
    ):
        for journey in journeys:
            task_group.start_soon(batcher.remove, ["a"], [journey])
    assert len(removals(emulator)) == 4
    assert emulator.max_in_flight == 2


async def test_a_cancelled_owner_task_cancels_the_requests_in_flight() -> None:
    # asyncio's own cancellation (as at shutdown), not an anyio cancel scope.
    request_cancelled = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        try:
            await anyio.sleep_forever()
        finally:
            request_cancelled.set()
        raise AssertionError("unreachable")

    outcomes: list[BaseException] = []

    async def remove(batcher: ja.RemovalBatcher) -> None:
        try:
            await batcher.remove(["a"], all_journeys=True)
        except RuntimeError as exc:
            outcomes.append(exc)

    async with mock_client(handler) as client, anyio.create_task_group() as callers:

        async def owner() -> None:
            async with client.removal_batcher(max_delay=0) as batcher:
                callers.start_soon(remove, batcher)
                await anyio.sleep_forever()

        task = asyncio.create_task(owner())
        await anyio.wait_all_tasks_blocked()
        task.cancel()
        with anyio.fail_after(HANG_GUARD):
            await request_cancelled.wait()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert len(outcomes) == 1
    assert "cancelled before this removal was confirmed" in str(outcomes[0])


@pytest.mark.parametrize("bounds", [{"max_delay": -1.0}, {"max_delay": "soon"}])
def test_a_refused_bound_is_refused_by_the_client_and_its_traceback_shows_locals(
    bounds: dict[str, Any],
) -> None:
    # Before the batcher exists: a report that shows each frame's locals
    # (capture_locals, Sentry's) must not fail on a half-built batcher's repr.
    client = ja.AsyncJourneyClient(TOKEN)
    with pytest.raises((TypeError, ValueError), match="max_delay") as info:
        client.removal_batcher(**bounds)
    shown = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    assert "max_delay" in "".join(shown.format())


async def test_a_client_closed_under_the_batcher_fails_its_callers_with_typed_errors(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    # A lifespan that closes the client before the batcher (or a shutdown hook
    # in another task): the callers get the errors remove_users gives, not
    # httpx's raw RuntimeError, and nothing more is attempted.
    journey = emulator.add_journey(users=["a", "b", "c"])
    client = served_client(served)
    async with client.removal_batcher(max_delay=0) as batcher:
        await batcher.remove(["a"], journey_ids=[journey])
        await client.aclose()
        with pytest.raises(ja.APIConnectionError, match="closed"):
            await batcher.remove(["b"], journey_ids=[journey])
        with pytest.raises(ja.NotAttemptedError):
            await batcher.remove(["c"], journey_ids=[journey])
    assert emulator.users_in(journey) == {"b", "c"}
