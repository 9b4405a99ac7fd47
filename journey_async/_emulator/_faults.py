"""
How the emulator misbehaves on demand: `Fault` (429s, 5xx, proxy HTML pages,
broken JSON, dropped connections, slow responses), the transient faults that
*fault_rate* draws from, scripted faults and which requests they match, and
the response each fault sends.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

import attrs

from journey_async._emulator._asgi import _error, _Response
from journey_async._emulator._data import Endpoint
from journey_async._validation import integer, number

if TYPE_CHECKING:
    from typing import Self

    from journey_async._emulator._data import _Exchange

FaultKind: TypeAlias = Literal["status", "html", "malformed_json", "drop", "delay"]


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
        integer(status_code, "status_code", minimum=100, maximum=599)
        return cls(
            kind="status",
            status_code=status_code,
            retry_after=None if retry_after is None else str(retry_after),
            after_apply=after_apply,
        )

    @classmethod
    def html(cls, status_code: int = 502, *, after_apply: bool = False) -> Self:
        """An HTML error page (``text/html``), as a proxy in front of the API sends."""
        integer(status_code, "status_code", minimum=100, maximum=599)
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
        seconds = number(seconds, "seconds")
        return cls(kind="delay", seconds=seconds, after_apply=after_apply)


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


# Cut short on purpose: what a truncated upstream response looks like.
_MALFORMED: Final[dict[Endpoint, bytes]] = {
    "stats": b'{"payload": {"title": "Jour',
    "remove": b'{"success": tr',
}


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
