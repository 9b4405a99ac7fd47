"""
`main`: parses, runs one command, and is the one place where exceptions
become a line on stderr and an exit code (never a traceback, never the token).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Final

from journey_async._defaults import TOKEN_ENV_VAR
from journey_async._exceptions import JourneyError
from journey_async._redaction import redact

from ._args import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    UsageError,
    _parse,
)
from ._output import _describe_error, _Output, _printable

# What a write of the results meets when the output cannot take them (a full
# disk, a quota, a file too large, a device error), after the requests went out.
_WRITE_FAILURES: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _secrets(argv: Sequence[str]) -> list[str]:
    """Every token this run may know, to be blanked out of any message."""
    found = [os.environ.get(TOKEN_ENV_VAR, "")]
    for index, arg in enumerate(argv):
        if arg == "--token" and index + 1 < len(argv):
            found.append(argv[index + 1])
        elif arg.startswith("--token="):
            found.append(arg.partition("=")[2])
    # redact() matches a short token only as a whole word, so a short one
    # does not mangle the words that happen to contain it.
    return [secret for secret in found if secret.strip()]


def _fail(message: str, secrets: Sequence[str]) -> None:
    message = _printable(" ".join(redact(message, secrets).splitlines()))
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _escaping_unencodable() -> Iterator[None]:
    """
    Stdout writes what its encoding cannot as backslash escapes, for the run.
    A JSON string may hold a lone surrogate (``"\\ud800"``), which UTF-8 cannot
    write: strict, one such title ended the command after part of its output,
    with exit code 2. Escaped, JSON output spells it as JSON does.
    """
    stream = sys.stdout
    errors = getattr(stream, "errors", None)
    if not isinstance(stream, io.TextIOWrapper) or errors == "backslashreplace":
        yield
        return
    stream.reconfigure(errors="backslashreplace")
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # closed by then
            stream.reconfigure(errors=errors)


def _dispatch(args: argparse.Namespace) -> int:
    # Each command's module (and asyncio) is imported when it runs:
    # ``--help``, a usage error and every other command do not pay for it.
    import asyncio

    output = _Output()
    if args.command == "emulator":
        from ._emulator import _emulator

        return _emulator(args, output)
    if args.command == "stats":
        from ._stats import _stats as command
    elif args.command == "remove-users":
        from ._remove_users import _remove_users as command
    else:
        from ._demo import _demo as command
    return asyncio.run(command(args, output))


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the ``journey-async`` command with *argv* (default: ``sys.argv[1:]``);
    return its exit code.

    .. versionadded:: 0.1.0
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    secrets = _secrets(arguments)
    try:
        try:
            args = _parse(arguments)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        with _escaping_unencodable():
            return _dispatch(args)
    except KeyboardInterrupt:
        _fail("interrupted", secrets)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (| head): not worth a message.
        _drop_stdout()
        return EXIT_FAILED
    except UsageError as exc:
        _fail(str(exc), secrets)
        return EXIT_USAGE
    except JourneyError as exc:
        _fail(_describe_error(exc), secrets)
        return EXIT_FAILED
    except OSError as exc:
        if exc.errno in _WRITE_FAILURES:
            # The results could not be written (a full disk): the requests
            # were sent, so this is no usage error.
            _drop_stdout()
            _fail(f"cannot write the results: {exc}", secrets)
            return EXIT_FAILED
        # A file or port that is not there, before anything was sent.
        _fail(str(exc) or type(exc).__name__, secrets)
        return EXIT_USAGE
    except (ValueError, TypeError, ImportError) as exc:
        # Bad input or configuration refused before anything was sent: the
        # message says which.
        _fail(str(exc) or type(exc).__name__, secrets)
        return EXIT_USAGE
    except Exception as exc:
        # A bug: still one line, not a traceback, whose locals could show the token.
        _fail(f"unexpected {_describe_error(exc)} (please report it)", secrets)
        return EXIT_FAILED


def _drop_stdout() -> None:
    """Point stdout at the null device: Python flushes it at exit, which
    would fail again, with a traceback."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
