"""
journey_async: an asyncio client for the Pushwoosh Customer Journey API.

Everything public is importable from here; the modules behind it are private.

.. versionadded:: 0.1.0
"""

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
from ._logging import configure_from_environment as _configure_logging
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
from ._version import __version__

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
