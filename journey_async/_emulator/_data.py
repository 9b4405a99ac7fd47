"""
What the emulator holds: the points a journey's statistics show (and the
helpers that build them the way the API computes them), a journey with its
users, the record of each request received, and deterministic sample data.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import attrs

from journey_async._emulator._asgi import _json_response, _Response
from journey_async._validation import integer

if TYPE_CHECKING:
    from journey_async._emulator._faults import Fault

Endpoint: TypeAlias = Literal["stats", "remove"]

_DEFAULT_CAMPAIGN_CODE: Final = "AAAAA-00000"
_DEFAULT_PRESET_CODE: Final = "12345-67890"


# --- what the emulator serves -------------------------------------------------------------


@attrs.frozen
class EmulatedPoint:
    """
    One journey element as the statistics endpoint returns it.

    Build it with `message_point`, `in_app_point` or `raw_point` rather than by
    hand: they compute the derived fields the way the API does.

    .. versionadded:: 0.1.0
    """

    title: str
    stat: Mapping[str, Any]
    campaign_code: str = _DEFAULT_CAMPAIGN_CODE
    preset_code: str = _DEFAULT_PRESET_CODE

    def to_json(self) -> dict[str, Any]:
        """The point as the API spells it (camelCase keys)."""
        return {
            "pointTitle": self.title,
            "campaignCode": self.campaign_code,
            "presetCode": self.preset_code,
            "pointStat": dict(self.stat),
        }


def message_point(
    title: str,
    sent: int,
    opened: int,
    *,
    campaign_code: str = _DEFAULT_CAMPAIGN_CODE,
    preset_code: str = _DEFAULT_PRESET_CODE,
) -> EmulatedPoint:
    """
    A message element (push, email, SMS...): ``{"sent", "opened", "conversion"}``.

    ``conversion`` is a percentage, ``opened / sent * 100``, and 0 when nothing
    was sent. Whole values are sent as JSON integers (``0``, ``100``), as the
    JavaScript service behind the API does, so clients must accept both.

    .. versionadded:: 0.1.0
    """
    integer(sent, "sent", minimum=0)
    integer(opened, "opened", minimum=0)
    conversion: float | int = opened / sent * 100 if sent else 0
    if isinstance(conversion, float) and conversion.is_integer():
        conversion = int(conversion)
    return EmulatedPoint(
        title,
        {"sent": sent, "opened": opened, "conversion": conversion},
        campaign_code,
        preset_code,
    )


def in_app_point(
    title: str,
    shows: int,
    interactions: int,
    skipped: int,
    *,
    campaign_code: str = _DEFAULT_CAMPAIGN_CODE,
    preset_code: str = _DEFAULT_PRESET_CODE,
) -> EmulatedPoint:
    """
    An in-app element: ``{"shows", "interactions", "skipped"}``.

    .. versionadded:: 0.1.0
    """
    stat = {
        "shows": integer(shows, "shows", minimum=0),
        "interactions": integer(interactions, "interactions", minimum=0),
        "skipped": integer(skipped, "skipped", minimum=0),
    }
    return EmulatedPoint(title, stat, campaign_code, preset_code)


def raw_point(
    title: str,
    point_stat: Mapping[str, Any],
    *,
    campaign_code: str = _DEFAULT_CAMPAIGN_CODE,
    preset_code: str = _DEFAULT_PRESET_CODE,
) -> EmulatedPoint:
    """
    A point with any ``pointStat``, sent as given.

    For shapes a client does not know yet, e.g. a webhook element's
    ``{"delivered": 10, "failed": 1}``, or a message with extra fields.

    .. versionadded:: 0.1.0
    """
    return EmulatedPoint(title, dict(point_stat), campaign_code, preset_code)


# --- what the emulator remembers ----------------------------------------------------------


@attrs.frozen
class RecordedRequest:
    """
    One request the emulator received, as tests want to assert on it.

    Headers are not kept, so the API token can never leak through a record.

    Attributes:
        method: ``"GET"``, ``"POST"``...
        path: The URL path.
        endpoint: ``"stats"`` or ``"remove"``; None when the request was
            refused before it was routed (401, 404, 405).
        journey_id: The journey of a statistics request, else None.
        json: The parsed JSON body of a removal, or None (no body, not JSON).
        authorized: Whether the ``Authorization`` header carried the token.
        status: The status code sent, or None when no response went out
            (a dropped connection, a client that left first) or not yet
            (a request held by `Fault.delay` is recorded on arrival).
        fault: The `Fault` applied to this request, or None.

    .. versionadded:: 0.1.0
    """

    method: str
    path: str
    endpoint: Endpoint | None
    journey_id: str | None
    json: Any
    authorized: bool
    status: int | None
    fault: Fault | None


class _Exchange:
    """What one request has revealed so far; becomes its `RecordedRequest`."""

    __slots__ = ("authorized", "endpoint", "fault", "journey_id", "json", "method", "path", "slot")

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path
        self.endpoint: Endpoint | None = None
        self.journey_id: str | None = None
        self.json: Any = None
        self.authorized = False
        self.fault: Fault | None = None
        # Where its record is, once recorded before the response (Fault.delay).
        self.slot: tuple[list[RecordedRequest], int] | None = None


class _Journey:
    __slots__ = ("_response", "points", "title", "users")

    def __init__(self, title: str, points: Sequence[EmulatedPoint], users: set[str]) -> None:
        self.title = title
        self.points = tuple(points)
        self.users = users
        self._response: _Response | None = None

    @property
    def response(self) -> _Response:
        # Encoded once: users do not show in statistics, so only
        # update_journey invalidates it.
        if self._response is None:
            payload = {
                "payload": {"title": self.title, "points": [p.to_json() for p in self.points]}
            }
            self._response = _json_response(200, payload)
        return self._response


def _user_set(user_ids: Iterable[str]) -> set[str]:
    # A bare string would silently become a set of characters.
    if isinstance(user_ids, str):
        raise TypeError("user_ids must be an iterable of strings, not a string")
    users = set(user_ids)
    if not all(isinstance(u, str) for u in users):
        raise TypeError("user ids must be strings")
    return users


def sample_journeys(
    journeys: int, *, users_per_journey: int, unknown_shapes: bool, seed: int
) -> Iterator[tuple[str, str, list[EmulatedPoint], list[str]]]:
    """
    *journeys* deterministic journeys as ``(id, title, points, users)``, for
    `JourneyEmulator.with_sample_data` (which documents what they hold).
    """
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    pool = [f"user-{n:06d}" for n in range(users_per_journey * 5)]

    def codes() -> dict[str, str]:
        return {
            "campaign_code": f"{rng.randrange(16**5):05X}-{rng.randrange(10**5):05d}",
            "preset_code": f"{rng.randrange(10**5):05d}-{rng.randrange(10**5):05d}",
        }

    for index in range(journeys):
        journey_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        points: list[EmulatedPoint] = []
        for number in range(1, rng.randint(1, 4) + 1):
            kind = rng.choice(("Push", "Email", "In-app"))
            if kind == "In-app":
                shows = rng.randint(0, 20_000)
                interactions = rng.randint(0, shows)
                skipped = rng.randint(0, shows - interactions)
                point = in_app_point(f"{kind} {number}", shows, interactions, skipped, **codes())
            else:
                sent = rng.randint(0, 50_000)
                point = message_point(
                    f"{kind} {number}", sent, rng.randint(0, sent // 5), **codes()
                )
            points.append(point)
        if unknown_shapes and index % 4 == 0:
            delivered = rng.randint(0, 5_000)
            webhook = {"delivered": delivered, "failed": rng.randint(0, delivered // 10)}
            points.append(raw_point("Webhook", webhook, **codes()))
        yield journey_id, f"Sample journey {index + 1}", points, rng.sample(pool, users_per_journey)
