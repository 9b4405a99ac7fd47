"""
Bounded concurrent fan-out: map a coroutine function over a lazy iterable
with at most *concurrency* calls in flight, results in input order
(`map_ordered`) or as they complete (`map_as_completed`).

Both run *concurrency* workers that pull from one shared iterator, rather
than one task per item behind a limiter: the bound then needs no limiter,
an item costs no task creation (a cost that adds up at thousands of items),
and no more than *concurrency* items are ever pulled and not yet settled, so
a lazy iterable of 100k items is never materialised. On asyncio the workers
are plain tasks, on trio an anyio task group's (`_run_workers` says why).

Failure is all or nothing at this level: the first exception raised by the
function, by the iterable or by the progress callback cancels the calls in
flight and is raised as itself (not wrapped in an exception group). Callers
that want one item's failure to be that item's result catch it inside the
function, as `AsyncJourneyClient.get_stats_many` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, Final, Generic, Self, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._tasks import CallSoon, current_task, spawn, unwatch_task, watch_task
from ._validation import positive_int

__all__ = ["AsCompleted", "Progress", "map_as_completed", "map_ordered"]

T = TypeVar("T")
R = TypeVar("R")

Progress = Callable[[int], object]
"""Called with the number of items just settled (1 for each item)."""

_PENDING: Final[Any] = object()


async def _run_workers(
    work: Callable[[T], Awaitable[None]], items: Iterator[T], concurrency: int
) -> None:
    """
    Run up to *concurrency* workers, each calling *work* on items pulled from
    the shared *items* until it is exhausted. The first exception cancels the
    rest and is raised unwrapped.

    On asyncio the workers are plain tasks (`_run_asyncio_workers`): an
    anyio task costs several times as much to start (a call of a few ids
    pays it per id) and adds a frame to every step of its task. Elsewhere
    (trio), an anyio task group.
    """
    loop = asyncio._get_running_loop()
    if loop is None:
        await _run_anyio_workers(work, items, concurrency)
    else:
        await _run_asyncio_workers(loop, work, items, concurrency)


class _Workers(Generic[T]):
    """
    What the workers of one `_run_workers` share, whatever runs them: the
    items, the first failure, and the way to cancel them all (*cancel*, set
    by the runner).
    """

    __slots__ = ("cancel", "failure", "items", "work")

    def __init__(self, work: Callable[[T], Awaitable[None]], items: Iterator[T]) -> None:
        self.work = work
        self.items = items
        self.failure: Exception | None = None
        self.cancel: Callable[[], object] = lambda: None

    def fail(self, exc: Exception) -> None:
        if self.failure is None:
            self.failure = exc
        self.cancel()

    def starts(self, concurrency: int) -> Iterator[T]:
        """The first item of each worker to start: workers start one per
        item, so a call with 3 items starts 3, up to *concurrency*; none
        after a failure (an eager task factory may run a worker to its end,
        failure included, as it starts it)."""
        for _ in range(concurrency):
            if self.failure is not None:
                return
            try:
                first = next(self.items)
            except StopIteration:
                return
            except Exception as exc:
                self.fail(exc)
                return
            yield first

    async def worker(self, item: T) -> None:
        try:
            while True:
                await self.work(item)
                # Pulled only once a slot is free: pulling is what bounds memory.
                try:
                    item = next(self.items)
                except StopIteration:
                    return
        except Exception as exc:
            self.fail(exc)


async def _run_asyncio_workers(
    loop: asyncio.AbstractEventLoop,
    work: Callable[[T], Awaitable[None]],
    items: Iterator[T],
    concurrency: int,
) -> None:
    """`_run_workers` on asyncio: as a task group does, a failure cancels the
    other workers, and a cancellation of the caller cancels them all and is
    raised once they are done."""
    workers = _Workers(work, items)
    tasks: list[asyncio.Task[None]] = []

    def cancel() -> None:
        for task in tasks:
            task.cancel()

    workers.cancel = cancel
    try:
        for first in workers.starts(concurrency):
            tasks.append(_start_worker(loop, workers.worker(first)))
        if tasks:
            await asyncio.wait(tasks)
    except BaseException:
        # Cancelled, or a task factory that raised: no worker outlives the call.
        cancel()
        await _wait_out(tasks)
        raise
    if workers.failure is not None:
        raise workers.failure


def _start_worker(
    loop: asyncio.AbstractEventLoop, worker: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    """*worker* as a task of *loop*; closed if the loop's task factory
    refuses it, since a coroutine never awaited warns when collected."""
    try:
        return loop.create_task(worker)
    except BaseException:
        worker.close()
        raise


async def _wait_out(tasks: list[asyncio.Task[None]]) -> None:
    """Return once every one of *tasks* is done, through any further
    cancellation of the caller (what a task group's exit does). Done is
    checked before each wait: an anyio cancel scope around the caller
    cancels each new wait at once, so only the check can end the loop."""
    while not all(task.done() for task in tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait(tasks)


async def _run_anyio_workers(
    work: Callable[[T], Awaitable[None]], items: Iterator[T], concurrency: int
) -> None:
    """`_run_workers` in an anyio task group."""
    workers = _Workers(work, items)
    async with anyio.create_task_group() as task_group:
        workers.cancel = task_group.cancel_scope.cancel
        for first in workers.starts(concurrency):
            task_group.start_soon(workers.worker, first)
    if workers.failure is not None:
        raise workers.failure


async def map_ordered(
    func: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    *,
    concurrency: int,
    progress: Progress | None = None,
) -> list[R]:
    """
    ``[await func(item) for item in items]``, with up to *concurrency* calls
    in flight, in input order.

    *items* is pulled lazily, one item each time a call settles. *progress*,
    when given, is called with ``1`` as each call returns. The first
    exception (from *func*, *items* or *progress*) cancels the calls in
    flight and is raised; cancelling the caller cancels them too.
    """
    positive_int(concurrency, "concurrency")
    results: list[R] = []

    async def work(indexed: tuple[int, T]) -> None:
        index, item = indexed
        results[index] = await func(item)
        if progress is not None:
            progress(1)

    def pulled() -> Iterator[tuple[int, T]]:
        # A placeholder per pulled item keeps `index` a plain list index.
        for index, item in enumerate(items):
            results.append(_PENDING)
            yield index, item

    await _run_workers(work, pulled(), concurrency)
    return results


def map_as_completed(
    func: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    *,
    concurrency: int,
    progress: Progress | None = None,
) -> AsCompleted[R]:
    """
    The results of ``func(item)`` for each of *items*, as they complete, with
    up to *concurrency* calls in flight: an `AsCompleted` to ``async for``
    over (or to use as an async context manager, for an explicit end).

    Nothing starts until iteration does. At most *concurrency* calls run and
    *concurrency* results wait for the consumer, so memory is bounded by
    *concurrency* whatever the length of *items*. The first exception (from
    *func*, *items* or *progress*) cancels the calls in flight and is raised
    from the iteration.
    """
    positive_int(concurrency, "concurrency")
    return AsCompleted(func, items, concurrency=concurrency, progress=progress)


class AsCompleted(Generic[R]):
    """
    An async iterator of results as they complete, and an async context
    manager that stops the work on exit.

    Why not an async generator with a task group inside: a generator
    suspended at ``yield`` inside a task group leaves a cancel scope open in
    the consumer's task, so a failure or a ``break`` tears the scope down
    from the wrong task (the pitfall PEP 789 is about). Here the workers run
    in a task of their own (`_tasks.spawn`: an asyncio task, or a trio
    system task), under a cancel scope of their own, and only results cross over,
    through a memory stream. That task holds nothing of the iterator, so
    dropping the iterator is seen. Stopping the iteration cancels the
    workers, so nothing further is sent:

    - ``aclose()``, or leaving ``async with``: at once, and waits for it;
    - ``break``: when the iterator is dropped (at once in CPython, unless
      something still refers to it);
    - the consumer cancelled while it waits for the next result: at once;
    - the task that iterates ending in any way (an exception out of the
      loop's body that ends it, say), since a traceback can keep the
      iterator alive long after.

    An exception in the loop's body that is caught further up the same task
    stops the work only when the iterator is dropped: until then at most
    *concurrency* calls finish and *concurrency* results wait. ``async with``
    or ``contextlib.aclosing`` make the end explicit.

    Results are consumed once: iterating a second time continues where the
    first left off. Runs on asyncio and on trio, directly or under anyio.
    """

    def __init__(
        self,
        func: Callable[[Any], Awaitable[R]],
        items: Iterable[Any],
        *,
        concurrency: int,
        progress: Progress | None = None,
    ) -> None:
        self._func = func
        self._items = items
        self._concurrency = concurrency
        self._progress = progress
        self._run: _Run | None = None
        self._receive: MemoryObjectReceiveStream[R] | None = None
        self._closed = False
        self._consumer: object = None
        # A weak reference: a callback on the consumer's task must not keep
        # a dropped iterator alive (its __del__ is what ends a `break`).
        this = weakref.ref(self)

        def consumer_done() -> None:
            if (iterator := this()) is not None:
                iterator._stop()

        self._consumer_done = consumer_done

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._run else "not started"
        return f"<{type(self).__name__} concurrency={self._concurrency} {state}>"

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> R:
        if self._closed:
            raise StopAsyncIteration
        receive = self._receive or self._start()
        consumer = current_task()
        if consumer is not self._consumer:
            self._watch(consumer)
        try:
            # No checkpoint when a result is waiting: at thousands of
            # results a second, one event loop turn each is measurable.
            return receive.receive_nowait()
        except anyio.WouldBlock:
            ended = False
        except anyio.EndOfStream:
            ended = True
        if not ended:
            try:
                return await receive.receive()
            except anyio.EndOfStream:
                pass
            except anyio.ClosedResourceError:
                # Stopped while this task waited, by another one: its aclose(),
                # or the end another task reading this iterator reached.
                raise StopAsyncIteration from None
            except BaseException:
                # Cancelled while waiting: stop the work. Not waited for,
                # since a cancelled consumer may not await anything more.
                self._stop()
                raise
        return await self._end()

    async def _end(self) -> R:
        # The workers are done; their failure, if any, is raised here.
        run = self._stop()
        assert run is not None
        await run.done.wait()
        if run.failure is not None:
            failure, run.failure = run.failure, None
            raise failure
        raise StopAsyncIteration

    def _watch(self, consumer: object) -> None:
        if self._consumer is not None:
            unwatch_task(self._consumer, self._consumer_done)
        self._consumer = consumer
        if consumer is not None:
            watch_task(consumer, self._consumer_done)

    def _start(self) -> MemoryObjectReceiveStream[R]:
        # A buffer of `concurrency`: the workers never wait on a consumer
        # that is briefly busy, and results held stay bounded.
        send, receive = anyio.create_memory_object_stream[R](self._concurrency)
        self._receive = receive
        run = self._run = _Run(receive)
        work = functools.partial(
            _deliver, self._func, self._items, self._concurrency, self._progress, send, run
        )
        run.call_soon = spawn(work)
        return receive

    async def aclose(self) -> None:
        """
        Stop: cancel the calls in flight and start no more. Waits until they
        are cancelled. Safe to call more than once.
        """
        run = self._stop()
        if run is not None:
            await run.done.wait()

    def _stop(self) -> _Run | None:
        self._closed = True
        self._watch(None)
        if self._receive is not None:
            self._receive.close()
        run = self._run
        if run is not None:
            run.scope.cancel()  # a no-op once it is done
        return run

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # A `break` out of ``async for`` drops the iterator without closing
        # it: this stops the work then. A garbage collection may run in any
        # thread: from another one, through the loop's call_soon.
        run = self._run
        if run is None:
            return
        if run.done.is_set() or run.call_soon is None:
            run.receive.close()  # no sender left to wake: safe in any thread
            return
        if threading.get_ident() == run.thread:
            # Here and now, before the workers take another turn of the loop:
            # one turn is enough for them to start new requests.
            with contextlib.suppress(RuntimeError):  # no loop running any more
                run.stop()
            return
        try:
            run.call_soon(run.stop)
        except RuntimeError:  # the loop or the run is over, and the workers with it
            run.receive.close()


class _Run:
    """The workers' side of an `AsCompleted`: all their task holds of it."""

    __slots__ = ("call_soon", "done", "failure", "receive", "scope", "thread")

    def __init__(self, receive: MemoryObjectReceiveStream[Any]) -> None:
        # Kept here for `stop`: an iterator dropped by a `break` leaves the
        # closing of its stream to the loop's thread.
        self.receive = receive
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.failure: Exception | None = None
        self.call_soon: CallSoon | None = None
        self.thread = threading.get_ident()  # the event loop's

    def stop(self) -> None:
        """Stop the workers: the consumer is gone. In the loop's thread."""
        self.receive.close()
        self.scope.cancel()


async def _deliver(
    func: Callable[[Any], Awaitable[Any]],
    items: Iterable[Any],
    concurrency: int,
    progress: Progress | None,
    send: MemoryObjectSendStream[Any],
    run: _Run,
) -> None:
    """The workers' task: results into *send* until *items* run out or *run*
    is cancelled. Raises nothing (a trio system task must not): a failure is
    kept in *run* for the consumer."""

    async def work(item: Any) -> None:
        result = await func(item)
        if progress is not None:
            progress(1)
        # No checkpoint when there is room: a result in hand is delivered
        # even if a failure elsewhere cancels the workers next.
        try:
            send.send_nowait(result)
        except anyio.WouldBlock:
            await send.send(result)

    try:
        with run.scope, send:
            await _run_workers(work, iter(items), concurrency)
    except anyio.BrokenResourceError:
        pass  # the consumer stopped listening: nothing to tell it
    except Exception as exc:
        run.failure = exc
    except anyio.get_cancelled_exc_class():
        pass  # the event loop or trio run is ending: so is the consumer
    finally:
        run.done.set()
