"""
What the API returns and what calls return: frozen attrs classes, nothing else.

How these are read from JSON lives in `_converter`, not here, so the models
stay plain values with Python names.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

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
    "StatsResult",
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
class StatsResult:
    """
    The outcome for one journey of a fan-out: its stats or its error, never
    neither.

    .. versionadded:: 0.1.0
    """

    journey_id: str
    stats: JourneyStats | None = None
    error: JourneyError | None = None

    @property
    def ok(self) -> bool:
        """`True` when the stats arrived."""
        return self.error is None


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
