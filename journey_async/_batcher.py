"""
`RemovalBatcher`: many small concurrent removals merged into few requests
(from `AsyncJourneyClient.removal_batcher`), for code that removes a user or
two per event. Its requests go through the `Sender` of `_batching`, and each
caller's outcome follows the same rule as `remove_users` (`outcome`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Final, Self, TypeAlias

import anyio
import anyio.abc

from ._batching import PostRemoval, Sender, Settled, Target, outcome
from ._exceptions import JourneyError, RemovalError
from ._guard import CallGuard, IsClosed
from ._models import RemovalResult
from ._validation import number, removal_target, validate_user_ids

__all__ = ["DEFAULT_MAX_DELAY", "RemovalBatcher"]

DEFAULT_MAX_DELAY: Final = 0.05
"""Seconds a batcher holds a batch open after its first call. A caller waits
at most that (half of it on average) on top of its request: below what a
person notices in a web request, and no more than a round trip to Pushwoosh
costs. In exchange a target gets at most 20 requests a second however many
calls come in, until calls come fast enough to fill batches before then."""

# None stands for all journeys; journey ids as a set, since their order does
# not change what a removal does.
_GroupKey: TypeAlias = frozenset[str] | None


class _Batch:
    """One request being gathered: its users, and how it ended."""

    __slots__ = ("deadline", "done", "key", "ready", "settled", "target", "user_ids")

    def __init__(self, key: _GroupKey, target: Target, deadline: float) -> None:
        self.key = key
        self.target = target
        self.deadline = deadline
        # A dict as an ordered set: callers' duplicates are sent once.
        self.user_ids: dict[str, None] = {}
        self.ready = anyio.Event()  # full, or the batcher is closing: send now
        self.done = anyio.Event()
        # How its parts ended: one part, unless a 413 split it.
        self.settled: Settled = []

    def share(self, user_ids: Sequence[str]) -> Settled:
        """How a caller's *user_ids*, all in this batch, ended: by part."""
        if len(self.settled) == 1:
            return [(user_ids, self.settled[0][1])]
        mine = set(user_ids)
        return [
            (kept, error)
            for part, error in self.settled
            if (kept := [user for user in part if user in mine])
        ]


class RemovalBatcher:
    """
    Merges concurrent small removals to the same target into few requests.

    Make one with `AsyncJourneyClient.removal_batcher` and use it as an async
    context manager, for as long as the calls keep coming (a web app's
    lifespan, a worker's run)::

        async with client.removal_batcher() as batcher:
            await batcher.remove([user_id], all_journeys=True)

    Calls to the same target (all journeys, or the same set of journey ids in
    any order) join one batch. A batch is sent when it holds *max_batch_size*
    users or *max_delay* seconds after its first call, whichever comes first;
    while every sender is busy (the client's ``max_concurrency``), a batch
    keeps filling. Sends run in the batcher's own tasks, so a caller that is
    cancelled leaves its neighbours' request alone (its own users may still be
    removed with them).

    Leaving the ``async with`` block sends the open batches at once and waits
    for every request in flight, even when the block raised.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        post: PostRemoval,
        *,
        max_batch_size: int,
        max_delay: float,
        max_concurrency: int,
        is_closed: IsClosed | None = None,
    ) -> None:
        # Built by AsyncJourneyClient.removal_batcher, which checks the bounds.
        self._post = post
        self._max_batch_size = max_batch_size
        self._max_delay = number(max_delay, "max_delay")
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self._open: dict[_GroupKey, _Batch] = {}
        # One call for its whole life: a 401, or the client closed under it
        # (*is_closed*), fails what is pending and every later call, as typed
        # errors rather than httpx's raw RuntimeError. No circuit: a batcher
        # outlives a network outage.
        self._guard = CallGuard(circuit=False, is_closed=is_closed)
        self._sender = Sender(post, self._guard)
        self._task_group: anyio.abc.TaskGroup | None = None
        self._closed = False

    @property
    def max_batch_size(self) -> int:
        """Users per request at most."""
        return self._max_batch_size

    @property
    def max_delay(self) -> float:
        """Seconds a batch waits for more calls after its first one."""
        return self._max_delay

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._task_group else "not entered"
        return (
            f"<{type(self).__name__} {state} max_batch_size={self._max_batch_size} "
            f"max_delay={self._max_delay} open_batches={len(self._open)}>"
        )

    async def __aenter__(self) -> Self:
        if self._task_group is not None or self._closed:
            raise RuntimeError(
                "a RemovalBatcher can be entered only once: make a new one with "
                "client.removal_batcher()"
            )
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        self._closed = True
        for batch in self._open.values():
            batch.ready.set()
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            # Cancelled: so are the requests in flight; their callers are told.
            return await self._task_group.__aexit__(exc_type, exc, tb)
        # Any other way out still waits for the requests callers wait on.
        await self._task_group.__aexit__(None, None, None)
        return None

    async def remove(
        self,
        user_ids: Iterable[str],
        journey_ids: Iterable[str] | None = None,
        all_journeys: bool = False,
    ) -> RemovalResult:
        """
        Remove users, in one request with other calls to the same target.

        Takes the same arguments as `AsyncJourneyClient.remove_users` and
        refuses bad input the same way, before anything joins a batch.
        Returns once the request (or requests, when more users are handed in
        than one batch holds) holding these users is confirmed.

        Raises:
            RuntimeError: The batcher is not entered, or already exited; or
                it was cancelled (its owner task, at shutdown) before these
                users' request was confirmed: they may or may not be removed.
            TypeError, ValueError: Bad input; nothing was queued.
            JourneyError: The failure of the request these users were in, as
                `remove_users` raises it: that request's error when none of
                them was confirmed, `RemovalError` when only some were. Every
                caller of a failed request gets its own copy of the error (the
                same type and attributes), so that raising it in many tasks
                does not mix up their tracebacks.
            NotAttemptedError: A 401/403 answered an earlier request of this
                batcher, or its client was closed under it (the request that
                met the closed client fails with an `APIConnectionError`
                saying so): its pending calls and every later one fail so,
                without a request, until it exits. A batch answered 413 is
                sent again in halves first (`RequestTooLargeError` for a
                single user that still does not fit).

        .. versionadded:: 0.1.0
        """
        if self._task_group is None or self._closed:
            raise RuntimeError(
                "RemovalBatcher.remove() called outside its `async with` block"
                + (" (it has exited)" if self._closed else "")
            )
        users = validate_user_ids(user_ids)
        target = removal_target(journey_ids, all_journeys)
        key = None if all_journeys else frozenset(target["journey_uuids"])
        self._guard.check()

        shares = self._join(key, target, users)
        for batch, _ in shares:
            await batch.done.wait()

        settled = [part for batch, share in shares for part in batch.share(share)]
        crash = next(
            (e for _, e in settled if e is not None and not isinstance(e, JourneyError)), None
        )
        result = outcome(settled) if crash is None else crash
        if any(len(batch.settled) > 1 for batch, _ in shares):
            # A batch split by 413s settles in its own order, which other
            # callers' users set: back to this caller's, as remove_users gives.
            result = _in_order(result, users)
        if isinstance(result, RemovalError):  # made for this caller alone
            raise result
        if isinstance(result, BaseException):  # shared with the batch's other callers
            raise _copy_error(result)
        return result

    def _join(
        self, key: _GroupKey, target: Target, users: Sequence[str]
    ) -> list[tuple[_Batch, list[str]]]:
        # Synchronous on purpose: no other call can slip in between a batch
        # filling up and the next one opening.
        shares: list[tuple[_Batch, list[str]]] = []
        batch: _Batch | None = None
        share: list[str] = []
        for user_id in users:
            if batch is None:
                batch = self._open.get(key) or self._open_batch(key, target)
                share = []
                shares.append((batch, share))
            batch.user_ids[user_id] = None
            share.append(user_id)
            if len(batch.user_ids) >= self._max_batch_size:
                self._seal(batch)
                batch.ready.set()
                batch = None
        return shares

    def _open_batch(self, key: _GroupKey, target: Target) -> _Batch:
        assert self._task_group is not None
        batch = _Batch(key, target, anyio.current_time() + self._max_delay)
        self._open[key] = batch
        self._task_group.start_soon(self._send, batch)
        return batch

    def _seal(self, batch: _Batch) -> None:
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]

    async def _send(self, batch: _Batch) -> None:
        try:
            with anyio.CancelScope(deadline=batch.deadline):
                await batch.ready.wait()
            async with self._limiter:
                # Still open until now: while every sender was busy, it filled.
                self._seal(batch)
                batch.settled = await self._sender.send(tuple(batch.user_ids), batch.target)
        except Exception as exc:  # every error goes to the batch's callers
            batch.settled = [(tuple(batch.user_ids), exc)]
        finally:
            if not batch.settled:
                self._seal(batch)
                batch.settled = [
                    (
                        tuple(batch.user_ids),
                        RuntimeError(
                            "the removal batcher was cancelled before this removal was confirmed"
                        ),
                    )
                ]
            batch.done.set()


def _in_order(
    result: RemovalResult | BaseException, users: Sequence[str]
) -> RemovalResult | BaseException:
    """*result*'s users in the order of *users*, the caller's: only a
    `RemovalResult` and a `RemovalError` list them."""
    position = {user: index for index, user in enumerate(users)}
    if isinstance(result, RemovalResult):
        return RemovalResult(
            user_ids=tuple(sorted(result.user_ids, key=position.__getitem__)),
            requests=result.requests,
        )
    if isinstance(result, RemovalError):
        return RemovalError(
            removed=sorted(result.removed, key=position.__getitem__),
            failed=sorted(result.failed, key=position.__getitem__),
            errors=result.errors,
        )
    return result


def _copy_error(error: BaseException) -> BaseException:
    """
    A copy of *error* to raise in one more task: same type, attributes, cause
    and (as its tail) traceback, without __init__, whose signature varies.
    """
    cls = type(error)
    try:
        clone = cls.__new__(cls, *error.args)
        clone.__dict__.update(error.__dict__)
    except Exception:  # an exotic exception type: share the original instead
        return error
    clone.__cause__ = error.__cause__
    clone.__context__ = error.__context__
    clone.__suppress_context__ = error.__suppress_context__
    return clone.with_traceback(error.__traceback__)
