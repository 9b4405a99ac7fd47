"""
What a command reads from its arguments: journey and user ids (from the
command line, a file or stdin), the client the flags describe, and whether
uvicorn is there to serve the emulator. Misuse is a `UsageError`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Final

from journey_async._validation import validate_journey_id, validate_user_ids

from ._args import BASE_URL_ENV_VAR, INSTALL_CLI, UsageError
from ._output import _installed

if TYPE_CHECKING:
    from journey_async._client import AsyncJourneyClient


# --- reading ids ----------------------------------------------------------------------------


def _read_lines(path: str, option: str) -> list[str]:
    """One id a line; blank lines skipped, surrounding whitespace dropped; ``-`` is stdin.
    A leading byte order mark is dropped: Windows editors write one, and it is no id's."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
    except OSError as exc:
        raise UsageError(f"cannot read {option} {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {option} {path!r}: not UTF-8 text ({exc.reason})") from None
    lines = text.removeprefix("\ufeff").splitlines()
    return [line.strip() for line in lines if line.strip()]


def _journey_ids(args: argparse.Namespace) -> list[str]:
    ids: list[str] = list(args.ids)
    if args.ids_file is not None:
        if ids:
            raise UsageError("pass journey ids as arguments or with --ids-file, not both")
        ids = _read_lines(args.ids_file, "--ids-file")
    elif ids == ["-"]:
        ids = _read_lines("-", "stdin")
    elif "-" in ids:
        raise UsageError("'-' (read journey ids from stdin) must be the only journey argument")
    if not ids:
        raise UsageError("no journey ids: pass them as arguments or with --ids-file")
    for journey_id in ids:
        validate_journey_id(journey_id)
    # Asked twice, fetched once: the output has one entry per journey.
    return list(dict.fromkeys(ids))


def _user_ids(args: argparse.Namespace) -> tuple[str, ...]:
    users: list[str] = list(args.users)
    sources = bool(users) + (args.users_file is not None)
    if sources > 1:
        raise UsageError("pass users as arguments, with --users-file or '-', not several")
    if users == ["-"]:
        users = _read_lines("-", "stdin")
    elif "-" in users:
        raise UsageError("'-' (read users from stdin) must be the only user argument")
    elif args.users_file is not None:
        users = _read_lines(args.users_file, "--users-file")
    if not users:
        raise UsageError("no users: pass them as arguments, with --users-file F, or '-' for stdin")
    return validate_user_ids(users)


# --- the client -----------------------------------------------------------------------------


# The client's complaints name its arguments; a command-line user knows the flags.
_FLAG_OF: Final = {
    "api_token=": "--token",
    "api_token": "--token",
    "base_url": "--base-url",
    "max_concurrency": "--concurrency",
    "timeout": "--timeout",
}
_ARGUMENT_NAMES: Final = re.compile(
    r"\b(api_token=|(?:api_token|base_url|max_concurrency|timeout)\b)"
)


def _client(args: argparse.Namespace) -> AsyncJourneyClient:
    """
    The client the flags describe. The token, when no ``--token`` is given,
    is the client's to find (``$PUSHWOOSH_API_TOKEN``), as in a program.
    """
    options: dict[str, Any] = {}
    base_url = args.base_url or os.environ.get(BASE_URL_ENV_VAR)
    if base_url:
        options["base_url"] = base_url
    if args.concurrency is not None:
        options["max_concurrency"] = args.concurrency
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.no_retry:
        options["retry"] = None
    from journey_async._client import AsyncJourneyClient

    try:
        return AsyncJourneyClient(args.token, **options)
    except (TypeError, ValueError) as exc:
        message = _ARGUMENT_NAMES.sub(lambda match: _FLAG_OF[match[1]], str(exc))
        raise UsageError(message) from None


def _require_uvicorn(command: str) -> None:
    if not _installed("uvicorn"):
        raise UsageError(f"'{command}' serves the emulator with uvicorn: {INSTALL_CLI}")
