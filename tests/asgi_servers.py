"""
Any ASGI app served by uvicorn on 127.0.0.1, in a thread of its own: for the
tests that need a real third-party server in front of the emulator (Starlette's
GZipMiddleware, TLS, an app on uvloop that calls the client).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


@contextlib.contextmanager
def serve_app(app: Any, *, tls: bool = False, **config: Any) -> Iterator[str]:
    """Serve *app* for the ``with`` block; yields its URL. *config* goes to
    `uvicorn.Config` (``loop="uvloop"``, ``ssl_certfile=...``)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config.setdefault("loop", "asyncio")
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            **config,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
