"""
journey_async: an asyncio client for the Pushwoosh Customer Journey API.

Everything public is importable from here; the modules behind it are private.

.. versionadded:: 0.1.0
"""

import importlib as _importlib
import typing as _typing

from ._logging import configure_from_environment as _configure_logging
from ._version import __version__

if _typing.TYPE_CHECKING:
    from ._batcher import RemovalBatcher
    from ._client import AsyncJourneyClient
    from ._exceptions import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        JourneyError,
        NotAttemptedError,
        NotFoundError,
        RateLimiterError,
        RateLimitError,
        RemovalError,
        RequestTooLargeError,
        ResponseFormatError,
        ResponseTooLargeError,
        ServerError,
    )
    from ._models import (
        InAppStats,
        JourneyPoint,
        JourneyStats,
        MessageStats,
        PointStats,
        RemovalResult,
        StatsFailure,
        StatsResult,
        StatsSuccess,
        UnknownStats,
    )
    from ._ratelimit import RateLimit, RateLimiter
    from ._retry import RetryEvent, RetryPolicy
    from ._serialization import error_from_dict, error_to_dict, result_from_dict, result_to_dict

# Where each public name lives. A name's module is imported when the name is
# first used (PEP 562), so that ``import journey_async`` costs little and a
# program, the command line's ``--help`` included, pays only for what it uses.
_WHERE: _typing.Final = {
    "APIConnectionError": "._exceptions",
    "APIStatusError": "._exceptions",
    "APITimeoutError": "._exceptions",
    "AsyncJourneyClient": "._client",
    "AuthenticationError": "._exceptions",
    "BadRequestError": "._exceptions",
    "InAppStats": "._models",
    "JourneyError": "._exceptions",
    "JourneyPoint": "._models",
    "JourneyStats": "._models",
    "MessageStats": "._models",
    "NotAttemptedError": "._exceptions",
    "NotFoundError": "._exceptions",
    "PointStats": "._models",
    "RateLimit": "._ratelimit",
    "RateLimitError": "._exceptions",
    "RateLimiter": "._ratelimit",
    "RateLimiterError": "._exceptions",
    "RemovalBatcher": "._batcher",
    "RemovalError": "._exceptions",
    "RemovalResult": "._models",
    "RequestTooLargeError": "._exceptions",
    "ResponseFormatError": "._exceptions",
    "ResponseTooLargeError": "._exceptions",
    "RetryEvent": "._retry",
    "RetryPolicy": "._retry",
    "ServerError": "._exceptions",
    "StatsFailure": "._models",
    "StatsResult": "._models",
    "StatsSuccess": "._models",
    "UnknownStats": "._models",
    "error_from_dict": "._serialization",
    "error_to_dict": "._serialization",
    "result_from_dict": "._serialization",
    "result_to_dict": "._serialization",
}


if not _typing.TYPE_CHECKING:
    # Hidden from type checkers, which would otherwise accept any name here.

    def __getattr__(name: str) -> _typing.Any:
        try:
            module = _WHERE[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        value = getattr(_importlib.import_module(module, __name__), name)
        globals()[name] = value  # the next use is a plain module attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})


_configure_logging()

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncJourneyClient",
    "AuthenticationError",
    "BadRequestError",
    "InAppStats",
    "JourneyError",
    "JourneyPoint",
    "JourneyStats",
    "MessageStats",
    "NotAttemptedError",
    "NotFoundError",
    "PointStats",
    "RateLimit",
    "RateLimitError",
    "RateLimiter",
    "RateLimiterError",
    "RemovalBatcher",
    "RemovalError",
    "RemovalResult",
    "RequestTooLargeError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "StatsFailure",
    "StatsResult",
    "StatsSuccess",
    "UnknownStats",
    "__version__",
    "error_from_dict",
    "error_to_dict",
    "result_from_dict",
    "result_to_dict",
]
