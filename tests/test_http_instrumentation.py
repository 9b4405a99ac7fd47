"""
Tracers' wrappers run around the fast path (`journey_async._http._instrumentation`):
with OpenTelemetry's ``HTTPXClientInstrumentor().instrument()`` the default
transport still sends every request itself, and OpenTelemetry makes one
CLIENT span per attempt with its own attributes, header and hooks; any other
patch still sends requests through httpx's own transport. Against raw
servers on 127.0.0.1 (tests/scripted.py) and the emulator served for real.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpcore
import httpx
import pytest
import respx
import wrapt
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor, RequestInfo, ResponseInfo
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, SpanKind, StatusCode
from pytest_httpx import HTTPXMock
from scripted import ScriptedServer, free_port

import journey_async as ja
from journey_async._http import HTTP11Transport, send_and_read
from journey_async._http._instrumentation import send_through, wrappers
from journey_async.testing import JourneyEmulator, serve_emulator

TOKEN = "secret-token-1234"
OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n"
    b'{"payload": {"title": "t", "points": []}}'
)
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
STATS = {"payload": {"title": "mocked", "points": []}}
STATS_URL = "https://journey.pushwoosh.com/api/journey/j1/statistics/external"
ORIGINAL = httpx.AsyncHTTPTransport.__dict__["handle_async_request"]


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


async def ok(head: bytes, number: int) -> bytes:
    return OK


Instrument = Callable[..., InMemorySpanExporter]


@pytest.fixture
def instrument() -> Iterator[Instrument]:
    """OpenTelemetry's httpx instrumentation on (with the keywords given),
    spans kept in memory; off again after the test."""
    instrumentor = HTTPXClientInstrumentor()

    def on(**kwargs: Any) -> InMemorySpanExporter:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor.instrument(tracer_provider=provider, **kwargs)
        return exporter

    try:
        yield on
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


@pytest.fixture
def spans(instrument: Instrument) -> InMemorySpanExporter:
    return instrument()


def attribute(span: ReadableSpan, *names: str) -> Any:
    """The first of *names* the span has: the old and the new semantic
    conventions name the same thing differently, and OpenTelemetry picks."""
    found = span.attributes or {}
    return next((found[name] for name in names if name in found), None)


def status_of(span: ReadableSpan) -> Any:
    return attribute(span, "http.response.status_code", "http.status_code")


@asynccontextmanager
async def own_client(
    url: str, **kwargs: Any
) -> AsyncIterator[tuple[ja.AsyncJourneyClient, HTTP11Transport]]:
    """A client on an `HTTP11Transport` the test can look into."""
    transport = HTTP11Transport(max_connections=4)
    async with ja.AsyncJourneyClient(TOKEN, base_url=url, transport=transport, **kwargs) as client:
        yield client, transport


def sent_by_itself(transport: HTTP11Transport) -> bool:
    """Whether *transport* sent everything on its own connections: it made
    no httpx transport (httpcore) to hand a request over to."""
    return (
        transport._pool is not None
        and transport._fallback is None
        and not any(transport._handovers.values())
    )


# --- what is patched, and what it means ---------------------------------------------------------


def test_nothing_patched_is_an_empty_answer_kept_between_calls() -> None:
    assert wrappers() == ()
    assert wrappers() is wrappers()


def test_opentelemetry_is_one_wrapper_and_off_again_nothing(instrument: Instrument) -> None:
    instrument()
    patch = httpx.AsyncHTTPTransport.__dict__["handle_async_request"]
    assert wrappers() == (patch._self_wrapper,)
    assert wrappers() is wrappers(), "the answer is kept while the patch stays"
    HTTPXClientInstrumentor().uninstrument()
    assert wrappers() == ()


async def test_layered_wrappers_run_outermost_first_around_the_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    def layer(name: str) -> Any:
        async def wrapper(
            wrapped: Callable[..., Any], instance: object, args: tuple[Any, ...], kwargs: Any
        ) -> Any:
            # As a wrapper may: the request passed on by keyword, a header added.
            request = args[0] if args else kwargs["request"]
            seen.append(f"{name} in: {type(instance).__name__} {request.url.path}")
            request.headers[f"x-{name}"] = "1"
            response = await wrapped(request=request)
            seen.append(f"{name} out: {response.status_code}")
            return response

        return wrapper

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", ORIGINAL)
    wrapt.wrap_function_wrapper(httpx, "AsyncHTTPTransport.handle_async_request", layer("inner"))
    wrapt.wrap_function_wrapper(httpx, "AsyncHTTPTransport.handle_async_request", layer("outer"))
    found = wrappers()
    assert found is not None
    assert len(found) == 2

    async def send(request: httpx.Request) -> httpx.Response:
        seen.append(f"send: {sorted(k for k in request.headers if k.startswith('x-'))}")
        return httpx.Response(204, request=request)

    instance = HTTP11Transport(max_connections=1)
    response = await send_through(found, instance, send, httpx.Request("GET", "http://h/p"))
    assert response.status_code == 204
    assert seen == [
        "outer in: HTTP11Transport /p",
        "inner in: HTTP11Transport /p",
        "send: ['x-inner', 'x-outer']",
        "inner out: 204",
        "outer out: 204",
    ]


async def _replacement(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


async def _wrapper(
    wrapped: Callable[..., Any], instance: object, args: tuple[Any, ...], kwargs: Any
) -> Any:
    return await wrapped(*args, **kwargs)


def test_a_replaced_method_steps_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest-httpx's way: a plain function of another module in its place.
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", _replacement)
    assert wrappers() is None


def test_a_wrapper_over_a_replaced_method_steps_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", _replacement)
    wrapt.wrap_function_wrapper(httpx, "AsyncHTTPTransport.handle_async_request", _wrapper)
    assert wrappers() is None


def test_wrapt_wrappers_of_other_shapes_step_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    class Subclass(wrapt.FunctionWrapper):  # type: ignore[type-arg]
        pass

    for patch in (
        Subclass(ORIGINAL, _wrapper),
        wrapt.FunctionWrapper(ORIGINAL, _wrapper, enabled=lambda: True),
        wrapt.ObjectProxy(ORIGINAL),
    ):
        monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", patch)
        assert wrappers() is None, patch
    monkeypatch.setattr(
        httpx.AsyncHTTPTransport, "handle_async_request", wrapt.FunctionWrapper(ORIGINAL, _wrapper)
    )
    assert wrappers() == (_wrapper,)


def test_a_wrapt_without_its_attributes_steps_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    # A future wrapt that keeps the wrapper function under another name.
    class FunctionWrapper:
        def __init__(self, wrapped: object, wrapper: object) -> None:
            self.__wrapped__ = wrapped
            self._wrapper = wrapper

    future = types.ModuleType("wrapt")
    future.FunctionWrapper = FunctionWrapper  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wrapt", future)
    monkeypatch.setattr(
        httpx.AsyncHTTPTransport, "handle_async_request", FunctionWrapper(ORIGINAL, _wrapper)
    )
    assert wrappers() is None


def test_a_patched_httpcore_pool_steps_aside_even_under_opentelemetry(
    monkeypatch: pytest.MonkeyPatch, instrument: Instrument
) -> None:
    instrument()
    assert wrappers()
    monkeypatch.setattr(httpcore.AsyncConnectionPool, "handle_async_request", _replacement)
    assert wrappers() is None
    monkeypatch.undo()
    assert wrappers()


# --- OpenTelemetry around the fast path, against real servers -----------------------------------


async def test_one_span_per_attempt_retried_ones_included(spans: InMemorySpanExporter) -> None:
    answers = {"first": UNAVAILABLE}

    async def reply(head: bytes, number: int) -> bytes:
        if b"/j-retried/" in head:
            return answers.pop("first", OK)
        return OK

    server = ScriptedServer(reply)
    async with (
        server.running() as url,
        own_client(url, retry=ja.RetryPolicy(sleep=no_wait)) as (client, transport),
    ):
        await client.get_stats("j-plain")
        await client.get_stats("j-retried")
        assert sent_by_itself(transport)
    found = spans.get_finished_spans()
    assert [status_of(span) for span in found] == [200, 503, 200]
    assert [span.kind for span in found] == [SpanKind.CLIENT] * 3
    assert [span.name for span in found] == ["GET"] * 3
    assert [span.status.status_code for span in found] == [
        StatusCode.UNSET,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert len(server.heads) == 3
    assert server.connections == 1, "kept alive on the transport's own pool"


async def test_a_span_has_the_method_and_the_token_free_url(
    spans: InMemorySpanExporter,
) -> None:
    server = ScriptedServer(ok)
    async with server.running() as url, own_client(url) as (client, _):
        await client.get_stats("j1")
    [span] = spans.get_finished_spans()
    assert attribute(span, "http.request.method", "http.method") == "GET"
    assert attribute(span, "url.full", "http.url") == f"{url}/api/journey/j1/statistics/external"
    assert status_of(span) == 200
    assert TOKEN not in repr(dict(span.attributes or {}))
    assert TOKEN in server.heads[0].decode(), "the token went in its header"


async def test_the_traceparent_of_the_span_reaches_the_server(
    spans: InMemorySpanExporter,
) -> None:
    server = ScriptedServer(ok)
    async with server.running() as url, own_client(url) as (client, transport):
        await client.get_stats("j1")
        assert sent_by_itself(transport)
    [span] = spans.get_finished_spans()
    context = span.get_span_context()
    assert context is not None
    ids = f"{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    expected = f"traceparent: 00-{ids}"
    assert expected.encode() in server.heads[0].lower()


async def test_a_connection_failure_is_a_span_with_an_error_per_attempt(
    spans: InMemorySpanExporter,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    policy = ja.RetryPolicy(max_attempts=2, sleep=no_wait)
    async with own_client(url, retry=policy) as (client, transport):
        with pytest.raises(ja.APIConnectionError):
            await client.get_stats("j1")
        assert transport._fallback is None
    found = spans.get_finished_spans()
    assert len(found) == 2
    for span in found:
        assert span.status.status_code is StatusCode.ERROR
        assert status_of(span) is None
        [event] = span.events
        assert event.name == "exception"
        assert str((event.attributes or {})["exception.type"]).endswith("ConnectError")


async def test_the_hooks_see_the_request_and_the_whole_response(
    instrument: Instrument,
) -> None:
    seen: list[str] = []

    async def on_request(span: Span, request: RequestInfo) -> None:
        assert isinstance(request.url, httpx.URL)
        seen.append(f"request {request.method.decode()} {request.url.path}")

    async def on_response(span: Span, request: RequestInfo, response: ResponseInfo) -> None:
        assert response.headers is not None
        seen.append(f"response {response.status_code} {response.headers['content-type']}")
        span.set_attribute("test.hooked", True)

    exporter = instrument(async_request_hook=on_request, async_response_hook=on_response)
    server = ScriptedServer(ok)
    async with server.running() as url:
        transport = HTTP11Transport(max_connections=1)
        try:
            request = httpx.Request("GET", f"{url}/p")
            response = await send_and_read(transport, request)
            assert sent_by_itself(transport)
        finally:
            await transport.aclose()
    assert seen == ["request GET /p", "response 200 application/json"]
    [span] = exporter.get_finished_spans()
    assert (span.attributes or {})["test.hooked"] is True
    # As whole as without a tracer.
    assert response.is_closed
    assert response.request is request
    assert response.elapsed.total_seconds() >= 0
    assert response.http_version == "HTTP/1.1"
    assert response.json() == {"payload": {"title": "t", "points": []}}


async def test_uninstrumented_the_fast_path_sends_plainly(instrument: Instrument) -> None:
    exporter = instrument()
    server = ScriptedServer(ok)
    async with server.running() as url, own_client(url) as (client, transport):
        await client.get_stats("traced")
        HTTPXClientInstrumentor().uninstrument()
        assert wrappers() == ()
        await client.get_stats("plain")
        assert sent_by_itself(transport)
    assert len(exporter.get_finished_spans()) == 1
    assert b"traceparent" in server.heads[0].lower()
    assert b"traceparent" not in server.heads[1].lower()


# --- other patches still go through httpx's transport, and are traced there ---------------------


async def test_pytest_httpx_still_intercepts_under_opentelemetry(
    httpx_mock: HTTPXMock, spans: InMemorySpanExporter
) -> None:
    httpx_mock.add_response(url=STATS_URL, json=STATS)
    async with ja.AsyncJourneyClient(TOKEN) as client:
        assert (await client.get_stats("j1")).title == "mocked"
    assert len(httpx_mock.get_requests()) == 1


async def test_respx_still_intercepts_under_opentelemetry(spans: InMemorySpanExporter) -> None:
    with respx.mock(assert_all_called=True) as router:
        router.get(STATS_URL).respond(json=STATS)
        async with ja.AsyncJourneyClient(TOKEN) as client:
            assert (await client.get_stats("j1")).title == "mocked"
    [span] = spans.get_finished_spans()
    assert status_of(span) == 200


async def test_through_a_proxy_the_span_comes_from_httpx_transport(
    spans: InMemorySpanExporter,
) -> None:
    proxy = ScriptedServer(ok)
    async with proxy.running() as proxy_url:
        transport = HTTP11Transport(max_connections=2, proxy=httpx.URL(proxy_url))
        async with ja.AsyncJourneyClient(
            TOKEN, base_url="http://journey.localhost", transport=transport
        ) as client:
            await client.get_stats("j1")
            assert not sent_by_itself(transport), "handed over to httpcore"
    [span] = spans.get_finished_spans()
    assert status_of(span) == 200
    head = proxy.heads[0].lower()
    assert head.startswith(b"get http://journey.localhost/api/journey/j1/statistics/external")
    assert b"traceparent: 00-" in head


def test_on_trio_the_spans_come_from_httpx_transport(spans: InMemorySpanExporter) -> None:
    emulator = JourneyEmulator()
    emulator.add_journey("j1", title="Welcome")
    with serve_emulator(emulator) as served:

        async def scenario() -> None:
            async with ja.AsyncJourneyClient(emulator.token, base_url=served.url) as client:
                assert (await client.get_stats("j1")).title == "Welcome"
                with pytest.raises(ja.NotFoundError):
                    await client.get_stats("absent")

        anyio.run(scenario, backend="trio")
    assert [status_of(span) for span in spans.get_finished_spans()] == [200, 404]
