"""
``journey-async remove-users``: users removed from journeys in batches.

Whatever ends the run (some batches failing, Ctrl-C, any other error), the
users not confirmed removed are written to ``--remaining-file``, named on
stderr with the command that finishes the job. Removing a user twice is
harmless, so a user whose batch was in flight when the run stopped is
counted as not confirmed and simply sent again.

Ctrl-C: the first sends no new batch and waits up to `GRACE` seconds for the
batches in flight, so that their outcome is known (the batches not sent end
as not attempted); a second stops at once. Either way the exit code is 130.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

import anyio

from journey_async._batching import remove_in_batches
from journey_async._client import AsyncJourneyClient
from journey_async._exceptions import JourneyError, RemovalError
from journey_async._guard import CallGuard
from journey_async._validation import removal_target

from ._args import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PROG
from ._inputs import _client, _user_ids
from ._output import ProgressCallback, _describe_error, _Output, _plural, _seconds
from ._stopped import call_stopper, stopped_message

GRACE: Final = 10.0
"""Seconds the first Ctrl-C waits for the batches in flight."""


class _Run:
    """One removal: which users were confirmed, and how it was stopped."""

    def __init__(self, users: Sequence[str]) -> None:
        self.users = users
        self.confirmed: set[str] = set()
        self.errors: list[JourneyError] = []
        self.requests = 0
        self.interrupts = 0
        self.started = False
        self.finished = False
        self.base_url = ""
        # What stops the batches not sent yet on Ctrl-C (the cause of their
        # NotAttemptedError); a plain JourneyError, since it never leaves here.
        self.stop = JourneyError("interrupted by Ctrl-C")

    @property
    def remaining(self) -> list[str]:
        """The users not confirmed removed, in input order."""
        return [user for user in self.users if user not in self.confirmed]

    def on_removed(self, user_ids: Sequence[str]) -> None:
        self.confirmed.update(user_ids)
        self.requests += 1

    async def remove(
        self,
        client: AsyncJourneyClient,
        args: argparse.Namespace,
        target: dict[str, Any],
        output: _Output,
        progress: ProgressCallback | None,
    ) -> None:
        guard = CallGuard()
        self.started = True
        self.base_url = client.base_url
        with anyio.CancelScope() as scope, self._ctrl_c(guard, scope, output):
            try:
                await remove_in_batches(
                    client._post_removal,
                    self.users,
                    target,
                    batch_size=args.batch_size or client.batch_size,
                    concurrency=client.max_concurrency,
                    progress=progress,
                    on_removed=self.on_removed,
                    guard=guard,
                )
            except RemovalError as exc:
                self.errors = list(exc.errors)
            except JourneyError as exc:
                self.errors = [exc]
        self.finished = not scope.cancelled_caught

    @contextlib.contextmanager
    def _ctrl_c(
        self, guard: CallGuard, scope: anyio.CancelScope, output: _Output
    ) -> Iterator[None]:
        loop = asyncio.get_running_loop()

        def interrupted() -> None:
            self.interrupts += 1
            if self.interrupts > 1:
                scope.cancel()
                return
            output.note(
                f"{PROG}: interrupted: no new batch is sent; waiting up to {GRACE:g} s for "
                "those in flight (Ctrl-C again to stop now)"
            )
            # The batches not sent end as not attempted; retry waits give up now.
            guard.stop(self.stop)
            # anyio's asyncio backend keeps deadlines on the loop's clock.
            scope.deadline = loop.time() + GRACE

        try:
            loop.add_signal_handler(signal.SIGINT, interrupted)
        except NotImplementedError:  # Windows: Ctrl-C cancels the run; the caller records it
            yield
            return
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)


def _target(fields: dict[str, Any]) -> tuple[str, list[str]]:
    """How the removal's target (its checked JSON fields: a journey given
    twice is one) reads in a sentence, and as options to retry it."""
    if fields.get("all_journeys"):
        return "all journeys", ["--all-journeys"]
    journeys: list[str] = fields["journey_uuids"]
    return _plural(len(journeys), "journey"), [f"--journey={j}" for j in journeys]


def _write_remaining(path: str, users: Sequence[str], output: _Output) -> bool:
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.writelines(f"{user}\n" for user in users)
    except OSError as exc:
        # The file was the only record of who is left: print them instead.
        output.note(f"{PROG}: error: cannot write {path!r}: {exc.strerror or exc}")
        output.note("the users not confirmed removed follow on stdout")
        for user in users:
            output.line(user)
        return False
    return True


async def _remove_users(args: argparse.Namespace, output: _Output) -> int:
    users = _user_ids(args)
    # Checked before the run, as the users are: a bad --journey is a usage
    # error with nothing sent, not a failed run with a file to re-run it from.
    fields = removal_target(args.journeys, args.all_journeys)
    target, target_options = _target(fields)
    run = _Run(users)
    started = time.perf_counter()
    try:
        async with _client(args) as client:
            with output.progress("users", len(users)) as progress:
                await run.remove(client, args, fields, output, progress)
    finally:
        # Also on any other error, and when this task is cancelled: the
        # file is the record that lets a re-run finish the job.
        if not (run.finished and not run.errors and not run.interrupts):
            _report_remaining(
                run, args, target, target_options, time.perf_counter() - started, output
            )
    if run.interrupts:
        return EXIT_INTERRUPTED
    if run.errors:
        return EXIT_FAILED
    output.line(
        f"removed {_plural(len(run.confirmed), 'user')} from {target}: "
        f"{_plural(run.requests, 'request')} in {_seconds(time.perf_counter() - started)}"
    )
    return EXIT_OK


def _report_remaining(
    run: _Run,
    args: argparse.Namespace,
    target: str,
    target_options: Sequence[str],
    elapsed: float,
    output: _Output,
) -> None:
    remaining = run.remaining
    path = args.remaining_file
    finish = "finish with"
    written = _write_remaining(path, remaining, output)
    output.line(
        f"removed {_plural(len(run.confirmed), 'user')} from {target}; "
        f"not confirmed for {_plural(len(remaining), 'user')}"
        + (f" (written to {path})" if written else "")
        + f", in {_seconds(elapsed)}"
    )
    if run.interrupts and not remaining:
        # Ctrl-C while the last batches were in flight, and they landed: a
        # re-run of an empty file would only be refused for want of users.
        output.note(
            f"{PROG}: interrupted, but every user was confirmed removed: nothing is left to do"
        )
        return
    if run.interrupts:
        reason = "interrupted"
    elif (stopper := call_stopper(run.errors)) is not None:
        # A wrong token or URL: no retry helps until it is fixed.
        reason = stopped_message(stopper, args, run.base_url)
        if not run.confirmed:
            reason += "; nothing was removed"
        finish = "once that is fixed, finish with"
    elif run.errors:
        failed = [e for e in run.errors if e.__cause__ is not run.stop]
        first = _describe_error(failed[0] if failed else run.errors[0])
        if run.confirmed:
            reason = f"{_plural(len(run.errors), 'removal request')} failed; first: {first}"
        else:
            reason = f"no removal was confirmed: {first}"
    else:
        reason = "stopped by an unexpected error"
    message = reason
    if written:
        again = shlex.join([PROG, "remove-users", *target_options, "--users-file", path])
        message += f"; the users not confirmed are in {path}; {finish}: {again}"
    output.note(f"{PROG}: error: {message}")
