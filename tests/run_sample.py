"""
Runs one Python sample of the docs against an emulator, in a process of its
own: ``python tests/run_sample.py README.md 39``. `test_docs_run` starts it.

The emulator's base URL comes in ``JOURNEY_ASYNC_DOCS_BASE_URL`` and its
token in ``PUSHWOOSH_API_TOKEN``, which the client reads as documented. The
one thing this harness changes is the default ``base_url`` of
`AsyncJourneyClient`, so that a sample written for the real API talks to the
emulator as it is written.

The samples before it in the same file run first, in the same namespace, as
a reader reads them (a later sample may use ``ja`` imported by an earlier
one). Then every function the sample itself defines at the top level is
called, awaited when it is async, with arguments made from the emulator by
parameter name (`_PROVIDERS`): a sample that only defines functions still
runs them. A parameter with no provider fails the run, naming it.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import inspect
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

from samples import ROOT, python_samples

import journey_async as ja

BASE_URL_VARIABLE: Final = "JOURNEY_ASYNC_DOCS_BASE_URL"
JOURNEY_ID: Final = "11111111-2222-3333-4444-555555555555"
"""The journey id the README's first sample names; the emulator has it."""
USERS: Final = ("user-1", "user-2", "user-3")
"""The users in it."""


def _point_clients_at_the_emulator(base_url: str) -> None:
    init = ja.AsyncJourneyClient.__init__

    @functools.wraps(init)
    def against_the_emulator(self: ja.AsyncJourneyClient, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("base_url", base_url)
        init(self, *args, **kwargs)

    ja.AsyncJourneyClient.__init__ = against_the_emulator  # type: ignore[method-assign]


class _Arguments:
    """What a sample's functions are called with, made from the emulator."""

    def __init__(self, client: ja.AsyncJourneyClient) -> None:
        self.client = client
        self.result: ja.StatsResult | None = None
        self.error: ja.APIStatusError | None = None

    async def prepare(self) -> None:
        [self.result] = await self.client.get_stats_many([JOURNEY_ID])
        try:
            await self.client.get_stats("no-such-journey")
        except ja.NotFoundError as exc:
            self.error = exc


_PROVIDERS: Final[dict[str, Callable[[_Arguments], object]]] = {
    "client": lambda made: made.client,
    "journey_id": lambda made: JOURNEY_ID,
    "journey_ids": lambda made: [JOURNEY_ID],
    "user_ids": lambda made: list(USERS),
    "result": lambda made: made.result,
    "payload": lambda made: ja.result_to_dict(_given(made.result)),
    "error": lambda made: made.error,
    "event": lambda made: ja.RetryEvent(
        method="GET", path="/api/journey/x/statistics/external", attempt=1, reason="503", wait=0.0
    ),
    "seconds": lambda made: 0.0,
}


def _given(value: ja.StatsResult | None) -> ja.StatsResult:
    assert value is not None
    return value


def _defined_functions(code: str) -> list[str]:
    tree = ast.parse(code)
    return [
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


async def _call_all(namespace: dict[str, Any], names: list[str]) -> None:
    async with ja.AsyncJourneyClient() as client:
        made = _Arguments(client)
        await made.prepare()
        for name in names:
            function = namespace[name]
            missing = [p for p in inspect.signature(function).parameters if p not in _PROVIDERS]
            if missing:
                raise SystemExit(f"no value for the parameters {missing} of {name}()")
            kwargs = {p: _PROVIDERS[p](made) for p in inspect.signature(function).parameters}
            outcome = function(**kwargs)
            if inspect.isawaitable(outcome):
                await _awaited(outcome)


async def _awaited(outcome: Awaitable[object]) -> None:
    await outcome


def main(argv: list[str]) -> None:
    path, line = ROOT / argv[0], int(argv[1])
    _point_clients_at_the_emulator(os.environ[BASE_URL_VARIABLE])
    namespace: dict[str, Any] = {"__name__": "__sample__"}
    for sample in python_samples(path):
        code = compile(sample.code, sample.name, "exec")
        exec(code, namespace)  # noqa: S102 - the project's own documentation
        if sample.line == line:
            asyncio.run(_call_all(namespace, _defined_functions(sample.code)))
            return
    raise SystemExit(f"no Python sample opens at {path.name}:{line}")


if __name__ == "__main__":
    main(sys.argv[1:])
