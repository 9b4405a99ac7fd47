"""
The command line's grammar: the parser, the option types, the ids read from
arguments or files, and the client built from the flags.

Every misuse becomes a `UsageError` (exit 2, nothing sent); the parser never
prints usage and exits on its own.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, NoReturn, TypeVar

from journey_async._defaults import (
    DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_BASE_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT,
    TOKEN_ENV_VAR,
)
from journey_async._validation import (
    integer,
    number,
    positive_int,
)
from journey_async._version import __version__

if TYPE_CHECKING:
    pass

_T = TypeVar("_T", int, float)

PROG: Final = "journey-async"
BASE_URL_ENV_VAR: Final = "PUSHWOOSH_JOURNEY_BASE_URL"
INSTALL_CLI: Final = "pip install 'journey-async[cli]'"
DEFAULT_REMAINING_FILE: Final = "remaining-users.txt"
EMULATOR_DEFAULT_TOKEN: Final = "test-token"  # noqa: S105 - the emulator's public default

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

_CLIENT_OPTIONS: Final = {
    "token": "--token",
    "base_url": "--base-url",
    "concurrency": "--concurrency",
    "timeout": "--timeout",
    "no_retry": "--no-retry",
}
# The client options each command reads; any other given before the
# subcommand is refused rather than silently ignored.
_APPLICABLE: Final[dict[str, frozenset[str]]] = {
    "stats": frozenset(_CLIENT_OPTIONS),
    "remove-users": frozenset(_CLIENT_OPTIONS),
    "emulator": frozenset({"token"}),
    "demo": frozenset({"concurrency"}),
}


class UsageError(Exception):
    """Bad arguments or configuration: exit 2, nothing was sent."""


# --- parsing --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, through main's single error path, instead of usage + exit.
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _option(
    parse: Callable[[str], _T], check: Callable[[_T], _T], type_name: str
) -> Callable[[str], _T]:
    """
    An argparse ``type=``: *parse* the text (its ValueError becomes argparse's
    "invalid <type_name> value"), then *check* it with the package's one
    number validation, whose message reads after the option's name.
    """

    def convert(text: str) -> _T:
        value = parse(text)
        try:
            return check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = type_name
    return convert


_positive_int: Final = _option(int, lambda value: positive_int(value, ""), "integer")
_port: Final = _option(int, lambda value: integer(value, "", minimum=0, maximum=65535), "integer")
_non_negative: Final = _option(float, lambda value: number(value, ""), "number")
_positive_float: Final = _option(float, lambda value: number(value, "", exclusive=True), "number")
_fraction: Final = _option(float, lambda value: number(value, "", maximum=1), "number")


def _rate(text: str) -> float:
    # Imported here: the emulator package loads only for its command.
    from journey_async._emulator._limits import parse_rate

    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_client_options(parser: argparse.ArgumentParser, *, on_subcommand: bool) -> None:
    # On a subcommand, an option left out must not overwrite one given
    # before the subcommand: hence SUPPRESS, not None.
    default = argparse.SUPPRESS if on_subcommand else None
    group = parser.add_argument_group("API options (before or after the subcommand)")
    group.add_argument(
        "--token",
        default=default,
        help=f"the server API token (default: ${TOKEN_ENV_VAR})",
    )
    group.add_argument(
        "--base-url",
        default=default,
        metavar="URL",
        help=f"the API's root (default: ${BASE_URL_ENV_VAR}, else {DEFAULT_BASE_URL})",
    )
    group.add_argument(
        "--concurrency",
        type=_positive_int,
        default=default,
        metavar="N",
        help=f"requests in flight at most (default: {DEFAULT_MAX_CONCURRENCY})",
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=default,
        metavar="SECONDS",
        help=f"longest wait to connect, send or read, per attempt (default: "
        f"{DEFAULT_TIMEOUT.read:g}, {DEFAULT_TIMEOUT.connect:g} to connect); an attempt "
        f"ends after {DEFAULT_ATTEMPT_TIMEOUT:g} s in all",
    )
    group.add_argument(
        "--no-retry",
        action="store_true",
        default=default,
        help="fail at the first error instead of retrying transient ones",
    )


def _add_sample_options(
    parser: argparse.ArgumentParser, *, latency_ms: float, fault_rate: float
) -> None:
    """The options of an emulator with sample data, shared by ``emulator`` and ``demo``."""
    parser.add_argument(
        "--journeys", type=_positive_int, default=300, metavar="N", help="default: 300"
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=latency_ms,
        metavar="MS",
        help=f"added to each answer (default: {latency_ms:g})",
    )
    parser.add_argument(
        "--fault-rate",
        type=_fraction,
        default=fault_rate,
        metavar="P",
        help="share of requests failing transiently (429, 5xx, dropped), retried by "
        f"clients, 0 to 1 (default: {fault_rate:g})",
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same journeys")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Statistics and user removals with the Pushwoosh Customer Journey API.",
        epilog="Exit codes: 0 ok, 1 some journeys or users failed, 2 usage error, 130 Ctrl-C.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_client_options(parser, on_subcommand=False)
    # Not required=True: argparse checks required arguments before it looks
    # for unknown ones, so ``journey-async --bogus`` would say "COMMAND
    # required" instead of naming --bogus; `_parse` asks for the command after.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    stats = commands.add_parser(
        "stats",
        help="fetch the statistics of journeys, concurrently",
        description="Fetch the statistics of journeys, concurrently. "
        "Exits 1 when any journey failed.",
    )
    stats.add_argument("ids", nargs="*", metavar="ID", help="journey ids, or '-' for stdin")
    stats.add_argument(
        "--ids-file", metavar="F", help="read journey ids from F, one a line ('-': stdin)"
    )
    stats.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table (default), json (one object per journey) or csv (one row per point)",
    )
    _add_client_options(stats, on_subcommand=True)

    remove = commands.add_parser(
        "remove-users",
        help="remove users from journeys, in batches",
        description="Remove users from some journeys or from all of them, in batches. "
        "When some fail, or on Ctrl-C, the users not confirmed removed are written to a "
        "file that --users-file reads back. The first Ctrl-C sends no new batch and waits "
        "briefly for those in flight; a second one stops at once.",
    )
    target = remove.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--journey",
        dest="journeys",
        action="append",
        metavar="ID",
        help="a journey to remove them from (repeat for several)",
    )
    target.add_argument(
        "--all-journeys", action="store_true", help="remove them from every active journey"
    )
    remove.add_argument("users", nargs="*", metavar="USER", help="user ids, or '-' for stdin")
    remove.add_argument("--users-file", metavar="F", help="read user ids from F, one a line")
    remove.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help=f"user ids per request (default: {DEFAULT_BATCH_SIZE})",
    )
    remove.add_argument(
        "--remaining-file",
        default=DEFAULT_REMAINING_FILE,
        metavar="F",
        help="where the users not confirmed removed go when the run fails or is "
        f"interrupted, for --users-file to finish the job (default: {DEFAULT_REMAINING_FILE})",
    )
    # Its 0.1.0 name, kept working.
    remove.add_argument("--failed-file", dest="remaining_file", help=argparse.SUPPRESS)
    _add_client_options(remove, on_subcommand=True)

    emulator = commands.add_parser(
        "emulator",
        help="serve an emulator of the API with sample journeys",
        description="Serve an emulator of the Journey API with sample journeys, "
        "until Ctrl-C (exit code 130) or SIGTERM (exit code 0). "
        "Point the other commands at it with --base-url.",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    emulator.add_argument(
        "--port", type=_port, default=8080, help="default: 8080; 0 picks a free port"
    )
    _add_sample_options(emulator, latency_ms=0.0, fault_rate=0.0)
    emulator.add_argument(
        "--users-per-journey", type=int, default=20, metavar="N", help="default: 20"
    )
    emulator.add_argument(
        "--unknown-shapes",
        action="store_true",
        help="give every 4th journey a webhook point, a pointStat shape the client does not know",
    )
    emulator.add_argument(
        "--max-user-ids-per-request",
        type=_positive_int,
        default=None,
        metavar="N",
        help="answer 400 to a removal of more users (default: no limit)",
    )
    emulator.add_argument(
        "--rate-limit",
        type=_rate,
        default=None,
        metavar="RATE",
        help="a gateway's limit, as 100/s or 600/min: over it, 429 with Retry-After "
        "(default: none)",
    )
    emulator.add_argument(
        "--rate-limit-burst",
        type=_positive_int,
        default=None,
        metavar="N",
        help="requests the rate limit lets through at once (default: one second's worth)",
    )
    emulator.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help=f"the token it accepts (default: {EMULATOR_DEFAULT_TOKEN})",
    )

    demo = commands.add_parser(
        "demo",
        help="run the main job against an emulator served in-process",
        description="Serve an emulator on 127.0.0.1, fetch the statistics of all its "
        "journeys concurrently, remove thousands of users in batches, and say how long it took.",
    )
    _add_sample_options(demo, latency_ms=20.0, fault_rate=0.05)
    demo.add_argument(
        "--users",
        type=_positive_int,
        default=3000,
        metavar="N",
        help="users to seat in journeys and remove (default: 3000)",
    )
    demo.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help=f"user ids per request (default: {DEFAULT_BATCH_SIZE})",
    )
    demo.add_argument(
        "--concurrency",
        type=_positive_int,
        default=argparse.SUPPRESS,
        metavar="N",
        help=f"requests in flight at most (default: {DEFAULT_MAX_CONCURRENCY})",
    )
    return parser


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("the following arguments are required: COMMAND")
    applicable = _APPLICABLE[args.command]
    for dest, flag in _CLIENT_OPTIONS.items():
        if dest not in applicable and getattr(args, dest) not in (None, False):
            raise UsageError(f"{flag} does not apply to '{args.command}'")
    return args
