"""
What a request's outcome becomes (`_outcomes`): each error status its
`APIStatusError` subclass, with the server's message and request id; each
transport failure its error; the token blotted out of all of them.
"""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from payloads import JOURNEY_ID, REMOVAL_URL, STATS_URL, TOKEN

import journey_async as ja
from journey_async._http import MAX_REMOVAL_ACK_BYTES, ResponseTooLarge
from journey_async._http._limits import body_too_large
from journey_async._outcomes import (
    BODY_PREVIEW_CHARS,
    SERVER_MESSAGE_CHARS,
    status_error,
    transport_error,
)


@pytest.fixture
async def client() -> AsyncIterator[ja.AsyncJourneyClient]:
    async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
        yield client


# Error statuses ----------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-request-id": "req-123"}, "req-123"),
        ({"Request-Id": "abc"}, "abc"),
        ({"x-request-id": "first", "request-id": "second"}, "first"),
        ({}, None),
        ({"x-request-id": ""}, None),
        ({"x-request-id": "a" * 500}, "a" * 125 + "..."),
        ({"x-request-id": f"id-{TOKEN}"}, "id-[secret]"),
    ],
)
async def test_status_errors_carry_the_request_id(
    headers: dict[str, str], expected: str | None
) -> None:
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).respond(404, headers=headers, json={"message": "no such journey"})
        async with ja.AsyncJourneyClient(TOKEN, retry=None) as client:
            with pytest.raises(ja.NotFoundError) as info:
                await client.get_stats(JOURNEY_ID)
    assert info.value.request_id == expected
    if expected is None:
        assert "request id" not in str(info.value)
    else:
        assert str(info.value).endswith(f"no such journey (request id {expected})")
    assert TOKEN not in str(info.value)


async def test_a_rate_limit_error_carries_its_request_id_through_pickle() -> None:
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).respond(429, headers={"x-request-id": "r-9", "Retry-After": "99"})
        async with ja.AsyncJourneyClient(TOKEN) as client:
            with pytest.raises(ja.RateLimitError) as info:
                await client.get_stats(JOURNEY_ID)
    assert (info.value.request_id, info.value.retry_after) == ("r-9", 99.0)
    restored = pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own pickle
    assert restored.request_id == "r-9"
    assert ja.error_from_dict(ja.error_to_dict(info.value)).request_id == "r-9"  # type: ignore[attr-defined]


def error_response(status: int, **kwargs: Any) -> httpx.Response:
    request = httpx.Request("GET", STATS_URL)
    return httpx.Response(status, request=request, **kwargs)


@pytest.mark.parametrize(
    ("status", "error"),
    [(413, ja.RequestTooLargeError), (418, ja.APIStatusError), (599, ja.ServerError)],
)
def test_status_error_without_a_client(status: int, error: type[ja.APIStatusError]) -> None:
    made = status_error(error_response(status))
    assert type(made) is error
    assert made.status_code == status
    assert made.request_id is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_names_where_it_points(status: int) -> None:
    # A gateway that moved (or an http:// base URL sent on to https://): the
    # error says where to, so the fix (base_url) is plain; the token is not echoed.
    location = f"https://gw.example/pushwoosh/{TOKEN}/api\x1b[2J"
    made = status_error(error_response(status, headers={"Location": location}), secret=TOKEN)
    assert type(made) is ja.APIStatusError
    assert "redirect to 'https://gw.example/pushwoosh/[secret]/api?[2J' not followed" in str(made)
    assert "base_url" in str(made)
    assert TOKEN not in str(made)


def test_a_redirect_without_a_location_is_its_reason_alone() -> None:
    assert status_error(error_response(304)).message == "Not Modified"


def test_a_long_error_body_and_message_are_cut_to_their_limits() -> None:
    page = status_error(error_response(502, text="x" * 1000))
    assert page.message == f"Bad Gateway (body is not JSON: '{'x' * (BODY_PREVIEW_CHARS - 3)}...')"
    wordy = status_error(error_response(400, json={"message": "y" * 1000}))
    assert wordy.message == "y" * (SERVER_MESSAGE_CHARS - 3) + "..."


# Failures to get an answer ----------------------------------------------------


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


async def test_body_that_cannot_be_decoded_is_response_format_error(
    api: respx.MockRouter, client: ja.AsyncJourneyClient
) -> None:
    # A proxy's plain page labelled gzip: decoding fails while reading the body.
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/html"}
    page = httpx.ByteStream(b"<html>Bad Gateway</html>")  # a stream: not decoded yet
    api.get(STATS_URL).mock(return_value=httpx.Response(502, headers=headers, stream=page))
    with pytest.raises(ja.ResponseFormatError, match="could not be decoded"):
        await client.get_stats(JOURNEY_ID)


def test_a_response_over_its_cap_is_response_too_large_error() -> None:
    cause = ResponseTooLarge("over the cap", cap="max_response_bytes", limit=10)
    made = transport_error("GET", "/x", cause)
    assert isinstance(made, ja.ResponseTooLargeError)
    assert (str(made), made.cap, made.limit) == ("GET /x: over the cap", "max_response_bytes", 10)


def test_a_removal_ack_over_its_fixed_cap_does_not_say_to_raise_max_response_bytes() -> None:
    # The ack's cap is min(max_response_bytes, 64 KiB): raising the setting
    # past it changes nothing, so the message must not send the user there.
    cause = body_too_large(MAX_REMOVAL_ACK_BYTES)
    made = transport_error("POST", "/remove", cause)
    assert isinstance(made, ja.ResponseTooLargeError)
    assert "max_response_bytes=" not in str(made)
    assert str(made).startswith("POST /remove: the removal's acknowledgement is over 65536 bytes")
    assert (made.cap, made.limit) == ("max_response_bytes", MAX_REMOVAL_ACK_BYTES)
    # Set below it, the setting is the cap, and raising it is the way out.
    assert "max_response_bytes=" in str(transport_error("POST", "/remove", body_too_large(100)))


def test_an_exception_without_a_message_is_named() -> None:
    made = transport_error("POST", "/y", httpx.ConnectError(""))
    assert type(made) is ja.APIConnectionError
    assert str(made) == "POST /y failed: ConnectError"


def test_other_protocol_errors_stay_connection_errors() -> None:
    made = transport_error("GET", "/x", httpx.RemoteProtocolError("illegal status line"))
    assert type(made) is ja.APIConnectionError


def test_a_407_says_the_proxy_refused_its_credentials_and_quotes_nothing() -> None:
    # A proxy's page may echo the Proxy-Authorization it refused: base64 of
    # the user and password, which redact() does not know.
    echoed = "Proxy-Authorization: Basic dXNlcjpodW50ZXIy was refused"
    response = error_response(407, text=echoed, headers={"X-Request-Id": "r-1"})
    made = status_error(response, secret=TOKEN)
    assert type(made) is ja.APIStatusError
    assert made.status_code == 407
    assert "the proxy refused its credentials" in str(made)
    assert "HTTPS_PROXY" in str(made)
    assert "dXNlcjpodW50ZXIy" not in str(made)
