"""
pytest fixtures for code that uses journey_async, registered as a pytest11 plugin.

A test asks for ``journey_emulator`` (ten sample journeys, in memory) or
``journey_emulator_server`` (the same, served on 127.0.0.1)::

    async def test_stats(journey_emulator):
        async with emulator_client(journey_emulator) as client:
            assert (await client.get_stats(journey_emulator.journey_ids[0])).points

Every pytest run of a project with journey-async installed imports this
module, so it imports nothing heavy until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._emulator._app import JourneyEmulator
    from ._emulator._serving import EmulatorServer


@pytest.fixture
def journey_emulator() -> JourneyEmulator:
    """
    A fresh `JourneyEmulator` with ten deterministic sample journeys.

    .. versionadded:: 0.1.0
    """
    from ._emulator._app import JourneyEmulator

    return JourneyEmulator.with_sample_data(journeys=10)


@pytest.fixture
def journey_emulator_server(journey_emulator: JourneyEmulator) -> Iterator[EmulatorServer]:
    """
    ``journey_emulator`` served on 127.0.0.1 for the test (needs the ``emulator`` extra).

    .. versionadded:: 0.1.0
    """
    from ._emulator._serving import serve_emulator

    with serve_emulator(journey_emulator) as server:
        yield server
