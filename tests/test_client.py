"""
AsyncJourneyClient against respx: the requests its endpoints send, input
refused before any request, 2xx bodies that do not parse, the token kept
secret.

The constructor's checks are in tests/test_config.py, the error mapping in
tests/test_outcomes.py, the connections and fork safety in tests/test_shared.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from payloads import JOURNEY_ID, MIXED_EXAMPLE, REMOVAL_URL, STATS_URL, TOKEN

import journey_async as ja


@pytest.fixture
async def client() -> AsyncIterator[ja.AsyncJourneyClient]:
    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        yield client


async def test_get_stats_sends_auth_and_user_agent(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    route = api.get(STATS_URL).respond(json=MIXED_EXAMPLE)
    stats = await client.get_stats(JOURNEY_ID)
    assert [type(p.stat) for p in stats.points] == [ja.MessageStats, ja.InAppStats]
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Api {TOKEN}"
    assert request.headers["User-Agent"] == f"journey-async/{ja.__version__}"
    assert request.extensions["timeout"] == httpx.Timeout(10.0, connect=5.0).as_dict()


async def test_remove_users_from_journeys(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    route = api.post(REMOVAL_URL).respond(json={"success": True})
    result = await client.remove_users(["u1", "u2", "u1"], journey_ids=[JOURNEY_ID])
    assert result.user_ids == ("u1", "u2")
    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"user_ids": ["u1", "u2"], "journey_uuids": [JOURNEY_ID]}


async def test_remove_users_from_all_journeys(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    route = api.post(REMOVAL_URL).respond(json={"success": True})
    await client.remove_users(iter(["u1"]), all_journeys=True)
    assert json.loads(route.calls.last.request.content) == {
        "user_ids": ["u1"],
        "all_journeys": True,
    }


# Bad input: refused before anything is sent ---------------------------------

BAD_JOURNEY_IDS = [
    ("", ValueError),
    (".", ValueError),
    ("..", ValueError),
    ("a/b", ValueError),
    ("../../admin", ValueError),
    ("a?x=1", ValueError),
    ("a#frag", ValueError),
    ("a%2Fb", ValueError),
    ("a\\b", ValueError),
    ("a\nb", ValueError),
    ("a\x00b", ValueError),
    ("a\x7fb", ValueError),
    (None, TypeError),
    (123, TypeError),
    (b"abc", TypeError),
]


@pytest.mark.parametrize(("journey_id", "error"), BAD_JOURNEY_IDS)
async def test_bad_journey_id_sends_nothing(
    api: respx.MockRouter, client: ja.AsyncJourneyClient, journey_id: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.get_stats(journey_id)
    assert api.calls.call_count == 0


@pytest.mark.parametrize("callback", ["progress", "on_removed"])
async def test_a_callback_that_is_not_callable_sends_nothing(
    api: respx.MockRouter, client: ja.AsyncJourneyClient, callback: str
) -> None:
    # Found late, it raised TypeError after the batch had landed.
    kwargs: dict[str, Any] = {callback: 5}
    with pytest.raises(TypeError, match=f"{callback} must be callable"):
        await client.remove_users(["u1"], all_journeys=True, **kwargs)
    with pytest.raises(TypeError, match="progress must be callable"):
        await client.get_stats_many([JOURNEY_ID], progress=5)  # type: ignore[arg-type]
    assert api.calls.call_count == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"user_ids": [], "all_journeys": True}, ValueError, "user_ids is empty"),
        ({"user_ids": "user1", "all_journeys": True}, TypeError, "bare str"),
        ({"user_ids": b"user1", "all_journeys": True}, TypeError, "bare bytes"),
        ({"user_ids": ["u1", 2], "all_journeys": True}, TypeError, r"user_ids\[1\]"),
        ({"user_ids": ["u1", ""], "all_journeys": True}, ValueError, "empty string"),
        ({"user_ids": 5, "all_journeys": True}, TypeError, "iterable"),
        ({"user_ids": ["u1"]}, ValueError, "pass journey_ids, or all_journeys=True"),
        (
            {"user_ids": ["u1"], "journey_ids": [JOURNEY_ID], "all_journeys": True},
            ValueError,
            "not both",
        ),
        ({"user_ids": ["u1"], "journey_ids": []}, ValueError, "journey_ids is empty"),
        ({"user_ids": ["u1"], "journey_ids": JOURNEY_ID}, TypeError, "bare str"),
        ({"user_ids": ["u1"], "journey_ids": ["a/b"]}, ValueError, "URL path"),
        ({"user_ids": ["u1"], "journey_ids": [None]}, TypeError, r"journey_ids\[0\]"),
        ({"user_ids": ["u1"], "all_journeys": "yes"}, TypeError, "all_journeys must be a bool"),
        ({"user_ids": ["u1"], "journey_ids": None, "all_journeys": False}, ValueError, "pass"),
    ],
)
async def test_bad_removal_input_sends_nothing(
    api: respx.MockRouter,
    client: ja.AsyncJourneyClient,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        await client.remove_users(**kwargs)
    assert api.calls.call_count == 0


# The base URL's path ---------------------------------------------------------


async def test_base_url_path_prefix_is_kept(api: respx.MockRouter) -> None:
    route = api.get(f"https://proxy.example.com/pw/api/journey/{JOURNEY_ID}/statistics/external")
    route.respond(json=MIXED_EXAMPLE)
    async with ja.AsyncJourneyClient(TOKEN, base_url="https://proxy.example.com/pw/") as client:
        await client.get_stats(JOURNEY_ID)
    assert route.call_count == 1


# The token stays secret ------------------------------------------------------


def test_repr_hides_token() -> None:
    client = ja.AsyncJourneyClient(TOKEN)
    assert TOKEN not in repr(client)
    assert "[secret]" in repr(client)


@pytest.mark.parametrize(
    ("token", "options"),
    [
        (TOKEN, {"base_url": "http://example.com"}),
        (TOKEN, {"max_concurrency": 0}),
        (TOKEN, {"proxy": "gopher://proxy.internal"}),
        (TOKEN, {"timeout": "soon"}),
        (f"{TOKEN}\n", {}),  # refused itself, and still the caller's secret
        (None, {}),  # read from the environment, with a stray newline
    ],
    ids=["base_url", "max_concurrency", "proxy", "timeout", "token", "environment"],
)
def test_a_refused_construction_shows_no_token_in_the_tracebacks_locals(
    monkeypatch: pytest.MonkeyPatch, token: str | None, options: dict[str, Any]
) -> None:
    # What a report that shows each frame's locals (Sentry's, `--showlocals`)
    # makes of a misconfigured client: it must neither fail nor show the token.
    monkeypatch.setenv("PUSHWOOSH_API_TOKEN", f"{TOKEN}\n")
    with pytest.raises((TypeError, ValueError)) as info:
        ja.AsyncJourneyClient(token, **options)
    error = info.value
    assert error.__traceback__ is not None
    # From the library's frames on: the test's own frame holds the token.
    library = error.__traceback__.tb_next
    shown = traceback.TracebackException(type(error), error, library, capture_locals=True)
    text = "".join(shown.format())
    assert TOKEN not in text
    assert str(info.value) in text


async def test_token_never_logged_or_in_errors(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.get(STATS_URL).respond(401, json={"message": "bad token"})
    api.post(REMOVAL_URL).mock(side_effect=httpx.ConnectError("refused"))
    errors: list[BaseException] = []
    # Retried (and logged) without real waits.
    no_waits = ja.RetryPolicy(initial_delay=0, max_delay=0)
    async with ja.AsyncJourneyClient(TOKEN, retry=no_waits) as client:
        for call in (client.get_stats(JOURNEY_ID), client.remove_users(["u"], all_journeys=True)):
            try:
                await call
            except ja.JourneyError as exc:
                errors.append(exc)
    assert len(errors) == 2
    assert caplog.records, "DEBUG logging was captured"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    for error in errors:
        assert TOKEN not in str(error)
        assert TOKEN not in repr(error)


async def test_removal_answered_204_is_confirmed(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    api.post(REMOVAL_URL).respond(204)
    result = await client.remove_users(["u1"], all_journeys=True)
    assert result.user_ids == ("u1",)


# A 2xx body that does not parse (_parse) --------------------------------------


async def test_malformed_success_body_is_response_format_error(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    api.get(STATS_URL).respond(200, content=b'{"payload": {"title"')
    with pytest.raises(ja.ResponseFormatError, match="is not JSON"):
        await client.get_stats(JOURNEY_ID)


async def test_removal_not_confirmed_is_response_format_error(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    api.post(REMOVAL_URL).respond(200, json={"success": False})
    with pytest.raises(ja.ResponseFormatError, match="did not confirm"):
        await client.remove_users(["u1"], all_journeys=True)


async def test_token_echoed_by_the_server_is_blotted_out(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    api.get(STATS_URL).respond(401, json={"message": f"invalid token 'Api {TOKEN}'"})
    api.post(REMOVAL_URL).respond(200, text=f"you sent Api {TOKEN}")
    with pytest.raises(ja.AuthenticationError) as status_info:
        await client.get_stats(JOURNEY_ID)
    with pytest.raises(ja.ResponseFormatError) as format_info:
        await client.remove_users(["u1"], all_journeys=True)
    for error in (status_info.value, format_info.value):
        assert TOKEN not in str(error)
        assert "Api [secret]" in str(error)
    assert status_info.value.message == "invalid token 'Api [secret]'"


class CallbackBug(Exception):
    """What a caller's own callback raises."""


@pytest.mark.parametrize(
    "callback", ["stats progress", "iter_stats progress", "progress", "on_removed", "on_retry"]
)
async def test_a_callback_that_raises_stops_the_call_with_that_very_exception(
    callback: str,
) -> None:
    # The caller's bug is theirs to see, unwrapped (not a JourneyError, not
    # an ExceptionGroup), and the call stops there: nothing is sent after it.
    from journey_async.testing import Fault, JourneyEmulator, emulator_client

    bug = CallbackBug(callback)

    def raising(*_: object) -> None:
        raise bug

    emulator = JourneyEmulator.with_sample_data(journeys=40)
    emulator.inject(Fault.status(503), endpoint="stats")
    on_retry = raising if callback == "on_retry" else None
    policy = ja.RetryPolicy(on_retry=on_retry, initial_delay=0.0, max_delay=0.0)
    users = [f"u{n}" for n in range(40)]

    async def call(client: ja.AsyncJourneyClient) -> None:
        if callback == "on_retry":
            await client.get_stats_many(emulator.journey_ids)
        elif callback == "stats progress":
            await client.get_stats_many(emulator.journey_ids, progress=raising)
        elif callback == "iter_stats progress":
            async for _ in client.iter_stats(emulator.journey_ids, progress=raising):
                pass
        else:
            kwargs: dict[str, Any] = {callback: raising}
            await client.remove_users(users, all_journeys=True, batch_size=1, **kwargs)

    async with emulator_client(emulator, retry=policy, max_concurrency=2) as client:
        with pytest.raises(CallbackBug) as info:
            await call(client)
        sent = len(emulator.requests)
        await asyncio.sleep(0.05)
    assert info.value is bug
    assert len(emulator.requests) == sent < 40


async def test_a_closed_client_cannot_be_entered_again() -> None:
    # Its calls would all fail: refused at the block's start, as httpx's
    # client refuses to reopen; a copy shares the closed connections.
    client = ja.AsyncJourneyClient(TOKEN)
    async with client:
        pass
    with pytest.raises(RuntimeError, match="create a new AsyncJourneyClient"):
        async with client:
            pass
    with pytest.raises(RuntimeError, match="has been closed"):
        async with client.with_options(timeout=1.0):
            pass
