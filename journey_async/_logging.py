"""
The ``journey_async`` logger: what every record about a request carries, and
``JOURNEY_ASYNC_LOG`` to switch on a stderr handler without writing code.

Records about a request carry these ``extra`` fields, for structured logging
(``record.journey_id`` and so on, or a JSON formatter):

- ``journey_id``: the journey of a statistics request; `None` for a removal.
- ``attempt``: the number of the attempt, from 1.
- ``status_code``: the status of its answer; `None` when none came.
- ``elapsed``: seconds since the call started.
- ``url``: the request's URL, which never holds the token (that goes in a
  header; a ``base_url`` with a password is refused), without its query.

Levels: DEBUG for every attempt, INFO for every retry, WARNING for nothing
the library does on its own.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from ._redaction import redact

if TYPE_CHECKING:
    import httpx

__all__ = [
    "LOG_ENV_VAR",
    "CallLog",
    "call_log",
    "configure_from_environment",
    "log_attempt",
    "logged_path",
    "logger",
    "request_extra",
]

logger: Final = logging.getLogger("journey_async")

LOG_ENV_VAR: Final = "JOURNEY_ASYNC_LOG"
"""``debug`` or ``info`` (any case) switches on a stderr handler at that level."""

_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO}
_HANDLER_MARK: Final = "_journey_async_env_handler"


class CallLog:
    """What the records of one call share: its journey, its start, its attempts."""

    __slots__ = ("attempt", "journey_id", "secret", "started")

    def __init__(self, journey_id: str | None, secret: str | None = None) -> None:
        self.journey_id = journey_id
        self.secret = secret
        self.started = time.perf_counter()
        self.attempt = 0


call_log: Final[contextvars.ContextVar[CallLog | None]] = contextvars.ContextVar(
    "journey_async_call_log", default=None
)
"""The call being made in this task, set by the client around each call."""


def request_extra(request: httpx.Request, status_code: int | None) -> dict[str, Any]:
    """The ``extra`` fields of a record about *request* (see the module docstring)."""
    log = call_log.get()
    url = request.url
    shown = str(url.copy_with(query=None, fragment=None)) if url.query else str(url)
    return {
        "journey_id": None
        if log is None or log.journey_id is None
        else redact(log.journey_id, log.secret),
        "attempt": None if log is None else log.attempt,
        "status_code": status_code,
        "elapsed": None if log is None else round(time.perf_counter() - log.started, 6),
        # Never the token by construction; blotted out all the same, as everywhere.
        "url": shown if log is None else redact(shown, log.secret),
    }


def logged_path(request: httpx.Request) -> str:
    """*request*'s path for a log message, blotted out as `request_extra` does."""
    log = call_log.get()
    path = request.url.path
    return path if log is None else redact(path, log.secret)


def log_attempt(request: httpx.Request, outcome: str, status_code: int | None) -> None:
    """The DEBUG record of one attempt at *request*: its *outcome* (a status
    or an exception's name) and *status_code* (`None` when none came)."""
    extra = request_extra(request, status_code)
    logger.debug(
        "%s %s: attempt %s -> %s after %.3f s",
        request.method,
        logged_path(request),
        extra["attempt"],
        outcome,
        extra["elapsed"] or 0.0,
        extra=extra,
    )


_refused: list[str] = []  # the value already refused, so it is said once a process


def configure_from_environment() -> None:
    """
    Add a stderr handler to the ``journey_async`` logger when
    ``JOURNEY_ASYNC_LOG`` is ``debug`` or ``info``; none (or blank) leaves
    logging to the application. Any other value does too, after one line on
    stderr that names it and the values accepted: the user asked for lines on
    stderr, and a typo should not leave them wondering why none came. Not a
    `warnings.warn`: under ``-W error`` it would make ``import journey_async``
    fail. Called once, at import.
    """
    value = os.environ.get(LOG_ENV_VAR, "").strip()
    level = _LEVELS.get(value.lower())
    if level is None:
        if value and value not in _refused:
            _refused.append(value)
            _say_ignored(value)
        return
    if any(getattr(handler, _HANDLER_MARK, False) for handler in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    setattr(handler, _HANDLER_MARK, True)
    logger.addHandler(handler)
    logger.setLevel(level)


def _say_ignored(value: str) -> None:
    shown = value if len(value) <= 40 else value[:40] + "..."
    accepted = " or ".join(_LEVELS)
    message = (
        f"journey_async: ignoring {LOG_ENV_VAR}={shown!r}: "
        f"use {accepted} (any case), or leave it unset\n"
    )
    stream = sys.stderr
    if stream is None:  # pythonw: nowhere to say it
        return
    try:
        stream.write(message)
        stream.flush()
    except (OSError, ValueError):  # a closed or broken stderr: not worth failing an import
        pass
