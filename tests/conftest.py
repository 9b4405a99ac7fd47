"""
Fixtures shared by the test modules: respx's router (``api``), the command
line's and the emulator's; and the event loops the integration tests run on:
asyncio's own and uvloop, where async services run in production (uvicorn
picks it whenever it is installed), and trio for the batcher's tests (`pytest_pycollect_makeitem`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import respx
from cli_support import make_emulator as make_cli_emulator
from emulator_support import Mode, make_emulator

from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

# The tests that talk to real sockets through the default transport.
_ON_EVERY_LOOP = ("test_http_", "test_fanout", "test_retry_integration", "test_third_party")
# Written on anyio alone: each async test also runs on trio, as `name_on_trio`.
_ON_TRIO = ("test_batching.py", "test_batcher.py")


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


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Any:
    items = yield
    if (
        collector.path.name not in _ON_TRIO
        or not inspect.iscoroutinefunction(obj)
        or not collector.funcnamefilter(name)
        # Tests that use asyncio itself (its tasks, its exceptions) stay on asyncio.
        or "asyncio" in obj.__code__.co_names
    ):
        return items
    test: Callable[..., Any] = obj

    @functools.wraps(test)
    def on_trio(*args: Any, **kwargs: Any) -> None:
        import anyio

        anyio.run(functools.partial(test, *args, **kwargs), backend="trio")

    del on_trio.__wrapped__  # its own signature for pytest, not a coroutine's for pytest-asyncio
    on_trio.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    trio_name = on_trio.__name__ = f"{name}_on_trio"
    setattr(collector.obj, trio_name, on_trio)  # where pytest looks a test up by name
    trio_items = list(collector._genfunctions(trio_name, on_trio))
    return [*(items or []), *trio_items]


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """respx in place of the network for one test; a request nothing in it
    expects fails the test (assert_all_mocked)."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def cli_emulator() -> JourneyEmulator:
    """The command-line tests' emulator, in memory (see `cli_support.make_emulator`)."""
    return make_cli_emulator()


@pytest.fixture
def cli_server(cli_emulator: JourneyEmulator) -> Iterator[EmulatorServer]:
    """``cli_emulator`` served on 127.0.0.1."""
    with serve_emulator(cli_emulator) as served:
        yield served


@pytest.fixture(params=["in_process", "served"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """For the emulator's tests: run in-process, then served on 127.0.0.1."""
    value: Mode = request.param
    return value


@pytest.fixture
def emulator() -> JourneyEmulator:
    """The emulator tests' two-journey emulator (see `emulator_support.make_emulator`)."""
    return make_emulator()
