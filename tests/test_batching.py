"""
Batched removals: `remove_users` in chunks, its outcome rule, on_removed,
and 413 halving (by `remove_users` and by a `RemovalBatcher`).
`RemovalBatcher` itself is in tests/test_batcher.py.

respx for request bodies and outcome rules; the emulator served on 127.0.0.1
for concurrency, scripted faults and the state the removals leave behind;
`httpx.MockTransport` where a test must hold a request in flight.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
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
    serve_one,
    served_client,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from payloads import JOURNEY_ID, REMOVAL_URL, TOKEN

import journey_async as ja
from journey_async.testing import EmulatorServer, Fault, JourneyEmulator

served = pytest.fixture(serve_one, scope="module")
emulator = pytest.fixture(fresh_emulator)


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


def refuse_bodies_above(limit: int) -> Callable[[httpx.Request], httpx.Response]:
    """A gateway's body size limit (nginx's client_max_body_size): in bytes."""

    def respond(request: httpx.Request) -> httpx.Response:
        if len(request.content) > limit:
            return httpx.Response(413)
        return OK

    return respond


HUGE_ID = "x" * 5000  # alone over the limit of refuse_bodies_above(2000)


async def test_one_oversized_id_does_not_split_the_rest_of_the_call(
    api: respx.MockRouter,
) -> None:
    route = api.post(REMOVAL_URL).mock(side_effect=refuse_bodies_above(2000))
    users = [f"u{n}" for n in range(127)]  # 64 fit in 2000 bytes, in one request
    async with ja.AsyncJourneyClient(TOKEN, retry=None, max_concurrency=1) as client:
        with pytest.raises(ja.RemovalError) as info:
            await client.remove_users([HUGE_ID, *users], all_journeys=True, batch_size=64)
    assert info.value.removed == tuple(users)
    assert info.value.failed == (HUGE_ID,)
    sizes = [len(body["user_ids"]) for body in bodies(route)]
    # The first chunk is halved down to the oversized id (refused: 64 to 1),
    # the other halves fit (1 to 32); the second chunk goes out whole, since
    # the 413s were that id's, not the chunk size's (it went out as 64
    # requests of one user: a request a user for the rest of the call).
    assert sizes == [64, 32, 16, 8, 4, 2, 1, 1, 2, 4, 8, 16, 32, 64]


async def test_a_batcher_goes_on_batching_after_one_oversized_id() -> None:
    sizes: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sizes.append(len(json.loads(request.content)["user_ids"]))
        return refuse_bodies_above(2000)(request)

    async with mock_client(handler) as client, client.removal_batcher() as batcher:
        with pytest.raises(ja.RemovalError):
            await batcher.remove([HUGE_ID, "a"], all_journeys=True)
        sizes.clear()
        async with anyio.create_task_group() as task_group:
            for n in range(50):
                task_group.start_soon(batcher.remove, [f"u{n}"], None, True)
    assert sizes == [50]  # one request, not 50 of one user each, for the batcher's life


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


async def test_a_split_batch_answers_each_caller_in_its_own_order() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        user_ids = json.loads(request.content)["user_ids"]
        if len(user_ids) > 2:
            return httpx.Response(413)
        return httpx.Response(500) if "w" in user_ids else OK

    outcomes: dict[str, ja.RemovalResult | ja.JourneyError] = {}

    async def remove(batcher: ja.RemovalBatcher, users: list[str], target: list[str]) -> None:
        journey_ids = target or None
        try:
            outcomes["".join(users)] = await batcher.remove(users, journey_ids, not target)
        except ja.JourneyError as exc:
            outcomes["".join(users)] = exc

    async with (
        mock_client(handler) as client,
        anyio.create_task_group() as task_group,
        client.removal_batcher(max_delay=3600) as batcher,  # flushed on leaving
    ):
        for users, target in (
            (["z", "v"], []),
            (["a", "b", "v", "z"], []),  # one batch: z v a b, sent as z v and a b
            (["w", "c"], [JOURNEY_ID]),
            (["d", "c", "w"], [JOURNEY_ID]),  # one batch: w c d, sent as w and c d
        ):
            task_group.start_soon(remove, batcher, users, target)
            await anyio.wait_all_tasks_blocked()
    # Each caller's users come back in the order it gave them, as from
    # remove_users, not in the order the batch's halves settled.
    assert outcomes["abvz"] == ja.RemovalResult(user_ids=("a", "b", "v", "z"), requests=2)
    error = outcomes["dcw"]
    assert isinstance(error, ja.RemovalError)
    assert (error.removed, error.failed) == (("d", "c"), ("w",))


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
