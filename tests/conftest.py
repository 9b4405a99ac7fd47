"""
The event loops the integration tests run on: asyncio's own and uvloop, where
async services run in production (uvicorn picks it whenever it is installed).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping

import pytest

# The tests that talk to real sockets through the default transport.
_ON_EVERY_LOOP = ("test_http_", "test_fanout", "test_retry_integration")


def _loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if sys.platform != "win32":
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.path.name.startswith(_ON_EVERY_LOOP):
        return _loop_factories()
    return {"asyncio": asyncio.new_event_loop}
