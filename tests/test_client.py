"""AsyncJourneyClient against respx: requests, error mapping, input checks, secrecy."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from payloads import BASE_URL, JOURNEY_ID, MIXED_EXAMPLE, TOKEN

import journey_async as ja

STATS_URL = f"{BASE_URL}/api/journey/{JOURNEY_ID}/statistics/external"
REMOVAL_URL = f"{BASE_URL}/api/journey/drop-users/external"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    # assert_all_mocked: a request nothing here expects fails the test.
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


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


@pytest.mark.parametrize(
    ("status", "error", "body"),
    [
        (400, ja.BadRequestError, {"success": False, "message": "user_ids must be provided"}),
        (401, ja.AuthenticationError, {"message": "bad token"}),
        (403, ja.AuthenticationError, {}),
        (404, ja.NotFoundError, {"success": False}),
        (409, ja.APIStatusError, None),
        (429, ja.RateLimitError, None),
        (500, ja.ServerError, None),
        (502, ja.ServerError, None),
        (503, ja.ServerError, None),
        (504, ja.ServerError, None),
        (599, ja.ServerError, None),
        (600, ja.APIStatusError, None),  # not HTTP's: 5xx only is a server error
        (999, ja.APIStatusError, None),
    ],
)
async def test_status_maps_to_error(
    api: respx.MockRouter,
    client: ja.AsyncJourneyClient,
    status: int,
    error: type[ja.APIStatusError],
    body: dict[str, Any] | None,
) -> None:
    api.get(STATS_URL).respond(status, json=body)
    with pytest.raises(error) as info:
        await client.get_stats(JOURNEY_ID)
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.response.status_code == status
    expected = body.get("message") if body else None
    phrase = httpx.codes.get_reason_phrase(status) or "error"  # no phrase for 599 and up
    assert info.value.message == (expected or phrase)
    assert f"GET /api/journey/{JOURNEY_ID}/statistics/external -> {status}" in str(info.value)


async def test_bad_request_carries_server_message(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    message = "journey_uuids must be provided if all_journeys is false"
    api.post(REMOVAL_URL).respond(400, json={"success": False, "message": message})
    with pytest.raises(ja.BadRequestError, match=message):
        await client.remove_users(["u1"], journey_ids=[JOURNEY_ID])


async def test_html_error_page_is_summarised(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    api.get(STATS_URL).respond(502, html=html)
    with pytest.raises(ja.ServerError) as info:
        await client.get_stats(JOURNEY_ID)
    assert info.value.message.startswith("Bad Gateway (body is not JSON: '<html><head>")


@pytest.mark.parametrize(("retry_after", "expected"), [("7", 7.0), (None, None), ("soon", None)])
async def test_rate_limit_carries_retry_after(
    api: respx.MockRouter,
    client: ja.AsyncJourneyClient,
    retry_after: str | None,
    expected: float | None,
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    api.get(STATS_URL).respond(429, headers=headers)
    with pytest.raises(ja.RateLimitError) as info:
        await client.get_stats(JOURNEY_ID)
    assert info.value.retry_after == expected


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


@pytest.mark.parametrize(
    ("side_effect", "error"),
    [
        (httpx.ConnectError("connection refused"), ja.APIConnectionError),
        (httpx.RemoteProtocolError("peer closed connection"), ja.APIConnectionError),
        (httpx.ReadTimeout("timed out"), ja.APITimeoutError),
        (httpx.ConnectTimeout("timed out"), ja.APITimeoutError),
        (httpx.PoolTimeout("timed out"), ja.APITimeoutError),
    ],
)
async def test_transport_errors_map_to_connection_errors(
    api: respx.MockRouter,
    client: ja.AsyncJourneyClient,
    side_effect: Exception,
    error: type[ja.APIConnectionError],
) -> None:
    api.get(STATS_URL).mock(side_effect=side_effect)
    with pytest.raises(error) as info:
        await client.get_stats(JOURNEY_ID)
    assert type(info.value) is error
    assert info.value.__cause__ is side_effect


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


# Construction ---------------------------------------------------------------


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHWOOSH_API_TOKEN", TOKEN)
    client = ja.AsyncJourneyClient()
    assert client._headers["Authorization"] == f"Api {TOKEN}"


def test_explicit_token_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHWOOSH_API_TOKEN", "from-env")
    assert ja.AsyncJourneyClient(TOKEN)._headers["Authorization"] == f"Api {TOKEN}"


def test_no_token_is_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUSHWOOSH_API_TOKEN", raising=False)
    with pytest.raises(ValueError, match="PUSHWOOSH_API_TOKEN"):
        ja.AsyncJourneyClient()


@pytest.mark.parametrize(
    "token", ["", "   ", "abc def", "abc\r\nX-Evil: 1", "t\u00f6ken", "t\u20ack"]
)
def test_malformed_token_is_refused_without_echo(token: str) -> None:
    with pytest.raises(ValueError, match="api_token") as info:
        ja.AsyncJourneyClient(token)
    assert token.strip() == "" or token not in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://journey.pushwoosh.com",
        "http://10.0.0.1:8080",
        "http://example.com",
        "ftp://127.0.0.1",
        "journey.pushwoosh.com",
        "https://journey.pushwoosh.com/?x=1",
    ],
)
def test_unsafe_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        ja.AsyncJourneyClient(TOKEN, base_url=base_url)


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://127.8.9.10", "http://127.8.9.10"),
        ("http://localhost:1234", "http://localhost:1234"),
        ("http://[::1]:1234", "http://[::1]:1234"),
        ("https://proxy.example.com/pushwoosh/", "https://proxy.example.com/pushwoosh"),
    ],
)
def test_accepted_base_urls(base_url: str, expected: str) -> None:
    assert ja.AsyncJourneyClient(TOKEN, base_url=base_url).base_url == expected


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_concurrency": 0}, ValueError),
        ({"max_concurrency": 1.5}, TypeError),
        ({"batch_size": 0}, ValueError),
        ({"batch_size": True}, TypeError),
    ],
)
def test_bad_bounds_are_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ja.AsyncJourneyClient(TOKEN, **kwargs)


async def test_base_url_path_prefix_is_kept(api: respx.MockRouter) -> None:
    route = api.get(f"https://proxy.example.com/pw/api/journey/{JOURNEY_ID}/statistics/external")
    route.respond(json=MIXED_EXAMPLE)
    async with ja.AsyncJourneyClient(TOKEN, base_url="https://proxy.example.com/pw/") as client:
        await client.get_stats(JOURNEY_ID)
    assert route.call_count == 1


async def test_callers_http_client_is_used_and_not_closed(api: respx.MockRouter) -> None:
    api.get(STATS_URL).respond(json=MIXED_EXAMPLE)
    async with httpx.AsyncClient(timeout=3.0) as http_client:
        async with ja.AsyncJourneyClient(TOKEN, http_client=http_client) as client:
            await client.get_stats(JOURNEY_ID)
        assert not http_client.is_closed
        assert api.calls.last.request.extensions["timeout"] == httpx.Timeout(3.0).as_dict()


async def test_owned_http_client_is_closed() -> None:
    client = ja.AsyncJourneyClient(TOKEN)
    async with client:
        pass
    assert client._http.is_closed


async def test_custom_transport_is_used() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=MIXED_EXAMPLE)

    transport = httpx.MockTransport(handler)
    async with ja.AsyncJourneyClient(TOKEN, transport=transport) as client:
        stats = await client.get_stats(JOURNEY_ID)
    assert stats.title == "Journey Title"
    assert len(seen) == 1


def test_http_client_and_transport_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        ja.AsyncJourneyClient(
            TOKEN,
            http_client=httpx.AsyncClient(),
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        )


# The token stays secret ------------------------------------------------------


def test_repr_hides_token() -> None:
    client = ja.AsyncJourneyClient(TOKEN)
    assert TOKEN not in repr(client)
    assert "[secret]" in repr(client)


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


async def test_body_that_cannot_be_decoded_is_response_format_error(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    # A proxy's plain page labelled gzip: decoding fails while reading the body.
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/html"}
    page = httpx.ByteStream(b"<html>Bad Gateway</html>")  # a stream: not decoded yet
    api.get(STATS_URL).mock(return_value=httpx.Response(502, headers=headers, stream=page))
    with pytest.raises(ja.ResponseFormatError, match="could not be decoded"):
        await client.get_stats(JOURNEY_ID)


async def test_removal_answered_204_is_confirmed(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    api.post(REMOVAL_URL).respond(204)
    result = await client.remove_users(["u1"], all_journeys=True)
    assert result.user_ids == ("u1",)


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
