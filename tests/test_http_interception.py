"""
What tracing and mocking tools see of the default client: OpenTelemetry's
httpx instrumentation, pytest-httpx's ``httpx_mock``, ``respx.mock`` and
``respx.mock(using="httpx")``, and the event hooks of a caller's client.
While a mock patches httpx, the default transport steps aside to httpx's
own; OpenTelemetry's wrappers run around the default transport's own send
(tests/test_http_instrumentation.py); with nothing patched, httpx's
transport is not involved at all.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pytest_httpx import HTTPXMock
from scripted import ScriptedServer

import journey_async as ja
from journey_async._http import HTTP11Transport

TOKEN = "secret-token-1234"
STATS = {"payload": {"title": "mocked", "points": []}}
OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n"
    b'{"payload": {"title": "t", "points": []}}'
)
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
API = "https://journey.pushwoosh.com"
STATS_URL = f"{API}/api/journey/j1/statistics/external"


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


async def test_opentelemetry_sees_one_client_span_per_attempt(
    spans: InMemorySpanExporter,
) -> None:
    retried: list[bytes] = []

    async def reply(head: bytes, number: int) -> bytes:
        if b"/j-retried/" in head:
            retried.append(head)
            if len(retried) == 1:
                return UNAVAILABLE
        return OK

    server = ScriptedServer(reply)
    policy = ja.RetryPolicy(sleep=no_wait)
    async with (
        server.running() as url,
        ja.AsyncJourneyClient(TOKEN, base_url=url, retry=policy) as client,
    ):
        await client.get_stats("j-plain")
        await client.get_stats("j-retried")
    found = spans.get_finished_spans()
    statuses = [
        (span.attributes or {}).get("http.response.status_code")
        or (span.attributes or {}).get("http.status_code")
        for span in found
    ]
    assert statuses == [200, 503, 200]
    for span in found:
        assert span.kind.name == "CLIENT"
        text = repr(dict(span.attributes or {}))
        assert TOKEN not in text
        assert "/statistics/external" in text
        assert "GET" in text


async def test_pytest_httpx_intercepts_the_default_client(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=STATS_URL, json=STATS)
    async with ja.AsyncJourneyClient(TOKEN) as client:
        stats = await client.get_stats("j1")
    assert stats.title == "mocked"
    [request] = httpx_mock.get_requests()
    assert request.headers["Authorization"] == f"Api {TOKEN}"


async def test_respx_mock_intercepts_the_default_client() -> None:
    with respx.mock(assert_all_called=True) as router:
        router.get(STATS_URL).respond(json=STATS)
        async with ja.AsyncJourneyClient(TOKEN) as client:
            assert (await client.get_stats("j1")).title == "mocked"


async def test_respx_mock_using_httpx_intercepts_the_default_client() -> None:
    with respx.mock(using="httpx", assert_all_called=True) as router:
        route = router.get(STATS_URL).respond(json=STATS)
        async with ja.AsyncJourneyClient(TOKEN) as client:
            assert (await client.get_stats("j1")).title == "mocked"
    assert route.call_count == 1


async def test_event_hooks_of_a_caller_client_keep_working() -> None:
    seen: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        seen.append(f"request {request.url.path}")

    async def on_response(response: httpx.Response) -> None:
        seen.append(f"response {response.status_code}")

    server = ScriptedServer(lambda head, number: _ok())
    async with (
        server.running() as url,
        httpx.AsyncClient(event_hooks={"request": [on_request], "response": [on_response]}) as http,
        ja.AsyncJourneyClient(TOKEN, base_url=url, http_client=http) as client,
    ):
        assert (await client.get_stats("j")).title == "t"
    assert seen == ["request /api/journey/j/statistics/external", "response 200"]


async def _ok() -> bytes:
    return OK


async def test_with_nothing_patching_httpx_its_transport_is_not_involved() -> None:
    server = ScriptedServer(lambda head, number: _ok())
    async with server.running() as url:
        transport = HTTP11Transport(max_connections=2)
        async with ja.AsyncJourneyClient(TOKEN, base_url=url, transport=transport) as client:
            await client.get_stats("j")
            assert transport._fallback is None, "no handover was made"
    assert server.connections == 1


async def test_a_wrapped_async_client_send_sees_every_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As Sentry's and Datadog's httpx integrations patch it: on the class, any time.
    server = ScriptedServer(lambda head, number: _ok())
    original = httpx.AsyncClient.send
    seen: list[str] = []

    async def traced_send(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: object
    ) -> httpx.Response:
        seen.append(request.url.path)
        return await original(self, request, **kwargs)  # type: ignore[arg-type]

    async with (
        server.running() as url,
        ja.AsyncJourneyClient(TOKEN, base_url=url) as client,
    ):
        await client.get_stats("before")
        monkeypatch.setattr(httpx.AsyncClient, "send", traced_send)
        assert (await client.get_stats("during")).title == "t"
        monkeypatch.undo()
        await client.get_stats("after")
    assert seen == ["/api/journey/during/statistics/external"]


async def test_a_subclass_in_httpx_async_client_s_place_sees_every_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As OpenTelemetry's httpx instrumentation did up to 0.48b0: a subclass
    # whose transport wraps the one it was given.
    server = ScriptedServer(lambda head, number: _ok())
    seen: list[str] = []

    class Recording(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self._inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.url.path)
            return await self._inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self._inner.aclose()

    class InstrumentedAsyncClient(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._transport = Recording(self._transport)

    monkeypatch.setattr(httpx, "AsyncClient", InstrumentedAsyncClient)
    async with (
        server.running() as url,
        ja.AsyncJourneyClient(TOKEN, base_url=url, max_concurrency=4) as client,
    ):
        results = await client.get_stats_many(["a", "b", "c"])
    assert [result.ok for result in results] == [True, True, True]
    assert sorted(seen) == [f"/api/journey/{j}/statistics/external" for j in "abc"]
    assert server.connections <= 3, "still the default transport under the subclass"


async def test_through_a_patched_client_send_a_response_is_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = ScriptedServer(lambda head, number: _ok())
    original = httpx.AsyncClient.send

    async def traced_send(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: object
    ) -> httpx.Response:
        return await original(self, request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx.AsyncClient, "send", traced_send)
    async with (
        server.running() as url,
        ja.AsyncJourneyClient(TOKEN, base_url=url) as client,
    ):
        response = await client._send("GET", "/api/journey/j/statistics/external")
    assert response.is_closed
    assert response.elapsed > datetime.timedelta(0)
    assert response.request.url.path == "/api/journey/j/statistics/external"
