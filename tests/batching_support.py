"""
What the removal tests share (tests/test_batching.py, tests/test_batcher.py):
one emulator served on 127.0.0.1 for a whole module (each module makes its
``served`` and ``emulator`` fixtures of `serve_one` and `fresh_emulator`),
clients on it or on a mock transport, fresh user ids, and what the requests
carried.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import respx
from payloads import TOKEN

import journey_async as ja
from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

# Generous: only reached when something hangs, never part of what is measured.
HANG_GUARD = 10


def serve_one() -> Iterator[EmulatorServer]:
    """The ``served`` fixture of a test module (``pytest.fixture(scope="module")``):
    one server for the module; each test makes its own journeys and user ids."""
    with serve_emulator(JourneyEmulator()) as server:
        yield server


def fresh_emulator(served: EmulatorServer) -> JourneyEmulator:
    """The ``emulator`` fixture: the served one, without faults or counts."""
    served.emulator.clear_faults()
    served.emulator.reset_counters()
    return served.emulator


def served_client(served: EmulatorServer, **kwargs: Any) -> ja.AsyncJourneyClient:
    return ja.AsyncJourneyClient(served.emulator.token, base_url=served.url, retry=None, **kwargs)


def mock_client(
    handler: Callable[[httpx.Request], Coroutine[None, None, httpx.Response]], **kwargs: Any
) -> ja.AsyncJourneyClient:
    return ja.AsyncJourneyClient(
        TOKEN, retry=None, transport=httpx.MockTransport(handler), **kwargs
    )


def new_ids(count: int, prefix: str = "user") -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{prefix}-{tag}-{n}" for n in range(count)]


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


def removals(emulator: JourneyEmulator) -> list[dict[str, Any]]:
    return [r.json for r in emulator.requests if r.endpoint == "remove"]


OK = httpx.Response(200, json={"success": True})
