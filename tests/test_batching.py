"""
Batched removals: `remove_users` in chunks, and `RemovalBatcher`.

respx for request bodies and outcome rules; the emulator served on 127.0.0.1
for concurrency, scripted faults and the state the removals leave behind;
`httpx.MockTransport` where a test must hold a request in flight.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from payloads import BASE_URL, JOURNEY_ID, TOKEN

import journey_async as ja
from journey_async.testing import EmulatorServer, Fault, JourneyEmulator, serve_emulator

REMOVAL_URL = f"{BASE_URL}/api/journey/drop-users/external"
# Generous: only reached when something hangs, never part of what is measured.
HANG_GUARD = 10


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    # One server for the module: each test makes its own journeys and user ids.
    with serve_emulator(JourneyEmulator()) as server:
        yield server


@pytest.fixture
def emulator(served: EmulatorServer) -> JourneyEmulator:
    served.emulator.clear_faults()
    served.emulator.reset_counters()
    return served.emulator


def served_client(served: EmulatorServer, **kwargs: Any) -> ja.AsyncJourneyClient:
    return ja.AsyncJourneyClient(served.emulator.token, base_url=served.url, retry=None, **kwargs)


def mock_client(
    handler: Callable[[httpx.Request], Coroutine[None, None, httpx.Response]], **kwargs: Any
) -> ja.AsyncJourneyClient:
    return ja.AsyncJourneyClient(
        TOKEN, retry=None, transport=httpx.MockTransport(handler), **kwargs
    )


def new_ids(count: int, prefix: str = "user") -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{prefix}-{tag}-{n}" for n in range(count)]


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


def removals(emulator: JourneyEmulator) -> list[dict[str, Any]]:
    return [r.json for r in emulator.requests if r.endpoint == "remove"]


OK = httpx.Response(200, json={"success": True})


# --- remove_users: chunks -----------------------------------------------------------------


async def test_2500_ids_at_batch_size_1000_take_3_requests(api: respx.MockRouter) -> None:
    route = api.post(REMOVAL_URL).mock(return_value=OK)
    users = [f"u{n}" for n in range(2500)]
    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        result = await client.remove_users(users, journey_ids=[JOURNEY_ID], batch_size=1000)
    assert result == ja.RemovalResult(user_ids=tuple(users), requests=3)
    sent = sorted(bodies(route), key=lambda body: users.index(body["user_ids"][0]))
    assert sent == [
        {"user_ids": users[0:1000], "journey_uuids": [JOURNEY_ID]},
        {"user_ids": users[1000:2000], "journey_uuids": [JOURNEY_ID]},
        {"user_ids": users[2000:2500], "journey_uuids": [JOURNEY_ID]},
    ]


async def test_batch_size_defaults_to_the_clients(api: respx.MockRouter) -> None:
    route = api.post(REMOVAL_URL).mock(return_value=OK)
    async with ja.AsyncJourneyClient(TOKEN, retry=None, batch_size=2) as client:
        result = await client.remove_users(["a", "b", "c", "d", "e"], all_journeys=True)
    assert result.requests == 3
    assert sorted(len(body["user_ids"]) for body in bodies(route)) == [1, 2, 2]
    assert all(body["all_journeys"] is True for body in bodies(route))


async def test_duplicates_dropped_before_chunking(api: respx.MockRouter) -> None:
    route = api.post(REMOVAL_URL).mock(return_value=OK)
    users = ["a", "b", "a", "c", "b", "d", "a", "e"]
    async with ja.AsyncJourneyClient(TOKEN, retry=None, max_concurrency=1) as client:
        result = await client.remove_users(users, all_journeys=True, batch_size=2)
    assert result.user_ids == ("a", "b", "c", "d", "e")
    assert [body["user_ids"] for body in bodies(route)] == [["a", "b"], ["c", "d"], ["e"]]


async def test_lazy_iterable_is_read_and_checked_before_any_request(
    api: respx.MockRouter,
) -> None:
    route = api.post(REMOVAL_URL).mock(return_value=OK)

    def from_a_file() -> Iterator[Any]:
        yield from (f"u{n}" for n in range(10))
        yield 42  # a bad line at the end of the file

    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        with pytest.raises(TypeError, match=r"user_ids\[10\] must be a string"):
            await client.remove_users(from_a_file(), all_journeys=True, batch_size=3)
        assert not route.called
        result = await client.remove_users(
            (f"u{n}" for n in range(10)), all_journeys=True, batch_size=3
        )
    assert result.requests == 4


@pytest.mark.parametrize(
    ("batch_size", "error"),
    [(0, ValueError), (-5, ValueError), (True, TypeError), (2.0, TypeError)],
)
async def test_bad_batch_size_sends_nothing(
    api: respx.MockRouter, batch_size: Any, error: type[Exception]
) -> None:
    route = api.post(REMOVAL_URL).mock(return_value=OK)
    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        with pytest.raises(error, match="batch_size"):
            await client.remove_users(["u"], all_journeys=True, batch_size=batch_size)
    assert not route.called


# --- remove_users: outcomes ---------------------------------------------------------------


def answer_by_first_user(answers: dict[str, httpx.Response]) -> Callable[..., httpx.Response]:
    # Chosen by the body, not by arrival order: chunks are sent concurrently.
    def respond(request: httpx.Request) -> httpx.Response:
        return answers.get(json.loads(request.content)["user_ids"][0], OK)

    return respond


async def test_nothing_confirmed_raises_the_first_failing_requests_own_error(
    api: respx.MockRouter,
) -> None:
    api.post(REMOVAL_URL).mock(
        side_effect=answer_by_first_user(
            {
                "a": httpx.Response(400, json={"message": "user_ids must be provided"}),
                "c": httpx.Response(503),
            }
        )
    )
    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        with pytest.raises(ja.BadRequestError, match="user_ids must be provided"):
            await client.remove_users(["a", "b", "c", "d"], all_journeys=True, batch_size=2)


async def test_partial_failure_accounts_for_every_user_in_input_order(
    api: respx.MockRouter,
) -> None:
    api.post(REMOVAL_URL).mock(
        side_effect=answer_by_first_user({"c": httpx.Response(500), "g": httpx.Response(429)})
    )
    users = ["a", "b", "c", "d", "e", "f", "g"]
    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        with pytest.raises(ja.RemovalError) as caught:
            await client.remove_users(users, all_journeys=True, batch_size=2)
    error = caught.value
    assert error.removed == ("a", "b", "e", "f")
    assert error.failed == ("c", "d", "g")
    assert [type(e) for e in error.errors] == [ja.ServerError, ja.RateLimitError]


async def test_progress_reports_each_settled_batch(api: respx.MockRouter) -> None:
    api.post(REMOVAL_URL).mock(side_effect=answer_by_first_user({"c": httpx.Response(500)}))
    reported: list[int] = []
    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        with pytest.raises(ja.RemovalError):
            await client.remove_users(
                ["a", "b", "c", "d", "e"], all_journeys=True, batch_size=2, progress=reported.append
            )
        await client.remove_users(["x"], all_journeys=True, progress=reported.append)
    assert sorted(reported[:3]) == [1, 2, 2]  # the failed batch is settled too
    assert reported[3:] == [1]


async def test_a_crash_propagates_and_cancels_the_other_batches() -> None:
    others_started = anyio.Event()
    in_flight: list[str] = []
    cancelled: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        first = json.loads(request.content)["user_ids"][0]
        if first == "a":
            await others_started.wait()
            raise RuntimeError("a bug below the client")
        in_flight.append(first)
        if len(in_flight) == 2:
            others_started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(first)
            raise
        raise AssertionError("unreachable")

    async with mock_client(handler) as client:
        with anyio.fail_after(HANG_GUARD), pytest.raises(RuntimeError, match="a bug"):
            await client.remove_users(["a", "b", "c"], all_journeys=True, batch_size=1)
    assert sorted(cancelled) == ["b", "c"]


async def test_cancelling_the_caller_cancels_the_requests_in_flight() -> None:
    cancelled: list[str] = []
    all_started = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        cancelled.append("started")
        if cancelled.count("started") == 3:
            all_started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append("cancelled")
            raise
        raise AssertionError("unreachable")

    async with mock_client(handler) as client, anyio.create_task_group() as task_group:
        task_group.start_soon(
            lambda: client.remove_users(["a", "b", "c"], all_journeys=True, batch_size=1)
        )
        with anyio.fail_after(HANG_GUARD):
            await all_started.wait()
        task_group.cancel_scope.cancel()
    assert cancelled.count("cancelled") == 3


# --- remove_users against the served emulator ---------------------------------------------


async def test_chunks_go_out_concurrently_within_the_clients_bound(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    users = new_ids(12)
    journey = emulator.add_journey(users=users)
    # Each request is held long enough for its neighbours to arrive.
    emulator.inject(
        *[Fault.delay(0.2, after_apply=True)] * 6, endpoint="remove", journey_id=journey
    )
    async with served_client(served, max_concurrency=3) as client:
        result = await client.remove_users(users, journey_ids=[journey], batch_size=2)
    assert result.requests == 6
    assert emulator.max_in_flight == 3
    assert emulator.users_in(journey) == frozenset()


FAULTS = st.sampled_from(
    [
        Fault.status(500),
        Fault.status(400),
        Fault.status(429),
        Fault.html(502),
        Fault.malformed_json(),
        Fault.drop(),
        # Carried out, then failed: "failed" means "not confirmed".
        Fault.status(503, after_apply=True),
        Fault.drop(after_apply=True),
    ]
)
POOL = [f"user-{n:02d}" for n in range(40)]


@settings(max_examples=30, deadline=None)
@given(
    users=st.lists(st.sampled_from(POOL), min_size=1, max_size=30),
    batch_size=st.integers(1, 8),
    concurrency=st.integers(1, 4),
    faults=st.lists(FAULTS, max_size=8),
)
def test_every_user_is_accounted_for_once(
    served: EmulatorServer,
    users: list[str],
    batch_size: int,
    concurrency: int,
    faults: list[Fault],
) -> None:
    emulator = served.emulator
    members = set(POOL[:30])  # some users handed in are in no journey: still "removed"
    journey = emulator.add_journey(users=members)
    unique = list(dict.fromkeys(users))
    faults = faults[: math.ceil(len(unique) / batch_size)]  # each is used up by one request
    emulator.inject(*faults, endpoint="remove", journey_id=journey)

    async def remove() -> ja.RemovalResult | ja.JourneyError:
        async with served_client(served, max_concurrency=concurrency) as client:
            try:
                return await client.remove_users(
                    users, journey_ids=[journey], batch_size=batch_size
                )
            except ja.JourneyError as exc:
                return exc

    outcome = anyio.run(remove)
    if isinstance(outcome, ja.RemovalResult):
        removed, failed = list(outcome.user_ids), []
    elif isinstance(outcome, ja.RemovalError):
        removed, failed = list(outcome.removed), list(outcome.failed)
        assert removed
        assert failed
        assert len(outcome.errors) == len(faults)
    else:  # the request's own error: nothing was confirmed
        assert not isinstance(outcome, ja.RemovalError)
        removed, failed = [], unique

    assert emulator.pending_faults == 0
    assert sorted(removed + failed) == sorted(unique)  # removed | failed == input ...
    assert not set(removed) & set(failed)  # ... and never both
    assert [u for u in unique if u in removed] == removed  # input order
    assert [u for u in unique if u in failed] == failed
    assert bool(failed) == bool(faults)
    remaining = emulator.users_in(journey)
    if not any(fault.after_apply for fault in faults):
        assert remaining == members - set(removed)
    else:
        assert members - set(removed) - set(failed) <= remaining <= members - set(removed)


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


# --- remove_users: on_removed, 413 ----------------------------------------------------------


async def test_on_removed_tells_a_cancelled_caller_what_landed() -> None:
    hung = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["user_ids"][0] == "e":
            hung.set()
            await anyio.sleep_forever()
        return OK

    landed: list[str] = []

    async def remove(client: ja.AsyncJourneyClient) -> None:
        await client.remove_users(
            list("abcdefgh"), all_journeys=True, batch_size=2, on_removed=landed.extend
        )

    async with (
        mock_client(handler, max_concurrency=1) as client,
        anyio.create_task_group() as task_group,
    ):
        task_group.start_soon(remove, client)
        with anyio.fail_after(HANG_GUARD):
            await hung.wait()
        task_group.cancel_scope.cancel()
    assert landed == ["a", "b", "c", "d"]


async def test_on_removed_is_called_once_per_confirmed_request(api: respx.MockRouter) -> None:
    api.post(REMOVAL_URL).mock(side_effect=answer_by_first_user({"c": httpx.Response(500)}))
    landed: list[list[str]] = []
    async with ja.AsyncJourneyClient(TOKEN, retry=None, max_concurrency=1) as client:
        with pytest.raises(ja.RemovalError) as info:
            await client.remove_users(
                list("abcde"),
                all_journeys=True,
                batch_size=2,
                on_removed=lambda u: landed.append(list(u)),
            )
    assert landed == [["a", "b"], ["e"]]
    assert info.value.removed == ("a", "b", "e")


def refuse_above(limit: int) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        if len(json.loads(request.content)["user_ids"]) > limit:
            return httpx.Response(413, text="<html>413 Request Entity Too Large</html>")
        return OK

    return respond


async def test_a_batch_refused_as_too_large_is_sent_in_halves(api: respx.MockRouter) -> None:
    route = api.post(REMOVAL_URL).mock(side_effect=refuse_above(3))
    users = [f"u{n}" for n in range(20)]
    landed: list[str] = []
    async with ja.AsyncJourneyClient(TOKEN, retry=None, max_concurrency=1) as client:
        result = await client.remove_users(
            users, all_journeys=True, batch_size=10, on_removed=landed.extend
        )
    assert result.user_ids == tuple(users)
    assert sorted(landed) == sorted(users)
    sizes = [len(body["user_ids"]) for body in bodies(route)]
    # 10 refused, then 5 refused, then 2 and 3 fit; the second chunk of 10 and
    # halves of 5 are split before sending, from what the first 413 showed.
    assert sizes == [10, 5, 2, 3, 2, 3, 2, 3, 2, 3]
    assert result.requests == 8


async def test_a_single_user_too_large_is_a_typed_error(api: respx.MockRouter) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        user_ids = json.loads(request.content)["user_ids"]
        if "huge" in user_ids:
            return httpx.Response(413)
        return OK

    api.post(REMOVAL_URL).mock(side_effect=respond)
    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        with pytest.raises(ja.RemovalError) as info:
            await client.remove_users(["a", "huge", "b", "c"], all_journeys=True, batch_size=4)
        with pytest.raises(ja.RequestTooLargeError):
            await client.remove_users(["huge"], all_journeys=True)
    error = info.value
    assert error.removed == ("a", "b", "c")
    assert error.failed == ("huge",)
    assert [type(e) for e in error.errors] == [ja.RequestTooLargeError]
    assert isinstance(error.errors[0], ja.RequestTooLargeError)
    assert error.errors[0].status_code == 413


async def test_a_batcher_splits_a_batch_refused_as_too_large() -> None:
    sizes: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        user_ids = json.loads(request.content)["user_ids"]
        sizes.append(len(user_ids))
        return refuse_above(2)(request)

    results: dict[str, ja.RemovalResult] = {}

    async def remove(batcher: ja.RemovalBatcher, users: list[str]) -> None:
        results[users[0]] = await batcher.remove(users, all_journeys=True)

    async with (
        mock_client(handler) as client,
        client.removal_batcher(max_batch_size=100) as batcher,
        anyio.create_task_group() as task_group,
    ):
        task_group.start_soon(remove, batcher, ["a", "b", "c"])
        task_group.start_soon(remove, batcher, ["d", "e"])
    # abcde refused; ab fits; cde refused, then c and de fit.
    assert sizes == [5, 2, 3, 1, 2]
    assert results == {
        "a": ja.RemovalResult(user_ids=("a", "b", "c"), requests=2),
        "d": ja.RemovalResult(user_ids=("d", "e"), requests=1),
    }


async def test_413_halving_against_the_served_emulators_body_limit(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    users = new_ids(40, prefix="big")
    journey = emulator.add_journey(users=[*users, "stays"])
    one_user = len(json.dumps({"user_ids": [users[0]], "journey_uuids": [journey]}))
    emulator.max_body_bytes = 3 * one_user  # about two users' worth a request
    emulator.add_users(journey, ["x" * (3 * one_user)])
    try:
        async with served_client(served, max_concurrency=4) as client:
            with pytest.raises(ja.RemovalError) as info:
                await client.remove_users(
                    [*users, "x" * (3 * one_user)], journey_ids=[journey], batch_size=16
                )
    finally:
        emulator.max_body_bytes = None
    error = info.value
    assert error.removed == tuple(users)
    assert error.failed == ("x" * (3 * one_user),)
    assert [type(e) for e in error.errors] == [ja.RequestTooLargeError]
    assert emulator.users_in(journey) == {"stays", "x" * (3 * one_user)}
    refused = [r for r in emulator.requests if r.status == 413]
    accepted = [r for r in emulator.requests if r.status == 200]
    assert refused
    assert sorted(u for r in accepted for u in r.json["user_ids"]) == sorted(users)  # each once


@settings(max_examples=30, deadline=None)
@given(
    users=st.lists(st.sampled_from(POOL), min_size=1, max_size=30),
    batch_size=st.integers(1, 8),
    concurrency=st.integers(1, 4),
    faults=st.lists(
        st.sampled_from([Fault.status(401), Fault.status(403), Fault.status(500)]), max_size=4
    ),
    fitting=st.one_of(st.none(), st.integers(1, 6)),
)
def test_fail_fast_and_halving_keep_every_user_accounted_for(
    served: EmulatorServer,
    users: list[str],
    batch_size: int,
    concurrency: int,
    faults: list[Fault],
    fitting: int | None,
) -> None:
    emulator = served.emulator
    emulator.clear_faults()
    journey = emulator.add_journey(users=POOL)
    unique = list(dict.fromkeys(users))
    emulator.inject(*faults, endpoint="remove", journey_id=journey)
    # A body limit that fits *fitting* users a request, when set.
    emulator.max_body_bytes = (
        None
        if fitting is None
        else len(json.dumps({"user_ids": POOL[:fitting], "journey_uuids": [journey]}))
    )

    async def remove() -> ja.RemovalResult | ja.JourneyError:
        async with served_client(served, max_concurrency=concurrency) as client:
            try:
                return await client.remove_users(
                    users, journey_ids=[journey], batch_size=batch_size
                )
            except ja.JourneyError as exc:
                return exc

    try:
        outcome = anyio.run(remove)
    finally:
        emulator.max_body_bytes = None
        emulator.clear_faults()
    if isinstance(outcome, ja.RemovalResult):
        removed, failed = list(outcome.user_ids), []
    elif isinstance(outcome, ja.RemovalError):
        removed, failed = list(outcome.removed), list(outcome.failed)
        stopped = any(isinstance(e, ja.AuthenticationError) for e in outcome.errors)
        # Not-attempted users, if any, are stood for by one NotAttemptedError.
        assert sum(isinstance(e, ja.NotAttemptedError) for e in outcome.errors) <= int(stopped)
    else:
        assert not isinstance(outcome, ja.NotAttemptedError), "the request's own error"
        removed, failed = [], unique
    assert sorted(removed + failed) == sorted(unique)
    assert not set(removed) & set(failed)
    assert [u for u in unique if u in removed] == removed
    assert emulator.users_in(journey) == set(POOL) - set(removed)
