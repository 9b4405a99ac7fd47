"""
What every request of a client carries, prepared once when the client is
built, since fan-outs send thousands of requests and httpx's own
per-request merging is measurable there: the headers as they go out
(`prepared_headers`) and the URLs (`url_builder`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, NamedTuple

import httpx

from ._http import ACCEPT_ENCODING, RequestBytes, header_lines
from ._logging import logger
from ._version import __version__

__all__ = ["PreparedHeaders", "prepared_headers", "url_builder"]


class PreparedHeaders(NamedTuple):
    """A client's headers: as given to httpx (``base``), as they go out on
    a GET and on a POST (before its Content-Length), and a GET's serialized
    (``get_lines``, for `PREPARED_HEAD_EXTENSION`)."""

    base: httpx.Headers
    get: httpx.Headers
    post: httpx.Headers
    get_lines: RequestBytes


def prepared_headers(token: str, base_url: str) -> PreparedHeaders:
    """The headers of every request to *base_url* authenticated with *token*."""
    base = httpx.Headers(
        {
            "Authorization": f"Api {token}",
            "User-Agent": f"journey-async/{__version__}",
            "Accept": "application/json",
            # Exactly the codings the client can decode (within the cap).
            "Accept-Encoding": ACCEPT_ENCODING,
        }
    )
    # The headers as they go out, Host first as httpx orders them: built
    # once, since a request given a stream takes them as they are, and
    # copying an httpx.Headers is a list copy.
    host = [(b"Host", httpx.URL(base_url).netloc)]
    get = httpx.Headers([*host, *base.raw])
    return PreparedHeaders(
        base,
        get,
        httpx.Headers([*host, *base.raw, (b"Content-Type", b"application/json")]),
        header_lines(get.raw),
    )


# A path made only of these needs no percent-encoding (RFC 3986 pchar and "/").
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")


def url_builder(base_url: str) -> Callable[[str], httpx.URL]:
    """
    ``lambda path: httpx.URL(base_url + path)``, without parsing the base URL
    again for every request: parsing is most of the cost of an `httpx.URL`.

    It fills httpx's parsed form directly, which is private to httpx: so the
    shortcut is checked against the parser once here, and used only for
    paths that need no encoding; anything else takes the parser.
    """
    base = httpx.URL(base_url)

    def parse(path: str) -> httpx.URL:
        return httpx.URL(base_url + path)

    try:
        parsed = base._uri_reference
        make, (scheme, userinfo, host, port, base_path, query, fragment) = type(parsed), parsed
        prefix = base_path.rstrip("/")
        new_url = httpx.URL.__new__

        def fast(path: str) -> httpx.URL:
            # Dot segments are resolved by the parser; leave them to it.
            if not _PLAIN_PATH.fullmatch(path) or "/." in path:
                return parse(path)
            url = new_url(httpx.URL)
            url._uri_reference = make(scheme, userinfo, host, port, prefix + path, query, fragment)
            return url

        probe = "/api/journey/x-1_2.3~4/statistics/external"
        if fast(probe) == parse(probe) and str(fast(probe)) == str(parse(probe)):
            return fast
    except Exception:  # httpx changed inside: keep to its public API
        logger.debug("httpx internals differ; URLs are parsed per request")
    return parse
