"""
An in-memory emulator of the Pushwoosh Customer Journey API, as a raw ASGI 3 app.

`JourneyEmulator` answers the two endpoints as Pushwoosh documents them
(shapes, status codes, the two 400 messages), keeps real state (which users
are in which journey), and misbehaves on demand (`Fault`): 429s, 5xx, proxy
HTML pages, broken JSON, dropped connections, slow responses.
`EmulatorTransport` runs it in-process under httpx;
`journey_async._emulator_server` serves it on a real socket.

No web framework: the hot path is a few string comparisons, a dict lookup and
two ``send`` calls with bytes encoded once per journey, because benchmarks
push thousands of requests a second through it.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
import hmac
import json
import math
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypedDict, TypeGuard, Unpack

import anyio
import attrs
import httpx

if TYPE_CHECKING:
    from typing import Self

    from ._client import AsyncJourneyClient

__all__ = [
    "EmulatedPoint",
    "EmulatorTransport",
    "Fault",
    "JourneyEmulator",
    "RecordedRequest",
    "emulator_client",
    "in_app_point",
    "message_point",
    "raw_point",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

Endpoint: TypeAlias = Literal["stats", "remove"]
FaultKind: TypeAlias = Literal["status", "html", "malformed_json", "drop", "delay"]
_Headers: TypeAlias = list[tuple[bytes, bytes]]
# (status, headers, body); None in its place means "drop the connection".
_Response: TypeAlias = tuple[int, _Headers, bytes]

_STATS_PREFIX: Final = "/api/journey/"
_STATS_SUFFIX: Final = "/statistics/external"
_REMOVE_PATH: Final = "/api/journey/drop-users/external"
_MIN_STATS_PATH_LEN: Final = len(_STATS_PREFIX) + len(_STATS_SUFFIX)

USER_IDS_MISSING: Final = "user_ids must be provided"
JOURNEY_UUIDS_MISSING: Final = "journey_uuids must be provided if all_journeys is false"

_DEFAULT_CAMPAIGN_CODE: Final = "AAAAA-00000"
_DEFAULT_PRESET_CODE: Final = "12345-67890"


# --- what the emulator serves -------------------------------------------------------------


@attrs.frozen
class EmulatedPoint:
    """
    One journey element as the statistics endpoint returns it.

    Build it with `message_point`, `in_app_point` or `raw_point` rather than by
    hand: they compute the derived fields the way the API does.

    .. versionadded:: 0.1.0
    """

    title: str
    stat: Mapping[str, Any]
    campaign_code: str = _DEFAULT_CAMPAIGN_CODE
    preset_code: str = _DEFAULT_PRESET_CODE

    def to_json(self) -> dict[str, Any]:
        """The point as the API spells it (camelCase keys)."""
        return {
            "pointTitle": self.title,
            "campaignCode": self.campaign_code,
            "presetCode": self.preset_code,
            "pointStat": dict(self.stat),
        }


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def message_point(
    title: str,
    sent: int,
    opened: int,
    *,
    campaign_code: str = _DEFAULT_CAMPAIGN_CODE,
    preset_code: str = _DEFAULT_PRESET_CODE,
) -> EmulatedPoint:
    """
    A message element (push, email, SMS...): ``{"sent", "opened", "conversion"}``.

    ``conversion`` is a percentage, ``opened / sent * 100``, and 0 when nothing
    was sent. Whole values are sent as JSON integers (``0``, ``100``), as the
    JavaScript service behind the API does, so clients must accept both.

    .. versionadded:: 0.1.0
    """
    _count("sent", sent)
    _count("opened", opened)
    conversion: float | int = opened / sent * 100 if sent else 0
    if isinstance(conversion, float) and conversion.is_integer():
        conversion = int(conversion)
    return EmulatedPoint(
        title,
        {"sent": sent, "opened": opened, "conversion": conversion},
        campaign_code,
        preset_code,
    )


def in_app_point(
    title: str,
    shows: int,
    interactions: int,
    skipped: int,
    *,
    campaign_code: str = _DEFAULT_CAMPAIGN_CODE,
    preset_code: str = _DEFAULT_PRESET_CODE,
) -> EmulatedPoint:
    """
    An in-app element: ``{"shows", "interactions", "skipped"}``.

    .. versionadded:: 0.1.0
    """
    stat = {
        "shows": _count("shows", shows),
        "interactions": _count("interactions", interactions),
        "skipped": _count("skipped", skipped),
    }
    return EmulatedPoint(title, stat, campaign_code, preset_code)


def raw_point(
    title: str,
    point_stat: Mapping[str, Any],
    *,
    campaign_code: str = _DEFAULT_CAMPAIGN_CODE,
    preset_code: str = _DEFAULT_PRESET_CODE,
) -> EmulatedPoint:
    """
    A point with any ``pointStat``, sent as given.

    For shapes a client does not know yet, e.g. a webhook element's
    ``{"delivered": 10, "failed": 1}``, or a message with extra fields.

    .. versionadded:: 0.1.0
    """
    return EmulatedPoint(title, dict(point_stat), campaign_code, preset_code)


# --- faults -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Fault:
    """
    One misbehaviour of the API or the network in front of it.

    Make them with the class methods. By default a fault replaces the handling
    of the request: the request is not applied. With ``after_apply=True`` the
    request is applied first and then the fault hits its response, as when a
    gateway times out on a removal the service did carry out; that is what a
    client's retries must survive without removing anyone twice.

    .. versionadded:: 0.1.0
    """

    kind: FaultKind
    status_code: int | None = None
    retry_after: str | None = None
    seconds: float = 0.0
    after_apply: bool = False

    @classmethod
    def status(
        cls,
        status_code: int,
        *,
        retry_after: str | int | None = None,
        after_apply: bool = False,
    ) -> Self:
        """
        A JSON error ``{"success": false, "message": <reason>}`` with *status_code*.

        *retry_after* is sent as the ``Retry-After`` header exactly as given
        (seconds, or an HTTP date); no header when it is None.
        """
        if not 100 <= status_code <= 599:
            raise ValueError(f"status_code must be in 100..599, got {status_code!r}")
        return cls(
            kind="status",
            status_code=status_code,
            retry_after=None if retry_after is None else str(retry_after),
            after_apply=after_apply,
        )

    @classmethod
    def html(cls, status_code: int = 502, *, after_apply: bool = False) -> Self:
        """An HTML error page (``text/html``), as a proxy in front of the API sends."""
        if not 100 <= status_code <= 599:
            raise ValueError(f"status_code must be in 100..599, got {status_code!r}")
        return cls(kind="html", status_code=status_code, after_apply=after_apply)

    @classmethod
    def malformed_json(cls, *, after_apply: bool = False) -> Self:
        """A 200 labelled ``application/json`` whose body is cut short."""
        return cls(kind="malformed_json", status_code=200, after_apply=after_apply)

    @classmethod
    def drop(cls, *, after_apply: bool = False) -> Self:
        """
        The connection closes mid-response.

        Served, the status line and a ``Content-Length`` go out and then the
        socket closes; in-process, `EmulatorTransport` raises
        `httpx.RemoteProtocolError` as httpx does for that on the wire.
        """
        return cls(kind="drop", after_apply=after_apply)

    @classmethod
    def delay(cls, seconds: float, *, after_apply: bool = False) -> Self:
        """
        The normal response, *seconds* late: longer than a client's timeout.

        By default the request waits before it is handled, so a client that
        gives up in-process leaves no trace in the state. Served, the server
        finishes the request after the client left, as real servers do. With
        ``after_apply=True`` the request is handled at once and only the
        response is held back.
        """
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        return cls(kind="delay", seconds=float(seconds), after_apply=after_apply)


# What fault_rate draws from: the transient failures a client should retry.
_TRANSIENT_FAULTS: Final = (
    Fault.status(429),
    Fault.status(429, retry_after="0"),
    Fault.status(500),
    Fault.status(502),
    Fault.status(503),
    Fault.status(504),
    Fault.html(502),
    Fault.drop(),
)


@attrs.frozen
class _ScriptedFault:
    fault: Fault
    endpoint: Endpoint | None
    journey_id: str | None


# --- what the emulator remembers ----------------------------------------------------------


@attrs.frozen
class RecordedRequest:
    """
    One request the emulator received, as tests want to assert on it.

    Headers are not kept, so the API token can never leak through a record.

    Attributes:
        method: ``"GET"``, ``"POST"``...
        path: The URL path.
        endpoint: ``"stats"`` or ``"remove"``; None when the request was
            refused before it was routed (401, 404, 405).
        journey_id: The journey of a statistics request, else None.
        json: The parsed JSON body of a removal, or None (no body, not JSON).
        authorized: Whether the ``Authorization`` header carried the token.
        status: The status code sent, or None when no response went out
            (a dropped connection, a client that left first) or not yet
            (a request held by `Fault.delay` is recorded on arrival).
        fault: The `Fault` applied to this request, or None.

    .. versionadded:: 0.1.0
    """

    method: str
    path: str
    endpoint: Endpoint | None
    journey_id: str | None
    json: Any
    authorized: bool
    status: int | None
    fault: Fault | None


class _Exchange:
    """What one request has revealed so far; becomes its `RecordedRequest`."""

    __slots__ = ("authorized", "endpoint", "fault", "journey_id", "json", "method", "path", "slot")

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path
        self.endpoint: Endpoint | None = None
        self.journey_id: str | None = None
        self.json: Any = None
        self.authorized = False
        self.fault: Fault | None = None
        # Where its record is, once recorded before the response (Fault.delay).
        self.slot: tuple[list[RecordedRequest], int] | None = None


class _Journey:
    __slots__ = ("_response", "points", "title", "users")

    def __init__(self, title: str, points: Sequence[EmulatedPoint], users: set[str]) -> None:
        self.title = title
        self.points = tuple(points)
        self.users = users
        self._response: _Response | None = None

    @property
    def response(self) -> _Response:
        # Encoded once: users do not show in statistics, so only
        # update_journey invalidates it.
        if self._response is None:
            payload = {
                "payload": {"title": self.title, "points": [p.to_json() for p in self.points]}
            }
            self._response = _json_response(200, payload)
        return self._response


def _json_response(status: int, body: Any, extra: _Headers | None = None) -> _Response:
    encoded = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(encoded)).encode()),
    ]
    if extra:
        headers.extend(extra)
    return status, headers, encoded


def _error(status: int, message: str, extra: _Headers | None = None) -> _Response:
    return _json_response(status, {"success": False, "message": message}, extra)


_REMOVED: Final = _json_response(200, {"success": True})
_AUTH_MISSING: Final = _error(401, "Authorization header with an API token is required")
_AUTH_INVALID: Final = _error(401, "invalid API token")
_NOT_FOUND: Final = _error(404, "not found")
_JOURNEY_NOT_FOUND: Final = _error(404, "journey not found")
_GET_ONLY: Final = _error(405, "method not allowed", [(b"allow", b"GET")])
_POST_ONLY: Final = _error(405, "method not allowed", [(b"allow", b"POST")])
_NOT_JSON: Final = _error(400, "request body must be valid JSON")
_NOT_AN_OBJECT: Final = _error(400, "request body must be a JSON object")
_NO_USER_IDS: Final = _error(400, USER_IDS_MISSING)
_NO_JOURNEY_UUIDS: Final = _error(400, JOURNEY_UUIDS_MISSING)
# Cut short on purpose: what a truncated upstream response looks like.
_MALFORMED: Final[dict[Endpoint, bytes]] = {
    "stats": b'{"payload": {"title": "Jour',
    "remove": b'{"success": tr',
}
_INVALID_JSON: Final = object()
_DROP_HEADERS: Final = [(b"content-type", b"application/json"), (b"content-length", b"1024")]


def _fault_response(fault: Fault, endpoint: Endpoint) -> _Response | None:
    if fault.kind == "drop":
        return None
    status = fault.status_code or 500
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if fault.kind == "status":
        extra = (
            None if fault.retry_after is None else [(b"retry-after", fault.retry_after.encode())]
        )
        return _error(status, phrase, extra)
    if fault.kind == "html":
        page = (
            f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        ).encode()
        headers = [
            (b"content-type", b"text/html"),
            (b"content-length", str(len(page)).encode()),
        ]
        return status, headers, page
    body = _MALFORMED[endpoint]
    return (
        200,
        [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        body,
    )


class _Disconnected(Exception):
    """The client went away before its request body arrived."""


class _ConnectionDropped(Exception):
    """
    Raised by the app after a response started, to make the server close the socket.

    `EmulatorTransport` turns it into `httpx.RemoteProtocolError`; uvicorn
    closes the connection on it (and `_emulator_server` keeps it out of the log).
    """


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if message["type"] == "http.disconnect":
            raise _Disconnected
        return body
    chunks = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _is_str_list(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


class _EmulatorOptions(TypedDict, total=False):
    token: str
    latency: float
    fault_rate: float
    record_requests: bool
    max_user_ids_per_request: int | None


# --- the app ------------------------------------------------------------------------------


class JourneyEmulator:
    """
    The Customer Journey API in memory: an ASGI 3 application with inspectable state.

    Args:
        token: The API token it accepts (``Authorization: Api <token>``);
            anything else gets 401.
        latency: Seconds added to every response.
        fault_rate: The share of authorized requests, in [0, 1], that get a
            random transient fault: 429 (with and without ``Retry-After: 0``),
            500, 502, 503, 504, an HTML 502, a dropped connection.
        seed: Seeds the draws of *fault_rate*, so a run can be replayed. A
            request that consumes a scripted fault (`inject`) draws nothing.
        record_requests: Keep every request in `requests`; turn it off for
            long benchmarks.
        max_user_ids_per_request: When set, a removal with more ``user_ids``
            gets 400, for testing batching against a limit.

    Served by `serve_emulator`, the app runs in the server's thread while the
    test reads it from its own: every state change is one GIL-atomic
    operation (an append, a set update, an int assignment) so readers see
    either the old or the new state, never a torn one. Counters are only
    written from the thread that runs the app.

    .. versionadded:: 0.1.0
    """

    requests: list[RecordedRequest]
    """Every request received, oldest first, when *record_requests* is on."""
    removals_applied: int
    """How many removal requests were applied (answered 200 or faulted after apply)."""
    in_flight: int
    """Requests being handled right now."""
    max_in_flight: int
    """The peak of `in_flight` since creation or `reset_counters`."""

    def __init__(
        self,
        *,
        token: str = "test-token",  # noqa: S107 - a test double's default
        latency: float = 0.0,
        fault_rate: float = 0.0,
        seed: int | None = None,
        record_requests: bool = True,
        max_user_ids_per_request: int | None = None,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        if max_user_ids_per_request is not None and max_user_ids_per_request < 1:
            raise ValueError("max_user_ids_per_request must be None or >= 1")
        self._token = token
        self._authorization = f"Api {token}".encode()
        self.latency = latency
        self.fault_rate = fault_rate
        self._rng = random.Random(seed)  # noqa: S311 - fault draws, not secrets
        self.record_requests = record_requests
        self.max_user_ids_per_request = max_user_ids_per_request
        self._journeys: dict[str, _Journey] = {}
        self._scripted: list[_ScriptedFault] = []
        self.requests = []
        self.removals_applied = 0
        self.in_flight = 0
        self.max_in_flight = 0

    @classmethod
    def with_sample_data(
        cls,
        journeys: int = 300,
        *,
        users_per_journey: int = 20,
        unknown_shapes: bool = False,
        seed: int = 0,
        **kwargs: Unpack[_EmulatorOptions],
    ) -> Self:
        """
        An emulator holding *journeys* deterministic journeys.

        The same *seed* gives the same journey ids (UUID strings), titles,
        points and users, and seeds the fault draws. Journeys mix push and
        email message points with in-app points; users (``user-000042``) are
        drawn from a shared pool, so one user is in several journeys. With
        *unknown_shapes*, every fourth journey (the first one included) also
        has a webhook point ``{"delivered", "failed"}`` no client knows.
        Other keyword arguments go to the constructor.

        .. versionadded:: 0.1.0
        """
        if journeys < 0 or users_per_journey < 0:
            raise ValueError("journeys and users_per_journey must be >= 0")
        emulator = cls(seed=seed, **kwargs)
        rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
        pool = [f"user-{n:06d}" for n in range(users_per_journey * 5)]

        def codes() -> dict[str, str]:
            return {
                "campaign_code": f"{rng.randrange(16**5):05X}-{rng.randrange(10**5):05d}",
                "preset_code": f"{rng.randrange(10**5):05d}-{rng.randrange(10**5):05d}",
            }

        for index in range(journeys):
            journey_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            points: list[EmulatedPoint] = []
            for number in range(1, rng.randint(1, 4) + 1):
                kind = rng.choice(("Push", "Email", "In-app"))
                if kind == "In-app":
                    shows = rng.randint(0, 20_000)
                    interactions = rng.randint(0, shows)
                    skipped = rng.randint(0, shows - interactions)
                    point = in_app_point(
                        f"{kind} {number}", shows, interactions, skipped, **codes()
                    )
                else:
                    sent = rng.randint(0, 50_000)
                    point = message_point(
                        f"{kind} {number}", sent, rng.randint(0, sent // 5), **codes()
                    )
                points.append(point)
            if unknown_shapes and index % 4 == 0:
                delivered = rng.randint(0, 5_000)
                webhook = {"delivered": delivered, "failed": rng.randint(0, delivered // 10)}
                points.append(raw_point("Webhook", webhook, **codes()))
            emulator.add_journey(
                journey_id,
                title=f"Sample journey {index + 1}",
                points=points,
                users=rng.sample(pool, users_per_journey),
            )
        return emulator

    def __repr__(self) -> str:
        # Never the token.
        return f"<JourneyEmulator journeys={len(self._journeys)} requests={len(self.requests)}>"

    # --- configuration ---

    @property
    def token(self) -> str:
        """The API token this emulator accepts."""
        return self._token

    @property
    def latency(self) -> float:
        """Seconds added to every response; may be changed between requests."""
        return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"latency must be a finite number >= 0, got {value!r}")
        self._latency = float(value)

    @property
    def fault_rate(self) -> float:
        """The share of requests that get a random transient fault."""
        return self._fault_rate

    @fault_rate.setter
    def fault_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"fault_rate must be in [0, 1], got {value!r}")
        self._fault_rate = float(value)

    # --- journeys and users ---

    def add_journey(
        self,
        journey_id: str | None = None,
        *,
        title: str | None = None,
        points: Sequence[EmulatedPoint] | None = None,
        users: Iterable[str] = (),
    ) -> str:
        """
        Add a journey and return its id (a new UUID4 string when *journey_id* is None).

        *title* defaults to ``"Journey <id>"``; *points* to one push point and
        one in-app point, so a bare ``add_journey()`` has statistics worth reading.

        .. versionadded:: 0.1.0
        """
        if journey_id is None:
            journey_id = str(uuid.uuid4())
        elif not isinstance(journey_id, str) or not journey_id or "/" in journey_id:
            raise ValueError(f"journey_id must be a non-empty string without '/': {journey_id!r}")
        if journey_id in self._journeys:
            raise ValueError(f"journey {journey_id!r} already exists")
        if points is None:
            points = [message_point("Push", 22648, 60), in_app_point("In-app", 3148, 2759, 36)]
        self._journeys[journey_id] = _Journey(
            f"Journey {journey_id}" if title is None else title, points, _user_set(users)
        )
        return journey_id

    def update_journey(
        self,
        journey_id: str,
        *,
        title: str | None = None,
        points: Sequence[EmulatedPoint] | None = None,
    ) -> None:
        """
        Change what a journey's statistics say, as when a campaign keeps sending.

        .. versionadded:: 0.1.0
        """
        journey = self._journey(journey_id)
        # One new object swapped in: a reader in another thread never sees
        # a title and points from different updates.
        self._journeys[journey_id] = _Journey(
            journey.title if title is None else title,
            journey.points if points is None else points,
            journey.users,
        )

    def add_users(self, journey_id: str, user_ids: Iterable[str]) -> None:
        """
        Put users into a journey.

        .. versionadded:: 0.1.0
        """
        self._journey(journey_id).users.update(_user_set(user_ids))

    def users_in(self, journey_id: str) -> frozenset[str]:
        """
        The users in a journey now.

        .. versionadded:: 0.1.0
        """
        return frozenset(self._journey(journey_id).users)

    @property
    def journey_ids(self) -> list[str]:
        """Every journey id, in the order they were added."""
        return list(self._journeys)

    def _journey(self, journey_id: str) -> _Journey:
        try:
            return self._journeys[journey_id]
        except KeyError:
            raise KeyError(f"no journey {journey_id!r} in this emulator") from None

    # --- faults and counters ---

    def inject(
        self,
        *faults: Fault,
        endpoint: Endpoint | None = None,
        journey_id: str | None = None,
    ) -> None:
        """
        Queue *faults*: each is used up by the next matching request, in order.

        A request matches when its endpoint is *endpoint* (any, when None) and
        it concerns *journey_id* (any, when None): the journey of a statistics
        request, or one of a removal's ``journey_uuids`` (``all_journeys``
        concerns them all). Scripted faults go before *fault_rate*. Only
        authorized requests to the two endpoints are ever faulted.

        .. versionadded:: 0.1.0
        """
        if endpoint not in (None, "stats", "remove"):
            raise ValueError(f"endpoint must be 'stats', 'remove' or None, got {endpoint!r}")
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"expected a Fault, got {fault!r}")
        self._scripted.extend(_ScriptedFault(f, endpoint, journey_id) for f in faults)

    @property
    def pending_faults(self) -> int:
        """How many injected faults no request has used up yet."""
        return len(self._scripted)

    def clear_faults(self) -> None:
        """Forget the injected faults not used yet."""
        self._scripted = []

    def reset_counters(self) -> None:
        """Forget recorded requests and zero `removals_applied` and `max_in_flight`."""
        # A new list, not clear(): a request still held by Fault.delay
        # completes its record in the list it was recorded in.
        self.requests = []
        self.removals_applied = 0
        self.max_in_flight = self.in_flight

    def _may_sleep(self) -> bool:
        return bool(self._latency) or any(s.fault.kind == "delay" for s in self._scripted)

    def _take_fault(self, ex: _Exchange) -> Fault | None:
        if self._scripted:
            for index, scripted in enumerate(self._scripted):
                if _matches(scripted, ex):
                    del self._scripted[index]
                    return scripted.fault
        if self._fault_rate and self._rng.random() < self._fault_rate:
            return self._rng.choice(_TRANSIENT_FAULTS)
        return None

    # --- ASGI ---

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point."""
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        try:
            await self._handle(scope, receive, send)
        except _Disconnected:
            pass
        finally:
            self.in_flight -= 1

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        ex = _Exchange(scope["method"], scope["path"])
        try:
            response = await self._respond(ex, scope, receive)
        except BaseException:
            # Cancelled (a client timeout in-process) or disconnected: the
            # request still happened.
            self._record(ex, None)
            raise
        if response is None:
            self._record(ex, None)
            await send({"type": "http.response.start", "status": 200, "headers": _DROP_HEADERS})
            raise _ConnectionDropped
        status, headers, body = response
        # Recorded and applied before the first byte goes out: a served
        # client that has its answer finds the state already updated.
        self._record(ex, status)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _record(self, ex: _Exchange, status: int | None) -> None:
        if not self.record_requests:
            return
        record = RecordedRequest(
            ex.method, ex.path, ex.endpoint, ex.journey_id, ex.json, ex.authorized, status, ex.fault
        )
        if ex.slot is None:
            self.requests.append(record)
        else:
            # Recorded before a delay with status None; now it has one.
            records, index = ex.slot
            records[index] = record

    def _record_early(self, ex: _Exchange) -> None:
        # A delayed request shows in `requests` at once, as it does
        # in-process when the client gives up, not only after the delay.
        if self.record_requests:
            self._record(ex, None)
            ex.slot = (self.requests, len(self.requests) - 1)

    async def _respond(self, ex: _Exchange, scope: Scope, receive: Receive) -> _Response | None:
        if self._latency:
            await anyio.sleep(self._latency)
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                break
        if authorization is None:
            return _AUTH_MISSING
        if not hmac.compare_digest(authorization, self._authorization):
            return _AUTH_INVALID
        ex.authorized = True

        path = ex.path
        payload: Any = _INVALID_JSON
        if path == _REMOVE_PATH:
            if ex.method != "POST":
                return _POST_ONLY
            ex.endpoint = "remove"
            body = await _read_body(receive)
            with contextlib.suppress(ValueError):  # not JSON: _remove answers 400
                payload = ex.json = json.loads(body)
        elif (
            len(path) > _MIN_STATS_PATH_LEN
            and path.startswith(_STATS_PREFIX)
            and path.endswith(_STATS_SUFFIX)
            and "/" not in (journey_id := path[len(_STATS_PREFIX) : -len(_STATS_SUFFIX)])
        ):
            if ex.method != "GET":
                return _GET_ONLY
            ex.endpoint = "stats"
            ex.journey_id = journey_id
        else:
            return _NOT_FOUND

        fault = self._take_fault(ex)
        if fault is not None:
            ex.fault = fault
            if fault.kind == "delay":
                self._record_early(ex)
            if not fault.after_apply:
                if fault.kind != "delay":
                    return _fault_response(fault, ex.endpoint)
                await anyio.sleep(fault.seconds)

        if ex.endpoint == "stats":
            journey = self._journeys.get(journey_id)
            response = _JOURNEY_NOT_FOUND if journey is None else journey.response
        else:
            response = self._remove(payload)

        if fault is not None and fault.after_apply:
            if fault.kind != "delay":
                return _fault_response(fault, ex.endpoint)
            await anyio.sleep(fault.seconds)
        return response

    def _remove(self, payload: Any) -> _Response:
        if payload is _INVALID_JSON:
            return _NOT_JSON
        if not isinstance(payload, dict):
            return _NOT_AN_OBJECT
        user_ids = payload.get("user_ids")
        if not _is_str_list(user_ids):
            return _NO_USER_IDS
        limit = self.max_user_ids_per_request
        if limit is not None and len(user_ids) > limit:
            return _error(400, f"user_ids must not contain more than {limit} items")
        if payload.get("all_journeys") is True:
            targets: Iterable[_Journey] = list(self._journeys.values())
        else:
            journey_uuids = payload.get("journey_uuids")
            if not _is_str_list(journey_uuids):
                return _NO_JOURNEY_UUIDS
            # Unknown journeys are skipped: removal is a set operation.
            targets = [j for j in map(self._journeys.get, journey_uuids) if j is not None]
        for journey in targets:
            journey.users.difference_update(user_ids)
        self.removals_applied += 1
        return _REMOVED


def _matches(scripted: _ScriptedFault, ex: _Exchange) -> bool:
    if scripted.endpoint is not None and scripted.endpoint != ex.endpoint:
        return False
    if scripted.journey_id is None:
        return True
    if ex.endpoint == "stats":
        return ex.journey_id == scripted.journey_id
    body = ex.json
    if not isinstance(body, dict):
        return False
    if body.get("all_journeys") is True:
        return True
    uuids = body.get("journey_uuids")
    return isinstance(uuids, list) and scripted.journey_id in uuids


def _user_set(user_ids: Iterable[str]) -> set[str]:
    # A bare string would silently become a set of characters.
    if isinstance(user_ids, str):
        raise TypeError("user_ids must be an iterable of strings, not a string")
    users = set(user_ids)
    if not all(isinstance(u, str) for u in users):
        raise TypeError("user ids must be strings")
    return users


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to set up; answering lets servers run with lifespan="auto".
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


# --- in-process use with httpx ------------------------------------------------------------


class EmulatorTransport(httpx.AsyncBaseTransport):
    """
    An httpx transport that hands requests straight to a `JourneyEmulator`.

    Like `httpx.ASGITransport`, with what tests of a client need from a wire:
    `Fault.drop` raises `httpx.RemoteProtocolError`, and the request's read
    timeout is enforced, so `Fault.delay` and *latency* make a client time out
    with `httpx.ReadTimeout` as a socket would.

    .. versionadded:: 0.1.0
    """

    def __init__(self, emulator: JourneyEmulator) -> None:
        self.emulator = emulator

    def __repr__(self) -> str:
        return f"<EmulatorTransport {self.emulator!r}>"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        url = request.url
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port),
            "client": ("127.0.0.1", 123),
        }
        received = False
        status: int | None = None
        headers: _Headers = []
        parts: list[bytes] = []

        async def receive() -> Message:
            nonlocal received
            if received:
                return {"type": "http.disconnect"}
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        timeouts = request.extensions.get("timeout") or {}
        read_timeout: float | None = timeouts.get("read")
        try:
            # A cancel scope costs as much as the rest of this method; skip it
            # when the emulator cannot sleep, so no timeout could fire anyway.
            if read_timeout is None or not self.emulator._may_sleep():
                await self.emulator(scope, receive, send)
            else:
                with anyio.fail_after(read_timeout):
                    await self.emulator(scope, receive, send)
        except _ConnectionDropped:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body", request=request
            ) from None
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the emulator", request=request) from None
        if status is None:
            raise RuntimeError("the emulator returned without starting a response")
        return httpx.Response(status, headers=headers, content=b"".join(parts))


def emulator_client(emulator: JourneyEmulator, **client_kwargs: Any) -> AsyncJourneyClient:
    """
    An `AsyncJourneyClient` wired to *emulator* in-process, with its token.

    Keyword arguments go to the client (``retry=``, ``timeout=``,
    ``max_concurrency=``...). Use it as the client itself: ``async with``.

    .. versionadded:: 0.1.0
    """
    # Imported here: journey_async.testing must import without the client.
    from ._client import AsyncJourneyClient

    return AsyncJourneyClient(
        emulator.token,
        base_url="http://127.0.0.1",
        transport=EmulatorTransport(emulator),
        **client_kwargs,
    )
