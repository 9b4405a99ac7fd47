"""
Which proxy a request goes through, checked where the client is built: an
explicit ``proxy=``, or the environment's (``HTTPS_PROXY``, ``HTTP_PROXY``,
``ALL_PROXY``, minus ``NO_PROXY``) when ``trust_env``. Requests through a
proxy are handed over to httpcore, which speaks to proxies.

A proxy's credentials never appear in a message: `redacted` shows a proxy URL
with its user and password blotted out.

`proxy_transport` is httpx's transport through a proxy, with httpcore's
tunnel leak mended: an https request whose TLS handshake through the
proxy's CONNECT tunnel fails (a proxy that intercepts TLS with a CA not
trusted here, a handshake cut short) leaves httpcore's connection to the
proxy in its pool, counted as busy, forever (encode/httpcore#1023). After
``max_connections`` such failures every later request waits for a free
connection until it times out, even once the proxy is fixed; here the tunnel
closes its connection to the proxy when it fails before it is set up.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ssl
import urllib.request
from typing import Any, Final

import httpx

__all__ = ["check_proxy", "proxy_for", "proxy_transport", "redacted"]

_SCHEMES: Final = frozenset({"http", "https", "socks5", "socks5h"})


def redacted(url: str | httpx.URL) -> str:
    """*url* with any user and password replaced, for messages."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<an unparsable proxy URL>"
    if parsed.userinfo:
        # httpx percent-encodes the brackets of the marker: "%5Bsecret%5D".
        return str(parsed.copy_with(username="secret", password=None)).replace(
            "//secret@", "//[secret]@", 1
        )
    return str(parsed)


def check_proxy(url: str | httpx.URL) -> httpx.URL:
    """
    *url* as an `httpx.URL`, if httpcore can use it as a proxy; ValueError
    naming what is wrong (an unknown scheme, socks without ``socksio``);
    TypeError for anything but a URL (an ``httpx.Proxy`` keeps its
    credentials and headers apart, and only a URL's would be used).
    """
    if not isinstance(url, str | httpx.URL):
        hint = (
            ": pass its URL, credentials in it (http://user:password@host:port)"
            if isinstance(url, httpx.Proxy)
            else ""
        )
        raise TypeError(
            f"proxy must be a URL (a str or an httpx.URL), not {type(url).__name__}{hint}"
        )
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise ValueError(f"proxy {redacted(url)} is not a valid URL") from None
    if parsed.scheme not in _SCHEMES or not parsed.host:
        raise ValueError(
            f"proxy {redacted(parsed)}: the scheme must be http, https, socks5 or socks5h, "
            "with a host"
        )
    if parsed.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise ValueError(
            f"proxy {redacted(parsed)} is a SOCKS proxy, which needs the socksio package: "
            "pip install 'httpx[socks]'"
        )
    return parsed


def proxy_for(url: httpx.URL, proxy: httpx.URL | None, *, trust_env: bool) -> httpx.URL | None:
    """The proxy a request to *url* goes through: *proxy* if given, else the
    environment's when *trust_env*, checked; None for a direct connection."""
    if proxy is not None:
        return proxy
    if not trust_env:
        return None
    proxies = urllib.request.getproxies()
    found = proxies.get(url.scheme) or proxies.get("all")
    if not found or urllib.request.proxy_bypass(url.host):
        return None
    try:
        return check_proxy(found)
    except ValueError as exc:
        raise ValueError(f"{exc} (from the environment: trust_env=False ignores it)") from None


def proxy_transport(
    proxy: httpx.URL, *, max_connections: int, verify: ssl.SSLContext, trust_env: bool
) -> httpx.AsyncHTTPTransport:
    """
    httpx's transport through *proxy*, whose CONNECT tunnels close their
    connection to the proxy when they fail before they are set up (see the
    module's docstring). httpcore is imported here, on the first request
    through a proxy.
    """
    transport = _ProxyTransport(
        proxy,
        proxy=httpx.Proxy(proxy),
        limits=httpx.Limits(max_connections=max_connections),
        verify=verify,
        trust_env=trust_env,
    )
    _mend_tunnels(transport)
    return transport


_PROXY_ANSWER_CHARS: Final = 200
"""The most of a proxy's refusal of a tunnel (its status line) put in a message."""


class _ProxyTransport(httpx.AsyncHTTPTransport):
    """httpx's transport through a proxy, whose failures to connect name the
    proxy (credentials blotted out): httpcore says only "All connection
    attempts failed", which reads as the API being down, and of a tunnel
    the proxy refused (its answer to CONNECT, for an https API) only that
    answer's status line, "407 Proxy Authentication Required" or "502 Bad
    Gateway", which reads as the API's."""

    def __init__(self, through: httpx.URL, **options: Any) -> None:
        super().__init__(**options)
        self._through = redacted(through)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectError as exc:
            failed = httpx.ConnectError(f"{exc} (through the proxy {self._through})")
            failed.request = request
            raise failed from exc
        except httpx.ProxyError as exc:
            raise self._tunnel_refused(exc, request) from exc

    def _tunnel_refused(self, exc: httpx.ProxyError, request: httpx.Request) -> httpx.ProxyError:
        answer = str(exc)
        if len(answer) > _PROXY_ANSWER_CHARS:
            answer = answer[: _PROXY_ANSWER_CHARS - 3] + "..."
        where = f"{request.url.host}:{request.url.port or 443}"
        message = f"the proxy {self._through} refused the tunnel to {where}: {answer}"
        if answer.startswith("407"):
            message += (
                " (it refused its credentials: check the user and password of proxy= or of "
                "HTTPS_PROXY / ALL_PROXY)"
            )
        refused = httpx.ProxyError(message)
        refused.request = request
        return refused


def _mend_tunnels(transport: httpx.AsyncHTTPTransport) -> None:
    import httpcore

    pool = getattr(transport, "_pool", None)
    # Only the exact classes this was written against: a later httpcore
    # with other internals keeps its own behaviour rather than breaking.
    if type(pool) is httpcore.AsyncHTTPProxy:
        pool.__class__ = _tunnel_mending_proxy()


_MENDING_PROXY: type[Any] | None = None


def _tunnel_mending_proxy() -> type[Any]:
    """The subclass of httpcore's proxy pool whose tunnels mend the leak,
    made once (it derives from httpcore's classes, imported on first use)."""
    global _MENDING_PROXY
    if _MENDING_PROXY is not None:
        return _MENDING_PROXY
    import httpcore
    from httpcore._async.http_proxy import AsyncTunnelHTTPConnection

    class _Tunnel(AsyncTunnelHTTPConnection):
        async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
            try:
                return await super().handle_async_request(request)
            except BaseException:
                if not getattr(self, "_connected", True):
                    # Failed in CONNECT or in the TLS handshake after it: the
                    # connection to the proxy would stay busy in the pool.
                    with contextlib.suppress(Exception):  # the first error is the one
                        await self._connection.aclose()
                raise

    class _MendingProxy(httpcore.AsyncHTTPProxy):
        def create_connection(self, origin: httpcore.Origin) -> Any:
            connection = super().create_connection(origin)
            if type(connection) is AsyncTunnelHTTPConnection:
                connection.__class__ = _Tunnel
            return connection

    _MENDING_PROXY = _MendingProxy
    return _MendingProxy
