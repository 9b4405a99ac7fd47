"""
The client's constructor arguments turned into checked values: the token
(from the argument or ``PUSHWOOSH_API_TOKEN``), the base URL rule, the
settings `AsyncJourneyClient.with_options` may change (`Settings`), and the
TLS and proxy options of the client's own transport.

Every check raises `TypeError` or `ValueError` before anything is connected,
and no message quotes what could hold a secret (the token, a password in a
URL).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Final

import attrs
import httpx

from ._defaults import (
    DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_BASE_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT,
    TOKEN_ENV_VAR,
)
from ._http import build_ssl_context, check_proxy, proxy_for, redacted
from ._ratelimit import RateLimiter, check_rate_limiter
from ._retry import RetryPolicy
from ._validation import number, positive_int

__all__ = [
    "DEFAULT_ATTEMPT_TIMEOUT",
    "DEFAULT_BASE_URL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "SETTING_NAMES",
    "TOKEN_ENV_VAR",
    "UNSET",
    "Settings",
    "check_host_and_port",
    "check_io",
    "checked_settings",
    "network_options",
    "resolve_token",
    "validate_base_url",
]


DEFAULT_RETRY: Final = RetryPolicy()

UNSET: Any = object()
"""The default of an argument whose absence means something of its own
(``with_options``: keep the current value; *timeout*: the caller's client's)."""


@attrs.frozen(kw_only=True)
class Settings:
    """
    What `AsyncJourneyClient.with_options` may change: read by every call,
    never assigned. One place, so that a new setting is one field here, one
    argument of the constructor and of ``with_options``, one property.
    """

    timeout: httpx.Timeout
    attempt_timeout: float | None
    retry: RetryPolicy | None
    max_concurrency: int
    batch_size: int
    rate_limit: RateLimiter | None


SETTING_NAMES: Final = frozenset(attrs.fields_dict(Settings))
"""The names the client's read-only properties have."""


def checked_settings(
    *,
    timeout: float | httpx.Timeout,
    attempt_timeout: float | None,
    retry: RetryPolicy | None,
    max_concurrency: int,
    batch_size: int,
    rate_limit: RateLimiter | None,
) -> Settings:
    """The settings, each checked: the one path of the constructor and of
    `AsyncJourneyClient.with_options`."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy or None, not {type(retry).__name__}")
    if rate_limit is not None:
        check_rate_limiter(rate_limit)
    return Settings(
        timeout=_validate_timeout(timeout),
        attempt_timeout=(
            None
            if attempt_timeout is None
            else number(attempt_timeout, "attempt_timeout", exclusive=True)
        ),
        retry=retry,
        max_concurrency=positive_int(max_concurrency, "max_concurrency"),
        batch_size=positive_int(batch_size, "batch_size"),
        rate_limit=rate_limit,
    )


def _validate_timeout(timeout: float | httpx.Timeout) -> httpx.Timeout:
    """*timeout* as an `httpx.Timeout`, every phase a positive finite number
    of seconds or `None` (no bound) inside one."""
    if isinstance(timeout, httpx.Timeout):
        for phase, value in timeout.as_dict().items():
            if value is not None:
                number(value, f"timeout.{phase}", exclusive=True)
        return timeout
    if timeout is None:
        raise TypeError("timeout must be a number of seconds; httpx.Timeout(None) for no timeout")
    return httpx.Timeout(number(timeout, "timeout", exclusive=True))


def _header_safe(token: str) -> bool:
    return not any(c.isspace() or not c.isprintable() for c in token)


def resolve_token(api_token: str | None) -> str:
    """*api_token*, or ``PUSHWOOSH_API_TOKEN`` when it is `None`, if it can
    go in a header as it is. A refusal names where the token came from: a
    variable read from a file or a secret often ends in a newline the
    caller never typed."""
    source = "api_token"
    if api_token is None:
        api_token = os.environ.get(TOKEN_ENV_VAR)
        if not api_token:
            raise ValueError(f"no API token: pass api_token= or set {TOKEN_ENV_VAR}")
        source = TOKEN_ENV_VAR
    if not isinstance(api_token, str):
        raise TypeError(f"api_token must be a string, not {type(api_token).__name__}")
    # The token itself is never echoed back: an error message may be logged.
    if not api_token.strip():
        raise ValueError(f"{source} is empty")
    if not _header_safe(api_token):
        where = (
            " around it (a newline from the file or secret it was read from?)"
            if source == TOKEN_ENV_VAR and _header_safe(api_token.strip())
            else ""
        )
        raise ValueError(f"{source} contains whitespace or control characters{where}")
    if not api_token.isascii():  # an HTTP header value: ASCII only
        raise ValueError(f"{source} contains non-ASCII characters")
    return api_token


def validate_base_url(base_url: str) -> str:
    """
    *base_url* without its trailing slash, if it is safe to send the token
    to. No message here quotes *base_url* whole: it may hold a password.
    """
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a string, not {type(base_url).__name__}")
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        shown = "" if "@" in base_url else f" {base_url!r}"
        raise ValueError(f"invalid base_url{shown}: {exc}") from None
    if url.userinfo:
        raise ValueError(
            "base_url must not carry a user name or password: the client authenticates "
            "with api_token"
        )
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    check_host_and_port(url, f"base_url {base_url!r}")
    if url.query or url.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {base_url!r}")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise ValueError(
            f"base_url {base_url!r} is plain http to a host that is not loopback: "
            "use https so the API token is not sent in clear text"
        )
    root = str(url).rstrip("/")
    if url.path.rstrip("/").endswith("/api"):
        hint = root.removesuffix("/api")
        raise ValueError(
            f"base_url {base_url!r} ends in /api, and the client adds /api/journey/... "
            f"itself, so requests would go to /api/api/...: pass {hint!r}"
        )
    return root


def check_host_and_port(url: httpx.URL, what: str) -> None:
    """
    Refuse *url* if its port is outside 1..65535 or its host holds a space or
    a percent sign: httpx keeps such URLs, and they would fail only on the
    first connection, as an `APIConnectionError` far from the typo.
    """
    # A percent in a host is httpx's encoding of a space or another byte no
    # host name has; a zone id (``fe80::1%eth0``) is no host for an API.
    if "%" in url.host or any(c.isspace() for c in url.host):
        raise ValueError(f"{what}: the host {url.host!r} is not a valid host name")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise ValueError(f"{what}: the port must be between 1 and 65535, got {url.port}")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_io(
    http_client: httpx.AsyncClient | None, transport: httpx.AsyncBaseTransport | None
) -> None:
    """The caller's *http_client* or *transport*: at most one, of the right type."""
    if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
        raise TypeError(
            f"http_client must be an httpx.AsyncClient, not {type(http_client).__name__}"
        )
    if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
        raise TypeError(
            f"transport must be an httpx.AsyncBaseTransport, not {type(transport).__name__}"
        )
    if http_client is not None and transport is not None:
        raise ValueError("pass http_client or transport, not both")


def network_options(
    *,
    verify: Any,
    cert: Any,
    proxy: Any,
    trust_env: Any,
    base_url: str,
    theirs: bool,
) -> dict[str, Any]:
    """The TLS and proxy settings, checked, as `default_transport` takes them;
    none at all when the I/O is *theirs* (a caller's client or transport)."""
    given = [
        name
        for name, value in (
            ("verify", verify),
            ("cert", cert),
            ("proxy", proxy),
            ("trust_env", trust_env),
        )
        if value is not UNSET
    ]
    if theirs:
        if given:
            raise ValueError(
                f"{', '.join(given)} with http_client= or transport=: configure TLS and "
                "proxies on your own client or transport instead"
            )
        return {}
    trust = True if trust_env is UNSET else trust_env
    if not isinstance(trust, bool):
        raise TypeError(f"trust_env must be True or False, not {type(trust).__name__}")
    verify = True if verify is UNSET else verify
    cert = None if cert is UNSET else cert
    # The default context is built by the transport on first use (loading
    # the CAs is most of a client's start-up); any other is checked now.
    context = None if verify is True and cert is None else build_ssl_context(verify, cert)
    explicit = None if proxy is UNSET or proxy is None else check_proxy(proxy)
    # An environment proxy that cannot be used is refused here, not per call.
    used = proxy_for(httpx.URL(base_url), explicit, trust_env=trust)
    if used is not None:
        where = (
            "" if explicit is not None else " (from the environment: trust_env=False ignores it)"
        )
        check_host_and_port(used, f"proxy {redacted(used)}{where}")
    return {"ssl_context": context, "proxy": explicit, "trust_env": trust}
