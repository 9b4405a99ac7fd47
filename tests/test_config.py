"""
The constructor's arguments checked (`_config`): the token, the base URL
rule, every setting, the caller's client or transport, and the TLS and
proxy options; nothing echoed that could hold a secret.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from payloads import TOKEN

import journey_async as ja
from journey_async._config import DEFAULT_TIMEOUT, UNSET, checked_settings, network_options

# The token -----------------------------------------------------------------


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHWOOSH_API_TOKEN", TOKEN)
    client = ja.AsyncJourneyClient()
    assert client._headers["Authorization"] == f"Api {TOKEN}"


def test_explicit_token_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHWOOSH_API_TOKEN", "from-env")
    assert ja.AsyncJourneyClient(TOKEN)._headers["Authorization"] == f"Api {TOKEN}"


def test_no_token_is_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUSHWOOSH_API_TOKEN", raising=False)
    with pytest.raises(ValueError, match="PUSHWOOSH_API_TOKEN"):
        ja.AsyncJourneyClient()


@pytest.mark.parametrize(
    "token", ["", "   ", "abc def", "abc\r\nX-Evil: 1", "t\u00f6ken", "t\u20ack"]
)
def test_malformed_token_is_refused_without_echo(token: str) -> None:
    with pytest.raises(ValueError, match="api_token") as info:
        ja.AsyncJourneyClient(token)
    assert token.strip() == "" or token not in str(info.value)


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("tok-from-secret\n", "around it (a newline from the file or secret"),
        (" tok ", "around it"),
        ("tok en\n", "characters"),
        ("\u00f6ko", "non-ASCII"),
    ],
)
def test_a_refused_environment_token_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, hint: str
) -> None:
    # The caller passed no api_token: the message must say where to look.
    monkeypatch.setenv("PUSHWOOSH_API_TOKEN", value)
    with pytest.raises(ValueError, match=r"^PUSHWOOSH_API_TOKEN contains") as info:
        ja.AsyncJourneyClient()
    assert hint in str(info.value)
    assert value.strip() not in str(info.value)
    if hint == "characters":
        assert "around it" not in str(info.value)


# The base URL ----------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "http://journey.pushwoosh.com",
        "http://10.0.0.1:8080",
        "http://example.com",
        "ftp://127.0.0.1",
        "journey.pushwoosh.com",
        "https://journey.pushwoosh.com/?x=1",
    ],
)
def test_unsafe_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        ja.AsyncJourneyClient(TOKEN, base_url=base_url)


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://127.8.9.10", "http://127.8.9.10"),
        ("http://localhost:1234", "http://localhost:1234"),
        ("http://[::1]:1234", "http://[::1]:1234"),
        ("https://proxy.example.com/pushwoosh/", "https://proxy.example.com/pushwoosh"),
    ],
)
def test_accepted_base_urls(base_url: str, expected: str) -> None:
    assert ja.AsyncJourneyClient(TOKEN, base_url=base_url).base_url == expected


@pytest.mark.parametrize(
    ("base_url", "port"),
    [
        ("http://127.0.0.1:99999", "99999"),
        ("http://127.0.0.1:0", "0"),
        ("http://127.0.0.1:-1", "-1"),
        ("https://journey.pushwoosh.com:65536", "65536"),
        ("http://[::1]:70000/gw", "70000"),
    ],
)
def test_base_url_with_a_port_out_of_range_is_refused(base_url: str, port: str) -> None:
    # httpx keeps these; each would fail only at the first connection.
    with pytest.raises(ValueError, match=f"the port must be between 1 and 65535, got {port}$"):
        ja.AsyncJourneyClient(TOKEN, base_url=base_url)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:abc", "http://127.0.0.1:8o80"])
def test_base_url_with_a_port_that_is_no_number_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match=r"invalid base_url.*port"):
        ja.AsyncJourneyClient(TOKEN, base_url=base_url)


@pytest.mark.parametrize("base_url", ["https://journey .pushwoosh.com", "https://a%20b.example"])
def test_base_url_with_a_host_no_name_has_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="is not a valid host name"):
        ja.AsyncJourneyClient(TOKEN, base_url=base_url)


@pytest.mark.parametrize("proxy", ["http://proxy.internal:99999", "http://u:pw@proxy.internal:0"])
def test_proxy_with_a_port_out_of_range_is_refused_without_its_password(proxy: str) -> None:
    with pytest.raises(ValueError, match="the port must be between 1 and 65535") as info:
        ja.AsyncJourneyClient(TOKEN, proxy=proxy)
    assert "pw" not in str(info.value)


def test_environment_proxy_with_a_port_out_of_range_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:65536")
    with pytest.raises(ValueError, match=r"from the environment.*port must be between 1 and 65535"):
        ja.AsyncJourneyClient(TOKEN)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://user:hunter2@gw.example",
        "https://hunter2@gw.example/pushwoosh",
        "http://user:hunter2@127.0.0.1:8080",
        "https://user:hunter2@gw example",  # not even a URL: still not echoed
    ],
)
def test_base_url_with_userinfo_is_refused_without_echo(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url") as info:
        ja.AsyncJourneyClient(TOKEN, base_url=base_url)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "base_url", ["https://gw.example/api", "https://gw.example/api/", "https://gw.example/pw/api"]
)
def test_base_url_ending_in_api_is_refused_with_a_hint(base_url: str) -> None:
    hint = base_url.rstrip("/").removesuffix("/api")
    with pytest.raises(ValueError, match="/api/api") as info:
        ja.AsyncJourneyClient(TOKEN, base_url=base_url)
    assert f"pass {hint!r}" in str(info.value)


# The settings and the I/O ----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_concurrency": 0}, ValueError),
        ({"max_concurrency": 1.5}, TypeError),
        ({"batch_size": 0}, ValueError),
        ({"batch_size": True}, TypeError),
    ],
)
def test_bad_bounds_are_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ja.AsyncJourneyClient(TOKEN, **kwargs)


def test_http_client_and_transport_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        ja.AsyncJourneyClient(
            TOKEN,
            http_client=httpx.AsyncClient(),
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": math.nan}, ValueError, "timeout"),
        ({"timeout": math.inf}, ValueError, "timeout"),
        ({"timeout": True}, TypeError, "timeout"),
        ({"timeout": "5"}, TypeError, "timeout"),
        ({"timeout": None}, TypeError, r"httpx\.Timeout\(None\)"),
        ({"timeout": httpx.Timeout(5.0, connect=-1)}, ValueError, "timeout.connect"),
        ({"timeout": httpx.Timeout(5.0, read=math.nan)}, ValueError, "timeout.read"),
        ({"attempt_timeout": 0}, ValueError, "attempt_timeout"),
        ({"attempt_timeout": "1"}, TypeError, "attempt_timeout"),
        ({"retry": 3}, TypeError, "retry must be a RetryPolicy"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"max_concurrency": 1.5}, TypeError, "max_concurrency"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"http_client": object()}, TypeError, r"http_client must be an httpx\.AsyncClient"),
        ({"http_client": httpx.Client()}, TypeError, "http_client"),
        ({"transport": object()}, TypeError, r"transport must be an httpx\.AsyncBaseTransport"),
        ({"transport": httpx.HTTPTransport()}, TypeError, "transport"),
        ({"rate_limit": 10}, TypeError, "rate_limit"),
        ({"base_url": 5}, TypeError, "base_url"),
    ],
)
def test_bad_argument_is_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ja.AsyncJourneyClient(TOKEN, **kwargs)


@pytest.mark.parametrize(
    "timeout", [2, 2.5, httpx.Timeout(3.0), httpx.Timeout(None), httpx.Timeout(5.0, pool=None)]
)
def test_good_timeouts_are_accepted(timeout: float | httpx.Timeout) -> None:
    client = ja.AsyncJourneyClient(TOKEN, timeout=timeout)
    assert client.timeout == httpx.Timeout(timeout)


def test_settings_are_frozen_and_checked_once() -> None:
    settings = checked_settings(
        timeout=2.5,
        attempt_timeout=None,
        retry=None,
        max_concurrency=4,
        batch_size=10,
        rate_limit=None,
    )
    assert settings.timeout == httpx.Timeout(2.5)
    assert settings.attempt_timeout is None
    with pytest.raises(AttributeError):
        settings.batch_size = 1  # type: ignore[misc]


def test_the_default_timeout_is_the_callers_clients_own() -> None:
    assert ja.AsyncJourneyClient(TOKEN).timeout == DEFAULT_TIMEOUT
    http_client = httpx.AsyncClient(timeout=httpx.Timeout(3.0, connect=1.0))
    client = ja.AsyncJourneyClient(TOKEN, http_client=http_client)
    assert client.timeout == httpx.Timeout(3.0, connect=1.0)


# TLS and proxy options ---------------------------------------------------------


def network(**given: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"verify": UNSET, "cert": UNSET, "proxy": UNSET, "trust_env": UNSET}
    return network_options(**{**options, **given}, base_url="https://journey.pushwoosh.com")


def test_network_options_default_to_the_transports_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert network(theirs=False) == {"ssl_context": None, "proxy": None, "trust_env": True}
    assert network(theirs=True) == {}


def test_network_options_with_the_callers_io_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"^verify, trust_env with http_client= or transport="):
        network(verify=False, trust_env=False, theirs=True)
