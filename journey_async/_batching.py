"""
Batched removals: one big list cut into requests (`remove_in_batches`, behind
`AsyncJourneyClient.remove_users`), and what it shares with the coalescing
`RemovalBatcher` of `_batcher`: the `Sender` of a call's requests (through
its call guard, in halves after a 413) and the books both keep.

Every user handed in ends up confirmed removed or failed, never neither and
never both, and the outcome follows one rule (`outcome`):

* every batch confirmed: a `RemovalResult`;
* no batch confirmed: the first failing request's own error, raised as is
  (a `BadRequestError`, a `ServerError`...). One error stands for all the
  users then, and loses nobody, because the rule itself says that none of
  them was confirmed;
* some confirmed, some not: a `RemovalError` listing both, in input order.

"Failed" means "not confirmed": a request that timed out or lost its
connection may still have been carried out. Removal is a set operation, so
trying the failed users again is always safe.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias

from ._exceptions import JourneyError, NotAttemptedError, RemovalError, RequestTooLargeError
from ._fanout import Progress, map_ordered
from ._guard import CallGuard
from ._models import RemovalResult

__all__ = [
    "OnRemoved",
    "PostRemoval",
    "Sender",
    "Settled",
    "Target",
    "outcome",
    "remove_in_batches",
]

PostRemoval: TypeAlias = Callable[[Sequence[str], dict[str, Any]], Awaitable[None]]
"""Sends one removal request; returns once the API confirmed it, raises otherwise."""

Target: TypeAlias = dict[str, Any]
"""What a removal request names besides its users: journey ids, or all journeys."""

Settled: TypeAlias = list[tuple[Sequence[str], BaseException | None]]
"""Users in input order, with the error of the request they were in (None: confirmed)."""

OnRemoved: TypeAlias = Callable[[Sequence[str]], object]
"""Called with the user ids of each request the API confirmed, as it lands."""


class Sender:
    """
    Sends the removal requests of one call: through its `CallGuard`, and in
    halves after a 413 until each part fits, down to one user a request.

    Once a request of *n* users was refused as too large, later parts of *n*
    or more are split before they are sent: every chunk of a call has about
    the same size, so the first 413 speaks for the rest. Unless its halves
    showed that one user's id was too large alone: then the 413 says nothing
    about *n* users, and one oversized id among a million (or, in a batcher,
    once in its life) would send every later user in a request of its own.
    """

    __slots__ = ("_guard", "_on_removed", "_post", "_too_large")

    def __init__(
        self, post: PostRemoval, guard: CallGuard, on_removed: OnRemoved | None = None
    ) -> None:
        self._post = post
        self._guard = guard
        self._on_removed = on_removed
        self._too_large: float = math.inf

    async def send(self, user_ids: Sequence[str], target: Target) -> Settled:
        """Remove *user_ids*; how each part ended. Only a `JourneyError` is
        an outcome: anything else (a bug, a cancellation) propagates."""
        if 1 < len(user_ids) >= self._too_large:
            return await self._halves(user_ids, target)
        try:
            await self._guard.run(self._post, user_ids, target)
        except RequestTooLargeError as exc:
            if len(user_ids) == 1:
                return [(user_ids, exc)]
            settled = await self._halves(user_ids, target)
            if not any(
                len(part) == 1 and isinstance(error, RequestTooLargeError)
                for part, error in settled
            ):
                self._too_large = min(self._too_large, len(user_ids))
            return settled
        except JourneyError as exc:
            return [(user_ids, exc)]
        if self._on_removed is not None:
            self._on_removed(user_ids)
        return [(user_ids, None)]

    async def _halves(self, user_ids: Sequence[str], target: Target) -> Settled:
        half = len(user_ids) // 2
        first = await self.send(user_ids[:half], target)
        return first + await self.send(user_ids[half:], target)


def outcome(
    settled: Iterable[tuple[Sequence[str], BaseException | None]],
) -> RemovalResult | BaseException:
    """
    The outcome rule (see the module docstring), over users settled in input order: the
    `RemovalResult`, or the error to raise.

    The errors of a `RemovalError` are those of the requests that failed,
    each once, then one `NotAttemptedError` standing for every part that a
    stopped call never sent.
    """
    removed: list[str] = []
    failed: list[str] = []
    errors: dict[int, BaseException] = {}  # by identity: a batcher settles user by user
    not_attempted: BaseException | None = None
    confirmed = 0
    for user_ids, error in settled:
        if error is None:
            removed.extend(user_ids)
            confirmed += 1
            continue
        failed.extend(user_ids)
        if isinstance(error, NotAttemptedError):
            not_attempted = not_attempted or error
        else:
            errors.setdefault(id(error), error)
    if not failed:
        return RemovalResult(user_ids=tuple(removed), requests=confirmed)
    failures = list(errors.values())
    if not removed:
        # Every failure is a request's own, but for a batcher's callers who
        # came after the failure that stopped it: the NotAttemptedError then.
        first = failures[0] if failures else not_attempted
        assert first is not None
        return first
    if not_attempted is not None:
        failures.append(not_attempted)
    return RemovalError(
        removed=removed,
        failed=failed,
        errors=[e for e in failures if isinstance(e, JourneyError)],
    )


async def remove_in_batches(
    post: PostRemoval,
    user_ids: Sequence[str],
    target: Target,
    *,
    batch_size: int,
    concurrency: int,
    progress: Progress | None = None,
    on_removed: OnRemoved | None = None,
    guard: CallGuard | None = None,
) -> RemovalResult:
    """
    Remove validated, duplicate-free *user_ids* in requests of *batch_size*,
    at most *concurrency* in flight, with the outcome rule of this module.

    Only the requests in flight have their own slice of the ids: `map_ordered`
    pulls the next chunk when a sender is free, so a million users at 32 in
    flight hold 32 chunks, not two thousand. *progress* gets each chunk's
    number of users once it has settled, confirmed or failed; *on_removed*
    the users of each confirmed request, as it lands.

    The call stops at its first `AuthenticationError`, or when a request
    could not connect at all (see `CallGuard`): the chunks not sent by then
    fail with `NotAttemptedError`, without a request. A caller that passes
    its own *guard* can stop the call the same way (the command line does,
    on Ctrl-C): the requests in flight finish, the rest is not attempted.

    A failure that is not a `JourneyError` (a bug, a cancellation) is no
    removal outcome: it propagates and cancels the other batches.
    """
    sender = Sender(post, CallGuard() if guard is None else guard, on_removed)

    async def send(chunk: Sequence[str]) -> Settled:
        settled = await sender.send(chunk, target)
        if progress is not None:
            progress(len(chunk))
        return settled

    if len(user_ids) <= batch_size:
        # One chunk: nothing to fan out.
        settled = await send(user_ids)
    else:
        chunks = (
            user_ids[start : start + batch_size] for start in range(0, len(user_ids), batch_size)
        )
        parts = await map_ordered(send, chunks, concurrency=concurrency)
        settled = [part for chunk in parts for part in chunk]
    result = outcome(settled)
    if isinstance(result, BaseException):
        raise result
    return result
