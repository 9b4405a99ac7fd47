"""
`AsyncJourneyClient`: its construction and settings (`with_options`, the
read-only properties), the two endpoints, the fan-out and removal calls, and
`_send`, the path every request takes.

What the constructor checks is in `_config`, what copies share in `_shared`,
the headers and URLs prepared once in `_prepared`, and what an outcome
becomes in the error tree in `_outcomes`.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import httpx

from ._batcher import DEFAULT_MAX_DELAY, RemovalBatcher
from ._batching import remove_in_batches
from ._config import (
    DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_BASE_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    SETTING_NAMES,
    UNSET,
    Settings,
    check_io,
    checked_settings,
    network_options,
    resolve_token,
    validate_base_url,
)
from ._converter import structure_removal_ack, structure_stats
from ._exceptions import JourneyError, ResponseFormatError
from ._fanout import AsCompleted, map_as_completed, map_ordered
from ._guard import CallGuard
from ._http import (
    ATTEMPT_TIMEOUT_EXTENSION,
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_REMOVAL_ACK_BYTES,
    MAX_RESPONSE_BYTES_EXTENSION,
    PREPARED_HEAD_EXTENSION,
    CallDeadlineExceeded,
    CertTypes,
    VerifyTypes,
    attempt_timed_out,
    run_within,
)
from ._logging import CallLog, call_log, log_attempt, logger
from ._models import JourneyStats, RemovalResult, StatsFailure, StatsResult, StatsSuccess
from ._outcomes import status_error, transport_error
from ._prepared import prepared_headers, url_builder
from ._ratelimit import RateLimiter, paced
from ._redaction import REDACTED, redact, redact_bytes
from ._retry import RetryPolicy, SendRequest, retrying
from ._shared import FORKED_MESSAGE, shared_resources
from ._slots import Slots
from ._validation import (
    callback,
    fanout_ids,
    number,
    positive_int,
    removal_target,
    validate_journey_id,
    validate_user_ids,
)

__all__ = ["AsyncJourneyClient"]

_T = TypeVar("_T")

# The stream of every body-less request: a ByteStream holds no state.
_NO_BODY: Final = httpx.ByteStream(b"")

STATS_PATH: Final = "/api/journey/{journey_id}/statistics/external"
REMOVAL_PATH: Final = "/api/journey/drop-users/external"


class AsyncJourneyClient:
    """
    An asyncio client for the Pushwoosh Customer Journey API.

    Use it as an async context manager, or call `aclose` when done::

        async with AsyncJourneyClient() as client:
            stats = await client.get_stats(journey_id)

    Args:
        api_token: A server API token. `None` reads ``PUSHWOOSH_API_TOKEN``.
        base_url: The API's root, to which the client adds ``/api/journey/...``.
            A path is kept, for a gateway that serves the API under one
            (``https://gw.example/pushwoosh``); a path ending in ``/api`` is
            refused, since it would send to ``/api/api/...``. Plain
            ``http://`` only to a loopback host, so the token never crosses a
            network in clear text; no user or password in it.
        timeout: Seconds per attempt, or an `httpx.Timeout`. Defaults to 10 s
            (5 s to connect), or to *http_client*'s own timeout when given one.
        retry: How failed attempts are retried; `None` switches retries off.
        max_concurrency: Requests in flight at most: in a fan-out or batched
            removal unless a call says otherwise, and across the client's
            direct calls, which beyond it wait their turn for a connection.
            It sizes the connection pool.
        batch_size: User ids per removal request, unless a call says otherwise.
        http_client: An `httpx.AsyncClient` you own and close yourself.
        transport: The `httpx.AsyncBaseTransport` requests go out through
            (under the retries). The one seam for custom I/O, such as the
            in-process emulator of `journey_async.testing`.
        attempt_timeout: Seconds: a wall-clock bound on one attempt, whole
            response included, which httpx's per-phase *timeout* is not (a
            server trickling a byte a second never trips a read timeout).
            30 s by default; `None` for none. An attempt cut short is a
            timeout like any other: retried, `APITimeoutError` when final.
            The whole call is bounded by the retry policy's ``deadline``,
            every attempt, backoff sleep and wait included.
        rate_limit: A `RateLimit` (a budget of requests a second) or any
            `RateLimiter`: every attempt, retries included, asks it first,
            and the client's `with_options` copies share it. `None`: no
            budget, but a 429 still pauses every request of the client until
            the server's ``Retry-After``, and the client goes on at a rate
            learned from it (docs/ratelimits.md). A cool-down longer than
            the retry policy's ``max_retry_after`` fails a call at once with
            `RateLimitError`, without sending.
        verify: TLS verification, as httpx means it: `True` (certifi's CAs,
            or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when *trust_env*), a CA
            bundle file or directory, an `ssl.SSLContext`, or `False`.
        cert: A client certificate: a file with the certificate and its
            key, or ``(cert, key)`` or ``(cert, key, password)``.
        proxy: A proxy URL every request goes through (``http://``,
            ``https://``, or ``socks5://`` with ``httpx[socks]``); its
            credentials never appear in a message or a log.
        trust_env: Read ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` /
            ``NO_PROXY`` and ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` (default
            `True`). A proxy that cannot be used is refused here, with
            `ValueError`. *verify*, *cert*, *proxy* and *trust_env* are for
            the client's own transport: with *http_client* or *transport*
            they are a `ValueError`.
        max_response_bytes: The largest response body accepted, counted
            after decompression (4 MiB by default, eight times the largest
            statistics a journey plausibly has); above it the response is
            dropped as it arrives and the call fails with
            `ResponseTooLargeError`. A removal's acknowledgement (a small
            JSON object) is capped at 64 KiB, or at this if lower.

    The settings (``timeout``, ``attempt_timeout``, ``retry``,
    ``max_concurrency``, ``batch_size``, ``rate_limit``) are read-only
    properties: `with_options` gives a client with other ones.

    Raises:
        TypeError, ValueError: No token, or a bad argument (nothing is echoed
            that could hold a secret).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        api_token: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = UNSET,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        batch_size: int = DEFAULT_BATCH_SIZE,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        attempt_timeout: float | None = DEFAULT_ATTEMPT_TIMEOUT,
        rate_limit: RateLimiter | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        verify: VerifyTypes = UNSET,
        cert: CertTypes | None = UNSET,
        proxy: str | httpx.URL | None = UNSET,
        trust_env: bool = UNSET,
    ) -> None:
        # No frame of a refusal's traceback holds the token (a report that
        # shows locals, such as Sentry's, would send it): a token refused is
        # still someone's secret, and a refusal below reads only self._secret.
        try:
            self._secret = resolve_token(api_token)
        except (TypeError, ValueError) as exc:
            del api_token
            raise exc.with_traceback(None) from None
        del api_token
        max_response_bytes = positive_int(max_response_bytes, "max_response_bytes")
        self._base_url = validate_base_url(base_url)
        check_io(http_client, transport)
        network = network_options(
            verify=verify,
            cert=cert,
            proxy=proxy,
            trust_env=trust_env,
            base_url=self._base_url,
            theirs=http_client is not None or transport is not None,
        )
        if timeout is UNSET:
            timeout = http_client.timeout if http_client is not None else DEFAULT_TIMEOUT
        settings = checked_settings(
            timeout=timeout,
            attempt_timeout=attempt_timeout,
            retry=retry,
            max_concurrency=max_concurrency,
            batch_size=batch_size,
            rate_limit=rate_limit,
        )
        self._shared = shared_resources(
            pool_size=settings.max_concurrency,
            retry=settings.retry,
            http_client=http_client,
            transport=transport,
            network=network,
        )
        self._is_copy = False
        self._http = self._shared.http
        self._headers, self._get_headers, self._post_headers, self._get_lines = prepared_headers(
            self._secret, self._base_url
        )
        self._url = url_builder(self._base_url)
        self._max_response_bytes = max_response_bytes
        self._configure(settings)

    def _configure(self, settings: Settings) -> None:
        """Everything derived from *settings*, built once per client or copy."""
        self._settings = settings
        timeouts = settings.timeout.as_dict()
        limit = self._max_response_bytes
        shared = self._shared
        attempt_timeout = settings.attempt_timeout
        bounds: dict[str, Any] = {"timeout": timeouts}
        if attempt_timeout is not None and shared.bounds_attempts:
            bounds[ATTEMPT_TIMEOUT_EXTENSION] = attempt_timeout
        self._extensions = {**bounds, MAX_RESPONSE_BYTES_EXTENSION: limit}
        self._removal_extensions = {
            **bounds,
            MAX_RESPONSE_BYTES_EXTENSION: min(limit, MAX_REMOVAL_ACK_BYTES),
        }
        # The bound put around an attempt whose transport does not keep it.
        self._attempt_bound = None if shared.bounds_attempts else attempt_timeout
        # A copy with a lower bound waits for its own slot, then the pool's.
        self._own_slots = (
            None
            if settings.max_concurrency >= shared.pool_size
            else Slots(settings.max_concurrency)
        )
        retry = settings.retry
        # Every attempt asks the rate limiter first (docs/ratelimits.md).
        attempt = paced(
            self._attempt,
            shared.adaptive if settings.rate_limit is None else settings.rate_limit,
            max_cool_down=(DEFAULT_RETRY if retry is None else retry).max_retry_after,
        )
        self._send_request: SendRequest = attempt if retry is None else retrying(attempt, retry)
        # RetryPolicy.deadline, as a hard bound on the whole call, and its error.
        deadline = None if retry is None else retry.deadline
        self._call_deadline = None if deadline is None else (deadline, _deadline_error(deadline))

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout = UNSET,
        attempt_timeout: float | None = UNSET,
        retry: RetryPolicy | None = UNSET,
        max_concurrency: int = UNSET,
        rate_limit: RateLimiter | None = UNSET,
    ) -> Self:
        """
        A client with other settings, sharing this one's connections::

            fast = client.with_options(timeout=2.0, retry=None)
            await fast.get_stats(journey_id)

        Cheap: nothing is connected or copied but the settings. What is not
        given is kept; *rate_limit*, when not given, is the same limiter, so
        the copy spends the same rate budget. This client keeps its own
        settings. The copy's *max_concurrency* bounds the copy's own calls,
        and cannot be above this client's connection pool (its
        ``max_concurrency`` when created).

        Closing a copy closes nothing: the connections are closed by the
        `aclose` of the client created with the constructor, after which its
        copies refuse to send too.

        Raises:
            TypeError, ValueError: A bad setting, or a *max_concurrency*
                above the pool's size.

        .. versionadded:: 0.2.0
        """
        current = self._settings
        settings = checked_settings(
            timeout=current.timeout if timeout is UNSET else timeout,
            attempt_timeout=(
                current.attempt_timeout if attempt_timeout is UNSET else attempt_timeout
            ),
            retry=current.retry if retry is UNSET else retry,
            max_concurrency=(
                current.max_concurrency if max_concurrency is UNSET else max_concurrency
            ),
            batch_size=current.batch_size,
            rate_limit=current.rate_limit if rate_limit is UNSET else rate_limit,
        )
        pool_size = self._shared.pool_size
        if settings.max_concurrency > pool_size:
            raise ValueError(
                f"max_concurrency {settings.max_concurrency} is above the connection pool's "
                f"size ({pool_size}): create the client with a higher max_concurrency"
            )
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._is_copy = True
        copy._configure(settings)
        return copy

    def __setattr__(self, name: str, value: object) -> None:
        if name in SETTING_NAMES:
            raise AttributeError(
                f"{name} is read-only: client.with_options({name}=...) gives a client "
                "with another one, sharing the connections"
            )
        if not name.startswith("_") and not hasattr(type(self), name):
            # A misspelt setting (client.max_concurency = 5) would do nothing, silently.
            close = difflib.get_close_matches(name, sorted(SETTING_NAMES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AttributeError(
                f"{type(self).__name__} has no attribute {name!r}{hint}: its settings are "
                "given when it is made, or to with_options(...)"
            )
        super().__setattr__(name, value)

    @property
    def base_url(self) -> str:
        """The API root requests go to, without a trailing slash."""
        return self._base_url

    @property
    def timeout(self) -> httpx.Timeout:
        """The per-phase timeouts of each attempt (httpx's meaning)."""
        return self._settings.timeout

    @property
    def attempt_timeout(self) -> float | None:
        """Seconds: the wall-clock bound on one attempt, or `None`."""
        return self._settings.attempt_timeout

    @property
    def retry(self) -> RetryPolicy | None:
        """How failed attempts are retried; `None`: not at all."""
        return self._settings.retry

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at most for this client's calls."""
        return self._settings.max_concurrency

    @property
    def batch_size(self) -> int:
        """User ids per removal request, unless a call says otherwise."""
        return self._settings.batch_size

    @property
    def rate_limit(self) -> RateLimiter | None:
        """The rate limiter every attempt goes through, or `None`."""
        return self._settings.rate_limit

    def __repr__(self) -> str:
        # Never raises: a traceback's locals show a client __init__ refused.
        base_url = vars(self).get("_base_url")
        return f"<{type(self).__name__} base_url={base_url!r} api_token={REDACTED}>"

    async def __aenter__(self) -> Self:
        # As httpx's client refuses to reopen: the block's calls would fail.
        if self._shared.is_closed():
            raise RuntimeError(
                "Cannot enter a client that has been closed (aclose(), or the end of an "
                "async with block): create a new AsyncJourneyClient"
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """
        Close the connections, unless the `httpx.AsyncClient` was handed in,
        or this is a copy from `with_options` (whose connections are the
        original's to close).

        A call running meanwhile (in another task) ends as a fan-out stopped
        by a failure: its requests in flight finish (on the default
        transport), the next one to meet the closed client fails with an
        `APIConnectionError` saying so, and the rest are not attempted
        (`NotAttemptedError`). A call made after it raises `RuntimeError`.
        """
        shared = self._shared
        # After a fork, closing would write to the parent's sockets (TLS close_notify).
        if shared.owns_http and not self._is_copy and not shared.forked:
            await shared.http.aclose()

    async def get_stats(self, journey_id: str) -> JourneyStats:
        """
        Fetch the statistics of one journey.

        Raises:
            TypeError, ValueError: *journey_id* is not a string, or would
                change the request's path.
            NotFoundError: No such journey.
            APIConnectionError: Among others, the client was closed
                (``aclose()``, from another task) while the call ran.
            JourneyError: Any other failure, typed as in the error tree.
            RuntimeError: The client was closed before the call.

        .. versionadded:: 0.1.0
        """
        guard = CallGuard(is_closed=self._shared.is_closed)
        return await guard.run(self._fetch_stats, validate_journey_id(journey_id))

    async def _fetch_stats(self, journey_id: str) -> JourneyStats:
        """`get_stats` of an id checked already (a fan-out checks its ids as
        it takes them, `fanout_ids`)."""
        response = await self._send(
            "GET", STATS_PATH.format(journey_id=journey_id), journey_id=journey_id
        )
        return self._parse(structure_stats, response)

    async def get_stats_many(
        self,
        journey_ids: Iterable[str],
        concurrency: int | None = None,
        *,
        progress: Callable[[int], object] | None = None,
    ) -> list[StatsResult]:
        """
        Fetch the statistics of many journeys concurrently: one `StatsResult`
        per id, in input order (duplicates included).

        A journey that fails is a result with its `JourneyError` in
        ``error``; the others go on. At most *concurrency* requests are in
        flight: the client's ``max_concurrency`` by default, which also
        sizes its connection pool, so a *concurrency* above it is refused.
        Cancelling the call cancels the requests in flight; the client stays
        usable.

        *journey_ids* may be a lazy iterable (a generator over a file or a
        cursor): it is pulled as requests finish, never read ahead. Ids are
        checked before any request when *journey_ids* is a collection (a
        list, a tuple, a set...), and those it holds at the call are the ones
        sent (one that grows meanwhile sends no more); a lazy one is checked
        id by id as it is pulled, and a bad id there stops the call: the
        requests in flight are cancelled and its `ValueError` or `TypeError`
        is raised.

        *progress*, when given, is called with 1 as each journey settles
        (stats or error): for a progress bar.

        The call stops at its first `AuthenticationError` (401/403), once
        a request could not connect to the API on any of its attempts, or
        once the client is closed under it (`aclose` from another task; the
        requests that meet the closed client end with an
        `APIConnectionError` saying so, and those in flight on the default
        transport finish): the requests waiting to be retried give up, and
        the journeys not sent by then end with a `NotAttemptedError` (its
        ``cause`` is that failure) without a request.

        Raises:
            TypeError, ValueError: A bad id, or a bad *concurrency*.
            RuntimeError: The client was closed before the call.

        .. versionadded:: 0.1.0
        """
        ids = fanout_ids(journey_ids)
        return await map_ordered(
            functools.partial(self._stats_result, CallGuard(is_closed=self._shared.is_closed)),
            ids,
            concurrency=self._fanout_concurrency(concurrency),
            progress=callback(progress, "progress"),
        )

    def iter_stats(
        self,
        journey_ids: Iterable[str],
        concurrency: int | None = None,
        *,
        progress: Callable[[int], object] | None = None,
    ) -> AsCompleted[StatsResult]:
        """
        Fetch the statistics of many journeys concurrently, yielding each
        `StatsResult` as it completes::

            async for result in client.iter_stats(journey_ids):
                ...

        As `get_stats_many`, except for the order, and for memory: at most
        *concurrency* requests are in flight and *concurrency* results wait
        for you, so a lazy iterable of 100 000 ids runs in the memory of a
        few hundred results.

        What it returns is an async iterator and an async context manager.
        Stopping the loop stops the work: after a ``break``, a cancellation,
        ``aclose()`` or the end of the task that iterates, the requests in
        flight are cancelled and no more are sent. ``aclose()``, or ``async
        with client.iter_stats(ids) as results:``, also waits for that
        cancellation to finish (and is the explicit end when an exception in
        the loop's body is caught further up the same task).

        Raises:
            TypeError, ValueError: A bad id in a collection or a bad
                *concurrency*, at the call; a bad id in a lazy iterable, from
                the iteration that reaches it.
            RuntimeError: The client was closed before the call, from the
                iteration. Closed under it, it yields every journey still,
                as `get_stats_many` returns them.

        .. versionadded:: 0.1.0
        """
        ids = fanout_ids(journey_ids)
        return map_as_completed(
            functools.partial(self._stats_result, CallGuard(is_closed=self._shared.is_closed)),
            ids,
            concurrency=self._fanout_concurrency(concurrency),
            progress=callback(progress, "progress"),
        )

    async def _stats_result(self, guard: CallGuard, journey_id: str) -> StatsResult:
        try:
            stats = await guard.run(self._fetch_stats, journey_id)
        except JourneyError as exc:
            return StatsFailure(journey_id, exc)
        return StatsSuccess(journey_id, stats)

    def _fanout_concurrency(self, concurrency: int | None) -> int:
        if concurrency is None:
            return self.max_concurrency
        concurrency = positive_int(concurrency, "concurrency")
        if concurrency > self.max_concurrency:
            # The client's connections are sized to max_concurrency: more
            # would only queue for a connection, against the pool timeout.
            raise ValueError(
                f"concurrency {concurrency} is above the client's max_concurrency "
                f"({self.max_concurrency}): create the client with a higher max_concurrency"
            )
        return concurrency

    async def remove_users(
        self,
        user_ids: Iterable[str],
        journey_ids: Iterable[str] | None = None,
        all_journeys: bool = False,
        batch_size: int | None = None,
        *,
        progress: Callable[[int], object] | None = None,
        on_removed: Callable[[Sequence[str]], object] | None = None,
    ) -> RemovalResult:
        """
        Remove users from the given journeys, or from all active journeys.

        Exactly one of *journey_ids* and ``all_journeys=True`` names the target.
        Duplicate user ids are dropped, first occurrence kept. The users go out
        in requests of *batch_size* (the client's ``batch_size`` by default),
        up to ``max_concurrency`` of them at once.

        *user_ids* may be any iterable, a generator over a file or a database
        cursor included. It is read to the end and checked before the first
        request, so bad input never leaves a removal half done; the ids are
        kept anyway (to drop duplicates, and in the result), while the
        request bodies exist only for the requests in flight.

        *progress*, when given, is called after each request with the number
        of users it settled, confirmed or failed: for a progress bar.
        *on_removed*, when given, is called with the user ids of each request
        the API confirmed, as it lands: a caller cancelled half way still
        knows who was removed. What either callback raises ends the call.

        The call stops at its first `AuthenticationError`, once a request
        could not connect on any of its attempts, or once the client is
        closed under it (the requests that meet the closed client fail with
        an `APIConnectionError` saying so): the batches not sent by then
        fail with `NotAttemptedError`, without a request. A batch
        answered 413 is sent again in halves, down to one user a request.

        Every user handed in is accounted for. All confirmed: the result.
        None confirmed: the first failing request's own error, as is (so a
        `JourneyError` other than `RemovalError` means nobody was removed,
        however many requests failed). Some confirmed: `RemovalError`.

        Raises:
            TypeError, ValueError: Bad input; nothing was sent.
            RemovalError: Some batches were confirmed and others failed; it
                lists the users of each, in input order.
            JourneyError: No batch was confirmed: the first failure, typed as
                in the error tree.
            RuntimeError: The client was closed before the call.

        .. versionadded:: 0.1.0
        """
        users = validate_user_ids(user_ids)
        target = removal_target(journey_ids, all_journeys)
        size = self.batch_size if batch_size is None else positive_int(batch_size, "batch_size")
        return await remove_in_batches(
            self._post_removal,
            users,
            target,
            batch_size=size,
            concurrency=self.max_concurrency,
            progress=callback(progress, "progress"),
            on_removed=callback(on_removed, "on_removed"),
            guard=CallGuard(is_closed=self._shared.is_closed),
        )

    def removal_batcher(
        self,
        *,
        max_batch_size: int | None = None,
        max_delay: float | None = None,
    ) -> RemovalBatcher:
        """
        A `RemovalBatcher`: merges concurrent small removals into few requests.

        For code that removes a user or two per event, many times a second::

            async with client.removal_batcher() as batcher:
                ...
                await batcher.remove([user_id], all_journeys=True)

        Args:
            max_batch_size: Users per request at most; the client's
                ``batch_size`` by default.
            max_delay: Seconds a batch waits for more calls after its first
                one: the most a caller waits on top of its request. `None`
                means `DEFAULT_MAX_DELAY`, 50 ms: unnoticed in a web request,
                and a target gets at most 20 requests a second, unless calls
                fill batches sooner.

        Raises:
            TypeError, ValueError: A bad bound.

        .. versionadded:: 0.1.0
        """
        # Both bounds checked here, so that a refusal's traceback holds no
        # half-built batcher (whose repr would fail there).
        size = (
            self.batch_size
            if max_batch_size is None
            else positive_int(max_batch_size, "max_batch_size")
        )
        return RemovalBatcher(
            self._post_removal,
            max_batch_size=size,
            max_delay=DEFAULT_MAX_DELAY if max_delay is None else number(max_delay, "max_delay"),
            max_concurrency=self.max_concurrency,
            is_closed=self._shared.is_closed,
        )

    async def _post_removal(self, user_ids: Sequence[str], target: dict[str, Any]) -> None:
        """One removal request; returns once the API confirmed it."""
        body = json.dumps({"user_ids": list(user_ids), **target}).encode()
        response = await self._send("POST", REMOVAL_PATH, body)
        if response.status_code == 204:  # No Content: success, with nothing to say
            return
        self._parse(structure_removal_ack, response)

    async def _send(
        self, method: str, path: str, body: bytes | None = None, *, journey_id: str | None = None
    ) -> httpx.Response:
        """
        Send one request (with retries, per the transport) and map every
        failure to a `JourneyError`. Returns only 2xx responses, body read.
        *journey_id* goes in the log records of the call.
        """
        # stream=, not content=: httpx then skips encoding the body and
        # re-deriving every header (benchmarks/hotpath.py measures both); the
        # headers are what it would have derived.
        if body is None:
            request = httpx.Request(
                method,
                self._url(path),
                headers=self._get_headers,
                stream=_NO_BODY,
                extensions=self._extensions,
            )
            # What request.read() would store, without its checks of the stream.
            request._content = b""
            request.extensions[PREPARED_HEAD_EXTENSION] = (request.headers, self._get_lines)
        else:
            headers = httpx.Headers(self._post_headers)
            headers["Content-Length"] = str(len(body))
            request = httpx.Request(
                method,
                self._url(path),
                headers=headers,
                stream=httpx.ByteStream(body),
                extensions=self._removal_extensions,
            )
            request.read()  # as httpx does for a body in memory: request.content works
        call_deadline = self._call_deadline
        # The records' shared fields, only when records can be emitted at all.
        log_token = (
            call_log.set(CallLog(journey_id, self._secret))
            if logger.isEnabledFor(logging.INFO)
            else None
        )
        try:
            if call_deadline is None:
                response = await self._send_request(request)
            else:
                # The whole call: attempts, backoff sleeps, the waits for a
                # slot or a rate-limit token, all inside this one bound.
                seconds, deadline_error = call_deadline
                response = await run_within(seconds, self._send_request, request, deadline_error)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise transport_error(method, path, exc) from exc
        finally:
            if log_token is not None:
                call_log.reset(log_token)
        if response.is_success:
            return response
        raise status_error(response, secret=self._secret)

    def _parse(self, parse: Callable[[bytes], _T], response: httpx.Response) -> _T:
        """*parse* the body. A server may echo what it received, and the
        error quotes the body cut short: so a refused body that holds the
        token is parsed again with the token blotted out, for the message.
        A method, not a function given the token: this frame is in the
        error's traceback, and ``self`` shows no token there."""
        content = response.content
        try:
            return parse(content)
        except ResponseFormatError as exc:
            error = exc
        clean = redact_bytes(content, self._secret)
        if clean is not content:
            try:
                parse(clean)
            except ResponseFormatError as exc:
                error = exc
        # Once more on the message: JSON may spell the token with escapes.
        message = str(error)
        redacted = redact(message, self._secret)
        # The body may hold the token: neither it, nor the frames that parsed
        # it, nor a message that quotes it goes with the error, whose
        # traceback's locals are shown by capture_locals (Sentry, rich).
        del content, clean
        if redacted == message:
            raise error.with_traceback(None)
        del error, message
        raise ResponseFormatError(redacted) from None

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        """One attempt, once a slot is free: direct calls beyond the pool's
        size wait here, for as long as the call may, rather than in the
        pool, whose timeout would fail them. Each attempt is logged (DEBUG)."""
        shared = self._shared
        if shared.http.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        if shared.forked:
            raise RuntimeError(FORKED_MESSAGE)
        loop = asyncio._get_running_loop()
        if loop is not shared.loop:
            shared.enter_loop(loop)
        shared.used = True
        log = call_log.get()
        if log is not None:
            log.attempt += 1
        send = shared.send if self._attempt_bound is None else self._bounded_attempt
        own = self._own_slots
        slots = shared.slots
        try:
            if own is not None and not own.try_take():
                await own.take()
            try:
                if not slots.try_take():
                    await slots.take()
                try:
                    response = await send(request)
                finally:
                    slots.give()
            finally:
                if own is not None:
                    own.give()
        except Exception as exc:
            if logger.isEnabledFor(logging.DEBUG):
                log_attempt(request, type(exc).__name__, None)
            raise
        if logger.isEnabledFor(logging.DEBUG):
            log_attempt(request, str(response.status_code), response.status_code)
        return response

    async def _bounded_attempt(self, request: httpx.Request) -> httpx.Response:
        """The attempt within attempt_timeout, for a transport or client of
        the caller's, which does not keep it by itself."""
        bound = self._attempt_bound
        assert bound is not None
        return await run_within(
            bound, self._shared.send, request, functools.partial(attempt_timed_out, bound)
        )


def _deadline_error(deadline: float) -> Callable[[], httpx.TimeoutException]:
    def error() -> httpx.TimeoutException:
        return CallDeadlineExceeded(
            f"the call's deadline of {deadline:g} s passed (RetryPolicy(deadline=...)), "
            "every attempt and wait included"
        )

    return error
