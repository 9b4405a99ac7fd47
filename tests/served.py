"""
Third-party servers run for real by the tests: a command in a process of its
own while it listens on a port of 127.0.0.1 (`running`), a binary pip cannot
install or a skip naming how CI gets it (`binary`), and nginx in front of an
upstream with a configuration of the test's own (`nginx`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scripted import free_port

TESTS = Path(__file__).parent
START_SECONDS = 20.0
"""How long a server may take to listen."""


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")
        time.sleep(0.05)


@contextlib.contextmanager
def running(command: list[str], port: int, *, kill: bool = False, **env: str) -> Iterator[None]:
    """*command* in a process of its own (run in tests/) while it listens on
    *port*; stopped by SIGTERM, or at once with *kill*."""
    with subprocess.Popen(  # noqa: S603 - the tests' own command lines
        command,
        cwd=TESTS,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        try:
            wait_for_port(port, process)
            yield
        finally:
            if kill:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def binary(name: str) -> str:
    """The path of the system binary *name*, or the test skipped saying why."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip(f"needs the {name} binary (.ci/run installs it with apt-get)")
    return found


NGINX_CONF = """
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{http}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
{location}
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(directory: Path, upstream: str, *, http: str = "", location: str = "") -> Iterator[str]:
    """
    nginx proxying to *upstream* (``http://host:port``), with *http* added to
    its ``http`` block and *location* to its one ``location``, on a free port
    of 127.0.0.1; yields its URL. Skips without the nginx binary.
    """
    executable = binary("nginx")
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(dir=directory, port=port, upstream=upstream, http=http, location=location)
    )
    with running([executable, "-c", str(conf), "-p", str(directory)], port):
        yield f"http://127.0.0.1:{port}"
