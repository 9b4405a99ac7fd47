"""
Serving the emulator on a real socket (journey_async._emulator._serving):
in a thread of this process, or in another process.
"""

from __future__ import annotations

import sys

import httpx
import pytest
from emulator_support import AUTH, J1_BODY, stats

from journey_async.testing import (
    EmulatorServer,
    JourneyEmulator,
    serve_emulator,
    spawn_emulator_process,
)


def test_serve_emulator_from_sync_code(emulator: JourneyEmulator) -> None:
    with serve_emulator(emulator) as server:
        assert isinstance(server, EmulatorServer)
        assert server.url == f"http://127.0.0.1:{server.port}"
        response = httpx.get(server.url + stats("j1"), headers=AUTH)
        assert response.json() == J1_BODY
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + stats("j1"), headers=AUTH)


def test_serving_without_uvicorn_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, emulator: JourneyEmulator
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with (
        pytest.raises(ImportError, match=r"pip install 'journey-async\[emulator\]'"),
        serve_emulator(emulator),
    ):
        pass


def test_spawn_emulator_process_starts_and_stops() -> None:
    sample = JourneyEmulator.with_sample_data(3, seed=5)
    with spawn_emulator_process(journeys=3, seed=5, token="proc-token") as url:
        assert url.startswith("http://127.0.0.1:")
        headers = {"Authorization": "Api proc-token"}
        response = httpx.get(url + stats(sample.journey_ids[2]), headers=headers)
        assert response.status_code == 200
        assert response.json()["payload"]["title"] == "Sample journey 3"
        assert httpx.get(url + stats(sample.journey_ids[0]), headers=AUTH).status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + stats(sample.journey_ids[0]), headers=headers)


def test_a_port_in_use_is_named_with_a_way_out(emulator: JourneyEmulator) -> None:
    with serve_emulator(emulator) as server:
        in_use = rf"cannot listen on 127\.0\.0\.1:{server.port}: .*or 0"
        with pytest.raises(OSError, match=in_use), serve_emulator(emulator, port=server.port):
            pass  # pragma: no cover - the bind fails
