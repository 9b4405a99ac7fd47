"""
The ``journey-async`` command: statistics, removals, the emulator and the demo from a shell.

Four subcommands, one module each: ``stats`` (`._stats`) fans out over
journeys and prints a table, JSON or CSV; ``remove-users`` (`._remove_users`)
removes users in batches and writes the ones that failed to a file the same
command reads back; ``emulator`` (`._emulator`) serves
`journey_async.testing.JourneyEmulator` in the foreground; ``demo``
(`._demo`) does the library's main job against an emulator it serves itself.
`._args` parses the command line and builds the client, `._output` renders
(tables, progress, notes), and `._main` is the one place where exceptions
become a line on stderr and an exit code.

Exit codes: 0 success, 1 some journeys or users failed (or the API refused
the call, or the results could not be written), 2 a usage or configuration
error (nothing was sent), 130 Ctrl-C.
Every error is one line on stderr, never a traceback, and never the token.

rich (the ``cli`` extra) draws progress bars and tables on a terminal. It is
imported only in `._output` and only when present: without it, or when the
output is not a terminal, the command prints plain aligned text, so pipes and
scripts get the same output whether or not it is installed.
"""

from ._args import BASE_URL_ENV_VAR
from ._main import main

__all__ = ["BASE_URL_ENV_VAR", "main"]
