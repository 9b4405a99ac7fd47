"""
The emulator's ASGI plumbing (journey_async._emulator._asgi): bodies that
arrive in chunks or not at all, the lifespan protocol, responses encoded once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence

import pytest

from journey_async._emulator._asgi import (
    Message,
    _Disconnected,
    _error,
    _json_response,
    _lifespan,
    _read_body,
)


def receiver(messages: Sequence[Message]) -> Callable[[], Awaitable[Message]]:
    queue = list(messages)

    async def receive() -> Message:
        return queue.pop(0)

    return receive


async def test_a_body_in_chunks_is_joined() -> None:
    receive = receiver(
        [
            {"type": "http.request", "body": b'{"user', "more_body": True},
            {"type": "http.request", "body": b'_ids": []', "more_body": True},
            {"type": "http.request", "body": b"}", "more_body": False},
        ]
    )
    assert await _read_body(receive) == b'{"user_ids": []}'


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([{"type": "http.disconnect"}], id="before-the-body"),
        pytest.param(
            [
                {"type": "http.request", "body": b"{", "more_body": True},
                {"type": "http.disconnect"},
            ],
            id="mid-body",
        ),
    ],
)
async def test_a_client_that_leaves_is_told_apart(messages: list[Message]) -> None:
    with pytest.raises(_Disconnected):
        await _read_body(receiver(messages))


async def test_lifespan_is_answered() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    receive = receiver([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    await _lifespan(receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_responses_carry_their_length_and_extra_headers() -> None:
    status, headers, body = _error(405, "method not allowed", [(b"allow", b"GET")])
    assert status == 405
    assert json.loads(body) == {"success": False, "message": "method not allowed"}
    assert headers == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"allow", b"GET"),
    ]
    assert _json_response(200, {"a": 1})[2] == b'{"a":1}'
