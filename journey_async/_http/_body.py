"""
Reading a response whole, its head within the caps and its body decoded
within its cap, whatever transport or client it came from: what
`httpx.AsyncClient.send` does that journey_async needs, and the bounds httpx
does not have.

`HTTP11Transport` returns responses already whole (read as they arrived,
its parser holding the caps); any other transport's (httpcore's on the
handovers, a mock's, the caller's) are checked and read here, raw bytes
through the bounded decoders of `_decoding`. Below the retry loop, so that a
response over a cap is never sent again, whoever read it.
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import FunctionType
from typing import Final

import httpx

from ._decoding import Overflow, decoder_for, drop_undecodable
from ._limits import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_HEAD_BYTES,
    MAX_RESPONSE_BYTES_EXTENSION,
    add_part,
    check_head,
    drop_over_cap,
    head_too_large,
    is_h11_head_overflow,
)

__all__ = ["max_body", "read_bounded", "send_and_read", "sender_for_client", "sender_for_owned"]


def max_body(request: httpx.Request) -> int:
    """The cap on *request*'s response body: its extension, else the default."""
    limit: int = request.extensions.get(MAX_RESPONSE_BYTES_EXTENSION, DEFAULT_MAX_RESPONSE_BYTES)
    return limit


async def read_bounded(response: httpx.Response, limit: int) -> None:
    """
    Read *response*'s body whole, decoded, into ``response.content``, and
    close it; `ResponseTooLarge` (the response closed) as soon as the decoded
    body is over *limit* bytes.
    """
    try:
        if hasattr(response, "_content"):
            # Already in memory (a mock's response, built with content=).
            if len(response.content) > limit:
                raise Overflow
        else:
            coding = b",".join(
                value for name, value in response.headers.raw if name.lower() == b"content-encoding"
            )
            parts: list[bytes | bytearray] = []
            room = limit
            stream: AsyncIterator[bytes]
            try:
                decoder = decoder_for(coding) if coding else None
            except httpx.DecodingError as exc:
                drop_undecodable(response.status_code, exc)
                decoder, stream = None, _NOTHING  # an error response's: dropped, unread
            else:
                stream = response.aiter_raw()
            async for chunk in stream:
                if decoder is not None:
                    try:
                        chunk = decoder.decode(chunk, room)
                    except httpx.DecodingError as exc:
                        drop_undecodable(response.status_code, exc)
                        parts.clear()  # an error response's: dropped, the rest unread
                        decoder = None
                        break
                elif len(chunk) > room:
                    raise Overflow
                room -= len(chunk)
                add_part(parts, chunk)
            if decoder is not None:
                try:
                    decoder.flush()
                except httpx.DecodingError as exc:
                    drop_undecodable(response.status_code, exc)
                    parts.clear()
            # What aread() stores, decoded here within the cap rather than
            # by httpx's decoders, which have no output limit.
            response._content = b"".join(parts)
    except Overflow:
        await response.aclose()
        drop_over_cap(response.status_code, limit)
        response._content = b""  # an error response's: dropped, the rest unread
        return
    except BaseException:
        await response.aclose()
        raise
    await response.aclose()


class _Nothing:
    """An empty async iterator: the body of an error response not to be read."""

    def __aiter__(self) -> _Nothing:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


_NOTHING: Final = _Nothing()


async def send_and_read(
    transport: httpx.AsyncBaseTransport, request: httpx.Request
) -> httpx.Response:
    """
    Send *request* through *transport* and return the response whole:
    body read (within its cap) and closed, ``request`` and ``elapsed`` set,
    as `httpx.AsyncClient.send` returns them.
    """
    started = time.perf_counter()
    response = await _head_within_caps(transport.handle_async_request(request))
    response.request = request
    if not response.is_closed:
        await read_bounded(response, max_body(request))
    elif len(response.content) > (limit := max_body(request)):
        # Built whole (a mock's content=): in memory already, still refused.
        drop_over_cap(response.status_code, limit)
        response._content = b""
    response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
    return response


async def _head_within_caps(receiving: Awaitable[httpx.Response]) -> httpx.Response:
    """
    The response *receiving* gives, its head within `MAX_HEAD_LINE_BYTES`
    and `MAX_HEAD_BYTES` as the default transport's parser holds them, else
    `ResponseTooLarge` (the response closed). httpcore (h11) refuses a head
    past its buffer itself, as a protocol error: past it, the head is past
    `MAX_HEAD_BYTES` too, so that is the same refusal.
    """
    try:
        response = await receiving
    except httpx.RemoteProtocolError as exc:
        if not is_h11_head_overflow(exc):
            raise
        raise head_too_large("head", MAX_HEAD_BYTES) from exc
    if not response.is_closed:  # closed: whole from HTTP11Transport, checked as it came
        try:
            check_head(response.headers.raw)
        except BaseException:
            await response.aclose()
            raise
    return response


def sender_for_client(
    client: httpx.AsyncClient,
) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    """
    ``client.send`` (the caller's client: its hooks, auth, mounts), with the
    body read here, within its cap, rather than by httpx without one.
    """
    return functools.partial(_through_client, client)


async def _through_client(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """``client.send(request)``, the body read within its cap, ``elapsed`` set."""
    started = time.perf_counter()
    response = await _head_within_caps(client.send(request, stream=True))
    await read_bounded(response, max_body(request))
    try:
        response.elapsed  # noqa: B018 - set by httpx's stream when httpx closed it
    except RuntimeError:  # closed already by the transport (ours), so httpx never timed it
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
    return response


def sender_for_owned(
    client: httpx.AsyncClient, transport: httpx.AsyncBaseTransport, *, whole: bool = False
) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    """
    Straight to *transport* (`send_and_read`), skipping ``client.send``,
    whose per-request work has nothing to do for a client only we configure;
    except while anything has patched httpx's client, which then expects to
    see every request there: ``AsyncClient.send`` replaced or wrapped (as
    Sentry's and Datadog's httpx integrations do), ``_transport_for_url``
    replaced (as ``respx.mock(using="httpx")`` does), or *client* of a
    subclass put in ``httpx.AsyncClient``'s place before it was made (as
    OpenTelemetry's httpx instrumentation up to 0.48b0 does, wrapping the
    subclass's transport). Then through ``client.send``, within the cap.
    *whole*: *transport* returns every response as `send_and_read` would
    (`HTTP11Transport` does), so it is called as it is.
    """
    # httpx's own class, whatever the client's: its namespace is a live
    # view, so reading it per request sees a patch made at any time.
    own = next(cls for cls in type(client).__mro__ if _is_httpx_module(cls.__module__))
    attributes = own.__dict__
    replaced = type(client) is not own
    # A transport whose responses come whole (checked, read, timed) needs
    # nothing of send_and_read: two coroutines less per request.
    receive = (
        transport.handle_async_request if whole else functools.partial(send_and_read, transport)
    )

    # A plain function handing back the coroutine it picks: one frame less
    # per request than a coroutine awaiting it.
    def send(request: httpx.Request) -> Awaitable[httpx.Response]:
        if (
            not replaced
            and _is_httpx_function(attributes.get("send"))
            and _is_httpx_function(attributes.get("_transport_for_url"))
        ):
            return receive(request)
        return _through_client(client, request)

    return send


def _is_httpx_function(attribute: object) -> bool:
    """Whether *attribute* is httpx's own function, not a replacement or a wrapper."""
    return type(attribute) is FunctionType and _is_httpx_module(attribute.__module__)


def _is_httpx_module(name: str) -> bool:
    # httpx names "httpx" as the module of its public classes.
    return name == "httpx" or name.startswith("httpx.")
