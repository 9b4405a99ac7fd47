"""
What the command line says when a call stopped early (`_guard`): a wrong
token or an API it cannot reach fails every journey and every batch alike,
so one line on stderr names what to check instead of a table of identical
errors.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from journey_async._defaults import TOKEN_ENV_VAR
from journey_async._exceptions import APIStatusError, JourneyError, NotAttemptedError
from journey_async._guard import stops_call

from ._args import BASE_URL_ENV_VAR


def call_stopper(errors: Iterable[BaseException | None]) -> JourneyError | None:
    """The failure that ended the call among *errors*: a 401/403 or an API
    not reached, or the cause of a `NotAttemptedError`; None when none did."""
    for error in errors:
        if isinstance(error, NotAttemptedError):
            error = error.cause
        if isinstance(error, JourneyError) and stops_call(error):
            return error
    return None


def stopped_message(error: JourneyError, args: argparse.Namespace, base_url: str) -> str:
    """One line: what failed, and the flag or variable to check."""
    if isinstance(error, APIStatusError):
        token = "--token" if args.token else f"${TOKEN_ENV_VAR} (or pass --token)"
        return f"the API refused the token ({error.status_code} {error.message}): check {token}"
    url = "--base-url" if args.base_url else f"${BASE_URL_ENV_VAR} or --base-url"
    reason = str(error.__cause__ or error) or type(error.__cause__ or error).__name__
    return f"could not connect to {base_url} ({reason}): check {url}"
