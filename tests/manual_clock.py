"""An asyncio loop on a clock the test moves, counting the timers set for one callback."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, TypeVarTuple

_Ts = TypeVarTuple("_Ts")


class ManualClockLoop(asyncio.SelectorEventLoop):
    """asyncio's loop on a clock that moves only when the test sets ``now``,
    counting in ``timers`` the timers set for *counted* (a method's function,
    such as ``Connection._check_timeouts``). Real sockets still work; a wait
    for a timer ends only once the test moves the clock past it."""

    def __init__(self, counted: Callable[..., Any]) -> None:
        super().__init__()
        self.now = 1000.0
        self.timers = 0
        self._counted = counted

    def time(self) -> float:
        return self.now

    def call_at(
        self,
        when: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if getattr(callback, "__func__", None) is self._counted:
            self.timers += 1
        return super().call_at(when, callback, *args, context=context)
