"""Results and errors survive pickle and plain dicts (multiprocessing, task queues)."""

# ruff: noqa: S301 - pickles made by the test itself

from __future__ import annotations

import json
import pickle
import types
from typing import Any

import httpx
import pytest
from payloads import BASE_URL, JOURNEY_ID, TOKEN

import journey_async as ja
from journey_async._serialization import _error_classes

STATS = ja.JourneyStats(
    title="Journey",
    points=(
        ja.JourneyPoint(
            title="push",
            stat=ja.MessageStats(sent=10, opened=4, conversion=40.0),
            campaign_code="AAAAA-00000",
            preset_code=None,
        ),
        ja.JourneyPoint(title="in-app", stat=ja.InAppStats(shows=3, interactions=2, skipped=1)),
        ja.JourneyPoint(
            title="webhook",
            stat=ja.UnknownStats(raw=types.MappingProxyType({"calls": 7, "nested": {"a": [1]}})),
        ),
    ),
)


def response(status: int, method: str = "GET") -> httpx.Response:
    request = httpx.Request(
        method,
        f"{BASE_URL}/api/journey/{JOURNEY_ID}/statistics/external",
        headers={"Authorization": f"Api {TOKEN}", "User-Agent": "journey-async/test"},
        content=b"",
    )
    return httpx.Response(status, json={"message": "nope"}, request=request)


def status_error(cls: type[ja.APIStatusError], status: int) -> ja.APIStatusError:
    return cls("nope", status_code=status, response=response(status))


def sample_errors() -> list[ja.JourneyError]:
    """One instance of every error class of the package."""
    not_found = status_error(ja.NotFoundError, 404)
    return [
        ja.JourneyError("something"),
        status_error(ja.APIStatusError, 409),
        status_error(ja.BadRequestError, 400),
        status_error(ja.AuthenticationError, 401),
        not_found,
        ja.RateLimitError("slow down", status_code=429, response=response(429), retry_after=7.0),
        status_error(ja.ServerError, 503),
        ja.APIConnectionError("GET /x failed: refused"),
        ja.APITimeoutError("GET /x timed out"),
        ja.ResponseFormatError("not JSON"),
        ja.ResponseTooLargeError("GET /x: too big", cap="max_response_bytes", limit=10),
        ja.RemovalError(removed=["u1"], failed=["u2", "u3"], errors=[not_found]),
        status_error(ja.RequestTooLargeError, 413),
        ja.NotAttemptedError(status_error(ja.AuthenticationError, 401)),
        ja.RateLimiterError("the rate limit's Redis could not be used"),
    ]


def test_the_samples_cover_every_error_class() -> None:
    # A new error class needs a sample above, so that it is checked here too.
    assert {type(error) for error in sample_errors()} == set(_error_classes().values())


def same_error(restored: BaseException, original: BaseException) -> None:
    assert type(restored) is type(original)
    assert str(restored) == str(original)
    # The chain too (NotAttemptedError's cause is its __cause__): what a
    # traceback of the copy shows.
    if original.__cause__ is None:
        assert restored.__cause__ is None
    else:
        cause = restored.__cause__
        assert cause is not None
        same_error(cause, original.__cause__)
        assert cause is getattr(restored, "cause", None)
    for name, value in vars(original).items():
        other = getattr(restored, name)
        if isinstance(value, httpx.Response):
            assert other.status_code == value.status_code
            assert other.request.method == value.request.method
            assert other.request.url == value.request.url
        elif isinstance(value, BaseException):  # NotAttemptedError.cause
            same_error(other, value)
        elif isinstance(value, tuple) and value and isinstance(value[0], BaseException):
            for inner, inner_original in zip(other, value, strict=True):
                same_error(inner, inner_original)
        else:
            assert other == value, name


@pytest.mark.parametrize("error", sample_errors(), ids=lambda error: type(error).__name__)
def test_every_error_survives_pickle(error: ja.JourneyError) -> None:
    data = pickle.dumps(error)
    assert TOKEN.encode() not in data
    restored = pickle.loads(data)
    same_error(restored, error)
    if isinstance(error, ja.APIStatusError):
        assert restored.response.json() == {"message": "nope"}  # the body kept
        assert "Authorization" not in restored.response.request.headers
        assert restored.response.request.headers["User-Agent"] == "journey-async/test"
        # The original keeps its request as it was sent.
        assert error.response.request.headers["Authorization"] == f"Api {TOKEN}"


@pytest.mark.parametrize("error", sample_errors(), ids=lambda error: type(error).__name__)
def test_every_error_round_trips_through_a_plain_dict(error: ja.JourneyError) -> None:
    data = ja.error_to_dict(error)
    text = json.dumps(data)  # JSON-safe
    assert TOKEN not in text
    same_error(ja.error_from_dict(json.loads(text)), error)


def test_results_survive_pickle() -> None:
    success = ja.StatsSuccess(JOURNEY_ID, STATS)
    failure = ja.StatsFailure(JOURNEY_ID, status_error(ja.NotFoundError, 404))
    assert pickle.loads(pickle.dumps(success)) == success
    restored = pickle.loads(pickle.dumps(failure))
    assert isinstance(restored, ja.StatsFailure)
    same_error(restored.error, failure.error)


def test_results_round_trip_through_plain_dicts() -> None:
    success = ja.StatsSuccess(JOURNEY_ID, STATS)
    data = json.loads(json.dumps(ja.result_to_dict(success)))
    assert data["ok"] is True
    assert data["error"] is None
    assert data["stats"]["points"][0] == {
        "title": "push",
        "campaign_code": "AAAAA-00000",
        "preset_code": None,
        "kind": "message",
        "stat": {"sent": 10, "opened": 4, "conversion": 40.0},
    }
    assert ja.result_from_dict(data) == success

    failure = ja.StatsFailure(JOURNEY_ID, ja.APITimeoutError("GET /x timed out"))
    data = json.loads(json.dumps(ja.result_to_dict(failure)))
    assert (data["ok"], data["stats"]) == (False, None)
    restored = ja.result_from_dict(data)
    assert isinstance(restored, ja.StatsFailure)
    same_error(restored.error, failure.error)


async def test_results_from_a_real_fan_out_round_trip() -> None:
    from journey_async.testing import Fault, JourneyEmulator, emulator_client

    emulator = JourneyEmulator.with_sample_data(journeys=5, unknown_shapes=True)
    emulator.inject(Fault.status(404), endpoint="stats")
    async with emulator_client(emulator, retry=None) as client:
        results = await client.get_stats_many([*emulator.journey_ids, "missing"])
    assert sum(not result.ok for result in results) == 2
    for result in results:
        restored = ja.result_from_dict(json.loads(json.dumps(ja.result_to_dict(result))))
        assert restored.journey_id == result.journey_id
        assert restored.stats == result.stats
        if result.error is not None:
            same_error(restored.error or ValueError(), result.error)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, ValueError),
        ({"journey_id": "j", "ok": "yes", "stats": None, "error": None}, ValueError),
        ({"journey_id": 5, "ok": True, "stats": {}, "error": None}, TypeError),
        ({"journey_id": "j", "ok": True, "stats": {"title": "t"}, "error": None}, ValueError),
        (
            {"journey_id": "j", "ok": False, "stats": None, "error": {"type": "KeyError"}},
            ValueError,
        ),
        (
            {
                "journey_id": "j",
                "ok": False,
                "stats": None,
                "error": {"type": "OSError", "message": "x", "attributes": {}},
            },
            ValueError,
        ),
    ],
)
def test_a_bad_dict_is_refused(data: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ja.result_from_dict(data)


def test_an_error_whose_attribute_has_no_plain_form_is_refused() -> None:
    error = ja.JourneyError("x")
    error.when = object()  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="'when'"):
        ja.error_to_dict(error)
