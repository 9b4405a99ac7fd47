"""
The errors journey_async raises: every failure a caller can meet is a `JourneyError`.

```
JourneyError
├── APIStatusError (status_code, message, response)
│   ├── BadRequestError        400
│   ├── AuthenticationError    401, 403
│   ├── NotFoundError          404
│   ├── RateLimitError         429 (retry_after)
│   └── ServerError            5xx
├── APIConnectionError
│   └── APITimeoutError
├── ResponseFormatError        body is not what the API documents
│   └── ResponseTooLargeError  over a size cap (cap, limit)
└── RemovalError               removed, failed
```

Bad input is not in this tree: it is refused with the builtin `ValueError` or
`TypeError` before any request is sent, as Python code does everywhere.

No message built here ever contains the API token: messages name the method,
the path and what the server said, never a request header.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "JourneyError",
    "NotFoundError",
    "RateLimitError",
    "RemovalError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "ServerError",
]


class JourneyError(Exception):
    """
    The base of every error journey_async raises for a failed call.

    Catch it to handle any failure of the API, the network or the response.

    .. versionadded:: 0.1.0
    """


class APIStatusError(JourneyError):
    """
    The API answered with an error status.

    Attributes:
        status_code: The HTTP status code.
        message: What the server said (its JSON ``message``), or a summary of
            the body when it said nothing readable.
        response: The `httpx.Response`, body already read.

    .. versionadded:: 0.1.0
    """

    status_code: int
    message: str
    response: httpx.Response

    def __init__(self, message: str, *, status_code: int, response: httpx.Response) -> None:
        self.status_code = status_code
        self.message = message
        self.response = response
        request = response.request
        super().__init__(f"{request.method} {request.url.path} -> {status_code}: {message}")


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
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, response=response)
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
    connection closed, memory never past the cap). Not retried.

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
