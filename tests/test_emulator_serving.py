"""
Serving the emulator on a real socket (journey_async._emulator._serving):
in a thread of this process, or in another process.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time

import httpx
import pytest
from emulator_support import AUTH, J1_BODY, stats

from journey_async.testing import (
    EmulatorServer,
    JourneyEmulator,
    run_emulator,
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


class _Listening(io.StringIO):
    """What `run_emulator` prints to: once it listens, a thread waits for an
    answer, then sends *sent* to this process."""

    def __init__(self, sent: signal.Signals) -> None:
        super().__init__()
        self.sent = sent

    def flush(self) -> None:
        url = self.getvalue().split()[-1]
        threading.Thread(target=self._signal_once_serving, args=(url,), daemon=True).start()

    def _signal_once_serving(self, url: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url + stats("j1"), headers=AUTH)
                break
            except httpx.TransportError:
                time.sleep(0.01)
        os.kill(os.getpid(), self.sent)


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_run_emulator_returns_the_signal_that_stopped_it(
    emulator: JourneyEmulator, sent: signal.Signals
) -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    # Neither raises (no KeyboardInterrupt, no SystemExit): it returns.
    assert run_emulator(emulator, file=_Listening(sent)) == sent

    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_run_emulator_on_an_unknown_host_names_it(emulator: JourneyEmulator) -> None:
    with pytest.raises(OSError, match=r"^cannot listen on 999\.1\.1\.1:0: .* try 127\.0\.0\.1\)$"):
        run_emulator(emulator, host="999.1.1.1")
