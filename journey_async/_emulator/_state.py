"""
What a `JourneyEmulator` knows and how it is configured: its token, latency
and fault rate, the journeys and their users, the scripted faults, and the
counters tests read. The request handling that uses it is in `._app`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence

from journey_async._emulator._data import (
    EmulatedPoint,
    Endpoint,
    RecordedRequest,
    _Exchange,
    _Journey,
    _user_set,
    in_app_point,
    message_point,
)
from journey_async._emulator._faults import _TRANSIENT_FAULTS, Fault, _matches, _ScriptedFault
from journey_async._emulator._limits import TokenBucket
from journey_async._validation import number, positive_int


class _EmulatorState:
    """
    The state half of `JourneyEmulator` (whose docstring documents the
    arguments); kept apart so the ASGI handling reads on its own.
    """

    requests: list[RecordedRequest]
    """Every request received, oldest first, when *record_requests* is on."""
    removals_applied: int
    """How many removal requests were applied (answered 200 or faulted after apply)."""
    in_flight: int
    """Requests being handled right now."""
    max_in_flight: int
    """The peak of `in_flight` since creation or `reset_counters`."""
    rate_limited: int
    """Requests answered 429 by *rate_limit* since creation or `reset_counters`."""

    def __init__(
        self,
        *,
        token: str = "test-token",  # noqa: S107 - a test double's default
        latency: float = 0.0,
        fault_rate: float = 0.0,
        seed: int | None = None,
        record_requests: bool = True,
        max_user_ids_per_request: int | None = None,
        max_body_bytes: int | None = None,
        rate_limit: float | None = None,
        rate_limit_burst: int | None = None,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        if max_user_ids_per_request is not None:
            positive_int(max_user_ids_per_request, "max_user_ids_per_request")
        if max_body_bytes is not None:
            positive_int(max_body_bytes, "max_body_bytes")
        self._token = token
        self._authorization = f"Api {token}".encode()
        self.latency = latency
        self.fault_rate = fault_rate
        self._rng = random.Random(seed)  # noqa: S311 - fault draws, not secrets
        self.record_requests = record_requests
        self.max_user_ids_per_request = max_user_ids_per_request
        self.max_body_bytes = max_body_bytes
        if rate_limit is None and rate_limit_burst is not None:
            raise ValueError("rate_limit_burst needs a rate_limit")
        self._bucket = None if rate_limit is None else TokenBucket(rate_limit, rate_limit_burst)
        self.rate_limited = 0
        self._journeys: dict[str, _Journey] = {}
        self._scripted: list[_ScriptedFault] = []
        self.requests = []
        self.removals_applied = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def __repr__(self) -> str:
        # Never the token; never raises, for a traceback's locals when
        # __init__ refused an argument before these were set.
        journeys = len(vars(self).get("_journeys", ()))
        return (
            f"<JourneyEmulator journeys={journeys} requests={len(vars(self).get('requests', ()))}>"
        )

    # --- configuration ---

    @property
    def token(self) -> str:
        """The API token this emulator accepts."""
        return self._token

    @property
    def latency(self) -> float:
        """Seconds added to every response; may be changed between requests."""
        return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._latency = number(value, "latency")

    @property
    def fault_rate(self) -> float:
        """The share of requests that get a random transient fault."""
        return self._fault_rate

    @fault_rate.setter
    def fault_rate(self, value: float) -> None:
        self._fault_rate = number(value, "fault_rate", maximum=1)

    # --- journeys and users ---

    def add_journey(
        self,
        journey_id: str | None = None,
        *,
        title: str | None = None,
        points: Sequence[EmulatedPoint] | None = None,
        users: Iterable[str] = (),
    ) -> str:
        """
        Add a journey and return its id (a new UUID4 string when *journey_id* is None).

        *title* defaults to ``"Journey <id>"``; *points* to one push point and
        one in-app point, so a bare ``add_journey()`` has statistics worth reading.

        .. versionadded:: 0.1.0
        """
        if journey_id is None:
            journey_id = str(uuid.uuid4())
        elif not isinstance(journey_id, str) or not journey_id or "/" in journey_id:
            raise ValueError(f"journey_id must be a non-empty string without '/': {journey_id!r}")
        if journey_id in self._journeys:
            raise ValueError(f"journey {journey_id!r} already exists")
        if points is None:
            points = [message_point("Push", 22648, 60), in_app_point("In-app", 3148, 2759, 36)]
        self._journeys[journey_id] = _Journey(
            f"Journey {journey_id}" if title is None else title, points, _user_set(users)
        )
        return journey_id

    def update_journey(
        self,
        journey_id: str,
        *,
        title: str | None = None,
        points: Sequence[EmulatedPoint] | None = None,
    ) -> None:
        """
        Change what a journey's statistics say, as when a campaign keeps sending.

        .. versionadded:: 0.1.0
        """
        journey = self._journey(journey_id)
        # One new object swapped in: a reader in another thread never sees
        # a title and points from different updates.
        self._journeys[journey_id] = _Journey(
            journey.title if title is None else title,
            journey.points if points is None else points,
            journey.users,
        )

    def add_users(self, journey_id: str, user_ids: Iterable[str]) -> None:
        """
        Put users into a journey.

        .. versionadded:: 0.1.0
        """
        self._journey(journey_id).users.update(_user_set(user_ids))

    def users_in(self, journey_id: str) -> frozenset[str]:
        """
        The users in a journey now.

        .. versionadded:: 0.1.0
        """
        return frozenset(self._journey(journey_id).users)

    @property
    def journey_ids(self) -> list[str]:
        """Every journey id, in the order they were added."""
        return list(self._journeys)

    def _journey(self, journey_id: str) -> _Journey:
        try:
            return self._journeys[journey_id]
        except KeyError:
            raise KeyError(f"no journey {journey_id!r} in this emulator") from None

    # --- faults and counters ---

    def inject(
        self,
        *faults: Fault,
        endpoint: Endpoint | None = None,
        journey_id: str | None = None,
    ) -> None:
        """
        Queue *faults*: each is used up by the next matching request, in order.

        A request matches when its endpoint is *endpoint* (any, when None) and
        it concerns *journey_id* (any, when None): the journey of a statistics
        request, or one of a removal's ``journey_uuids`` (``all_journeys``
        concerns them all). Scripted faults go before *fault_rate*. Only
        authorized requests to the two endpoints are ever faulted.

        .. versionadded:: 0.1.0
        """
        if endpoint not in (None, "stats", "remove"):
            raise ValueError(f"endpoint must be 'stats', 'remove' or None, got {endpoint!r}")
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"expected a Fault, got {fault!r}")
        self._scripted.extend(_ScriptedFault(f, endpoint, journey_id) for f in faults)

    @property
    def pending_faults(self) -> int:
        """How many injected faults no request has used up yet."""
        return len(self._scripted)

    def clear_faults(self) -> None:
        """Forget the injected faults not used yet."""
        self._scripted = []

    def reset_counters(self) -> None:
        """Forget recorded requests; zero `removals_applied`, `rate_limited`, `max_in_flight`."""
        # A new list, not clear(): a request still held by Fault.delay
        # completes its record in the list it was recorded in.
        self.requests = []
        self.removals_applied = 0
        self.rate_limited = 0
        self.max_in_flight = self.in_flight

    def _may_sleep(self) -> bool:
        return bool(self._latency) or any(s.fault.kind == "delay" for s in self._scripted)

    def _take_fault(self, ex: _Exchange) -> Fault | None:
        if self._scripted:
            for index, scripted in enumerate(self._scripted):
                if _matches(scripted, ex):
                    del self._scripted[index]
                    return scripted.fault
        if self._fault_rate and self._rng.random() < self._fault_rate:
            return self._rng.choice(_TRANSIENT_FAULTS)
        return None
