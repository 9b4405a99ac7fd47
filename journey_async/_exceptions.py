"""
The errors journey_async raises: every failure a caller can meet is a `JourneyError`.

```
JourneyError
├── APIStatusError (status_code, message, response, request_id)
│   ├── BadRequestError        400
│   ├── AuthenticationError    401, 403
│   ├── NotFoundError          404
│   ├── RequestTooLargeError   413, for one user alone
│   ├── RateLimitError         429 (retry_after)
│   └── ServerError            5xx
├── APIConnectionError
│   └── APITimeoutError
├── NotAttemptedError          never sent: an earlier failure ended the call (cause)
├── RateLimiterError           never sent: the rate limiter failed (its Redis is unreachable)
├── ResponseFormatError        body is not what the API documents
│   └── ResponseTooLargeError  over a size cap (cap, limit)
└── RemovalError               removed, failed
```

Bad input is not in this tree: it is refused with the builtin `ValueError` or
`TypeError` before any request is sent, as Python code does everywhere.

No message built here ever contains the API token: messages name the method,
the path and what the server said, never a request header.

Every error survives `pickle` (for multiprocessing and task queues): a pickled
`APIStatusError` carries its response and request without the
``Authorization`` header. `journey_async.error_to_dict` gives a plain dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "JourneyError",
    "NotAttemptedError",
    "NotFoundError",
    "RateLimitError",
    "RateLimiterError",
    "RemovalError",
    "RequestTooLargeError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "ServerError",
    "rebuild_error",
    "response_from_summary",
    "response_summary",
]

_SECRET_HEADERS: Final = frozenset({b"authorization", b"proxy-authorization"})


class JourneyError(Exception):
    """
    The base of every error journey_async raises for a failed call.

    Catch it to handle any failure of the API, the network or the response.

    .. versionadded:: 0.1.0
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # The default calls cls(*args), which keyword-only __init__s refuse;
        # this restores the attributes as they are, a response without secrets.
        state = {
            name: _without_secrets(value) if isinstance(value, httpx.Response) else value
            for name, value in vars(self).items()
        }
        return (rebuild_error, (type(self), self.args, state))


class APIStatusError(JourneyError):
    """
    The API answered with an error status.

    Attributes:
        status_code: The HTTP status code.
        message: What the server said (its JSON ``message``), or a summary of
            the body when it said nothing readable.
        response: The `httpx.Response`, body already read.
        request_id: The server's id for the request (its ``x-request-id`` or
            ``request-id`` header), to quote to its support; `None` when it
            sent none. Shown in the message.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``request_id``.
    """

    status_code: int
    message: str
    response: httpx.Response
    request_id: str | None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        response: httpx.Response,
        request_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.response = response
        self.request_id = request_id
        request = response.request
        shown = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{request.method} {request.url.path} -> {status_code}: {message}{shown}")


class BadRequestError(APIStatusError):
    """
    400: the API refused the request as invalid.

    .. versionadded:: 0.1.0
    """


class AuthenticationError(APIStatusError):
    """
    401 or 403: the API token is missing, wrong, or not allowed to do this.

    .. versionadded:: 0.1.0
    """


class NotFoundError(APIStatusError):
    """
    404: no such journey (or no such endpoint at this base URL).

    .. versionadded:: 0.1.0
    """


class RequestTooLargeError(APIStatusError):
    """
    413: the request body is larger than the API, or a gateway in front of
    it, accepts.

    A batched removal answered 413 is split in halves and sent again, down to
    one user a request, so this is raised only for a removal whose single
    user still does not fit (or for a request that cannot be split).

    .. versionadded:: 0.2.0
    """


class RateLimitError(APIStatusError):
    """
    429: too many requests, and retrying was not possible or not allowed.

    Attributes:
        retry_after: The wait the server asked for, in seconds, or `None` when
            it sent no readable ``Retry-After``.

    .. versionadded:: 0.1.0
    """

    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        response: httpx.Response,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, response=response, request_id=request_id)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """
    5xx: the service, or a gateway in front of it, failed.

    .. versionadded:: 0.1.0
    """


class APIConnectionError(JourneyError):
    """
    No answer came back: the connection failed, broke, or was refused.

    .. versionadded:: 0.1.0
    """


class APITimeoutError(APIConnectionError):
    """
    The last attempt ran out of time (connect, read, write or pool timeout),
    possibly because its timeout was lowered to what was left of the retry
    deadline; the message says so then. A deadline reached between attempts
    raises the error of the last attempt instead (see `RetryPolicy`).

    .. versionadded:: 0.1.0
    """


class NotAttemptedError(JourneyError):
    """
    This request was never sent: an earlier failure of the same call showed
    that it would fail the same way.

    A fan-out (`get_stats_many`, `iter_stats`), a `remove_users` call and a
    removal batcher stop sending at their first `AuthenticationError` (the
    token is wrong for every request alike); a fan-out and `remove_users`
    also stop once a request could not connect to the API on any of its
    attempts, or once the client is closed under them (its ``aclose()``).
    What was not sent by then ends with this error, and is never retried.

    Attributes:
        cause: The failure that stopped the call (also its ``__cause__``).

    .. versionadded:: 0.2.0
    """

    cause: JourneyError

    def __init__(self, cause: JourneyError) -> None:
        super().__init__(cause)
        self.cause = cause
        self.__cause__ = cause

    def __str__(self) -> str:
        return f"not attempted: an earlier request of this call failed: {self.cause}"


class RateLimiterError(JourneyError):
    """
    The request was not sent: the client's rate limiter could not say when
    it may go, such as a `journey_async.redis.RedisRateLimit` whose Redis
    cannot be reached. Not sending is deliberate: a request sent without
    the shared budget would spend what other processes count on.

    .. versionadded:: 0.2.0
    """


class ResponseFormatError(JourneyError):
    """
    The body is not what the API documents: it cannot be decoded, is not
    JSON, or does not fit the documented schema (on a 2xx answer).

    The message names the field that did not fit, so that a changed API is
    reported as such rather than as a crash deep inside the library.

    .. versionadded:: 0.1.0
    """


class ResponseTooLargeError(ResponseFormatError):
    """
    The response went over a size cap, and was dropped as it arrived (the
    connection closed, memory never past the cap). Not retried. An error
    response's body over the body cap is dropped instead, and the response
    goes on as its status says (a 503 retried, a 413 splitting a removal).

    Attributes:
        cap: Which cap: ``"max_response_bytes"`` (the body, counted after
            decompression: raise it with
            ``AsyncJourneyClient(max_response_bytes=...)``), ``"head line"``
            or ``"head"`` (fixed caps on the status line and headers, far
            above what the API sends).
        limit: The cap, in bytes.

    .. versionadded:: 0.2.0
    """

    cap: str
    limit: int

    def __init__(self, message: str, *, cap: str, limit: int) -> None:
        super().__init__(message)
        self.cap = cap
        self.limit = limit


class RemovalError(JourneyError):
    """
    A removal was confirmed for some users and failed for good for others.

    Every user handed in is in exactly one of `removed` and `failed`.

    Attributes:
        removed: Users whose removal the API confirmed, in input order.
        failed: Users whose batch failed, in input order.
        errors: The distinct errors of the failed batches.

    .. versionadded:: 0.1.0
    """

    removed: tuple[str, ...]
    failed: tuple[str, ...]
    errors: tuple[JourneyError, ...]

    def __init__(
        self,
        *,
        removed: Sequence[str],
        failed: Sequence[str],
        errors: Sequence[JourneyError],
    ) -> None:
        self.removed = tuple(removed)
        self.failed = tuple(failed)
        self.errors = tuple(errors)
        first = errors[0] if errors else None
        super().__init__(
            f"removal confirmed for {len(self.removed)} users and failed for "
            f"{len(self.failed)} ({len(self.errors)} failed requests; first: {first})"
        )


def rebuild_error(
    cls: type[JourneyError], args: tuple[Any, ...], state: Mapping[str, Any]
) -> JourneyError:
    """*cls* with *args* and the attributes *state*, without calling its
    ``__init__``: how pickled and dict-converted errors come back."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    # NotAttemptedError's cause is also its __cause__, which lives outside
    # vars(): a copy must chain to it as the original does (tracebacks,
    # Sentry's chained exceptions).
    cause = state.get("cause")
    if isinstance(cause, BaseException):
        error.__cause__ = cause
    return error


def _without_secrets(response: httpx.Response) -> httpx.Response:
    """A copy of *response* (body included) whose request has no credentials."""
    try:
        request = response.request
    except RuntimeError:  # a response built without a request
        return response
    headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _SECRET_HEADERS]
    clean = httpx.Request(request.method, request.url, headers=headers, content=_body(request))
    return httpx.Response(
        response.status_code, headers=response.headers, content=_body(response), request=clean
    )


def _body(message: httpx.Request | httpx.Response) -> bytes:
    try:
        return message.content
    except (httpx.RequestNotRead, httpx.ResponseNotRead):
        return b""


def response_summary(response: httpx.Response) -> dict[str, Any]:
    """The plain parts of *response* an error keeps in a dict: its request's
    method and URL (never a header) and its status."""
    try:
        request = response.request
        method, url = request.method, str(request.url)
    except RuntimeError:
        method, url = "GET", ""
    return {"method": method, "url": url, "status_code": response.status_code}


def response_from_summary(summary: Mapping[str, Any]) -> httpx.Response:
    """A bodiless `httpx.Response` for a `response_summary`."""
    request = httpx.Request(summary["method"], summary["url"] or "http://unknown.invalid")
    return httpx.Response(summary["status_code"], request=request)
