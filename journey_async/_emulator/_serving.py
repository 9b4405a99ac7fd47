"""
Serving a `JourneyEmulator` on a real socket: in a thread, or in another process.

In-process (`EmulatorTransport`) is fastest and enough for most tests; a real
socket is for what only a wire shows (keep-alive, connection pools, dropped
connections as the OS reports them) and for benchmarks, which run the
emulator in another process so it does not share the client's event loop and
GIL.

uvicorn is imported only here and only when serving starts: it is the
optional extra ``journey-async[emulator]``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType, ModuleType
from typing import Any, Final, TextIO

import attrs

from journey_async._emulator._app import JourneyEmulator
from journey_async._emulator._asgi import _ConnectionDropped

__all__ = [
    "EmulatorServer",
    "run_emulator",
    "serve_emulator",
    "spawn_emulator_process",
]

LISTENING: Final = "journey-async emulator listening on "
_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 5.0


@attrs.frozen
class EmulatorServer:
    """
    A running `serve_emulator`: where to send requests, and the emulator behind it.

    .. versionadded:: 0.1.0
    """

    url: str
    """``http://127.0.0.1:PORT``"""
    port: int
    emulator: JourneyEmulator


def _import_uvicorn() -> ModuleType:
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError(
            "serving the journey emulator needs uvicorn: pip install 'journey-async[emulator]'"
        ) from exc
    return uvicorn


class _HideDeliberateDrops(logging.Filter):
    # Fault.drop closes connections by raising in the app; that is the point,
    # not an error worth a traceback in the test output.
    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        return not (exc_info and isinstance(exc_info[1], _ConnectionDropped))


_drop_filter: Final = _HideDeliberateDrops()


def _config(uvicorn: ModuleType, emulator: JourneyEmulator, *, quiet_logging: bool) -> Any:
    logging.getLogger("uvicorn.error").addFilter(_drop_filter)  # a no-op when already added
    extra: dict[str, Any] = {}
    if quiet_logging:
        # Leave the process's logging configuration alone (pytest's, the
        # user's); only the level of uvicorn's loggers is set.
        extra["log_config"] = None
    return uvicorn.Config(
        emulator,
        http="httptools" if importlib.util.find_spec("httptools") else "auto",
        loop="uvloop" if importlib.util.find_spec("uvloop") else "auto",
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        # A request held by Fault.delay must not hold up the exit for long.
        timeout_graceful_shutdown=1,
        **extra,
    )


def _bind(host: str, port: int) -> socket.socket:
    # Bound here, not by uvicorn, so port 0 yields a known free port.
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            # "[Errno 98] Address already in use" alone names neither the
            # address nor a way out.
            raise OSError(
                exc.errno,
                f"cannot listen on {host}:{port}: {exc.strerror} "
                "(another emulator? pick another port, or 0 for a free one)",
            ) from None
        # Listening before the server loop starts: connections made in
        # between wait in the backlog instead of being refused.
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}", port


@contextlib.contextmanager
def serve_emulator(
    emulator: JourneyEmulator, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[EmulatorServer]:
    """
    Serve *emulator* with uvicorn in a background thread, for the ``with`` block.

    Port 0 (the default) picks a free port: read it from `EmulatorServer.url`.
    A plain (sync) context manager, so it works in sync and async tests alike;
    the server has its own event loop in its own thread. The emulator's state
    is updated from that thread (see `JourneyEmulator` on why that is safe to
    read from the test).

    .. versionadded:: 0.1.0
    """
    uvicorn = _import_uvicorn()
    sock = _bind(host, port)
    try:
        server = uvicorn.Server(_config(uvicorn, emulator, quiet_logging=True))
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name="journey-async-emulator",
            daemon=True,
        )
        thread.start()
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the journey emulator server failed to start")
                if time.monotonic() > deadline:
                    raise RuntimeError("the journey emulator server did not start in time")
                time.sleep(0.002)
            url, bound_port = _url(sock)
            yield EmulatorServer(url=url, port=bound_port, emulator=emulator)
        finally:
            server.should_exit = True
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                server.force_exit = True
                thread.join(_STOP_TIMEOUT)
    finally:
        sock.close()


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def run_emulator(
    emulator: JourneyEmulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    file: TextIO | None = None,
) -> None:
    """
    Serve *emulator* in the foreground until SIGINT or SIGTERM.

    Once the socket listens, prints exactly one line to *file* (stdout by
    default) and flushes it: ``journey-async emulator listening on
    http://127.0.0.1:PORT``. The token is never printed: whoever started the
    emulator chose it.

    .. versionadded:: 0.1.0
    """
    uvicorn = _import_uvicorn()
    sock = _bind(host, port)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous: Any = None
    try:
        server = uvicorn.Server(_config(uvicorn, emulator, quiet_logging=False))
        url, _ = _url(sock)
        print(f"{LISTENING}{url}", file=file or sys.stdout, flush=True)
        if in_main_thread:
            # uvicorn catches SIGTERM while serving and raises it again once
            # stopped: this turns that into a clean exit, not a death by signal.
            previous = signal.signal(signal.SIGTERM, _exit_quietly)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        if in_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
        sock.close()


@contextlib.contextmanager
def spawn_emulator_process(
    *,
    journeys: int = 300,
    latency: float = 0.0,
    fault_rate: float = 0.0,
    seed: int = 0,
    token: str = "test-token",  # noqa: S107 - a test double's default
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """
    Run an emulator with sample data in a child process; yield its base URL.

    It runs ``python -m journey_async emulator`` (the command line's
    ``emulator``, which keeps no request log; *extra_args* are more of its
    options) with this interpreter, waits up to 30 s for it to listen, and on exit
    terminates it (SIGTERM, then SIGKILL after 5 s). Benchmarks use it so the
    server does not compete with the client for one event loop and one GIL.

    .. versionadded:: 0.1.0
    """
    args = [
        sys.executable,
        "-m",
        "journey_async",
        "emulator",
        "--port=0",
        f"--journeys={journeys}",
        f"--latency-ms={latency * 1000!r}",
        f"--fault-rate={fault_rate!r}",
        f"--seed={seed}",
        f"--token={token}",
        *extra_args,
    ]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    try:
        yield _read_url(process, timeout=30.0)
    finally:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_url(process: subprocess.Popen[str], *, timeout: float) -> str:
    # readline() cannot time out; a helper thread can be waited on.
    assert process.stdout is not None
    stdout = process.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        raise RuntimeError(f"the journey emulator process did not start within {timeout} s")
    line = lines[0]
    if not line.startswith(LISTENING):
        code = process.poll()
        raise RuntimeError(f"the journey emulator process did not start (exit code {code})")
    return line[len(LISTENING) :].strip()
