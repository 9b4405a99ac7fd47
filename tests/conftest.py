"""Fixtures shared by the test modules of the command line and of the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_support import make_emulator as make_cli_emulator
from emulator_support import Mode, make_emulator

from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator


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
