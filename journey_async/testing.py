"""
Test code that uses journey_async against an emulator of the Journey API.

`JourneyEmulator` is the Customer Journey API in memory, with state you can
set up and inspect and faults you can script. Use it in-process::

    emulator = JourneyEmulator()
    journey_id = emulator.add_journey(users=["alice", "bob"])
    async with emulator_client(emulator) as client:
        await client.remove_users(["alice"], journey_ids=[journey_id])
    assert emulator.users_in(journey_id) == {"bob"}

or on a real socket with `serve_emulator` (needs ``journey-async[emulator]``),
or in another process with `spawn_emulator_process` or
``journey-async emulator --port 8080``. With journey-async installed,
pytest also gets the fixtures ``journey_emulator`` and
``journey_emulator_server``.

.. versionadded:: 0.1.0
"""

from ._emulator._app import JourneyEmulator
from ._emulator._data import EmulatedPoint, RecordedRequest, in_app_point, message_point, raw_point
from ._emulator._faults import Fault
from ._emulator._serving import (
    EmulatorServer,
    run_emulator,
    serve_emulator,
    spawn_emulator_process,
)
from ._emulator._transport import EmulatorTransport, emulator_client

__all__ = [
    "EmulatedPoint",
    "EmulatorServer",
    "EmulatorTransport",
    "Fault",
    "JourneyEmulator",
    "RecordedRequest",
    "emulator_client",
    "in_app_point",
    "message_point",
    "raw_point",
    "run_emulator",
    "serve_emulator",
    "spawn_emulator_process",
]
