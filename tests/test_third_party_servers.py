"""
The client against real third-party servers on 127.0.0.1, each serving the
emulator (or mimicking its two endpoints): hypercorn, gunicorn's uvicorn
workers restarting every few requests, nginx with ``gzip on`` closing
keep-alive connections every ten requests, an aiohttp.web app of chunked
answers and short keep-alive, hypercorn over TLS, and forward proxies
(proxy.py, tinyproxy) with credentials. On each: one journey's statistics,
300 journeys', and 3,000 users removed in 30 requests, every one confirmed
and applied exactly once (`recording_app`), on asyncio and on uvloop. And
nginx's rate limit (``limit_req``), which the client must pace itself under.

nginx and tinyproxy are binaries pip cannot install: their tests skip
without them (.ci/run installs both with apt-get).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import trustme
from aiohttp import web
from asgi_servers import serve_app
from recording_app import Recording, removals, sample
from scripted import free_port
from served import binary, nginx, running, wait_for_port

import journey_async as ja

TOKEN = "test-token"  # the emulator's default
IDS = sample().journey_ids
USERS = [f"user-{number:06d}" for number in range(3000)]


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


POLICY = ja.RetryPolicy(max_attempts=6, deadline=60.0, sleep=no_wait)


async def workload(
    base_url: str, removed: Callable[[], collections.Counter[str]], **options: Any
) -> None:
    """The library's main jobs against *base_url*, checked against what the
    server says it applied (*removed*: how many times each user was)."""
    async with ja.AsyncJourneyClient(TOKEN, base_url=base_url, retry=POLICY, **options) as client:
        stats = await client.get_stats(IDS[0])
        assert stats.title
        assert stats.points
        results = await client.get_stats_many(IDS)
        assert [result.journey_id for result in results] == IDS
        assert [result.error for result in results if not result.ok] == []
        confirmed: list[str] = []
        result = await client.remove_users(
            USERS, all_journeys=True, batch_size=100, on_removed=confirmed.extend
        )
    assert (result.user_ids, result.requests) == (tuple(USERS), 30)
    assert sorted(confirmed) == USERS
    counts = removed()
    assert sorted(counts) == USERS, "every user confirmed was removed"
    assert max(counts.values()) == 1, "no removal was applied twice"


def in_memory(app: Recording) -> Callable[[], collections.Counter[str]]:
    def removed() -> collections.Counter[str]:
        return collections.Counter(user for batch in app.removed for user in batch)

    return removed


# --- ASGI servers ---------------------------------------------------------------------


@contextlib.contextmanager
def hypercorn_serving(app: Recording) -> Iterator[str]:
    """hypercorn in a thread of its own, on its asyncio worker."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    # Recording is typed as a plain ASGI callable, not with hypercorn's event types.
    served = serve(cast("Any", app), config, shutdown_trigger=stop.wait)
    thread = threading.Thread(target=loop.run_until_complete, args=(served,))
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


async def test_hypercorn() -> None:
    app = Recording(sample())
    with hypercorn_serving(app) as url:
        await workload(url, in_memory(app))


async def test_gunicorn_workers_that_restart_every_few_requests(tmp_path: Path) -> None:
    # Each worker exits after 20 to 25 requests, closing its connections:
    # a dozen restarts under the fan-out and the removals.
    port = free_port()
    record = tmp_path / "removed.jsonl"
    command = [
        *(sys.executable, "-m", "gunicorn", "recording_app:app"),
        *("-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", f"127.0.0.1:{port}"),
        *("--max-requests", "20", "--max-requests-jitter", "5", "--graceful-timeout", "5"),
    ]
    with running(command, port, JOURNEY_RECORD_FILE=str(record)):
        await workload(f"http://127.0.0.1:{port}", lambda: removals(record))


NGINX_GZIP_SHORT_KEEP_ALIVE = """
    gzip on;
    gzip_min_length 10;
    gzip_types application/json;
    gzip_proxied any;
    keepalive_requests 10;
    keepalive_timeout 1s;
    upstream emulator {{ server {upstream}; keepalive 4; }}
"""


async def test_behind_nginx_closing_keep_alive_every_ten_requests(tmp_path: Path) -> None:
    app = Recording(sample())
    with serve_app(app) as upstream:
        http = NGINX_GZIP_SHORT_KEEP_ALIVE.format(upstream=upstream.removeprefix("http://"))
        with nginx(tmp_path, "http://emulator", http=http) as url:
            await workload(url, in_memory(app))


NGINX_LIMIT_REQ = """
    limit_req_zone $binary_remote_addr zone=api:1m rate={rate}r/s;
    limit_req_status 429;
"""


async def test_behind_nginx_limit_req_every_journey_ends_ok(tmp_path: Path) -> None:
    # A real gateway's rate limit (nginx's limit_req: no Retry-After, a leaky
    # bucket): the adaptive default paces itself under it rather than using
    # up its retries. Its waits are the gateway's, in real time: about 1 s of
    # cool-down and 100 / 200 s of sending here.
    app = Recording(sample())
    rate = 200
    with serve_app(app) as upstream:
        http = NGINX_LIMIT_REQ.format(rate=rate)
        location = "limit_req zone=api burst=10 nodelay;"
        with nginx(tmp_path, upstream, http=http, location=location) as url:
            refused: list[ja.RetryEvent] = []
            policy = ja.RetryPolicy(on_retry=refused.append)
            async with ja.AsyncJourneyClient(TOKEN, base_url=url, retry=policy) as client:
                results = await client.get_stats_many(IDS[:100])
    assert [result.error for result in results if not result.ok] == []
    assert refused, "the gateway refused some: the test exercises its limit"
    assert {event.reason for event in refused} == {"HTTP 429"}
    # About 21 here; 52 with a limiter that ignores 429s and leaves them to the retries.
    assert len(refused) < 35, "paced, not retried until accepted"


async def test_hypercorn_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_pem = tmp_path / "server.pem"
    ca_pem = tmp_path / "ca.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    port = free_port()
    record = tmp_path / "removed.jsonl"
    command = [
        *(sys.executable, "-m", "hypercorn", "recording_app:app", "-b", f"127.0.0.1:{port}"),
        *("--certfile", str(server_pem), "--keyfile", str(server_pem)),
    ]
    # Killed: on SIGTERM it waits seconds for the TLS connections it had.
    with running(command, port, kill=True, JOURNEY_RECORD_FILE=str(record)):
        url = f"https://127.0.0.1:{port}"
        await workload(url, lambda: removals(record), verify=str(ca_pem))
        context = ssl.create_default_context(cafile=ca_pem)
        async with ja.AsyncJourneyClient(TOKEN, base_url=url, verify=context) as client:
            assert (await client.get_stats(IDS[1])).title


# --- an aiohttp.web app of its own ----------------------------------------------------


def aiohttp_app(removed: collections.Counter[str]) -> web.Application:
    """The two endpoints, every answer chunked in small pieces, gzip-compressed
    for every other journey."""

    async def stats(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Api {TOKEN}":
            return web.json_response({"message": "invalid API token"}, status=401)
        journey_id = request.match_info["journey_id"]
        point = {"pointTitle": "p", "pointStat": {"sent": 10, "opened": 1, "conversion": 10.0}}
        body = json.dumps({"payload": {"title": journey_id, "points": [point] * 50}}).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        if journey_id in IDS[::2]:
            response.enable_compression(web.ContentCoding.gzip)
        await response.prepare(request)
        for start in range(0, len(body), 97):
            await response.write(body[start : start + 97])
        await response.write_eof()
        return response

    async def remove(request: web.Request) -> web.StreamResponse:
        removed.update((await request.json())["user_ids"])
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"success":')
        await response.write(b" true}")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/journey/{journey_id}/statistics/external", stats)
    app.router.add_post("/api/journey/drop-users/external", remove)
    return app


@contextlib.contextmanager
def aiohttp_serving(app: web.Application, keepalive_timeout: float) -> Iterator[str]:
    """*app* on aiohttp's own server, in a thread and event loop of its own."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, keepalive_timeout=keepalive_timeout, access_log=None)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def test_an_aiohttp_app_of_chunked_answers_and_short_keep_alive() -> None:
    removed: collections.Counter[str] = collections.Counter()
    with aiohttp_serving(aiohttp_app(removed), keepalive_timeout=0.2) as url:
        await workload(url, lambda: removed)
        # Requests at about the server's keep-alive timeout: a connection it
        # closes as the next request goes out costs a retry, not a user.
        async with ja.AsyncJourneyClient(TOKEN, base_url=url, retry=POLICY) as client:
            for number in range(6):
                await asyncio.sleep(0.19 + number * 0.005)
                await client.remove_users([f"late-{number}"], all_journeys=True)
    assert all(removed[f"late-{number}"] == 1 for number in range(6))


# --- forward proxies ------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[tuple[str, Recording]]:
    app = Recording(sample())
    with serve_app(app) as url:
        yield url, app


async def through(
    proxy: str,
    password: str,
    emulator_url: tuple[str, Recording],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The workload through *proxy* given as ``proxy=``, then a call through
    it from ``HTTP_PROXY``; a wrong password is refused naming no password."""
    caplog.set_level(logging.DEBUG, logger="journey_async")
    url, app = emulator_url
    app.removed.clear()
    await workload(url, in_memory(app), proxy=proxy)
    with monkeypatch.context() as env:
        env.setenv("HTTP_PROXY", proxy)
        env.delenv("NO_PROXY", raising=False)
        env.delenv("no_proxy", raising=False)
        async with ja.AsyncJourneyClient(TOKEN, base_url=url, retry=POLICY) as client:
            await client.remove_users(["through-env"], all_journeys=True)
        assert app.removed[-1] == ["through-env"]
    wrong = proxy.replace(password, "not-the-password")
    async with ja.AsyncJourneyClient(TOKEN, base_url=url, retry=POLICY, proxy=wrong) as client:
        with pytest.raises(ja.APIStatusError) as info:
            await client.get_stats(IDS[0])
        assert "not-the-password" not in repr(client)
    # tinyproxy answers 401, as if it were the server.
    assert info.value.status_code in (401, 407)
    if info.value.status_code == 407:
        assert "the proxy refused its credentials" in str(info.value)
    for text in (str(info.value), repr(info.value), caplog.text):
        assert password not in text
        assert "not-the-password" not in text


async def test_through_proxy_py(
    emulator_url: tuple[str, Recording],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    command = [
        *(sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", str(port)),
        *("--basic-auth", "user:hunter2", "--num-workers", "1", "--num-acceptors", "1"),
    ]
    with running(command, port):
        proxy = f"http://user:hunter2@127.0.0.1:{port}"
        await through(proxy, "hunter2", emulator_url, monkeypatch, caplog)


async def test_through_tinyproxy(
    emulator_url: tuple[str, Recording],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    tinyproxy = binary("tinyproxy")
    port = free_port()
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 100\nBasicAuth user hunter2\n"
    )
    with running([tinyproxy, "-d", "-c", str(conf)], port):
        proxy = f"http://user:hunter2@127.0.0.1:{port}"
        await through(proxy, "hunter2", emulator_url, monkeypatch, caplog)
