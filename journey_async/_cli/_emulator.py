"""
``journey-async emulator``: `journey_async.testing.JourneyEmulator` with
sample journeys, served in the foreground until Ctrl-C (exit code 130) or
SIGTERM (exit code 0: stopped as asked, as by ``docker stop``).

The signals are caught before anything slow (uvicorn's import, the sample
data): one that arrives in any phase of start-up stops the command.
"""

from __future__ import annotations

import argparse
import io
import signal
import sys
from collections.abc import Callable

from journey_async._emulator._stop import StopRequested, StopSignals

from ._args import EMULATOR_DEFAULT_TOKEN, EXIT_INTERRUPTED, EXIT_OK, PROG, UsageError
from ._inputs import _require_uvicorn
from ._output import _count, _Output


def _emulator(args: argparse.Namespace, output: _Output) -> int:
    if args.rate_limit_burst is not None and args.rate_limit is None:
        raise UsageError("--rate-limit-burst needs --rate-limit")
    stop = StopSignals(interrupting=True)
    try:
        with stop:
            _serve(args, output, stop)
    except StopRequested:
        pass  # before it served: nothing to shut down
    # Ctrl-C is how a user stops it: no error line, only the exit code.
    return EXIT_INTERRUPTED if stop.received == signal.SIGINT else EXIT_OK


def _serve(args: argparse.Namespace, output: _Output, stop: StopSignals) -> None:
    _require_uvicorn("emulator")
    from journey_async._emulator._app import JourneyEmulator
    from journey_async._emulator._serving import LISTENING, ListenError, _serve_until_stopped

    token = EMULATOR_DEFAULT_TOKEN if args.token is None else args.token
    emulator = JourneyEmulator.with_sample_data(
        args.journeys,
        users_per_journey=args.users_per_journey,
        unknown_shapes=args.unknown_shapes,
        seed=args.seed,
        token=token,
        latency=args.latency_ms / 1000,
        fault_rate=args.fault_rate,
        max_user_ids_per_request=args.max_user_ids_per_request,
        rate_limit=args.rate_limit,
        rate_limit_burst=args.rate_limit_burst,
        # It may serve for days (or carry a benchmark): keep no request log.
        record_requests=False,
    )
    ids = emulator.journey_ids
    # The default token is public (it is in the docs); one the user chose is not echoed.
    shown_token = token if token == EMULATOR_DEFAULT_TOKEN else "<your token>"

    def explain(url: str) -> None:
        limit = "" if args.rate_limit is None else f", rate limit {args.rate_limit:g}/s"
        output.line(
            f"{_count(len(ids))} sample journeys (seed {args.seed}), "
            f"latency {args.latency_ms:g} ms, fault rate {args.fault_rate:g}{limit}; "
            "Ctrl-C stops it"
        )
        example = " ".join(ids[:3])
        output.line(f"try: {PROG} stats --base-url {url} --token {shown_token} {example}".rstrip())

    # From here a signal is acted on by the server: it stops once it is up.
    stop.interrupting = False
    if stop.stopped:
        return
    try:
        _serve_until_stopped(
            emulator,
            host=args.host,
            port=args.port,
            file=_AfterListening(LISTENING, explain),
            stop=stop,
        )
    except ListenError as exc:
        raise UsageError(str(exc)) from None


class _AfterListening(io.StringIO):
    """
    The file `run_emulator` prints its one line to (and flushes): passes it
    on to stdout, then calls *then* with what follows *prefix*: the URL,
    only known once the socket listens (``--port 0``).
    """

    def __init__(self, prefix: str, then: Callable[[str], None]) -> None:
        super().__init__()
        self._prefix = prefix
        self._then = then

    def flush(self) -> None:
        text = self.getvalue()
        self.seek(0)
        self.truncate()
        sys.stdout.write(text)
        sys.stdout.flush()
        for line in text.splitlines():
            if line.startswith(self._prefix):
                self._then(line.removeprefix(self._prefix).strip())
