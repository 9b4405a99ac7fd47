"""
`Slots`: a counting bound on attempts in flight, for any anyio backend.

What an `anyio.Semaphore` does, for the one way the client uses it: a free
slot is taken with no await at all (`try_take`), which is nearly always the
case in a fan-out, whose workers never outnumber the slots; only a caller
that finds none waits (`take`), first come, first served. A slot given back
while someone waits is handed to that waiter directly, so a newcomer can
never overtake it. A semaphore's ``async with`` costs several times more per
attempt than the counter here (docs/performance.md).
"""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["Slots"]


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False


class Slots:
    """*size* slots; `try_take` or `take` one, `give` it back when done."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[_Waiter] = deque()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} free={self._free} waiting={self.waiting}>"

    @property
    def free(self) -> int:
        """Slots free now."""
        return self._free

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot now."""
        return len(self._waiters)

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody waits for one before us."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot, after those who waited first. Cancelled while
        waiting, it takes none (and passes on one it was just handed)."""
        if self.try_take():
            return
        waiter = _Waiter()
        self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self.give()
            else:
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Give a slot back: to the first waiter, if any."""
        if self._waiters:
            waiter = self._waiters.popleft()
            waiter.granted = True
            waiter.event.set()
        else:
            self._free += 1
