"""
The models (journey_async._models): frozen values, and results that are
their stats or their error, never neither, with the contract's four names.
"""

from __future__ import annotations

import attrs
import pytest

import journey_async as ja

STATS = ja.JourneyStats(
    title="Welcome",
    points=(
        ja.JourneyPoint(title="Push", stat=ja.MessageStats(sent=2, opened=1, conversion=50.0)),
    ),
)


def test_results_carry_the_four_names_of_the_contract() -> None:
    success = ja.StatsSuccess("j1", STATS)
    failure = ja.StatsFailure("j2", ja.NotFoundError.__new__(ja.NotFoundError))
    assert (success.journey_id, success.ok, success.stats, success.error) == (
        "j1",
        True,
        STATS,
        None,
    )
    assert (failure.journey_id, failure.ok, failure.stats) == ("j2", False, None)
    assert isinstance(failure.error, ja.JourneyError)


@pytest.mark.parametrize(
    "value",
    [
        STATS,
        STATS.points[0],
        ja.InAppStats(shows=3, interactions=2, skipped=1),
        ja.RemovalResult(user_ids=("u1",), requests=1),
        ja.StatsSuccess("j1", STATS),
    ],
)
def test_models_are_frozen_and_compare_by_value(value: attrs.AttrsInstance) -> None:
    assert attrs.evolve(value) == value  # type: ignore[misc]
    field = attrs.fields(type(value))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(value, field, None)
