"""
`HTTP11Transport` (`journey_async._http._transport`): what a client sees of
it, and the handovers to httpcore.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from scripted import OK, ScriptedServer, constant, free_port, scripted, send

import journey_async as ja
from journey_async._http import CertificateVerifyFailed, HTTP11Transport, default_transport
from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

TOKEN = "test-token"  # the emulator's default


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorServer]:
    with serve_emulator(JourneyEmulator.with_sample_data(3, seed=5)) as server:
        yield server


@pytest.fixture
def emulator(served: EmulatorServer) -> JourneyEmulator:
    emulator = served.emulator
    emulator.latency = 0.0
    emulator.clear_faults()
    emulator.reset_counters()
    return emulator


def served_client(served: EmulatorServer, **kwargs: Any) -> ja.AsyncJourneyClient:
    kwargs.setdefault("retry", None)
    return ja.AsyncJourneyClient(TOKEN, base_url=served.url, **kwargs)


async def settled(emulator: JourneyEmulator) -> None:
    """Wait for the server to finish requests the client gave up on."""
    async with asyncio.timeout(10):
        while emulator.in_flight:  # noqa: ASYNC110 - the server's count, in its thread
            await asyncio.sleep(0.01)


async def test_a_real_read_timeout_is_api_timeout_error(
    served: EmulatorServer, emulator: JourneyEmulator
) -> None:
    emulator.latency = 0.3
    timeout = httpx.Timeout(5.0, read=0.05)
    async with served_client(served, timeout=timeout) as client:
        with pytest.raises(ja.APITimeoutError) as info:
            await client.get_stats(emulator.journey_ids[0])
        assert isinstance(info.value.__cause__, httpx.ReadTimeout)
        emulator.latency = 0.0
        assert (await client.get_stats(emulator.journey_ids[0])).title
    await settled(emulator)


async def test_a_refused_connection_is_api_connection_error() -> None:
    async with ja.AsyncJourneyClient(
        TOKEN, base_url=f"http://127.0.0.1:{free_port()}", retry=None
    ) as client:
        with pytest.raises(ja.APIConnectionError) as info:
            await client.get_stats("journey")
    assert type(info.value) is ja.APIConnectionError
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_default_transport_is_the_lean_one() -> None:
    assert isinstance(default_transport(7), HTTP11Transport)
    assert "max_connections=7" in repr(default_transport(7))


async def test_a_stale_keep_alive_connection_is_retried_once_for_get() -> None:
    async def reply(head: bytes, number: int) -> bytes | None:
        # The second request on a connection finds it closed, as when a
        # server's idle timeout and the client's next request cross.
        return OK if number == 0 else None

    async with scripted(reply) as (url, server, transport):
        assert (await send(transport, url)).status_code == 200
        assert (await send(transport, url)).status_code == 200
        assert server.connections == 2
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await send(transport, url, method="POST", content=b"{}")
    assert server.bodies[-1] == b"{}"


async def test_a_post_on_a_connection_closed_before_it_was_written_is_sent_on_a_new_one() -> None:
    # A server that closes after each answer without saying so (no
    # Connection: close): its FIN lands as the next request takes the idle
    # connection. Nothing of the POST was written, so it is sent again, once,
    # whatever its method; with retry=None it was an APIConnectionError.
    async with scripted(constant(OK), close_after_answer=True) as (url, server, transport):
        for method in ("GET", "POST", "POST"):
            assert (await send(transport, url, method=method, content=b"{}")).status_code == 200
    assert server.bodies == [b"{}"] * 3
    assert server.connections == 3


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            *(openssl, "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=journey-test"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", key, "-out", cert, "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_with_a_verified_certificate(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=cert)
    server = ScriptedServer(constant(OK))
    async with server.running(tls=server_side) as url:
        transport = HTTP11Transport(max_connections=2, ssl_context=trusting)
        try:
            for _ in range(3):
                assert (await send(transport, url + "/over-tls")).json() == {}
        finally:
            await transport.aclose()
        assert server.connections == 1
        # The default context does not know this certificate: refused.
        transport = HTTP11Transport(max_connections=2)
        try:
            with pytest.raises(CertificateVerifyFailed, match="certificate was refused"):
                await send(transport, url)
        finally:
            await transport.aclose()
    assert server.heads[0].startswith(b"GET /over-tls HTTP/1.1")


async def test_respx_sees_requests_while_it_patches_httpcore() -> None:
    transport = HTTP11Transport(max_connections=2)
    try:
        with respx.mock(assert_all_mocked=True) as router:
            router.get("https://journey.example/x").respond(json={"mocked": True})
            response = await send(transport, "https://journey.example/x")
        assert response.json() == {"mocked": True}
    finally:
        await transport.aclose()


async def test_an_environment_proxy_is_used_through_httpcore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with scripted(constant(OK)) as (proxy_url, proxy, transport):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        assert (await send(transport, "http://journey.example/api")).status_code == 200
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert (await send(transport, proxy_url + "/direct")).status_code == 200
    # The proxy got the absolute form; the bypassed host was asked directly.
    assert proxy.heads[0].startswith(b"GET http://journey.example/api HTTP/1.1")
    assert proxy.heads[1].startswith(b"GET /direct HTTP/1.1")


async def test_a_closed_transport_refuses_requests() -> None:
    transport = HTTP11Transport(max_connections=1)
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await send(transport, "http://127.0.0.1:9/")


async def test_a_closed_client_refuses_requests(served: EmulatorServer) -> None:
    client = served_client(served)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_stats("journey")


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_transport_used_from_a_second_event_loop_opens_new_connections(
    served: EmulatorServer,
) -> None:
    transport = HTTP11Transport(max_connections=2)
    url = f"{served.url}/api/journey/{served.emulator.journey_ids[0]}/statistics/external"
    headers = {"Authorization": f"Api {TOKEN}"}
    for _ in range(2):
        response = asyncio.run(send(transport, url, headers=headers))
        assert response.status_code == 200
    asyncio.run(transport.aclose())
    # The first loop's connection could not be closed once that loop was:
    # asyncio warns when it is collected, here rather than in a later test.
    gc.collect()


async def test_a_closed_client_sends_nothing_whatever_its_transport() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"payload": {"title": "t", "points": []}})

    client = ja.AsyncJourneyClient(TOKEN, transport=httpx.MockTransport(answer), retry=None)
    await client.get_stats("j")
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_stats("j")
    assert len(sent) == 1
