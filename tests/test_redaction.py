"""The one redaction helper, and its use before any truncation in errors and the CLI."""

from __future__ import annotations

import httpx
import pytest
import respx
from payloads import BASE_URL, JOURNEY_ID

import journey_async as ja
from journey_async._cli import main
from journey_async._redaction import ANYWHERE_LENGTH, REDACTED, redact, redact_bytes

STATS_URL = f"{BASE_URL}/api/journey/{JOURNEY_ID}/statistics/external"
LONG_TOKEN = "Zq8" * 12  # a real token's length


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("Not Found", "t", "Not Found"),  # inside a word: a coincidence, not the token
        ("token t here", "t", f"token {REDACTED} here"),
        ("Api test-token", "test-token", f"Api {REDACTED}"),
        ("'Api test-token'.", "test-token", f"'Api {REDACTED}'."),
        ("Api_test-token=1", "test-token", f"Api_{REDACTED}=1"),
        ("contest-tokens", "test-token", "contest-tokens"),
        (f"x{LONG_TOKEN}y", LONG_TOKEN, f"x{REDACTED}y"),  # long: anywhere
        ("nothing to see", "test-token", "nothing to see"),
        ("", "test-token", ""),
        ("Not Found", "", "Not Found"),
    ],
)
def test_redact(text: str, secret: str, expected: str) -> None:
    assert redact(text, secret) == expected


def test_redact_takes_several_secrets_longest_first() -> None:
    assert redact("a abc b", ["abc", "abc b"]) == f"a {REDACTED}"
    assert redact("a abc", None) == "a abc"


def test_anywhere_length_is_the_boundary() -> None:
    token = "a" * ANYWHERE_LENGTH
    assert redact(f"x{token}", token) == f"x{REDACTED}"
    assert redact(f"x{token[1:]}", token[1:]) == f"x{token[1:]}"


def test_redact_bytes_keeps_other_bytes() -> None:
    body = b"\xff\xfe Api test-token \xc3"
    assert redact_bytes(body, "test-token") == b"\xff\xfe Api [secret] \xc3"
    assert redact_bytes(b"clean \xff", "test-token") == b"clean \xff"


# In errors: blotted out before the preview is cut --------------------------


@pytest.mark.parametrize("offset", range(60, 82))
async def test_token_across_the_truncation_boundary_of_an_error_body(offset: int) -> None:
    # An HTML error page echoing the token where the 80-character preview ends.
    token = "test-token-5f0c1e"
    body = "x" * offset + f" {token} " + "y" * 100
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).respond(502, text=body)
        async with ja.AsyncJourneyClient(token, retry=None) as client:
            with pytest.raises(ja.ServerError) as info:
                await client.get_stats(JOURNEY_ID)
    message = str(info.value)
    assert "body is not JSON" in message
    for length in range(4, len(token) + 1):
        assert token[:length] not in message, (offset, message)


@pytest.mark.parametrize("offset", range(55, 82))
async def test_token_across_the_truncation_boundary_of_a_bad_success_body(offset: int) -> None:
    token = "test-token-5f0c1e"
    body = "x" * offset + f" {token} " + "y" * 100
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).respond(200, text=body)
        async with ja.AsyncJourneyClient(token, retry=None) as client:
            with pytest.raises(ja.ResponseFormatError, match="not JSON") as info:
                await client.get_stats(JOURNEY_ID)
    for length in range(4, len(token) + 1):
        assert token[:length] not in str(info.value), (offset, str(info.value))


async def test_a_one_letter_token_does_not_mangle_messages() -> None:
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).respond(404, json={"message": "Not Found: t is not a token"})
        async with ja.AsyncJourneyClient("t", retry=None) as client:
            with pytest.raises(ja.NotFoundError) as info:
                await client.get_stats(JOURNEY_ID)
    assert info.value.message == f"Not Found: {REDACTED} is not a token"


async def test_a_long_server_message_is_cut_after_redaction() -> None:
    token = "test-token-5f0c1e"
    message = "m" * 495 + token
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).respond(400, json={"message": message})
        async with ja.AsyncJourneyClient(token, retry=None) as client:
            with pytest.raises(ja.BadRequestError) as info:
                await client.get_stats(JOURNEY_ID)
    assert len(info.value.message) == 500
    assert "test" not in info.value.message


async def test_a_reason_phrase_echoing_the_token_is_blotted_out() -> None:
    token = "test-token-5f0c1e"
    response = httpx.Response(418, extensions={"reason_phrase": f"teapot {token}".encode()})
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).mock(return_value=response)
        async with ja.AsyncJourneyClient(token, retry=None) as client:
            with pytest.raises(ja.APIStatusError) as info:
                await client.get_stats(JOURNEY_ID)
    assert token not in str(info.value)
    assert f"teapot {REDACTED}" in str(info.value)


def test_the_cli_redacts_a_short_token_as_a_word_only(capsys: pytest.CaptureFixture[str]) -> None:
    # A usage error that quotes the token: blotted out; the words around it intact.
    assert main(["stats", "--token", "ht", "--base-url", "ftp://ht/", "j1"]) == 2
    _, err = capsys.readouterr()
    assert "ftp://[secret]/" in err
    assert "http(s)" in err  # "ht" inside a word is left alone


async def test_a_token_spelled_with_json_escapes_is_blotted_out_too() -> None:
    token = "test-token-5f0c1e"
    escaped = "".join(f"\\u{ord(c):04x}" for c in token)
    body = '{"payload": {"title": "T", "points": [{"pointTitle": 5, "pointStat": "' + escaped
    body += '"}]}}'
    with respx.mock(assert_all_mocked=True) as api:
        api.get(STATS_URL).respond(200, text=body)
        async with ja.AsyncJourneyClient(token, retry=None) as client:
            with pytest.raises(ja.ResponseFormatError) as info:
                await client.get_stats(JOURNEY_ID)
    assert token not in str(info.value)
    assert REDACTED in str(info.value)
