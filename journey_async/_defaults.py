"""
The client's defaults, in a module of their own that imports only httpx, so
that the command line's ``--help`` can show them without loading the client.
`journey_async._config` is where they are used (and re-exported from).
"""

from __future__ import annotations

from typing import Final

import httpx

__all__ = [
    "DEFAULT_ATTEMPT_TIMEOUT",
    "DEFAULT_BASE_URL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_TIMEOUT",
    "TOKEN_ENV_VAR",
]

DEFAULT_BASE_URL: Final = "https://journey.pushwoosh.com"
TOKEN_ENV_VAR: Final = "PUSHWOOSH_API_TOKEN"  # noqa: S105 - a variable name

DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)
"""Ten seconds an attempt: the statistics endpoint answers in well under one;
connecting gets five, since a slow connect usually means a route problem."""

DEFAULT_ATTEMPT_TIMEOUT: Final = 30.0
"""Seconds of wall clock for one attempt, whole response included: three read
timeouts. The API answers in well under a second; an attempt still going
after 30 s is a stuck or trickling connection, better retried while the
call's deadline (60 s by default) leaves room for it."""

DEFAULT_MAX_CONCURRENCY: Final = 32
"""Requests in flight in a fan-out. Pushwoosh publishes no limit; 32 keeps one
client polite while already saturating a single core's worth of parsing."""

DEFAULT_BATCH_SIZE: Final = 1000
"""User ids per removal request. Pushwoosh documents no cap; a thousand
UUID-sized ids make a body of about 40 KB, far below any common gateway's body
limit, while a burst of 2,000 single-user removals still fits in two requests."""
