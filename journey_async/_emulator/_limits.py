"""
The emulator's rate limit, as an API gateway keeps one: a token bucket of
*per_second* tokens a second holding at most *burst*; a request over budget is
answered 429 with ``Retry-After`` in whole seconds (at least 1), as gateways do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from journey_async._validation import integer, number

__all__ = ["TokenBucket", "parse_rate"]


class TokenBucket:
    """Admission at *per_second* with *burst* (`None`: one second's worth, at least 1)."""

    __slots__ = ("_clock", "_last", "_tokens", "burst", "per_second")

    def __init__(
        self,
        per_second: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = number(per_second, "rate_limit", exclusive=True)
        self.burst = (
            max(1, math.floor(self.per_second))
            if burst is None
            else integer(burst, "rate_limit_burst", minimum=1)
        )
        self._clock = clock
        self._tokens = float(self.burst)  # a gateway starts full
        self._last = clock()

    def take(self) -> int | None:
        """`None` when a request may pass (its token taken); else the
        ``Retry-After`` to answer: whole seconds until a token, at least 1."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return max(1, math.ceil((1 - self._tokens) / self.per_second))


def parse_rate(text: str) -> float:
    """Requests a second from ``"100/s"``, ``"600/min"`` or ``"100"``; `ValueError` otherwise."""
    value, _, unit = text.strip().partition("/")
    seconds = {"": 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0}.get(
        unit.strip().lower()
    )
    try:
        amount = float(value)
    except ValueError:
        amount = math.nan
    if seconds is None or not math.isfinite(amount) or amount <= 0:
        raise ValueError(f"a rate like 100/s or 600/min, not {text!r}")
    return amount / seconds
