"""
What anyio does not offer and `AsCompleted` needs, on asyncio and on trio
alike: a task of its own that belongs to no task group (`spawn`), and a
call when a given task ends (`watch_task`).

A task group is the right tool almost everywhere; it is not for an object
that the caller iterates with ``async for`` and may drop at any point: the
workers must outlive each ``__anext__`` and yet not pin a cancel scope in the
consumer's task (the pitfall of PEP 789). So the workers run in a task of
their own, on asyncio an ordinary task, on trio a system task (the only kind
that needs no nursery, cancelled by trio itself when the run ends).

Both hand back a thread-safe ``call_soon``, since a garbage collection that
drops an abandoned iterator may run in any thread.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final

import sniffio

__all__ = ["CallSoon", "current_task", "spawn", "unwatch_task", "watch_task"]

CallSoon = Callable[[Callable[[], object]], object]
"""Runs a plain callback in the event loop's thread, soon; callable from any thread."""

# asyncio keeps only weak references to tasks; a task blocked on a stream that
# nothing else refers to would be collected mid-flight. These are the strong ones.
_RUNNING: Final[set[asyncio.Task[None]]] = set()


def spawn(func: Callable[[], Awaitable[None]]) -> CallSoon:
    """
    Run ``await func()`` in a task of its own, outside any task group.

    *func* must not raise: on trio, an exception out of a system task ends
    the whole run. Returns the loop's thread-safe ``call_soon``.
    """
    if sniffio.current_async_library() == "trio":
        import trio

        trio.lowlevel.spawn_system_task(func)
        return trio.lowlevel.current_trio_token().run_sync_soon

    async def run() -> None:
        await func()

    loop = asyncio.get_running_loop()
    task = loop.create_task(run())
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return loop.call_soon_threadsafe


def current_task() -> object:
    """The task running now, as the event loop's own object."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_task()
    return asyncio.current_task()


def watch_task(task: object, callback: Callable[[], None]) -> None:
    """Call *callback* once *task* (from `current_task`) ends, in any way."""
    if isinstance(task, asyncio.Task):
        task.add_done_callback(_AsyncioCallback(callback))
    else:
        _trio_exits().watched[task] = callback


def unwatch_task(task: object, callback: Callable[[], None]) -> None:
    """Undo `watch_task`."""
    if isinstance(task, asyncio.Task):
        task.remove_done_callback(_AsyncioCallback(callback))
    else:
        exits = _trio_exits()
        if exits.watched.get(task) is callback:
            del exits.watched[task]


class _AsyncioCallback:
    """A done callback that compares equal for the same *callback*, so that
    `unwatch_task` can remove it."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def __call__(self, _: object) -> None:
        self.callback()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _AsyncioCallback) and other.callback is self.callback

    def __hash__(self) -> int:
        return id(self.callback)


class _TrioExits:
    """A trio instrument: the watched tasks, and what to call as each ends.
    One per run; its only hook is ``task_exited``, so trio calls nothing else."""

    def __init__(self) -> None:
        self.watched: dict[Any, Callable[[], None]] = {}

    def task_exited(self, task: Any) -> None:
        callback = self.watched.pop(task, None)
        if callback is not None:
            callback()


# One instrument per trio run, found through the run's root task.
_TRIO_RUNS: Final[weakref.WeakKeyDictionary[Any, _TrioExits]] = weakref.WeakKeyDictionary()


def _trio_exits() -> _TrioExits:
    import trio

    root = trio.lowlevel.current_root_task()
    exits = _TRIO_RUNS.get(root)
    if exits is None:
        exits = _TRIO_RUNS[root] = _TrioExits()
        trio.lowlevel.add_instrument(exits)  # type: ignore[arg-type]
    return exits
