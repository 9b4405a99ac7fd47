"""
`JourneyEmulator`: the Customer Journey API in memory, as a raw ASGI 3 app.

It answers the two endpoints as Pushwoosh documents them (shapes, status
codes, the two 400 messages), keeps real state (which users are in which
journey), and misbehaves on demand (`Fault`).

No web framework: the hot path is a few string comparisons, a dict lookup and
two ``send`` calls with bytes encoded once per journey, because benchmarks
push thousands of requests a second through it.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, TypedDict, TypeGuard, Unpack

import anyio

from journey_async._emulator._asgi import (
    Receive,
    Scope,
    Send,
    _ConnectionDropped,
    _Disconnected,
    _error,
    _json_response,
    _lifespan,
    _read_body,
    _Response,
)
from journey_async._emulator._data import RecordedRequest, _Exchange, _Journey, sample_journeys
from journey_async._emulator._faults import _fault_response
from journey_async._emulator._state import _EmulatorState
from journey_async._validation import integer

if TYPE_CHECKING:
    from typing import Self

_STATS_PREFIX: Final = "/api/journey/"
_STATS_SUFFIX: Final = "/statistics/external"
_REMOVE_PATH: Final = "/api/journey/drop-users/external"
_MIN_STATS_PATH_LEN: Final = len(_STATS_PREFIX) + len(_STATS_SUFFIX)

USER_IDS_MISSING: Final = "user_ids must be provided"
JOURNEY_UUIDS_MISSING: Final = "journey_uuids must be provided if all_journeys is false"


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
_INVALID_JSON: Final = object()
_DROP_HEADERS: Final = [(b"content-type", b"application/json"), (b"content-length", b"1024")]


def _is_str_list(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


class _EmulatorOptions(TypedDict, total=False):
    token: str
    latency: float
    fault_rate: float
    record_requests: bool
    max_user_ids_per_request: int | None
    max_body_bytes: int | None
    rate_limit: float | None
    rate_limit_burst: int | None


# --- the app ------------------------------------------------------------------------------


class JourneyEmulator(_EmulatorState):
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
        max_body_bytes: When set, a removal whose body is longer gets 413, as
            from a gateway's body size limit (nginx's ``client_max_body_size``).
        rate_limit: Requests a second, when set: a gateway's token bucket
            over the authorized requests to the two endpoints; one over budget
            gets 429 with ``Retry-After`` in whole seconds (at least 1), before
            any fault. Counted in `rate_limited`. *(New in 0.2.0.)*
        rate_limit_burst: The bucket's size: requests that may pass at once
            after an idle moment; `None` means one second's worth (at least 1).
            *(New in 0.2.0.)*

    Served by `serve_emulator`, the app runs in the server's thread while the
    test reads it from its own: every state change is one GIL-atomic
    operation (an append, a set update, an int assignment) so readers see
    either the old or the new state, never a torn one. Counters are only
    written from the thread that runs the app.

    .. versionadded:: 0.1.0
    """

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
        integer(journeys, "journeys", minimum=0)
        integer(users_per_journey, "users_per_journey", minimum=0)
        emulator = cls(seed=seed, **kwargs)
        for journey_id, title, points, users in sample_journeys(
            journeys, users_per_journey=users_per_journey, unknown_shapes=unknown_shapes, seed=seed
        ):
            emulator.add_journey(journey_id, title=title, points=points, users=users)
        return emulator

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
            if self.max_body_bytes is not None and len(body) > self.max_body_bytes:
                return _error(413, "request body too large")
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

        if self._bucket is not None and (retry_after := self._bucket.take()) is not None:
            self.rate_limited += 1
            return _error(429, "rate limit exceeded", [(b"retry-after", b"%d" % retry_after)])

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
