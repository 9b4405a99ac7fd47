"""The attempts' slots: a free one without waiting, the others in turn, none lost to a cancel."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import anyio
import pytest

from journey_async._slots import Slots

BACKENDS = ["asyncio", "trio"]


def on(backend: str, test: Callable[[], Awaitable[None]]) -> None:
    anyio.run(test, backend=backend)


def test_free_slots_are_taken_without_waiting_until_none_is_left() -> None:
    slots = Slots(2)
    assert slots.try_take()
    assert slots.try_take()
    assert not slots.try_take()
    assert slots.free == 0
    slots.give()
    assert slots.free == 1
    assert "free=1" in repr(slots)


async def until(condition: Callable[[], bool]) -> None:
    # Polled: what is waited for is the state of the code under test, which
    # has no event to wait on.
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.001)


def waiting(slots: Slots, count: int) -> bool:
    return slots.waiting == count


def has_length(items: list[int], count: int) -> bool:
    return len(items) == count


@pytest.mark.parametrize("backend", BACKENDS)
def test_waiters_get_given_slots_in_the_order_they_came(backend: str) -> None:
    async def test() -> None:
        slots = Slots(1)
        assert slots.try_take()
        order: list[int] = []

        async def wait(number: int) -> None:
            await slots.take()
            order.append(number)

        async with anyio.create_task_group() as group:
            for number in range(3):
                group.start_soon(wait, number)
                await until(functools.partial(waiting, slots, number + 1))
            # A newcomer does not overtake the waiters, even with a slot given back.
            slots.give()
            assert not slots.try_take()
            await until(lambda: len(order) == 1)
            # One slot at a time, so that the order is the slots', not the scheduler's.
            for given in (2, 3):
                slots.give()
                await until(functools.partial(has_length, order, given))
        assert order == [0, 1, 2]
        assert slots.free == 0
        assert slots.waiting == 0

    on(backend, test)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_waiter_cancelled_takes_no_slot(backend: str) -> None:
    async def test() -> None:
        slots = Slots(1)
        assert slots.try_take()
        with anyio.move_on_after(0.01):
            await slots.take()
        slots.give()
        assert slots.free == 1
        assert slots.try_take()

    on(backend, test)


def test_a_waiter_cancelled_once_handed_a_slot_passes_it_on() -> None:
    # asyncio's cancel of a task whose wait has just ended still lands
    # (the task has not run since): the slot it was handed is not lost.
    async def test() -> None:
        slots = Slots(1)
        assert slots.try_take()
        first = asyncio.ensure_future(slots.take())
        second = asyncio.ensure_future(slots.take())
        await asyncio.sleep(0)
        slots.give()  # to the first waiter...
        first.cancel()  # ...cancelled before it runs again
        await asyncio.wait_for(second, 5)
        assert first.cancelled()
        assert slots.free == 0
        assert not slots.try_take()

    asyncio.run(test())


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_slot_is_lost_when_a_waiter_is_cancelled_as_it_is_handed_one(backend: str) -> None:
    # Whether the handed slot or the cancel wins is the backend's choice;
    # either way the next waiter gets a slot.
    async def test() -> None:
        slots = Slots(1)
        assert slots.try_take()

        async def first(scope: anyio.CancelScope) -> None:
            with scope:
                await slots.take()
                slots.give()

        scope = anyio.CancelScope()
        async with anyio.create_task_group() as group:
            group.start_soon(first, scope)
            await anyio.sleep(0.01)
            slots.give()
            scope.cancel()
        with anyio.fail_after(5):
            await slots.take()
        assert slots.free == 0

    on(backend, test)
