"""
``journey-async remove-users``: users removed from journeys in batches; those
whose removal failed are written to a file the command reads back.
"""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Sequence

from journey_async._exceptions import JourneyError, RemovalError

from ._args import EXIT_FAILED, EXIT_OK, PROG, _client, _user_ids
from ._output import _count, _describe_error, _Output, _plural, _seconds


def _target(args: argparse.Namespace) -> tuple[str, list[str]]:
    """How the removal's target reads in a sentence, and as options to retry it."""
    if args.all_journeys:
        return "all journeys", ["--all-journeys"]
    journeys: list[str] = args.journeys
    noun = "journey" if len(journeys) == 1 else "journeys"
    return f"{len(journeys)} {noun}", [f"--journey={j}" for j in journeys]


def _write_failed(path: str, users: Sequence[str], output: _Output) -> bool:
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.writelines(f"{user}\n" for user in users)
    except OSError as exc:
        # The file was the only record of who failed: print them instead.
        output.note(f"{PROG}: error: cannot write {path!r}: {exc.strerror or exc}")
        output.note("the users whose removal failed follow on stdout")
        for user in users:
            output.line(user)
        return False
    return True


async def _remove_users(args: argparse.Namespace, output: _Output) -> int:
    users = _user_ids(args)
    target, target_options = _target(args)
    failed: Sequence[str] = ()
    errors: Sequence[JourneyError] = ()
    requests = 0
    async with _client(args) as client:
        started = time.perf_counter()
        with output.progress("users", len(users)) as progress:
            try:
                result = await client.remove_users(
                    users,
                    journey_ids=args.journeys,
                    all_journeys=args.all_journeys,
                    batch_size=args.batch_size,
                    progress=progress,
                )
            except RemovalError as exc:
                removed, failed, errors = exc.removed, exc.failed, exc.errors
            except JourneyError as exc:
                # Nothing was confirmed: every user is accounted as failed.
                removed, failed, errors = (), users, (exc,)
            else:
                removed, requests = result.user_ids, result.requests
        elapsed = time.perf_counter() - started

    if not failed:
        output.line(
            f"removed {_plural(len(removed), 'user')} from {target}: "
            f"{_plural(requests, 'request')} in {_seconds(elapsed)}"
        )
        return EXIT_OK

    path = args.failed_file
    written = _write_failed(path, failed, output)
    output.line(
        f"removed {_count(len(removed))} users from {target}; failed for {_count(len(failed))}"
        + (f" (written to {path})" if written else "")
        + f", in {_seconds(elapsed)}"
    )
    if removed:
        failures = f"{_plural(len(errors), 'removal request')} failed; first"
    else:
        failures = "no removal was confirmed"
    message = f"{failures}: {_describe_error(errors[0])}"
    if written:
        retry = shlex.join([PROG, "remove-users", *target_options, "--users-file", path])
        message += f"; retry them with: {retry}"
    output.note(f"{PROG}: error: {message}")
    return EXIT_FAILED
