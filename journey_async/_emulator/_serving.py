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
import errno
import importlib.util
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, Final, TextIO

import attrs

from journey_async._emulator._app import JourneyEmulator
from journey_async._emulator._asgi import _ConnectionDropped
from journey_async._emulator._stop import StopSignals

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


class ListenError(OSError):
    """
    The emulator cannot listen where it was asked to: ``strerror`` is one
    line naming the host, the port, the cause and a way out, and is all
    that ``str()`` shows (no ``[Errno -2]``).
    """

    def __str__(self) -> str:
        return str(self.strerror)


def _cannot_listen(
    host: str, port: int, exc: OSError | UnicodeError, *, resolving: bool = False
) -> ListenError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    code = exc.errno if isinstance(exc, OSError) else None
    cause = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
    if resolving:
        hint = "not an IP address, nor a host name this machine resolves; try 127.0.0.1"
    elif code == errno.EADDRINUSE:
        hint = "another emulator? pick another port, or 0 for a free one"
    elif code == errno.EADDRNOTAVAIL:
        hint = "not an address of this machine; try 127.0.0.1, or 0.0.0.0 for all"
    elif code == errno.EACCES:
        hint = "a port below 1024 needs privileges; pick another, or 0 for a free one"
    else:
        hint = "pick another host or port"
    # "[Errno 98] Address already in use" or "[Errno -2] Name or service not
    # known" alone names neither the address nor a way out.
    return ListenError(code, f"cannot listen on {where}: {cause} ({hint})")


def _bind(host: str, port: int) -> socket.socket:
    # Bound here, not by uvicorn, so port 0 yields a known free port.
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a label IDNA refuses
        raise _cannot_listen(host, port, exc, resolving=True) from None
    family, kind, proto, _, address = found[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise _cannot_listen(host, port, exc) from None
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


def run_emulator(
    emulator: JourneyEmulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    file: TextIO | None = None,
) -> signal.Signals | None:
    """
    Serve *emulator* in the foreground until SIGINT or SIGTERM; return the
    signal that stopped it.

    Once the socket listens, prints exactly one line to *file* (stdout by
    default) and flushes it: ``journey-async emulator listening on
    http://127.0.0.1:PORT``. The token is never printed: whoever started the
    emulator chose it. A signal that arrives before the server runs (even
    before the socket listens) stops it all the same, once it is up; neither
    signal raises (no `KeyboardInterrupt`, no `SystemExit`). Outside the main
    thread no signal handler can be installed: it serves until the process ends,
    and returns None if uvicorn stops on its own.

    .. versionadded:: 0.1.0
    .. versionchanged:: Unreleased
       Returns the signal; SIGTERM no longer raises ``SystemExit(0)``, and a
       signal in the first moments of start-up is no longer lost.
    """
    with StopSignals() as stop:
        _serve_until_stopped(emulator, host=host, port=port, file=file, stop=stop)
    return stop.received


def _serve_until_stopped(
    emulator: JourneyEmulator,
    *,
    host: str,
    port: int,
    file: TextIO | None,
    stop: StopSignals,
) -> None:
    """`run_emulator` under *stop*, entered by the caller (the command line enters it sooner)."""
    uvicorn = _import_uvicorn()
    if stop.stopped:
        return
    sock = _bind(host, port)
    try:
        server = uvicorn.Server(_config(uvicorn, emulator, quiet_logging=False))
        # From here a signal tells the server to exit, wherever it is in its start.
        stop.server = server
        if stop.stopped:
            return
        url, _ = _url(sock)
        print(f"{LISTENING}{url}", file=file or sys.stdout, flush=True)
        server.run(sockets=[sock])
    finally:
        stop.server = None
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
