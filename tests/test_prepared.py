"""
The parts of every request prepared once (`_prepared`): URLs built without
re-parsing the base URL are the ones httpx would build, and requests carry
the headers httpx would derive, in its order.
"""

from __future__ import annotations

import string

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from payloads import TOKEN

import journey_async as ja
from journey_async._http import ACCEPT_ENCODING
from journey_async._prepared import prepared_headers, url_builder
from journey_async._validation import validate_journey_id

journey_ids = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40
).filter(lambda text: _is_valid_id(text))


def _is_valid_id(text: str) -> bool:
    try:
        validate_journey_id(text)
    except ValueError:
        return False
    return True


@given(
    base=st.sampled_from(
        ["https://journey.pushwoosh.com", "http://127.0.0.1:8080", "https://proxy.example.com/pw"]
    ),
    journey_id=journey_ids | st.text(string.ascii_letters + string.digits + "-._~", min_size=1),
)
def test_urls_are_the_ones_httpx_would_build(base: str, journey_id: str) -> None:
    path = f"/api/journey/{journey_id}/statistics/external"
    built = url_builder(base)(path)
    parsed = httpx.URL(base + path)
    assert built == parsed
    assert str(built) == str(parsed)
    assert built.raw_path == parsed.raw_path


@pytest.mark.parametrize(
    "base_url", ["https://journey.pushwoosh.com", "http://127.0.0.1:8080", "http://[::1]:81/pw"]
)
async def test_requests_are_the_ones_httpx_would_build(base_url: str) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(200, json={"success": True})
        return httpx.Response(200, json={"payload": {"title": "t", "points": []}})

    async with ja.AsyncJourneyClient(
        TOKEN, base_url=base_url, transport=httpx.MockTransport(answer), retry=None
    ) as client:
        await client.get_stats("journey-1")
        await client.remove_users(["u1", "u2"], all_journeys=True)
    get, post = seen
    for request in seen:
        expected = httpx.Request(
            request.method,
            str(request.url),
            headers={
                "Authorization": f"Api {TOKEN}",
                "User-Agent": f"journey-async/{ja.__version__}",
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
                **({"Content-Type": "application/json"} if request.method == "POST" else {}),
            },
            content=request.content or None,
        )
        assert request.headers.raw == expected.headers.raw
    assert get.content == b""
    assert post.content == b'{"user_ids": ["u1", "u2"], "all_journeys": true}'


def test_prepared_headers_go_out_as_httpx_orders_them() -> None:
    headers = prepared_headers(TOKEN, "https://gw.example:8443/pushwoosh")
    assert headers.base["Authorization"] == f"Api {TOKEN}"
    assert "Host" not in headers.base
    assert headers.get.raw == [(b"Host", b"gw.example:8443"), *headers.base.raw]
    assert headers.post.raw == [
        (b"Host", b"gw.example:8443"),
        *headers.base.raw,
        (b"Content-Type", b"application/json"),
    ]


@pytest.mark.parametrize("path", ["/api/journey/a b/x", "/api/journey/./x", "/api/journey/%41"])
def test_paths_that_need_the_parser_get_it(path: str) -> None:
    base = "https://journey.pushwoosh.com"
    assert str(url_builder(base)(path)) == str(httpx.URL(base + path))
