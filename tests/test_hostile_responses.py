"""
A hostile server: whatever its statuses, headers and bodies, every call ends
as its result or a `JourneyError`, never another exception.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payloads import JOURNEY_ID, MIXED_EXAMPLE, TOKEN
from scripted import constant, scripted

import journey_async as ja
from journey_async._converter import structure_stats
from journey_async._ratelimit import DEFAULT_COOL_DOWN
from journey_async._retry import parse_retry_after


async def instant(_: float) -> None:
    return None


# Retry-After ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 12 ", 12.0),
        ("0", 0.0),
        ("²", None),  # "²".isdigit() is True; it is not a number of seconds
        ("٣", None),  # an Arabic-Indic digit three
        ("1.5", None),
        ("-1", None),
        ("0x10", None),
        ("soon", None),
        ("", None),
        ("Wed, 21 Oct 99999 07:28:00 GMT", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
        ("1" * 400, math.inf),  # above any max_retry_after: not waited on
    ],
)
def test_retry_after_is_ascii_digits_or_an_http_date(value: str, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_as_an_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=lambda: 1445412480.0) == 30.0


async def test_a_hostile_retry_after_falls_back_to_backoff() -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    answers = iter(
        [
            httpx.Response(503, headers=[(b"Retry-After", "²".encode())]),
            httpx.Response(429, headers={"Retry-After": "1.5"}),
            httpx.Response(200, json=MIXED_EXAMPLE),
        ]
    )
    transport = httpx.MockTransport(lambda request: next(answers))
    policy = ja.RetryPolicy(initial_delay=0.25, max_delay=0.25, sleep=record)
    async with ja.AsyncJourneyClient(TOKEN, transport=transport, retry=policy) as client:
        stats = await client.get_stats(JOURNEY_ID)
    assert stats.title == "Journey Title"
    backoff, cool_down = waits[:2], waits[2:]
    assert all(0 <= wait <= 0.25 for wait in backoff)  # the backoff's draws
    # The rest of the client-wide pause after a 429 that named no readable wait,
    # waited out in steps (evidence may dismiss a cool-down before its end).
    assert cool_down
    assert all(wait > 0 for wait in cool_down)
    assert sum(cool_down) <= DEFAULT_COOL_DOWN + 1e-9


@pytest.mark.parametrize("value", ["²", "1.5", "soon", "Wed, 21 Oct 99999 07:28:00 GMT"])
async def test_a_hostile_retry_after_on_a_final_429_is_none(value: str) -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(429, headers=[(b"Retry-After", value.encode())])
    )
    async with ja.AsyncJourneyClient(TOKEN, transport=transport, retry=None) as client:
        with pytest.raises(ja.RateLimitError) as info:
            await client.get_stats(JOURNEY_ID)
    assert info.value.retry_after is None


# Implausible numbers ----------------------------------------------------------


def with_stat(stat: object) -> bytes:
    body = {"payload": {"title": "T", "points": [{"pointTitle": "P", "pointStat": stat}]}}
    return json.dumps(body, allow_nan=True).encode()


MESSAGE = {"sent": 10, "opened": 5, "conversion": 50.0}


@pytest.mark.parametrize(
    ("stat", "names"),
    [
        ({**MESSAGE, "sent": -1}, "at least 0, got -1 @ $.payload.points[0].pointStat.sent"),
        ({**MESSAGE, "opened": 1.5}, "got 1.5 @ $.payload.points[0].pointStat.opened"),
        ({**MESSAGE, "sent": 1e308}, "got 1e+308 @ $.payload.points[0].pointStat.sent"),
        (
            {**MESSAGE, "conversion": math.nan},
            "finite number, got nan @ $.payload.points[0].pointStat.conversion",
        ),
        (
            {**MESSAGE, "conversion": math.inf},
            "finite number, got inf @ $.payload.points[0].pointStat.conversion",
        ),
        (
            {**MESSAGE, "conversion": -math.inf},
            "got -inf @ $.payload.points[0].pointStat.conversion",
        ),
        ({**MESSAGE, "conversion": -0.5}, "at least 0, got -0.5"),
        ({**MESSAGE, "conversion": 10**400}, "integer of 401 digits"),
        ({"shows": 1, "interactions": -3, "skipped": 0}, "pointStat.interactions"),
        ({"calls": math.nan}, "finite number, got nan @ $.payload.points[0].pointStat.calls"),
        ({"calls": {"by_day": [1, -math.inf]}}, "@ $.payload.points[0].pointStat.calls.by_day[1]"),
    ],
)
def test_implausible_numbers_are_response_format_errors(stat: object, names: str) -> None:
    with pytest.raises(ja.ResponseFormatError) as info:
        structure_stats(with_stat(stat))
    assert names in str(info.value)


def test_literal_nan_in_the_body_names_the_field() -> None:
    body = b'{"payload": {"title": "T", "points": [{"pointTitle": "P", "pointStat": '
    body += b'{"sent": 1, "opened": 1, "conversion": NaN}}]}}'
    with pytest.raises(ja.ResponseFormatError, match=r"got nan @ \$\.payload\.points\[0\]"):
        structure_stats(body)


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        ({**MESSAGE, "sent": 3.0}, ja.MessageStats(sent=3, opened=5, conversion=50.0)),
        ({**MESSAGE, "sent": float(2**53)}, ja.MessageStats(sent=2**53, opened=5, conversion=50.0)),
        ({**MESSAGE, "conversion": 0}, ja.MessageStats(sent=10, opened=5, conversion=0.0)),
        ({"calls": 1.5, "name": "x"}, ja.UnknownStats(raw={"calls": 1.5, "name": "x"})),
        # Extra fields beside a known shape are ignored, not read (README).
        (
            {**MESSAGE, "unsubscribed": math.nan},
            ja.MessageStats(sent=10, opened=5, conversion=50.0),
        ),
    ],
)
def test_plausible_numbers_are_accepted(stat: object, expected: ja.PointStats) -> None:
    # 3.0 is the count 3: some serializers write every number as a float.
    assert structure_stats(with_stat(stat)).points[0].stat == expected


# The property: arbitrary answers, typed outcomes -----------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def payload_with(value: Any, where: int) -> bytes:
    """The API's example with *value* put in one of its places."""
    body = json.loads(json.dumps(MIXED_EXAMPLE))
    point = body["payload"]["points"][0]
    places = [
        lambda: body.update(payload=value),
        lambda: body["payload"].update(points=value),
        lambda: point.update(pointStat=value),
        lambda: point["pointStat"].update(sent=value),
        lambda: point["pointStat"].update(conversion=value),
        lambda: point.update(pointTitle=value),
        lambda: body.update(success=value),
    ]
    places[where % len(places)]()
    return json.dumps(body, allow_nan=True).encode()


bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda value: json.dumps(value, allow_nan=True).encode())
    | st.builds(payload_with, json_values, st.integers(0, 6))
    | st.just(json.dumps(MIXED_EXAMPLE).encode())
    | st.just(b'{"success": true}')
)
# Header values as bytes on the wire: anything but the line breaks that end them.
header_texts = (
    st.text(max_size=30)
    # Numbers as Unicode has them: "²".isdigit(), "٣".isdigit() and "½".isnumeric() are True.
    | st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=6)
    | st.sampled_from(["²", "①", "-1", "1.5", "1e3", "9" * 400, "Wed, 21 Oct 99999 07:28:00 GMT"])
    | st.dates().map(lambda day: day.strftime("%a, %d %b %Y 00:00:00 GMT"))
)
header_values = (st.binary(max_size=40) | header_texts.map(str.encode)).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"")
)
header_names = st.sampled_from(
    [b"Retry-After", b"Content-Encoding", b"Content-Type", b"X-Request-Id", b"Request-Id"]
)
retryable = [408, 429, 500, 502, 503, 504]
answers = st.builds(
    lambda status, retry_after, headers, body, reason: (
        status,
        [*([] if retry_after is None else [(b"Retry-After", retry_after)]), *headers],
        body,
        reason,
    ),
    st.sampled_from(retryable)
    | st.sampled_from([200, 201, 204, 400, 401, 403, 404, 409, 413, 418]),
    st.none() | header_values,
    st.lists(st.tuples(header_names, header_values), max_size=3),
    bodies,
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)


def hostile_client(script: list[tuple[int, list[tuple[bytes, bytes]], bytes, bytes]]) -> Any:
    remaining = list(script)

    def answer(request: httpx.Request) -> httpx.Response:
        status, headers, body, reason = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(body),  # undecoded: Content-Encoding applies on read
            extensions={"reason_phrase": reason},
        )

    policy = ja.RetryPolicy(max_attempts=4, max_retry_after=1e9, sleep=instant)
    return ja.AsyncJourneyClient(TOKEN, transport=httpx.MockTransport(answer), retry=policy)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=300)
@given(st.lists(answers, min_size=1, max_size=4))
def test_any_answers_end_as_stats_or_a_journey_error(
    script: list[tuple[int, list[tuple[bytes, bytes]], bytes, bytes]],
) -> None:
    async def run() -> None:
        async with hostile_client(script) as client:
            message = ""
            try:
                stats = await client.get_stats(JOURNEY_ID)
            except ja.JourneyError as exc:
                message = str(exc)
            else:
                assert isinstance(stats, ja.JourneyStats)
            assert TOKEN not in message

    asyncio.run(run())


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=300)
@given(st.lists(answers, min_size=1, max_size=4))
def test_any_answers_end_as_a_removal_result_or_a_journey_error(
    script: list[tuple[int, list[tuple[bytes, bytes]], bytes, bytes]],
) -> None:
    async def run() -> None:
        async with hostile_client(script) as client:
            message = ""
            try:
                result = await client.remove_users(["u1", "u2"], all_journeys=True)
            except ja.JourneyError as exc:
                message = str(exc)
            else:
                assert result.user_ids == ("u1", "u2")
            assert TOKEN not in message

    asyncio.run(run())


# The same errors on trio, where httpcore reads the responses -------------------


def _answer_in_a_thread(answer: Callable[[socket.socket], None]) -> tuple[str, Callable[[], None]]:
    # A blocking server in a thread: it serves asyncio and trio clients alike.
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    answer(conn)
                except OSError:
                    pass  # the client gave up first

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join()
        listener.close()

    return f"http://127.0.0.1:{listener.getsockname()[1]}", close


def _huge_head(conn: socket.socket) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 1000) for i in range(200))
    conn.sendall(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\n{}")


def _huge_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + b"a" * 300_000)


def _trickle(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    for _ in range(20):
        conn.sendall(b"a")
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        pytest.param(_huge_head, ja.ResponseTooLargeError, "response head", id="head"),
        pytest.param(
            _huge_body,
            ja.ResponseTooLargeError,
            "max_response_bytes",
            id="body",
            # A known leak, not this test's subject: on trio, a body cut short by
            # read_bounded (journey_async/_http/_body.py) leaves httpx's and
            # httpcore's stream generators to trio's finalizer, which warns.
            marks=pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
        ),
        pytest.param(_trickle, ja.APITimeoutError, "attempt_timeout", id="trickle"),
    ],
)
def test_hostile_answers_end_as_the_same_errors_on_trio_and_asyncio(
    answer: Callable[[socket.socket], None], error: type[ja.JourneyError], match: str
) -> None:
    url, close = _answer_in_a_thread(answer)

    async def scenario() -> type[ja.JourneyError]:
        async with ja.AsyncJourneyClient(
            TOKEN, base_url=url, retry=None, attempt_timeout=0.3, max_response_bytes=100_000
        ) as client:
            with pytest.raises(ja.JourneyError) as info:
                await client.get_stats(JOURNEY_ID)
            assert match in str(info.value)
            return type(info.value)

    try:
        seen = {backend: anyio.run(scenario, backend=backend) for backend in ("asyncio", "trio")}
    finally:
        close()
    assert seen == {"asyncio": error, "trio": error}


def _long_line(conn: socket.socket) -> None:
    # Under httpcore's buffer, over the default transport's line cap.
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 9000 + b"\r\nContent-Length: 2\r\n\r\n{}")


def _many_lines(conn: socket.socket) -> None:
    # 70 KiB of short lines: under httpcore's buffer, over the head cap.
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 90) for i in range(700))
    conn.sendall(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\n{}")


HEADS_OVER_CAPS = [
    pytest.param(_huge_head, "head", id="past-httpcore-buffer"),
    pytest.param(_many_lines, "head", id="head-cap"),
    pytest.param(_long_line, "head line", id="line-cap"),
]


def _counting(
    answer: Callable[[socket.socket], None],
) -> tuple[str, Callable[[], None], list[None]]:
    """`_answer_in_a_thread` of *answer*, with a list that grows by one per
    connection answered."""
    answered: list[None] = []

    def counted(conn: socket.socket) -> None:
        answered.append(None)
        answer(conn)

    url, close = _answer_in_a_thread(counted)
    return url, close, answered


@pytest.mark.parametrize(
    ("answer", "cap"),
    HEADS_OVER_CAPS,
)
def test_on_trio_the_head_caps_hold_and_are_not_retried(
    answer: Callable[[socket.socket], None], cap: str
) -> None:
    url, close, answered = _counting(answer)

    async def no_wait(seconds: float) -> None:
        await anyio.lowlevel.checkpoint()

    async def scenario() -> None:
        policy = ja.RetryPolicy(sleep=no_wait)
        async with ja.AsyncJourneyClient(TOKEN, base_url=url, retry=policy) as client:
            with pytest.raises(ja.ResponseTooLargeError) as info:
                await client.get_stats(JOURNEY_ID)
            assert info.value.cap == cap

    try:
        anyio.run(scenario, backend="trio")
    finally:
        close()
    assert len(answered) == 1, "a cap is not retried"


@pytest.mark.parametrize("given", ["transport", "http_client"])
@pytest.mark.parametrize(
    ("answer", "cap"),
    HEADS_OVER_CAPS,
)
async def test_the_head_caps_hold_on_a_callers_transport_and_client(
    answer: Callable[[socket.socket], None], cap: str, given: str
) -> None:
    # The README: with your own http_client= or transport=, the size caps still hold.
    url, close, answered = _counting(answer)
    own: dict[str, Any] = (
        {"transport": httpx.AsyncHTTPTransport()}
        if given == "transport"
        else {"http_client": httpx.AsyncClient(base_url=url)}
    )
    try:
        policy = ja.RetryPolicy(sleep=instant)
        async with ja.AsyncJourneyClient(TOKEN, base_url=url, retry=policy, **own) as client:
            with pytest.raises(ja.ResponseTooLargeError) as info:
                await client.get_stats(JOURNEY_ID)
        assert info.value.cap == cap
    finally:
        if "http_client" in own:
            await own["http_client"].aclose()
        close()
    assert len(answered) == 1, "a cap is not retried"


# An error response whose body is not in its coding --------------------------------------

NOT_GZIP = b"notgzip"


def _not_gzip(status: bytes, *, endless: bool = False) -> bytes:
    """An error response saying gzip whose body is not; *endless*: one chunk
    of it, and the body never ends (the connection stays open)."""
    if endless:
        head = b"HTTP/1.1 %s\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        return head % status + b"%x\r\n%s\r\n" % (len(NOT_GZIP), NOT_GZIP)
    head = b"HTTP/1.1 %s\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
    return head % (status, len(NOT_GZIP)) + NOT_GZIP


def _transport(kind: str) -> dict[str, Any]:
    return {} if kind == "default" else {"transport": httpx.AsyncHTTPTransport()}


@pytest.mark.parametrize("transport", ["default", "httpcore"])
@pytest.mark.parametrize("endless", [False, True])
async def test_a_401_whose_body_is_not_in_its_coding_still_stops_the_fan_out(
    transport: str, endless: bool
) -> None:
    # Its body only words the message; its status is what counts. Read on,
    # an endless one would end at the read timeout instead.
    answer = _not_gzip(b"401 Unauthorized", endless=endless)
    async with (
        scripted(constant(answer)) as (url, server, _),
        ja.AsyncJourneyClient(
            TOKEN, base_url=url, max_concurrency=1, timeout=5.0, **_transport(transport)
        ) as client,
    ):
        results = await client.get_stats_many(["j-1", "j-2", "j-3"])
    assert isinstance(results[0].error, ja.AuthenticationError)
    assert [type(result.error) for result in results[1:]] == [ja.NotAttemptedError] * 2
    assert len(server.heads) == 1


@pytest.mark.parametrize("transport", ["default", "httpcore"])
async def test_a_503_whose_body_is_not_in_its_coding_is_retried(transport: str) -> None:
    answers = iter([_not_gzip(b"503 Service Unavailable"), _stats_answer()])

    async def reply(head: bytes, number: int) -> bytes:
        return next(answers)

    async with scripted(reply) as (url, server, _):
        policy = ja.RetryPolicy(sleep=instant)
        async with ja.AsyncJourneyClient(
            TOKEN, base_url=url, retry=policy, **_transport(transport)
        ) as client:
            stats = await client.get_stats(JOURNEY_ID)
    assert stats == structure_stats(json.dumps(MIXED_EXAMPLE).encode())
    assert len(server.heads) == 2


async def test_a_success_whose_body_is_not_in_its_coding_is_a_format_error() -> None:
    answer = _not_gzip(b"200 OK")
    async with (
        scripted(constant(answer)) as (url, _, _),
        ja.AsyncJourneyClient(TOKEN, base_url=url, retry=None) as client,
    ):
        with pytest.raises(ja.ResponseFormatError, match="gzip"):
            await client.get_stats(JOURNEY_ID)


def _stats_answer() -> bytes:
    body = json.dumps(MIXED_EXAMPLE).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body
