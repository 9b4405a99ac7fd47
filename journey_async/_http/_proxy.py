"""
Which proxy a request goes through, checked where the client is built: an
explicit ``proxy=``, or the environment's (``HTTPS_PROXY``, ``HTTP_PROXY``,
``ALL_PROXY``, minus ``NO_PROXY``) when ``trust_env``. Requests through a
proxy are handed over to httpcore, which speaks to proxies.

A proxy's credentials never appear in a message: `redacted` shows a proxy URL
with its user and password blotted out.
"""

from __future__ import annotations

import importlib.util
import urllib.request
from typing import Final

import httpx

__all__ = ["check_proxy", "proxy_for", "redacted"]

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
    naming what is wrong (an unknown scheme, socks without ``socksio``).
    """
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
