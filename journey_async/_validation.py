"""
Checks of the caller's input, shared by the client, the batcher and the
command line: bad input is refused with `TypeError` or `ValueError` before
any request is sent.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Collection, Iterable, Iterator
from typing import Any, Final, TypeVar

__all__ = [
    "callback",
    "fanout_ids",
    "integer",
    "number",
    "positive_int",
    "removal_target",
    "validate_journey_id",
    "validate_user_ids",
]

_F = TypeVar("_F")

# Characters that would let a journey id change the request's path or query.
_UNSAFE_ID_CHARACTERS: Final = frozenset("/\\?#%") | frozenset(map(chr, [*range(0x20), 0x7F]))


def integer(value: object, name: str, *, minimum: int, maximum: int | None = None) -> int:
    """
    Return *value* if it is an int (not a bool) in ``minimum..maximum``; raise
    `TypeError` or `ValueError` naming *name* otherwise.

    The one integer check of the package; the command line passes an empty
    *name* and gets a message that reads after its option's name.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}".lstrip())
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(
            f"{name} must be {_bounds(minimum, maximum)}, got {_shown(value)}".lstrip()
        )
    return value


def _shown(value: int | float) -> str:
    """*value* as a message quotes it: an int past Python's digit limit
    (``sys.get_int_max_str_digits()``) cannot be written out at all."""
    try:
        return repr(value)
    except ValueError:
        return f"an integer of over {sys.get_int_max_str_digits()} digits"


def callback(value: _F, name: str) -> _F:
    """Return *value* if it is callable or None; raise `TypeError` otherwise
    (found only when first called, it would fail a call half done).

    An ``async def`` is refused too: a callback is called, never awaited, so
    its body would never run (a progress bar that never moves, an
    ``on_removed`` that records no one), with only a "never awaited"
    warning, at garbage collection, to show for it."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, not {type(value).__name__}")
    if is_async_callable(value):
        raise TypeError(
            f"{name} must be a plain function, not an async one: it is called, never "
            "awaited (schedule async work from a plain function, or count in one)"
        )
    return value


def is_async_callable(value: object) -> bool:
    """Whether calling *value* only makes a coroutine: an ``async def``, a
    `functools.partial` of one, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(
        getattr(value, "__call__", None)  # noqa: B004 - the method itself is inspected
    )


def positive_int(value: object, name: str) -> int:
    """Return *value* if it is an int of at least 1; raise otherwise."""
    return integer(value, name, minimum=1)


def number(
    value: object,
    name: str,
    *,
    minimum: float = 0.0,
    exclusive: bool = False,
    maximum: float | None = None,
) -> float:
    """
    Return *value* as a float if it is a finite int or float (not a bool) of
    at least *minimum* (above it, when *exclusive*) and at most *maximum*;
    raise `TypeError` or `ValueError` naming *name* otherwise.

    The one check of seconds, rates, fractions and the API's numbers in the
    package (see `integer` for *name*).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}".lstrip())
    try:
        as_float = float(value)
    except OverflowError:  # an int of hundreds of digits
        try:
            shown = f"an integer of {len(str(abs(value)))} digits"
        except ValueError:
            shown = _shown(value)
        raise ValueError(f"{name} must be a finite number, got {shown}".lstrip()) from None
    if not math.isfinite(as_float):
        raise ValueError(f"{name} must be a finite number, got {value!r}".lstrip())
    if maximum is not None and not minimum <= as_float <= maximum:
        bound = _bounds(minimum, maximum)
    elif exclusive and as_float <= minimum:
        bound = f"greater than {minimum:g}"
    elif as_float < minimum:
        bound = _bounds(minimum, None)
    else:
        # + 0.0 turns -0.0 into 0.0 and leaves every other float as it is:
        # a "-0.00%" in a table is noise, never a meaning.
        return as_float + 0.0
    raise ValueError(f"{name} must be {bound}, got {value!r}".lstrip())


def _bounds(minimum: float, maximum: float | None) -> str:
    if maximum is None:
        return f"at least {minimum:g}"
    return f"between {minimum:g} and {maximum:g}"


def validate_journey_id(journey_id: object) -> str:
    """
    Return *journey_id* if it is safe to put in a URL path; raise otherwise.
    """
    if not isinstance(journey_id, str):
        raise TypeError(f"journey id must be a string, not {type(journey_id).__name__}")
    if not journey_id:
        raise ValueError("journey id is empty")
    if journey_id in (".", "..") or not _UNSAFE_ID_CHARACTERS.isdisjoint(journey_id):
        raise ValueError(f"journey id {journey_id!r} would change the request's URL path")
    # An id pasted with a space, or with an invisible character (a no-break
    # space, a byte-order mark), would be sent percent-encoded and come back
    # as a 404 that does not say why.
    if journey_id != journey_id.strip() or not journey_id.isprintable():
        raise ValueError(
            f"journey id {journey_id!r} has whitespace around it or characters that cannot be seen"
        )
    return journey_id


def fanout_ids(journey_ids: Iterable[str]) -> Iterable[str]:
    """
    *journey_ids* for a fan-out: a collection checked whole now, so bad input
    sends nothing; a lazy iterable wrapped to be checked id by id as pulled.

    A collection is checked and sent as it is at the call, a tuple of it:
    checked and then iterated again as the fan-out goes, a list that grew
    meanwhile (an id appended from a callback) sent ids never checked, one
    with ``../`` in it to another path of the API, token and all.
    """
    iterator = _iterate(journey_ids, "journey_ids")
    if isinstance(journey_ids, Collection):
        # A pointer per id, in a collection the caller holds whole anyway.
        ids = journey_ids if type(journey_ids) is tuple else tuple(iterator)
        for index, journey_id in enumerate(ids):
            _validate_nth_journey_id(index, journey_id)
        return ids
    return _checked_as_pulled(iterator)


def _checked_as_pulled(journey_ids: Iterator[str]) -> Iterator[str]:
    for index, journey_id in enumerate(journey_ids):
        yield _validate_nth_journey_id(index, journey_id)


def _validate_nth_journey_id(index: int, journey_id: object) -> str:
    try:
        return validate_journey_id(journey_id)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"journey_ids[{index}]: {exc}") from None


def validate_user_ids(user_ids: Iterable[str]) -> tuple[str, ...]:
    """
    Materialise *user_ids*, checking each, with duplicates dropped (first
    occurrence kept), so that bad input is refused before anything is sent.
    """
    ids = _string_ids(user_ids, "user_ids")
    if not ids:
        raise ValueError("user_ids is empty")
    return ids


def removal_target(journey_ids: Iterable[str] | None, all_journeys: bool) -> dict[str, Any]:
    """
    The JSON fields naming a removal's target; exactly one form is allowed.
    """
    if not isinstance(all_journeys, bool):
        raise TypeError(f"all_journeys must be a bool, not {type(all_journeys).__name__}")
    if all_journeys:
        if journey_ids is not None:
            raise ValueError("pass journey_ids or all_journeys=True, not both")
        return {"all_journeys": True}
    if journey_ids is None:
        raise ValueError("pass journey_ids, or all_journeys=True to remove from every journey")
    ids = _string_ids(journey_ids, "journey_ids")
    if not ids:
        raise ValueError("journey_ids is empty: pass all_journeys=True to mean every journey")
    for journey_id in ids:
        validate_journey_id(journey_id)
    return {"journey_uuids": list(ids)}


def _iterate(ids: Iterable[str], name: str) -> Iterator[str]:
    # A bare string is iterable too, and would be read as one id per character.
    if isinstance(ids, str | bytes):
        raise TypeError(f"{name} must be an iterable of ids, not a bare {type(ids).__name__}")
    try:
        return iter(ids)
    except TypeError:
        raise TypeError(
            f"{name} must be an iterable of strings, not {type(ids).__name__}"
        ) from None


def _string_ids(ids: Iterable[str], name: str) -> tuple[str, ...]:
    unique: dict[str, None] = {}
    for index, item in enumerate(_iterate(ids, name)):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{index}] must be a string, not {type(item).__name__}")
        if not item:
            raise ValueError(f"{name}[{index}] is an empty string")
        unique[item] = None
    return tuple(unique)
