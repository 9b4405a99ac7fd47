"""
TLS and proxies (`journey_async._http._tls`, `._proxy`) through the client's
public options, against real TLS servers on 127.0.0.1 with a CA made by
trustme, and a small forward/CONNECT proxy written here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
import trustme
from scripted import ScriptedServer, constant, free_port, serving

import journey_async as ja
from journey_async._http import CertificateVerifyFailed

TOKEN = "test-token"
STATS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n"
    b'{"payload": {"title": "t", "points": []}}'
)
RETRIES: list[ja.RetryEvent] = []


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


FAST = ja.RetryPolicy(max_attempts=3, sleep=no_wait, on_retry=RETRIES.append)


@pytest.fixture(autouse=True)
def _no_retries_yet() -> None:
    RETRIES.clear()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(
    ca: trustme.CA, name: str = "127.0.0.1", *, client_certs: bool = False
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    if client_certs:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


@contextlib.asynccontextmanager
async def tls_server(
    context: ssl.SSLContext, answer: bytes = STATS
) -> AsyncIterator[tuple[str, ScriptedServer]]:
    server = ScriptedServer(constant(answer))
    async with server.running(tls=context) as url:
        yield url, server


async def test_a_ca_bundle_path_is_trusted(ca: trustme.CA, ca_file: str) -> None:
    async with (
        tls_server(server_context(ca)) as (url, server),
        ja.AsyncJourneyClient(TOKEN, base_url=url, verify=ca_file) as client,
    ):
        for _ in range(3):
            assert (await client.get_stats("j")).title == "t"
    assert server.connections == 1, "the fast path, kept alive"


async def test_an_ssl_context_is_used_as_given(ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with (
        tls_server(server_context(ca)) as (url, _),
        ja.AsyncJourneyClient(TOKEN, base_url=url, verify=context) as client,
    ):
        assert (await client.get_stats("j")).title == "t"


async def test_an_unknown_ca_is_refused_naming_the_cause_and_not_retried(
    ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with (
        tls_server(server_context(ca)) as (url, _),
        ja.AsyncJourneyClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        with pytest.raises(ja.APIConnectionError, match="certificate was refused") as info:
            await client.get_stats("j")
    assert "unable to get local issuer certificate" in str(info.value)
    assert isinstance(info.value.__cause__, CertificateVerifyFailed)
    assert RETRIES == [], "never retried"


async def test_an_unknown_ca_stops_a_fan_out_at_the_first_refusal(
    ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API cannot be reached as configured: the journeys not sent by then
    # are not attempted, rather than each meeting the same certificate.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with (
        tls_server(server_context(ca)) as (url, server),
        ja.AsyncJourneyClient(TOKEN, base_url=url, retry=FAST, max_concurrency=2) as client,
    ):
        results = await client.get_stats_many([f"j{i}" for i in range(30)])
    assert not any(result.ok for result in results)
    refused = [r for r in results if isinstance(r.error, ja.APIConnectionError)]
    assert refused
    assert all("certificate was refused" in str(r.error) for r in refused)
    stopped = [r for r in results if isinstance(r.error, ja.NotAttemptedError)]
    assert len(stopped) >= 27
    assert server.connections <= 3
    assert RETRIES == [], "never retried"


async def test_https_to_a_plain_http_server_says_it_did_not_answer_in_tls(
    ca_file: str,
) -> None:
    # What OpenSSL says of the plain "400 Bad Request" alone,
    # "[SSL: WRONG_VERSION_NUMBER] wrong version number", names no cause.

    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # a ClientHello, which a plain server cannot read
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    async with serving(plain) as url:
        https = url.replace("http://", "https://")
        async with ja.AsyncJourneyClient(
            TOKEN, base_url=https, verify=ca_file, retry=FAST
        ) as client:
            with pytest.raises(ja.APIConnectionError, match="did not answer in TLS") as info:
                await client.get_stats("j")
    assert "plain http:// server" in str(info.value)
    assert RETRIES == [], "never retried: the next attempt would meet the same server"


async def test_http_to_a_tls_server_is_not_retried_and_stops_a_fan_out() -> None:
    # A TLS server's alert to a plain request (what many send; Python's own
    # closes without one) says the URL is wrong: every request would meet
    # it, so none is retried and the call stops.
    alert = b"\x15\x03\x01\x00\x02\x02\x46"
    server = ScriptedServer(constant(alert), close_after_answer=True)
    async with (
        server.running() as url,
        ja.AsyncJourneyClient(TOKEN, base_url=url, retry=FAST, max_concurrency=2) as client,
    ):
        with pytest.raises(ja.APIConnectionError, match="answered in TLS"):
            await client.get_stats("j")
        results = await client.get_stats_many([f"j{i}" for i in range(30)])
    assert RETRIES == [], "never retried"
    assert not any(result.ok for result in results)
    stopped = [r for r in results if isinstance(r.error, ja.NotAttemptedError)]
    assert len(stopped) >= 27


async def test_a_hostname_mismatch_is_refused_naming_the_cause(
    ca: trustme.CA, ca_file: str
) -> None:
    async with (
        tls_server(server_context(ca, "journey.example")) as (url, _),
        ja.AsyncJourneyClient(TOKEN, base_url=url, verify=ca_file, retry=FAST) as client,
    ):
        with pytest.raises(ja.APIConnectionError, match="mismatch"):
            await client.get_stats("j")
    assert RETRIES == []


async def test_a_client_certificate_when_the_server_requires_one(
    ca: trustme.CA, ca_file: str, tmp_path: Path
) -> None:
    leaf = ca.issue_cert("journey-client@example")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    async with tls_server(server_context(ca, client_certs=True)) as (url, _):
        async with ja.AsyncJourneyClient(
            TOKEN, base_url=url, verify=ca_file, cert=(str(cert), str(key))
        ) as client:
            assert (await client.get_stats("j")).title == "t"
        async with ja.AsyncJourneyClient(TOKEN, base_url=url, verify=ca_file, retry=None) as client:
            with pytest.raises(ja.APIConnectionError):
                await client.get_stats("j")


async def test_ssl_cert_file_is_honoured_when_trusting_the_environment(
    ca: trustme.CA, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    async with tls_server(server_context(ca)) as (url, _):
        async with ja.AsyncJourneyClient(TOKEN, base_url=url) as client:
            assert (await client.get_stats("j")).title == "t"
        async with ja.AsyncJourneyClient(
            TOKEN, base_url=url, trust_env=False, retry=None
        ) as client:
            with pytest.raises(ja.APIConnectionError, match="certificate was refused"):
                await client.get_stats("j")


async def test_verify_false_checks_nothing(ca: trustme.CA) -> None:
    async with (
        tls_server(server_context(ca, "journey.example")) as (url, _),
        ja.AsyncJourneyClient(TOKEN, base_url=url, verify=False) as client,
    ):
        assert (await client.get_stats("j")).title == "t"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"verify": "/no/such/bundle.pem"}, ValueError, "no such CA bundle"),
        ({"verify": 3}, TypeError, "verify must be"),
        ({"cert": "/no/such/cert.pem"}, ValueError, "cannot load the client certificate"),
        ({"cert": ("a",)}, TypeError, "cert must be"),
        ({"proxy": "ftp://proxy.example:21"}, ValueError, "scheme must be"),
        ({"proxy": "socks5://user:hunter2@proxy.example:1080"}, ValueError, "socksio"),
        ({"trust_env": "yes"}, TypeError, "trust_env"),
        # httpx's own proxy object: its credentials live apart, and headers of
        # its own would be dropped; what to pass instead, not "not a valid URL".
        (
            {"proxy": httpx.Proxy("http://user:hunter2@proxy.example:3128")},
            TypeError,
            r"proxy must be a URL \(a str or an httpx.URL\), not Proxy: pass its URL",
        ),
        ({"proxy": 3128}, TypeError, r"proxy must be a URL \(a str or an httpx.URL\), not int"),
    ],
)
def test_bad_tls_and_proxy_options_are_refused_at_construction(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        ja.AsyncJourneyClient(TOKEN, **kwargs)  # type: ignore[arg-type]
    assert "hunter2" not in str(info.value)


def test_a_refused_proxy_is_named_with_its_credentials_hidden_and_readable() -> None:
    with pytest.raises(ValueError, match="socksio") as info:
        ja.AsyncJourneyClient(TOKEN, proxy="socks5://user:hunter2@proxy.example:1080")
    assert "proxy socks5://[secret]@proxy.example:1080 is a SOCKS proxy" in str(info.value)


async def test_a_proxy_that_cannot_be_reached_is_named_without_its_credentials() -> None:
    # httpcore says only "All connection attempts failed": read as the API
    # being down, unless the message says the proxy is what failed.
    port = free_port()  # nothing listens there
    proxy = f"http://user:hunter2@127.0.0.1:{port}"
    policy = ja.RetryPolicy(max_attempts=1)
    base_url = "https://journey.example"
    async with ja.AsyncJourneyClient(TOKEN, base_url=base_url, proxy=proxy, retry=policy) as client:
        with pytest.raises(ja.APIConnectionError) as info:
            await client.get_stats("j")
    assert f"(through the proxy http://[secret]@127.0.0.1:{port})" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_an_unusable_environment_proxy_is_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://user:hunter2@proxy.example:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ValueError, match="socksio") as info:
        ja.AsyncJourneyClient(TOKEN)
    assert "hunter2" not in str(info.value)
    assert "trust_env=False" in str(info.value)
    ja.AsyncJourneyClient(TOKEN, trust_env=False)  # ignores it


@pytest.mark.parametrize(
    "kwargs",
    [{"verify": False}, {"cert": "c.pem"}, {"proxy": "http://p:1"}, {"trust_env": False}],
)
@pytest.mark.parametrize("theirs", ["http_client", "transport"])
async def test_tls_and_proxy_options_with_a_caller_client_are_refused(
    kwargs: dict[str, object], theirs: str
) -> None:
    own: httpx.AsyncClient | httpx.AsyncHTTPTransport = (
        httpx.AsyncClient() if theirs == "http_client" else httpx.AsyncHTTPTransport()
    )
    try:
        with pytest.raises(ValueError, match="on your own client or transport"):
            ja.AsyncJourneyClient(TOKEN, **{theirs: own}, **kwargs)  # type: ignore[arg-type]
    finally:
        await own.aclose()


# --- proxies -----------------------------------------------------------------------------


class Proxy:
    """A forward proxy (absolute-form GET) and CONNECT tunnel on 127.0.0.1,
    recording the request lines and the Proxy-Authorization it gets."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.auth: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, *headers = head.split(b"\r\n")
            self.lines.append(line)
            self.auth += [h for h in headers if h.lower().startswith(b"proxy-authorization")]
            method, target, _ = line.split(b" ")
            if method == b"CONNECT":
                host, _, port = target.rpartition(b":")
                up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
                return
            url = httpx.URL(target.decode())
            up_reader, up_writer = await asyncio.open_connection(url.host, url.port)
            rest = b"\r\n".join(h for h in headers if not h.lower().startswith(b"proxy-"))
            up_writer.write(b"%s %s HTTP/1.1\r\n%s" % (method, url.raw_path, rest))
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def running(self) -> AbstractAsyncContextManager[str]:
        return serving(self._serve)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def test_an_explicit_proxy_carries_plain_and_tls_requests(
    ca: trustme.CA, ca_file: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy = Proxy()
    async with proxy.running() as proxy_url:
        with_auth = proxy_url.replace("http://", "http://user:hunter2@")
        async with (
            tls_server(server_context(ca)) as (tls_url, _),
            ja.AsyncJourneyClient(
                TOKEN, base_url=tls_url, verify=ca_file, proxy=with_auth
            ) as client,
        ):
            assert (await client.get_stats("j")).title == "t"
            assert "hunter2" not in repr(client)
        server = ScriptedServer(constant(STATS))
        async with (
            server.running() as plain_url,
            ja.AsyncJourneyClient(TOKEN, base_url=plain_url, proxy=proxy_url) as client,
        ):
            assert (await client.get_stats("j")).title == "t"
    assert proxy.lines[0].startswith(b"CONNECT 127.0.0.1:")
    assert proxy.lines[1].startswith(b"GET http://127.0.0.1:")
    assert proxy.auth
    assert all(b"hunter2" not in line for line in proxy.auth), "sent encoded"
    assert "hunter2" not in caplog.text


async def test_the_tls_settings_hold_through_the_proxy(ca: trustme.CA) -> None:
    proxy = Proxy()
    async with (
        proxy.running() as proxy_url,
        tls_server(server_context(ca)) as (tls_url, _),
        ja.AsyncJourneyClient(TOKEN, base_url=tls_url, proxy=proxy_url, retry=FAST) as client,
    ):
        with pytest.raises(ja.APIConnectionError, match="certificate was refused"):
            await client.get_stats("j")
    assert RETRIES == [], "never retried"
    assert len(proxy.lines) == 1


@pytest.mark.parametrize("mended", [True, False], ids=["proxy_transport", "httpx"])
async def test_failed_tls_handshakes_through_a_proxy_leave_no_busy_connection(
    ca: trustme.CA, mended: bool
) -> None:
    # httpcore keeps the connection to the proxy of a tunnel whose TLS
    # handshake failed, counted as busy (encode/httpcore#1023): after
    # max_connections failures every request waited for a free connection
    # until it timed out, for good. proxy_transport's tunnels close it.
    from journey_async._http._proxy import proxy_transport

    untrusted = ssl.create_default_context()  # certifi's CAs: not the server's
    proxy = Proxy()
    async with proxy.running() as proxy_url, tls_server(server_context(ca)) as (tls_url, _):
        if mended:
            transport = proxy_transport(
                httpx.URL(proxy_url), max_connections=2, verify=untrusted, trust_env=False
            )
        else:
            transport = httpx.AsyncHTTPTransport(
                proxy=proxy_url, limits=httpx.Limits(max_connections=2), verify=untrusted
            )
        timeouts = httpx.Timeout(5.0, pool=0.2).as_dict()
        errors = []
        async with transport:
            for _ in range(4):
                request = httpx.Request("GET", tls_url, extensions={"timeout": timeouts})
                with pytest.raises(httpx.TransportError) as info:
                    await transport.handle_async_request(request)
                errors.append(type(info.value))
    if mended:
        assert errors == [httpx.ConnectError] * 4, "each one the certificate's own failure"
    else:  # what the mending is for; once this fails, httpcore has mended it itself
        assert errors == [httpx.ConnectError] * 2 + [httpx.PoolTimeout] * 2


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (b"407 Proxy Authentication Required", "refused its credentials: check the user"),
        (b"502 Bad Gateway", "502 Bad Gateway"),
    ],
    ids=["407", "502"],
)
async def test_a_tunnel_the_proxy_refuses_is_named_as_the_proxys_answer(
    answer: bytes, hint: str
) -> None:
    # httpcore says only "407 Proxy Authentication Required": with an https
    # API, the answer to CONNECT read as the API's, and named no proxy.
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n" % answer)
        await writer.drain()
        writer.close()

    async with serving(refuse) as proxy_url:
        proxy = proxy_url.replace("http://", "http://user:hunter2@")
        async with ja.AsyncJourneyClient(
            TOKEN, base_url="https://127.0.0.1:9", proxy=proxy, retry=FAST
        ) as client:
            with pytest.raises(ja.APIConnectionError) as info:
                await asyncio.wait_for(client.get_stats("j"), 10)
    message = str(info.value)
    port = proxy_url.rpartition(":")[2]
    assert f"the proxy http://[secret]@127.0.0.1:{port} refused the tunnel to 127.0.0.1:9" in (
        message
    )
    assert hint in message
    assert "hunter2" not in message
    assert RETRIES == [], "not retried: the same tunnel would be refused again"
