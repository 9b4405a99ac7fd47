"""
What the default transport hands back and leaves behind: whole responses as
httpx's own client returns them, no token in any frame's locals when a request
fails, and the client called from an app served by uvicorn on uvloop.
"""

from __future__ import annotations

import asyncio
import datetime
import traceback
from collections.abc import Iterator

import httpx
import pytest
from asgi_servers import serve_app
from scripted import OK, ScriptedServer, scripted
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import journey_async as ja
from journey_async._http._wire import RequestBytes, serialize_request
from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

TOKEN = "test-token"  # the emulator's default
SECRET = "s3cr3t-token-that-must-not-show"


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    with serve_emulator(JourneyEmulator.with_sample_data(2, seed=8)) as server:
        yield server


@pytest.mark.parametrize("transport", ["default", "httpcore"])
async def test_a_returned_response_is_whole_as_httpx_returns_them(
    served: EmulatorServer, transport: str
) -> None:
    inner = None if transport == "default" else httpx.AsyncHTTPTransport()
    journey_id = served.emulator.journey_ids[0]
    path = f"/api/journey/{journey_id}/statistics/external"
    async with ja.AsyncJourneyClient(TOKEN, base_url=served.url, transport=inner) as client:
        response = await client._send("GET", path)
    assert response.is_closed
    assert response.is_stream_consumed
    assert isinstance(response.elapsed, datetime.timedelta)
    assert response.elapsed > datetime.timedelta(0)
    assert response.request.url.path == path
    assert response.http_version == "HTTP/1.1"
    assert response.json()["payload"]["title"]


def test_the_wire_bytes_do_not_show_in_a_repr() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/x", headers={"Authorization": f"Api {SECRET}"})
    data = serialize_request(request, b"")
    assert isinstance(data, RequestBytes)
    assert SECRET.encode() in bytes(data)
    assert SECRET not in repr(data)
    assert repr(data) == f"<{len(data)} request bytes>"


def _echo(template: bytes) -> bytes:
    """A 200 whose body, *template* % the token, echoes the token back (a
    proxy's or a debug server's echo of the request)."""
    body = template % SECRET.encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def locals_shown(exc: BaseException) -> str:
    """The traceback with its locals, from the library's frames on (the
    test's own frame, first, holds what the test's server answered)."""
    library = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    shown = traceback.TracebackException(type(exc), exc, library, capture_locals=True)
    return "".join(shown.format())


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (None, ja.APIConnectionError),  # closed without an answer
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{", ja.APIConnectionError),
        (b"NOT HTTP\r\n\r\n", ja.APIConnectionError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!", ja.ResponseFormatError),
        (_echo(b'{"payload": {"title": 1, "echo": "%s"}}'), ja.ResponseFormatError),
        (_echo(b'{"echo": "%s"'), ja.ResponseFormatError),
    ],
    ids=["dropped", "truncated", "garbage", "not-json", "echo-wrong-type", "echo-not-json"],
)
async def test_no_frame_of_a_failing_request_shows_the_token(
    answer: bytes | None, error: type[ja.JourneyError]
) -> None:
    async def reply(head: bytes, number: int) -> bytes | None:
        assert SECRET.encode() in head  # it was sent
        return answer

    server = ScriptedServer(reply, close_after_answer=True)
    async with (
        server.running() as url,
        ja.AsyncJourneyClient(SECRET, base_url=url, retry=None) as client,
    ):
        with pytest.raises(error) as info:
            await client.get_stats("j")
    shown = locals_shown(info.value)
    assert "data = <" in shown or error is ja.ResponseFormatError, "locals were captured"
    assert SECRET not in shown


async def test_no_frame_of_a_timed_out_request_shows_the_token() -> None:
    async def reply(head: bytes, number: int) -> bytes:
        await asyncio.sleep(5)
        return OK

    async with (
        scripted(reply) as (url, _, _transport),
        ja.AsyncJourneyClient(SECRET, base_url=url, retry=None, timeout=0.1) as client,
    ):
        with pytest.raises(ja.APITimeoutError) as info:
            await client.get_stats("j")
    assert SECRET not in locals_shown(info.value)


def app_calling_the_client(api_url: str, journey_id: str) -> Starlette:
    async def stats(request: Request) -> JSONResponse:
        async with ja.AsyncJourneyClient(TOKEN, base_url=api_url) as client:
            result = await client.get_stats(journey_id)
        loop = type(asyncio.get_running_loop())
        return JSONResponse({"title": result.title, "loop": loop.__module__})

    return Starlette(routes=[Route("/stats", stats)])


def test_an_app_under_uvicorn_on_uvloop_calls_the_client(served: EmulatorServer) -> None:
    emulator = served.emulator
    journey_id = emulator.journey_ids[0]
    app = app_calling_the_client(served.url, journey_id)
    with serve_app(app, loop="uvloop") as url:
        answers = [httpx.get(f"{url}/stats", timeout=10) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    body = answers[0].json()
    assert body["loop"].startswith("uvloop")
    assert body["title"] == asyncio.run(title_of(served.url, journey_id))


async def title_of(url: str, journey_id: str) -> str:
    async with ja.AsyncJourneyClient(TOKEN, base_url=url) as client:
        return (await client.get_stats(journey_id)).title
