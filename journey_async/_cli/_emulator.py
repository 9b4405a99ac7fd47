"""
``journey-async emulator``: `journey_async.testing.JourneyEmulator` with
sample journeys, served in the foreground until Ctrl-C.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable

from ._args import EMULATOR_DEFAULT_TOKEN, EXIT_OK, PROG, UsageError
from ._inputs import _require_uvicorn
from ._output import _count, _Output


def _emulator(args: argparse.Namespace, output: _Output) -> int:
    _require_uvicorn("emulator")
    from journey_async._emulator._app import JourneyEmulator
    from journey_async._emulator._serving import LISTENING, run_emulator

    if args.rate_limit_burst is not None and args.rate_limit is None:
        raise UsageError("--rate-limit-burst needs --rate-limit")
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

    run_emulator(emulator, host=args.host, port=args.port, file=_AfterListening(LISTENING, explain))
    return EXIT_OK


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
