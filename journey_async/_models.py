"""
What the API returns and what calls return: frozen attrs classes, nothing else.

How these are read from JSON lives in `_converter`, not here, so the models
stay plain values with Python names.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

if TYPE_CHECKING:
    from ._exceptions import JourneyError

__all__ = [
    "InAppStats",
    "JourneyPoint",
    "JourneyStats",
    "MessageStats",
    "PointStats",
    "RemovalResult",
    "StatsFailure",
    "StatsResult",
    "StatsSuccess",
    "UnknownStats",
]


@attrs.frozen
class MessageStats:
    """
    Statistics of a message element (push, email, SMS, ...).

    Attributes:
        sent: Messages sent.
        opened: Messages opened.
        conversion: ``opened / sent * 100``: a percentage, not a fraction.

    .. versionadded:: 0.1.0
    """

    sent: int
    opened: int
    conversion: float


@attrs.frozen
class InAppStats:
    """
    Statistics of an in-app element.

    Attributes:
        shows: Times the message was displayed (Impressions).
        interactions: User interactions such as button clicks.
        skipped: Times users skipped or dismissed it (In-App Skips).

    .. versionadded:: 0.1.0
    """

    shows: int
    interactions: int
    skipped: int


@attrs.frozen
class UnknownStats:
    """
    A ``pointStat`` of a shape this version does not know (a webhook, a new
    channel), kept as the raw mapping rather than failing the journey.

    .. versionadded:: 0.1.0
    """

    raw: Mapping[str, Any]

    def __reduce__(self) -> tuple[Any, ...]:
        # The raw mapping is read-only (a mappingproxy), which pickle refuses.
        return (_unknown_stats, (dict(self.raw),))


def _unknown_stats(raw: dict[str, Any]) -> UnknownStats:
    return UnknownStats(raw=types.MappingProxyType(raw))


PointStats: TypeAlias = MessageStats | InAppStats | UnknownStats
"""What `JourneyPoint.stat` holds, depending on the element's channel."""


@attrs.frozen(kw_only=True)
class JourneyPoint:
    """
    One element of a journey and its statistics.

    Attributes:
        title: The element's title in the journey canvas.
        campaign_code: Its campaign code; `None` where the API sends none.
        preset_code: Its preset code; `None` where the API sends none.
        stat: Its statistics, whose shape depends on the element's channel.

    .. versionadded:: 0.1.0
    """

    title: str
    stat: PointStats
    campaign_code: str | None = None
    preset_code: str | None = None


@attrs.frozen
class JourneyStats:
    """
    The statistics of one journey: its title and its points in API order.

    .. versionadded:: 0.1.0
    """

    title: str
    points: tuple[JourneyPoint, ...]


@attrs.frozen
class StatsSuccess:
    """
    The outcome for one journey of a fan-out whose stats arrived.

    ``ok`` is ``Literal[True]`` and ``error`` is always `None`, so that
    ``if result.ok:`` narrows a `StatsResult` to this class for mypy.
    Build one for a fake: ``StatsSuccess(journey_id, stats)``.

    Attributes:
        journey_id: The journey asked for.
        stats: Its statistics.

    .. versionadded:: 0.2.0
    """

    journey_id: str
    stats: JourneyStats

    @property
    def ok(self) -> Literal[True]:
        """Always `True`: the stats arrived."""
        return True

    @property
    def error(self) -> None:
        """Always `None`."""
        return None


@attrs.frozen
class StatsFailure:
    """
    The outcome for one journey of a fan-out that failed.

    ``ok`` is ``Literal[False]`` and ``stats`` is always `None`. Build one
    for a fake: ``StatsFailure(journey_id, NotFoundError(...))``.

    Attributes:
        journey_id: The journey asked for.
        error: Why it failed, typed as in the error tree.

    .. versionadded:: 0.2.0
    """

    journey_id: str
    error: JourneyError

    @property
    def ok(self) -> Literal[False]:
        """Always `False`: see ``error``."""
        return False

    @property
    def stats(self) -> None:
        """Always `None`."""
        return None


StatsResult: TypeAlias = StatsSuccess | StatsFailure
"""
The outcome for one journey of a fan-out: its stats or its error, never
neither. Every result has ``journey_id``, ``ok``, ``stats`` and ``error``;
``if result.ok:`` narrows it under mypy, ``match`` on the two classes (or
``if result.stats is not None:``) under mypy and pyright alike.

.. versionchanged:: 0.2.0
   A union of `StatsSuccess` and `StatsFailure` (it was one class), so that
   checking ``ok`` narrows ``stats`` and ``error``.
"""


@attrs.frozen
class RemovalResult:
    """
    A removal the API confirmed for every user handed in.

    Attributes:
        user_ids: Every user id confirmed, duplicates dropped, input order.
        requests: How many requests (batches) it took.

    .. versionadded:: 0.1.0
    """

    user_ids: tuple[str, ...]
    requests: int
