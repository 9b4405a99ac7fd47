"""
One rate budget for many processes, kept in Redis: `RedisRateLimit`.

Needs the ``redis`` extra (``pip install 'journey-async[redis]'``, redis-py).
Importing `journey_async` never imports redis; importing this module does.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING, Any, Final

import anyio
import sniffio

from ._exceptions import RateLimiterError
from ._ratelimit import _GRACE, _burst, _CoolingTooLong, _Evidence
from ._validation import number

try:
    import redis.asyncio
    import redis.exceptions
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "journey_async.redis needs redis-py: pip install 'journey-async[redis]'"
    ) from exc

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

__all__ = ["RedisRateLimit"]

# GCRA (a token bucket kept as one "theoretical arrival time") on the Redis
# server's own clock, so that the clocks of the processes sharing it do not
# matter. KEYS: the arrival time, the end of the cool-down. ARGV: seconds per
# request, the burst's tolerance, the longest cool-down the caller waits out.
# Returns {"cool", seconds left} when cooling down for longer than that, else
# {"go", seconds to wait before sending}: the slot is reserved either way.
_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cool = tonumber(redis.call('GET', KEYS[2]) or '0')
if cool - now > tonumber(ARGV[3]) then
  return {'cool', tostring(cool - now)}
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat == 0 then
  tat = now + tolerance
end
local start = math.max(now, cool)
tat = math.max(tat, start)
local go = math.max(start, tat - tolerance)
local after = tat + interval
local ttl = math.ceil((after - now + tolerance) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(after), 'PX', ttl)
return {'go', tostring(go - now)}
"""

# A 429: every process pauses until now + ARGV[1] (the later end wins), and
# goes on from an empty bucket (the server's is empty too).
_COOL_DOWN: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ends = now + tonumber(ARGV[1])
local cool = tonumber(redis.call('GET', KEYS[2]) or '0')
if ends > cool then
  redis.call('SET', KEYS[2], tostring(ends), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1)
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  local fresh = ends + tonumber(ARGV[2])
  if fresh > tat then
    redis.call('SET', KEYS[1], tostring(fresh), 'PX', math.ceil((fresh - now) * 1000) + 1000)
  end
end
return tostring(math.max(ends, cool) - now)
"""

# Still cooling down? (asked after a wait, before sending) -> seconds left, or 0.
_COOLING: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cool = tonumber(redis.call('GET', KEYS[1]) or '0')
return tostring(math.max(0, cool - now))
"""

DEFAULT_COOL_DOWN: Final = 1.0
"""Seconds every process pauses after a 429 without a readable ``Retry-After``
(the in-process limiters' default, `journey_async._ratelimit.DEFAULT_COOL_DOWN`)."""

_REDIS_FAILURES: Final = (redis.exceptions.RedisError, OSError)


class RedisRateLimit:
    """
    A budget of requests per second shared by every client, in every
    process, that uses the same Redis *key*::

        from redis.asyncio import Redis
        from journey_async.redis import RedisRateLimit

        limit = RedisRateLimit(Redis.from_url(url), key="journeys:acme", per_second=100)
        client = ja.AsyncJourneyClient(rate_limit=limit)

    The arithmetic (GCRA: a token bucket kept as one time) runs in Redis, one
    Lua script per request, on the Redis server's clock: the processes'
    clocks may differ. Requests are spaced evenly from the first; after an
    idle moment up to *burst* go at once. A 429 that stands pauses every
    process until its ``Retry-After`` (1 s without one), through a key
    holding the end of the cool-down; the rate stays the one given. Each
    process first weighs its own 429s on the answers to the requests it sent
    with or after the refused one, as the in-process limiters do
    (docs/ratelimits.md, "429s that are not a budget"), pausing only its own
    requests meanwhile: a 429 among answers the server otherwise accepts (a
    gateway refusing a share at random) is dismissed and pauses no one else.

    When Redis cannot be reached, a request fails with `RateLimiterError`
    and is not sent: sending without the budget would break it for every
    other process, which is what the budget is for.

    It runs on asyncio only (redis-py's asyncio client): under trio,
    `acquire` raises `RuntimeError`; use `journey_async.RateLimit` there.

    Args:
        redis: A `redis.asyncio.Redis` client (you close it).
        key: The Redis key prefix of the budget: ``<key>:tat`` and
            ``<key>:cool``. Same key, same budget.
        per_second: Requests a second at most, all processes together.
        burst: Requests that may go at once after an idle moment; `None`
            means one second's worth (at least 1).

    Raises:
        TypeError, ValueError: A bad argument.

    .. versionadded:: 0.2.0
    """

    __slots__ = (
        "_acquire",
        "_burst",
        "_cool",
        "_cool_down",
        "_cooling",
        "_decided",
        "_evidence",
        "_lock",
        "_per_second",
        "_sharing",
        "_tat",
    )

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        *,
        key: str,
        per_second: float,
        burst: int | None = None,
    ) -> None:
        if not isinstance(redis, _redis_client_type()):
            raise TypeError(f"redis must be a redis.asyncio.Redis, not {type(redis).__name__}")
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty string")
        self._per_second = number(per_second, "per_second", exclusive=True)
        self._burst = _burst(burst, self._per_second)
        self._tat = f"{key}:tat"
        self._cool = f"{key}:cool"
        self._acquire: AsyncScript = redis.register_script(_ACQUIRE)
        self._cool_down: AsyncScript = redis.register_script(_COOL_DOWN)
        self._cooling: AsyncScript = redis.register_script(_COOLING)
        # One script call at a time from this process: each takes a fraction
        # of a millisecond, and thousands at once would exhaust redis-py's
        # connection pool, which refuses rather than waits.
        self._lock = anyio.Lock()
        # This process's 429 episodes, weighed before one pauses every process.
        self._evidence = _Evidence()
        # Set when the open episode is decided (dismissed, or shared in Redis).
        self._decided: anyio.Event | None = None
        # The episode (its generation) whose cool-down went to Redis.
        self._sharing = 0

    @property
    def per_second(self) -> float:
        """The budget: requests a second at most, all processes together."""
        return self._per_second

    @property
    def burst(self) -> int:
        """Requests that may go at once after an idle moment."""
        return self._burst

    def __repr__(self) -> str:
        # Never raises: a traceback's locals show a limiter whose __init__ refused.
        tat: str | None = getattr(self, "_tat", None)
        if tat is None:
            return f"<{type(self).__name__}, not made>"
        return (
            f"RedisRateLimit(key={tat.removesuffix(':tat')!r}, "
            f"per_second={self._per_second:g}, burst={self._burst})"
        )

    async def acquire(self) -> None:
        """Return when one request may be sent, by the shared budget."""
        await self._acquire_within(math.inf)

    async def report_rate_limited(self, retry_after: float | None) -> None:
        """A request was answered 429: pause every process sharing the budget
        (at once: with no sending time, there is no evidence to weigh)."""
        _on_asyncio()
        await self._share(_wait(retry_after))

    async def _report_sent_at(self, retry_after: float | None, sent_at: float) -> None:
        """
        `report_rate_limited` for the request that `_acquire_within` let go at
        *sent_at* (by `time.monotonic`): its episode is weighed here first,
        this process's requests pausing meanwhile; every process pauses only
        once it stands.
        """
        _on_asyncio()
        wait = _wait(retry_after)
        evidence = self._evidence
        generation = evidence.generation
        evidence.rate_limited(time.monotonic(), wait, sent_at)
        if evidence.generation != generation:  # a new episode
            self._decided = anyio.Event()
        if evidence.open:
            await self._settle()
        elif self._sharing == evidence.generation:
            # A late 429 of an episode that stood: as any 429 did, it may
            # extend the shared cool-down (a dismissed one's changes nothing).
            await self._share(wait)

    async def _accepted(self, sent_at: float) -> None:
        """The request let go at *sent_at* was answered, not with a 429, while
        an episode is open: evidence."""
        self._evidence.accepted(sent_at)
        # The answer came all the same: Redis's failure is the next
        # request's to report (its acquire meets it), not this one's.
        with contextlib.suppress(RateLimiterError):
            await self._settle()

    async def _settle(self) -> None:
        """Decide the open episode when its evidence allows: dismissed, or
        standing, when it cools every process down through Redis unless it
        stood by chance. Wakes the requests waiting on it."""
        evidence = self._evidence
        now = time.monotonic()
        if evidence.stands(now):
            # Closed at once: this process's requests wait out its cool-down
            # here all the same (`_wait_cool_down`), the shared one too.
            by_chance = evidence.close(now)
            self._wake()
            if not by_chance:
                self._sharing = evidence.generation
                await self._share(max(0.0, evidence.cool_until - now))
        elif not evidence.open:  # dismissed
            self._wake()

    def _wake(self) -> None:
        if self._decided is not None:
            self._decided.set()

    async def _share(self, wait: float) -> None:
        """Every process pauses for *wait* seconds from now (the later end wins)."""
        interval = 1.0 / self._per_second
        await self._run(
            self._cool_down,
            [self._tat, self._cool],
            [repr(wait), repr((self._burst - 1) * interval)],
        )

    async def _acquire_within(self, max_cool_down: float) -> float:
        """
        `acquire`, or `_CoolingTooLong` at once when a cool-down outlasts
        *max_cool_down*. Returns the request's sending time (by
        `time.monotonic`), which its answer's evidence is weighed by.
        """
        _on_asyncio()
        if time.monotonic() < self._evidence.cool_until:
            await self._wait_cool_down(max_cool_down)
        interval = 1.0 / self._per_second
        args = [repr(interval), repr((self._burst - 1) * interval), _lua_number(max_cool_down)]
        while True:
            verdict, value = await self._run(self._acquire, [self._tat, self._cool], args)
            if verdict == "cool":
                raise _CoolingTooLong(value)
            if value > 0:
                await anyio.sleep(value)
                # A 429 elsewhere while this one waited: its slot is void.
                (left,) = await self._run(self._cooling, [self._cool], [])
                if left > 0:
                    continue
            return self._sent()

    def _sent(self) -> float:
        now = time.monotonic()
        self._evidence.take(now)
        return now

    async def _wait_cool_down(self, max_cool_down: float) -> None:
        """
        This process's own pause after a 429 of its own: while its episode is
        weighed, until the evidence dismisses it or its cool-down is over;
        once it stands, to the end of its cool-down (shared in Redis too,
        unless it stood by chance against a gateway refusing at random).
        """
        evidence = self._evidence
        while True:
            if evidence.open:
                await self._settle()
            now = time.monotonic()
            left = evidence.cool_until - now
            if left <= _GRACE:
                return
            if left > max_cool_down:
                raise _CoolingTooLong(left)
            decided = self._decided
            if not evidence.open or decided is None:
                await anyio.sleep(left)
                continue
            # Woken when it is decided; else at HOLD (where it is decided at
            # the latest), or when its cool-down is over.
            hold = evidence.held_at - now
            with anyio.move_on_after(hold if hold > 0 else left):
                await decided.wait()

    async def _run(self, script: AsyncScript, keys: list[str], args: list[str]) -> Any:
        try:
            async with self._lock:
                result = await script(keys=keys, args=args)
        except _REDIS_FAILURES as exc:
            raise RateLimiterError(
                f"the rate limit's Redis could not be used ({type(exc).__name__}: {exc}); "
                "the request was not sent"
            ) from exc
        if isinstance(result, list):
            verdict, value = (_text(part) for part in result)
            return verdict, float(value)
        return (float(_text(result)),)


def _wait(retry_after: float | None) -> float:
    return DEFAULT_COOL_DOWN if retry_after is None else number(retry_after, "retry_after")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _lua_number(value: float) -> str:
    # Lua reads "inf" as nil: a huge number stands for "no limit".
    return "1e300" if math.isinf(value) else repr(value)


def _redis_client_type() -> type[redis.asyncio.Redis]:
    return redis.asyncio.Redis


def _on_asyncio() -> None:
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library != "asyncio":
        raise RuntimeError(
            f"RedisRateLimit runs on asyncio only (redis-py's asyncio client), not {library}: "
            "use journey_async.RateLimit for a budget in this process"
        )
