"""
The emulator behind a recorder of the removals it applies, for
tests/test_third_party_servers.py: whatever server runs it (in a thread, or
in worker processes that restart), the test reads which users were removed,
and how many times each.

A server in another process imports ``recording_app:app``: the emulator of
`sample` with its record in the file named by ``JOURNEY_RECORD_FILE``, one
JSON list of user ids per removal applied.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from journey_async.testing import JourneyEmulator

REMOVE = "/api/journey/drop-users/external"


def sample() -> JourneyEmulator:
    """The same 300 journeys in every process."""
    return JourneyEmulator.with_sample_data(300, seed=0)


class Recording:
    """An ASGI app: *emulator*, with each removal it answers 200 recorded
    (in `removed`, and in *path* when given) before the answer goes out."""

    def __init__(self, emulator: JourneyEmulator, path: str | None = None) -> None:
        self.emulator = emulator
        self.path = path
        self.removed: list[list[str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != REMOVE:
            await self.emulator(scope, receive, send)
            return
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(parts)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return dict(await receive())
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def record(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                user_ids = json.loads(body)["user_ids"]
                self.removed.append(user_ids)
                if self.path is not None:
                    # Before the answer goes out, so the test reads it once answered.
                    with open(self.path, "a") as file:  # noqa: ASYNC230 - a line, locally
                        file.write(json.dumps(user_ids) + "\n")
            await send(message)

        await self.emulator(scope, replay, record)


def removals(path: Path) -> collections.Counter[str]:
    """How many times each user was removed, from a record file."""
    counts: collections.Counter[str] = collections.Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            counts.update(json.loads(line))
    return counts


app = Recording(sample(), os.environ.get("JOURNEY_RECORD_FILE"))
