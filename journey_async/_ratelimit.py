"""
Rate limits: the `RateLimiter` protocol, the in-process `RateLimit`, and the
adaptive default every client has (a shared cool-down after a 429, then a
learned rate).

The arithmetic lives in `_Budget`, which never sleeps and reads the time only
when given it, so that it is tested with a fake clock. `RateLimit` and the
default limiter put anyio's sleep around it (asyncio and trio alike), and
`paced` wraps one attempt's send: ``acquire()`` before it goes, and
``report_rate_limited(retry_after)`` when a 429 comes back. See
docs/ratelimits.md for the algorithm.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, NamedTuple, Protocol, cast, runtime_checkable

import anyio
import httpx

from ._retry import SendRequest, parse_retry_after
from ._validation import integer, number

__all__ = [
    "DEFAULT_COOL_DOWN",
    "RateLimit",
    "RateLimiter",
    "adaptive_limiter",
    "check_rate_limiter",
    "paced",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

DEFAULT_COOL_DOWN: Final = 1.0
"""Seconds every request pauses after a 429 without a readable ``Retry-After``:
the shortest wait a ``Retry-After`` in whole seconds can ask for."""

MAX_COOL_DOWN: Final = 3600.0
"""Seconds at most of one cool-down: a longer ``Retry-After`` (a mistake, or a
hostile server's) is read as an hour; above ``max_retry_after`` either way,
requests fail at once instead of waiting."""

BACKOFF: Final = 0.9
"""After a 429, the new rate is this share of the rate the server was seen to
accept: a little below it, so that the next second does not overshoot again."""

DOUBLING_PERIOD: Final = 0.2
"""Seconds in which the rate doubles while it climbs back to its target: from
1 request a second to 100 in under two seconds."""

ADDITIVE_STEP: Final = 0.01
"""Past its target, the rate grows by this share of the target every second:
slowly, since each overshoot costs the whole client a cool-down."""

MIN_RATE: Final = 0.1
"""Requests a second the learned rate never goes below."""

_GRACE: Final = 0.001
"""Seconds of a cool-down not waited on: a request's retry waits out the same
``Retry-After`` read a moment apart, and the gap is no reason to sleep again."""

EVIDENCE: Final = 20
"""Answers to requests sent with or after a refused one that dismiss its
episode at once (its cool-down ends, nothing is learned), when at most
`DISMISS_SHARE` of them were 429s too: the server was taking requests right
after the refusal, so that 429 was not its budget running dry but a gateway
refusing a share of requests at random, or one busy node of several. A token
bucket run dry refuses most of what follows: its episodes stand."""

MIN_EVIDENCE: Final = 3
"""Answers of that kind that dismiss an episode as soon as every request sent
with or after the refused one is answered, or from `HOLD` after its 429 on
(its cool-down cut short), when fewer than `EVIDENCE` came back by then. An
episode with fewer answers by then is thin: it follows the well-evidenced
episodes before it (`HISTORY`)."""

HISTORY: Final = 5
"""Well-evidenced episodes (decided on at least `MIN_EVIDENCE` answers)
remembered to tell a gateway refusing at random from a budget. When at most
`RANDOM_SHARE` of their answers, pooled (`EVIDENCE` of them at least), were
429s, a thin episode is dismissed too, unless its own answers fail
`DISMISS_SHARE`; and an episode that stands all the same (thin, or by chance)
lowers the rate to `BACKOFF` of what it was (unpaced, it stays so) instead of
learning one from its phase. Paced at what a random gateway accepts, a
client has a request or two in flight: its 429s are
all thin, and when each stood and was learned from its short phase, the rate
fell to a few a second, where no 429 had evidence again. With no such history
(a client sending one request at a time), a thin episode stands."""

RANDOM_SHARE: Final = 1 / 3
"""The share of 429s at most among the pooled answers of the last `HISTORY`
well-evidenced episodes for the gateway to be taken as refusing at random:
looser than `DISMISS_SHARE`, so that one episode standing by chance (6 of 31
answers refused, at 10 % of random 429s) does not make every thin one after it
stand; a token bucket run dry refuses most of the answers after its 429."""

DISMISS_SHARE: Final = 1 / 6
"""The share of 429s among those answers at most for an episode to be
dismissed: random refusals of a few percent stay well under it; a client
sending at 1.2 times a token bucket's rate, once it is dry, goes over it."""

HOLD: Final = 0.2
"""Seconds after a 429 before its episode is decided on fewer answers than
`EVIDENCE` while some of the requests sent with or after the refused one are
unanswered (dropped, or answered before the 429 came back): dismissed, or
learned from once its cool-down is over too, even with a shorter
``Retry-After`` (``0``); time for the answers to the requests in flight.
Meanwhile the rate stays as it was."""

_WINDOW_SLOTS: Final = 10
"""The window of recent requests: one second in slots of a tenth."""


def _burst(burst: object, per_second: float) -> int:
    if burst is None:
        return max(1, math.floor(per_second))
    if not isinstance(burst, int) or isinstance(burst, bool):
        raise TypeError(f"burst must be an int or None, not {type(burst).__name__}")
    return integer(burst, "burst", minimum=1)


def _retry_after(value: object) -> float | None:
    if value is None:
        return None
    return number(value, "retry_after")


@runtime_checkable
class RateLimiter(Protocol):
    """
    What a client asks before each request it sends, and tells after a 429.

    `RateLimit` is the in-process one and `journey_async.redis.RedisRateLimit`
    the one shared by many processes; any object with these two coroutine
    methods can be passed as ``AsyncJourneyClient(rate_limit=...)``.

    .. versionadded:: 0.2.0
    """

    async def acquire(self) -> None:
        """Return when one request may be sent (every attempt asks)."""

    async def report_rate_limited(self, retry_after: float | None) -> None:
        """A request was answered 429; *retry_after* is the server's wait in
        seconds, or `None` when it sent no readable ``Retry-After``."""


class _Window:
    """Requests sent in the last second, counted in slots of a tenth."""

    __slots__ = ("_counts", "_slot")

    def __init__(self) -> None:
        self._counts = [0] * _WINDOW_SLOTS
        self._slot = 0

    def _advance(self, now: float) -> int:
        slot = math.floor(now * _WINDOW_SLOTS)
        if slot != self._slot:
            for i in range(max(self._slot + 1, slot - _WINDOW_SLOTS + 1), slot + 1):
                self._counts[i % _WINDOW_SLOTS] = 0
            self._slot = slot
        return slot

    def add(self, now: float) -> None:
        self._counts[self._advance(now) % _WINDOW_SLOTS] += 1

    def total(self, now: float) -> int:
        self._advance(now)
        return sum(self._counts)


class _Budget:
    """
    The state of one rate budget, as plain arithmetic on times it is given.

    Pacing is GCRA (a token bucket kept as one "next slot" time): at rate *r*
    a request may go when ``now >= slot - (burst - 1) / r``, and moves the
    slot on by ``1 / r``. A fresh budget, and one just out of a cool-down,
    has nothing saved up: its requests are spaced from the first.

    A 429 starts a cool-down until the server's time; 429s that arrive
    during it, or answer requests sent before it began, belong to the same
    episode. When the cool-down ends, the rate is learned from the phase
    that ended (see docs/ratelimits.md).
    """

    def __init__(self, ceiling: float | None, burst: int) -> None:
        self.ceiling = ceiling
        self.burst = burst
        # Pacing. rate None: not paced (the default before any 429).
        self._base: float | None = ceiling  # the rate at _ramp_start
        self._target: float | None = ceiling  # slow start below it, additive above
        self._ramp_start = 0.0
        self._slot: float | None = None
        self.cool_until = -math.inf
        self.generation = 0
        # Learning.
        self._window = _Window()
        self._phase_start: float | None = None
        self._phase_sent = 0
        self._sent_since_episode = 0
        self._ended: _Phase | None = None
        self._burst_seen: int | None = None
        self._last_429 = -math.inf
        self._first = (0, 0.0)
        self._episode_began = -math.inf
        # The open episode's evidence: when its refused request was sent, the
        # answers to requests sent with or after it (accepted, refused), and
        # what pacing to go back to if they dismiss it.
        self._refused_sent_at = -math.inf
        self._after = [0, 0]
        self._resume: tuple[float, float | None] = (-math.inf, None)
        self._dismissed = False
        # The sending times of the last requests, to count those sent with or
        # after a refused one before its 429 came back (less itself): with
        # those sent since, its evidence is complete when they are all
        # answered. Past EVIDENCE, the count makes no difference.
        self._sent_times: deque[float] = deque(maxlen=EVIDENCE + 1)
        self._in_flight = 0
        # The answers (all, refused) of the last HISTORY well-evidenced episodes.
        self._history: deque[tuple[int, int]] = deque(maxlen=HISTORY)

    # --- pacing ------------------------------------------------------------------------------

    def rate(self, now: float) -> float | None:
        """Requests a second allowed at *now*; `None` for no pacing."""
        base = self._base
        if base is None:
            return None
        target = self._target
        elapsed = max(0.0, now - self._ramp_start)
        if target is None or base < target:
            doublings = elapsed / DOUBLING_PERIOD
            grown: float = base * 2.0 ** min(doublings, 64.0)
            if target is None or grown <= target:
                return grown if self.ceiling is None else min(grown, self.ceiling)
            elapsed -= DOUBLING_PERIOD * math.log2(target / base)
        else:
            target = base
        rate = target * (1.0 + ADDITIVE_STEP * elapsed)
        return rate if self.ceiling is None else min(rate, self.ceiling)

    def paced(self, now: float) -> bool:
        """Whether a request at *now* may have to wait (else: it may go)."""
        return now < self.cool_until or self._ended is not None or self._base is not None

    def next_slot(self, now: float, max_cool_down: float) -> float:
        """
        Seconds before the next request may go, 0 when it may go now (then
        call `take`). Raises `_CoolingTooLong` when a cool-down outlasts
        *max_cool_down*.
        """
        if self._ended is not None and now >= self._episode_began + HOLD:
            self._weigh(held=True)
            if self._ended is not None and now >= self.cool_until - _GRACE:
                self._learn(now)
        if now < self.cool_until - _GRACE:
            left = self.cool_until - now
            if left > max_cool_down:
                raise _CoolingTooLong(left)
            return left
        rate = self.rate(now)
        if rate is None or self._slot is None:
            return 0.0
        tolerance = (self._burst_at(rate) - 1) / rate
        return max(0.0, self._slot - tolerance - now)

    def take(self, now: float, *, waited: bool = False) -> None:
        """
        The request at *now* goes: move the slot on, and count it. *waited*:
        it had to queue, so the budget was not idle: a late wake-up (a busy
        event loop) must not turn into a burst of the requests behind it.
        """
        rate = self.rate(now)
        if rate is not None:
            interval = 1.0 / rate
            tolerance = (self._burst_at(rate) - 1) * interval
            slot = self._slot
            if slot is None or waited:  # nothing saved up
                slot = max(slot or now, now + tolerance)
            self._slot = max(slot, now) + interval
        if self._phase_start is None:
            self._phase_start = now
        self._window.add(now)
        self._sent_times.append(now)
        self._phase_sent += 1
        self._sent_since_episode += 1

    def _burst_at(self, rate: float) -> int:
        # The given burst only at the given rate: while recovering from a
        # 429, requests are evenly spaced.
        return self.burst if self.ceiling is not None and rate >= self.ceiling else 1

    # --- learning ----------------------------------------------------------------------------

    def rate_limited(
        self, now: float, retry_after: float | None, sent_at: float | None = None
    ) -> None:
        """A 429 came back at *now*, for a request sent at *sent_at* (when known)."""
        wait = DEFAULT_COOL_DOWN if retry_after is None else retry_after
        # The same episode: while its cool-down lasts (nothing is sent then),
        # or the late answer to a request sent before it began.
        open_episode = self._ended
        if open_episode is not None or (
            self._sent_since_episode == 0 if sent_at is None else sent_at <= self._episode_began
        ):
            if open_episode is None and self._dismissed:
                return  # a late answer of an episode its evidence dismissed
            self.cool_until = max(self.cool_until, now + wait)
            if open_episode is not None:
                # A request sent after the 429 came back (during the hold of a
                # Retry-After: 0) is not one of the phase's: its 429 takes nothing
                # off what the phase had accepted.
                if sent_at is None or sent_at <= self._episode_began:
                    self._ended = open_episode._replace(rejected=open_episode.rejected + 1)
                if sent_at is not None and sent_at >= self._refused_sent_at:
                    self._after[1] += 1
                    self._weigh()
            return
        # The phase ended when the refused request went out, not when its
        # answer came back: that much later, the server's latency.
        end = now if sent_at is None else min(now, sent_at)
        self._ended = _Phase(
            start=end if self._phase_start is None else min(end, self._phase_start),
            end=end,
            sent=self._phase_sent,
            rejected=1,
            recent=self._window.total(now),
            rate=self.rate(end),
        )
        self._resume = (self.cool_until, self._slot)
        # Only a request whose sending time is known has answers after it.
        self._refused_sent_at = end if sent_at is not None else math.inf
        self._after = [0, 0]
        self._dismissed = False
        # The requests sent with or after the refused one, less itself; those
        # sent from now on (during the hold of a Retry-After: 0) add to them.
        self._in_flight = max(0, sum(1 for sent in self._sent_times if sent >= end) - 1)
        self.cool_until = max(self.cool_until, now + wait)
        self._episode_began = now
        self._sent_since_episode = 0
        self._slot = None
        self.generation += 1
        self._weigh()  # with nothing else in flight, complete already

    def accepted(self, sent_at: float) -> None:
        """
        A request sent at *sent_at* was answered, not with a 429, while an
        episode is open: evidence that may dismiss it (`EVIDENCE`).
        """
        if self._ended is None or sent_at < self._refused_sent_at:
            return
        self._after[0] += 1
        self._weigh()

    def _weigh(self, *, held: bool = False) -> None:
        """
        Dismiss the open episode if its evidence says so, at most
        `DISMISS_SHARE` of its answers 429s on `EVIDENCE` answers; or, once
        every request sent with or after the refused one is answered or
        *held* (`HOLD` is over), on `MIN_EVIDENCE`; or on fewer (thin), when
        the recent well-evidenced episodes say the gateway refuses at random.
        Otherwise it stands for now: more answers may still come, until its
        cool-down is over.
        """
        accepted, refused = self._after
        answers = accepted + refused
        if refused > DISMISS_SHARE * answers:
            if answers >= MIN_EVIDENCE:
                # It stands so far: the budget is dry, and a request sent now
                # would be refused too, using up its retries. A cool-down
                # shorter than the hold (Retry-After: 0) lasts until it is
                # decided; answers that dismiss it still end it (`_resume`).
                self.cool_until = max(self.cool_until, self._episode_began + HOLD)
            return
        if answers >= EVIDENCE:
            self._dismiss()
            return
        if self._refused_sent_at == math.inf:  # no evidence to wait for: it stands
            return
        if not held and not self._all_answered():
            return  # answers still to come
        if answers >= MIN_EVIDENCE or self._random_gateway():
            self._dismiss()

    def _all_answered(self) -> bool:
        """Whether every request sent with or after the refused one is answered."""
        return sum(self._after) >= self._in_flight + self._sent_since_episode

    def _stood_by_chance(self) -> bool:
        """Whether the episode that stands (its refused request's sending time
        known) did so by chance: the recent well-evidenced episodes say the
        gateway refuses at random."""
        return self._refused_sent_at != math.inf and self._random_gateway()

    def _random_gateway(self) -> bool:
        """Whether at most `RANDOM_SHARE` of the answers of the last `HISTORY`
        well-evidenced episodes, pooled, were 429s, on `EVIDENCE` of them at
        least: one episode of 3 answers, 1 refused, is no gateway refusing at
        random (a client sending at twice a budget's rate, 1 in flight, had
        every 429 after it dismissed and kept sending at that rate)."""
        answers = sum(a for a, _ in self._history)
        return answers >= EVIDENCE and sum(r for _, r in self._history) <= RANDOM_SHARE * answers

    def _remember(self) -> None:
        """The open episode is decided: keep its answers when it had enough."""
        answers = sum(self._after)
        if answers >= MIN_EVIDENCE:
            self._history.append((answers, self._after[1]))

    def _dismiss(self) -> None:
        """As if the episode's 429 had not come: no cool-down, nothing learned."""
        self._remember()
        self.cool_until, self._slot = self._resume
        self._ended = None
        self._dismissed = True

    def _learn(self, now: float) -> None:
        """The cool-down is over: choose the rate to go on at, from the phase that ended."""
        phase = self._ended
        assert phase is not None
        self._ended = None
        self._remember()
        accepted = max(0, phase.sent - phase.rejected)
        if self._stood_by_chance() or (accepted == 0 and self._burst_seen is not None):
            # An episode standing by chance against a gateway refusing at
            # random, or a phase the server took nothing of (its requests
            # failed otherwise, or were refused as the budget ran dry): its
            # phase says nothing of a budget's rate, and learning from it
            # would drop the rate to MIN_RATE. One step down from the rate it
            # had, and the climb goes on; unpaced, it stays so.
            if phase.rate is not None:
                base = max(MIN_RATE, BACKOFF * phase.rate)
                self._base = base if self.ceiling is None else min(base, self.ceiling)
                self._target = None if self._target is None else max(self._target, self._base)
                self._ramp_start = now
            self._last_429 = phase.end
            self._phase_start = now
            self._phase_sent = 0
            return
        length = max(0.0, phase.end - phase.start)
        if self._burst_seen is None:
            # The first 429: all we know is what the server took before it,
            # its burst and a little of its rate. Start from that, climb fast.
            self._burst_seen = accepted
            # Paced, the first phase's length says how much rate it had on
            # top of the burst; unpaced, its requests left in a heap whose
            # sending took longer than their arrival: all of it is burst.
            self._first = (accepted, 0.0 if phase.rate is None else length)
            low = accepted / max(length, 1.0)
            target = None if phase.rate is None else BACKOFF * phase.rate
        else:
            # What the server took in the phase less its burst, over the
            # phase; and all it took, over the phase and the cool-down before
            # it. Against a token bucket, neither is above the server's rate.
            cool_down = max(0.0, phase.start - self._last_429)
            over_phase = (accepted - self._burst_seen) / length if length > 0 else 0.0
            total = length + cool_down
            with_cool_down = accepted / total if total > 0 else 0.0
            low = max(over_phase, with_cool_down)
            if phase.rate is not None and length > 0:
                # The phase was paced: which server rate would its 429 fit?
                step = length / _RATE_SAMPLES
                rates = [
                    self.rate(phase.start + (i + 0.5) * step) or 0.0 for i in range(_RATE_SAMPLES)
                ]
                low = max(low, _rate_crossed(rates, step, self._first))
            # Climb fast back to what the last second took, which may be
            # more (a long idle moment makes the estimates above too low).
            target = BACKOFF * max(low, float(max(0, phase.recent - phase.rejected)))
            if phase.rate is not None:
                target = min(target, BACKOFF * phase.rate)
        self._last_429 = phase.end
        base = max(MIN_RATE, BACKOFF * low)
        if self.ceiling is not None:
            base = min(base, self.ceiling)
        self._base = base
        self._target = None if target is None else max(target, base)
        self._ramp_start = now
        self._phase_start = now
        self._phase_sent = 0


class _Evidence(_Budget):
    """
    A `_Budget` that only weighs 429 episodes on their evidence (`EVIDENCE`):
    it paces nothing and learns no rate, for a limiter whose budget is kept
    elsewhere (`journey_async.redis.RedisRateLimit`'s, in Redis). Its user
    calls `take` for each request sent, `rate_limited` and `accepted` for the
    answers, and `close` once an episode `stands` and was acted on; a
    dismissed episode ends by itself.
    """

    def __init__(self) -> None:
        super().__init__(None, 1)

    @property
    def open(self) -> bool:
        """Whether a 429's episode is open: neither dismissed nor closed yet."""
        return self._ended is not None

    @property
    def held_at(self) -> float:
        """When the open episode is decided at the latest (`HOLD` after its 429)."""
        return self._episode_began + HOLD

    def stands(self, now: float) -> bool:
        """
        Whether the open episode stands at *now*, weighed (and dismissed
        when its evidence says so): every request sent with or after the
        refused one is answered, or `HOLD` is over, or its refused request's
        sending time is unknown (no evidence to wait for), and it was not
        dismissed.
        """
        if self._ended is None:
            return False
        held = now >= self.held_at
        self._weigh(held=held)
        if self._ended is None:
            return False
        return held or self._refused_sent_at == math.inf or self._all_answered()

    def close(self, now: float) -> bool:
        """
        The open episode stands: end it, its answers remembered (`HISTORY`);
        later 429s of requests sent before it join it (and extend its
        `cool_until`). Returns whether it stood by chance: the recent
        well-evidenced episodes say the gateway refuses at random, where
        `_Budget` only steps its rate down.
        """
        self._ended = None
        self._remember()
        self._phase_start = now
        self._phase_sent = 0
        return self._stood_by_chance()


class _Weighed(Protocol):
    """
    A limiter of this package whose budget is kept elsewhere, and whose 429s
    are weighed in this process (`journey_async.redis.RedisRateLimit`):
    `paced` gives it every answer with its request's sending time.
    """

    _evidence: _Evidence

    async def _acquire_within(self, max_cool_down: float) -> float:
        """`acquire`, or `_CoolingTooLong`; returns the request's sending time."""

    async def _report_sent_at(self, retry_after: float | None, sent_at: float) -> None:
        """A 429 for the request that `_acquire_within` let go at *sent_at*."""

    async def _accepted(self, sent_at: float) -> None:
        """That request's answer was not a 429, while an episode is open."""


def _rate_crossed(rates: list[float], step: float, first: tuple[int, float]) -> float:
    """
    The token bucket (rate *R*, burst *B*) that fits both the first phase
    (``first``: its *n* requests accepted in *t* seconds from a full
    bucket, so ``B = n - R t``) and this one, which sent at *rates* (one
    every *step* seconds) from a full bucket and ran it dry at its end: the
    requests it sent above *R* add up to *B*. Solved for *R* by bisection;
    0 when even ``R = 0`` leaves the burst unspent.
    """
    n, t = first

    def excess(r: float) -> float:
        return sum(max(0.0, x - r) for x in rates) * step - max(1.0, n - r * t)

    low, high = 0.0, max(rates, default=0.0)
    if excess(low) <= 0:
        return 0.0
    for _ in range(40):
        mid = (low + high) / 2
        if excess(mid) > 0:
            low = mid
        else:
            high = mid
    return low


_RATE_SAMPLES: Final = 200
"""Points at which a phase's rate is sampled to learn the server's rate."""


class _Phase(NamedTuple):
    """The requests between two cool-downs (or since the start), as a 429 ended them."""

    start: float
    end: float
    sent: int
    rejected: int
    recent: int  # sent in the last second before the 429
    rate: float | None  # the rate allowed at the 429; None: not paced


class _CoolingTooLong(Exception):
    def __init__(self, left: float) -> None:
        super().__init__(left)
        self.left = left


_WAKE_UP: Final = 0.05
"""Seconds at most a request waiting out a cool-down sleeps before it looks
at its budget again: the cool-down may be dismissed (`EVIDENCE`) early."""


class _LocalLimiter:
    """
    A `_Budget` in this process, with anyio's sleep around it. Waiting
    requests queue on a fair lock, and only the first one sleeps: each slot
    is computed when its request reaches the front, at the rate of that
    moment (a climbing rate drains the queue faster).
    """

    __slots__ = ("_budget", "_clock", "_lock", "_sleep")

    def __init__(self, budget: _Budget, clock: Clock, sleep: Sleep) -> None:
        self._budget = budget
        self._clock = clock
        self._sleep = sleep
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        """Return when one request may be sent."""
        await self._acquire_within(math.inf)

    def _take_unpaced(self) -> float | None:
        """
        The fast path of `_acquire_within`, with no coroutine to pay for: when
        no 429 was seen and no budget given, the request goes now (the time,
        by *clock*, is returned); None when it must wait its turn
        (`_acquire_paced`).
        """
        now = self._clock()
        if self._budget.paced(now) or self._lock.locked():
            return None
        self._budget.take(now)
        return now

    async def _acquire_within(self, max_cool_down: float) -> float:
        """
        `acquire`, or `_CoolingTooLong` at once if a cool-down outlasts
        *max_cool_down*; returns the time the request may go (by *clock*).
        """
        now = self._take_unpaced()
        if now is not None:
            return now
        return await self._acquire_paced(max_cool_down)

    async def _acquire_paced(self, max_cool_down: float) -> float:
        """`_acquire_within` once `_take_unpaced` said the request must wait its turn."""
        budget = self._budget
        now = self._clock()
        if budget.next_slot(now, max_cool_down) > 0 or self._lock.locked():
            async with self._lock:
                now = self._clock()
                while (wait := budget.next_slot(now, max_cool_down)) > 0:
                    if wait > 2 * _WAKE_UP and now < budget.cool_until:
                        # A cool-down in steps: its evidence may dismiss it (EVIDENCE).
                        wait = _WAKE_UP
                    await self._sleep(wait)
                    # At least the time slept to: a sleep that returns at
                    # once (a test's) must not make this loop spin.
                    now = max(self._clock(), now + wait)
                budget.take(now, waited=True)
            return now
        budget.take(now)
        return now

    async def report_rate_limited(self, retry_after: float | None) -> None:
        """A request was answered 429: cool every request of this budget down."""
        self._budget.rate_limited(self._clock(), _retry_after(retry_after))

    async def _report_sent_at(self, retry_after: float | None, sent_at: float) -> None:
        """`report_rate_limited` for a request that `_acquire_within` let go at *sent_at*."""
        self._budget.rate_limited(self._clock(), _retry_after(retry_after), sent_at)

    @property
    def rate(self) -> float | None:
        """The requests a second allowed now; `None` when not paced."""
        return self._budget.rate(self._clock())

    @property
    def cooling_down_for(self) -> float:
        """Seconds left of the cool-down after a 429; 0 when not cooling down."""
        return max(0.0, self._budget.cool_until - self._clock())


class RateLimit(_LocalLimiter):
    """
    A budget of requests per second for the clients it is given to, in this
    process::

        client = ja.AsyncJourneyClient(rate_limit=ja.RateLimit(per_second=50))

    Every request a client sends, retries included, waits its turn; the
    client's `with_options` copies share it, and so does any other client
    given the same `RateLimit`. Requests are spaced evenly; after an idle
    moment up to *burst* may go at once. A fresh budget has nothing saved up.

    A 429 still cools it down (every request waits until the server's
    ``Retry-After``), and the rate goes on below *per_second*, learned from
    what the server accepted, then climbs back; it never goes above
    *per_second*.

    Args:
        per_second: Requests a second at most; above 0.
        burst: Requests that may go at once after an idle moment; `None`
            means one second's worth (at least 1).
        clock: Monotonic seconds (`time.monotonic`); tests swap it.
        sleep: ``await sleep(seconds)`` waits (`anyio.sleep`); tests swap it.

    Raises:
        TypeError, ValueError: A bad *per_second* or *burst*.

    .. versionadded:: 0.2.0
    """

    __slots__ = ()

    def __init__(
        self,
        per_second: float,
        burst: int | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        rate = number(per_second, "per_second", exclusive=True)
        super().__init__(_Budget(rate, _burst(burst, rate)), clock, sleep)

    @property
    def per_second(self) -> float:
        """The budget given: requests a second at most."""
        assert self._budget.ceiling is not None
        return self._budget.ceiling

    @property
    def burst(self) -> int:
        """Requests that may go at once after an idle moment."""
        return self._budget.burst

    def __repr__(self) -> str:
        # Never raises: a traceback's locals show a RateLimit whose __init__ refused.
        budget: _Budget | None = getattr(self, "_budget", None)
        if budget is None or budget.ceiling is None:
            return f"<{type(self).__name__}, not made>"
        return f"RateLimit(per_second={budget.ceiling:g}, burst={budget.burst})"


def adaptive_limiter(*, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep) -> _LocalLimiter:
    """The limiter of a client given no ``rate_limit``: no pacing until a 429,
    then the shared cool-down and the learned rate."""
    return _LocalLimiter(_Budget(None, 1), clock, sleep)


def check_rate_limiter(rate_limit: object) -> RateLimiter:
    """*rate_limit* if it is a `RateLimiter`; TypeError otherwise."""
    if not isinstance(rate_limit, RateLimiter):
        raise TypeError(
            "rate_limit must be a RateLimit, a RateLimiter (acquire and report_rate_limited "
            f"coroutine methods) or None, not {type(rate_limit).__name__}"
        )
    return rate_limit


def paced(send: SendRequest, limiter: RateLimiter, *, max_cool_down: float) -> SendRequest:
    """
    Wrap one attempt's *send* in *limiter*: acquire before it goes, report a
    429 after. A cool-down longer than *max_cool_down* is not waited on: the
    attempt is answered at once, without sending, with a 429 of our own whose
    ``Retry-After`` says how long is left (so the retry loop and the client
    treat it as the server's: `RateLimitError`).
    """
    if isinstance(limiter, _LocalLimiter):
        local = limiter
        budget = limiter._budget

        async def send_paced_here(request: httpx.Request) -> httpx.Response:
            sent_at = local._take_unpaced()
            if sent_at is None:
                try:
                    sent_at = await local._acquire_paced(max_cool_down)
                except _CoolingTooLong as exc:
                    return _not_sent(request, exc.left)
            response = await send(request)
            if response.status_code == 429:
                retry_after = _server_wait(response)
                await local._report_sent_at(retry_after, sent_at)
            elif budget._ended is not None:  # a 429's episode is open: evidence
                budget.accepted(sent_at)
            return response

        return send_paced_here

    tracker = getattr(limiter, "_evidence", None)
    if isinstance(tracker, _Evidence):
        evidence = tracker
        weighed = cast("_Weighed", limiter)

        async def send_paced_weighed(request: httpx.Request) -> httpx.Response:
            try:
                sent_at = await weighed._acquire_within(max_cool_down)
            except _CoolingTooLong as exc:
                return _not_sent(request, exc.left)
            response = await send(request)
            if response.status_code == 429:
                await weighed._report_sent_at(_server_wait(response), sent_at)
            elif evidence.open:  # a 429's episode is open: evidence
                await weighed._accepted(sent_at)
            return response

        return send_paced_weighed

    async def send_paced(request: httpx.Request) -> httpx.Response:
        refused = await _acquire_or_refuse(limiter, max_cool_down)
        if refused is not None:
            return _not_sent(request, refused)
        response = await send(request)
        if response.status_code == 429:
            retry_after = _server_wait(response)
            await limiter.report_rate_limited(retry_after)
        return response

    return send_paced


async def _acquire_or_refuse(limiter: RateLimiter, max_cool_down: float) -> float | None:
    """Acquire from *limiter*; or, when it says its cool-down outlasts
    *max_cool_down* (a limiter of this package can), the seconds left."""
    within = getattr(limiter, "_acquire_within", None)
    if within is None:
        await limiter.acquire()
        return None
    try:
        await within(max_cool_down)
    except _CoolingTooLong as exc:
        return exc.left
    return None


def _server_wait(response: httpx.Response) -> float | None:
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return None if retry_after is None else min(retry_after, MAX_COOL_DOWN)


def _not_sent(request: httpx.Request, left: float) -> httpx.Response:
    body = json.dumps(
        {
            "message": (
                f"not sent: the client's rate limit is cooling down after a 429 for "
                f"{left:.1f} s more, longer than max_retry_after"
            )
        }
    ).encode()
    return httpx.Response(
        429,
        headers={"Retry-After": str(math.ceil(left)), "Content-Type": "application/json"},
        content=body,
        request=request,
        extensions={"journey_async_not_sent": True},
    )
