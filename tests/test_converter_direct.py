"""The direct reading of statistics bodies: whatever it returns, the converters return."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from payloads import IN_APP_EXAMPLE, MESSAGE_EXAMPLE, MIXED_EXAMPLE

from journey_async import ResponseFormatError
from journey_async._converter import _direct_stats, _StatsEnvelope, _structure

# Any JSON value (NaN and infinities included, which Python's json reads).
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=4)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """*valid* nine times in ten, any JSON value otherwise: a body has many
    fields, and each must be valid for the direct reading to go to the end."""
    return st.integers(0, 9).flatmap(lambda n: valid if n else json_values)


def shape(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """An object with its required fields, or now and then some of them missing."""
    whole = st.fixed_dictionaries(required, optional=optional)
    holed = st.fixed_dictionaries({}, optional={**required, **optional})
    return st.integers(0, 9).flatmap(lambda n: whole if n else holed)


counts = mostly(st.integers(min_value=-2, max_value=2**64))
percentages = mostly(
    st.floats(min_value=-1, max_value=100) | st.integers(min_value=0, max_value=100)
)
extras = {"extra": json_values}
message = shape({"sent": counts, "opened": counts, "conversion": percentages}, extras)
in_app = shape({"shows": counts, "interactions": counts, "skipped": counts}, extras)
stat = mostly(message | in_app | st.dictionaries(st.text(max_size=6), json_values, max_size=3))
code = mostly(st.none() | st.text(max_size=8))
point = mostly(
    shape(
        {"pointTitle": mostly(st.text(max_size=8)), "pointStat": stat},
        {"campaignCode": code, "presetCode": code, **extras},
    )
)
payload = mostly(
    shape({"title": mostly(st.text(max_size=8)), "points": mostly(st.lists(point, max_size=3))}, {})
)
bodies = shape({"payload": payload}, extras)


def converters(data: dict[str, Any]) -> object:
    """What the cattrs converters make of *data*: stats, or the error's message."""
    try:
        return _structure(data, _StatsEnvelope, "body").payload
    except ResponseFormatError as exc:
        return f"refused: {exc}"


@settings(max_examples=1000)
@given(bodies)
def test_the_direct_reading_agrees_with_the_converters(data: dict[str, Any]) -> None:
    direct = _direct_stats().read(data)
    event("read directly" if direct is not None else "left to the converters")
    if direct is not None:
        # repr, not ==: a NaN the rules let through is equal to nothing.
        assert repr(direct) == repr(converters(data))


def test_the_direct_reading_takes_the_documented_examples() -> None:
    for example in (MESSAGE_EXAMPLE, IN_APP_EXAMPLE, MIXED_EXAMPLE):
        data = json.loads(json.dumps(example))
        direct = _direct_stats().read(data)
        assert direct is not None
        assert direct == converters(data)


def test_an_unknown_shape_is_left_to_the_converters() -> None:
    data = {"payload": {"title": "T", "points": [{"pointTitle": "W", "pointStat": {"hits": 1}}]}}
    assert _direct_stats().read(data) is None


VALID: dict[str, Any] = {
    "payload": {
        "title": "T",
        "points": [
            {
                "pointTitle": "P",
                "campaignCode": "C",
                "presetCode": "K",
                "pointStat": {"sent": 10, "opened": 1, "conversion": 10.0},
            },
            {"pointTitle": "Q", "pointStat": {"shows": 3, "interactions": 2, "skipped": 1}},
        ],
    }
}
FIELDS = [
    ("payload", "title"),
    ("payload", "points", 0, "pointTitle"),
    ("payload", "points", 0, "campaignCode"),
    ("payload", "points", 0, "presetCode"),
    *[("payload", "points", 0, "pointStat", key) for key in ("sent", "opened", "conversion")],
    *[("payload", "points", 1, "pointStat", key) for key in ("shows", "interactions", "skipped")],
]


@pytest.mark.parametrize("path", FIELDS, ids=lambda path: ".".join(map(str, path)))
@pytest.mark.parametrize("value", [5, 2.5, -1, "5", True, None, [], {}, float("nan")])
def test_each_field_mistyped_agrees_with_the_converters(
    path: tuple[Any, ...], value: object
) -> None:
    data = copy.deepcopy(VALID)
    *parents, last = path
    target = data
    for key in parents:
        target = target[key]
    target[last] = value
    direct = _direct_stats().read(data)
    assert direct is None or repr(direct) == repr(converters(data))
