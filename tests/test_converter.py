"""The converter: documented shapes, tolerated extras, unknown shapes, junk."""

from __future__ import annotations

import json
import math
import sys
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from payloads import IN_APP_EXAMPLE, MESSAGE_EXAMPLE, MIXED_EXAMPLE

from journey_async import (
    InAppStats,
    JourneyPoint,
    JourneyStats,
    MessageStats,
    ResponseFormatError,
    UnknownStats,
)
from journey_async._converter import structure_removal_ack, structure_stats, unstructure_point_stats


def encode(body: object) -> bytes:
    return json.dumps(body).encode()


def with_stat(stat: object, **point: object) -> bytes:
    return encode(
        {"payload": {"title": "T", "points": [{"pointTitle": "P", "pointStat": stat, **point}]}}
    )


def test_message_example_verbatim() -> None:
    assert structure_stats(encode(MESSAGE_EXAMPLE)) == JourneyStats(
        title="Journey Title",
        points=(
            JourneyPoint(
                title="First Point Title",
                campaign_code="AAAAA-00000",
                preset_code="12345-67890",
                stat=MessageStats(sent=22648, opened=60, conversion=0.26492405510420347),
            ),
        ),
    )


def test_in_app_example_verbatim() -> None:
    stats = structure_stats(encode(IN_APP_EXAMPLE))
    assert stats.points[0].title == "In-App element title"
    assert stats.points[0].stat == InAppStats(shows=3148, interactions=2759, skipped=36)


def test_mixed_journey_keeps_point_order() -> None:
    stats = structure_stats(encode(MIXED_EXAMPLE))
    assert [type(p.stat) for p in stats.points] == [MessageStats, InAppStats]


def test_extra_fields_on_known_shape_are_ignored() -> None:
    stat = {"sent": 10, "opened": 5, "conversion": 50.0, "uniqOpened": 4, "clicked": 1}
    point = structure_stats(with_stat(stat, extraPointField=True)).points[0]
    assert point.stat == MessageStats(sent=10, opened=5, conversion=50.0)


def test_unknown_shape_keeps_raw_mapping() -> None:
    stat = {"delivered": 10, "failed": 1}
    point = structure_stats(with_stat(stat)).points[0]
    assert point.stat == UnknownStats(raw=MappingProxyType(stat))
    assert isinstance(point.stat, UnknownStats)
    assert dict(point.stat.raw) == stat


def test_partial_known_shape_is_unknown_not_an_error() -> None:
    point = structure_stats(with_stat({"sent": 10, "opened": 5})).points[0]
    assert isinstance(point.stat, UnknownStats)


def test_missing_codes_are_none() -> None:
    point = structure_stats(with_stat({"shows": 1, "interactions": 0, "skipped": 0})).points[0]
    assert point.campaign_code is None
    assert point.preset_code is None


def test_integral_float_count_is_accepted() -> None:
    point = structure_stats(with_stat({"sent": 10.0, "opened": 5, "conversion": 50})).points[0]
    assert point.stat == MessageStats(sent=10, opened=5, conversion=50.0)


@pytest.mark.parametrize("others", [[], [{"pointTitle": "U", "pointStat": {"clicks": 1}}]])
def test_a_negative_zero_conversion_reads_as_zero(others: list[object]) -> None:
    # JSON's -0.0 (a serializer's 0 * -1) would print as "-0.00%" in tables and CSV;
    # an unknown shape beside it sends the body through the converters.
    zero = {"pointTitle": "P", "pointStat": {"sent": 1, "opened": 0, "conversion": -0.0}}
    body = encode({"payload": {"title": "T", "points": [zero, *others]}})
    point = structure_stats(body).points[0]
    assert isinstance(point.stat, MessageStats)
    assert math.copysign(1.0, point.stat.conversion) == 1.0


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "is not JSON"),
        (b'{"payload": ', "is not JSON"),
        (b"[]", "expected a JSON object"),
        (b"{}", "required field missing @ $.payload"),
        (b'{"payload": null}', "expected an object, got None @ $.payload"),
        (b'{"payload": {"title": "T", "points": "ab"}}', "expected an array, got 'ab'"),
        (b'{"payload": {"title": 5, "points": []}}', "expected a string, got 5 @ $.payload.title"),
        (
            with_stat({"sent": "12", "opened": 1, "conversion": 1.0}),
            "expected an integer, got '12' @ $.payload.points[0].pointStat.sent",
        ),
        (
            with_stat({"shows": True, "interactions": 1, "skipped": 0}),
            "@ $.payload.points[0].pointStat.shows",
        ),
        (with_stat(5), "expected an object, got 5 @ $.payload.points[0].pointStat"),
        (with_stat({}, campaignCode=7), "@ $.payload.points[0].campaignCode"),
        (
            encode({"payload": {"title": "T", "points": [{"pointStat": {}}]}}),
            "required field missing @ $.payload.points[0].pointTitle",
        ),
    ],
)
def test_schema_mismatch_names_the_json_path(body: bytes, names: str) -> None:
    with pytest.raises(ResponseFormatError, match="journey statistics response") as info:
        structure_stats(body)
    assert names in str(info.value)


def test_removal_ack() -> None:
    structure_removal_ack(b'{"success": true}')
    with pytest.raises(ResponseFormatError, match="did not confirm"):
        structure_removal_ack(b'{"success": false}')
    with pytest.raises(ResponseFormatError, match="expected true or false"):
        structure_removal_ack(b'{"success": "yes"}')


# Property tests ------------------------------------------------------------

counts = st.integers(min_value=0, max_value=2**53)
codes = st.none() | st.text(max_size=20)
message_stats = st.builds(
    MessageStats, sent=counts, opened=counts, conversion=st.floats(0, 100, allow_nan=False)
)
in_app_stats = st.builds(InAppStats, shows=counts, interactions=counts, skipped=counts)
unknown_stats = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in {"sent", "shows"}),
    st.integers() | st.text(max_size=5),
    max_size=4,
).map(lambda raw: UnknownStats(raw=MappingProxyType(raw)))
points = st.builds(
    JourneyPoint,
    title=st.text(max_size=30),
    stat=message_stats | in_app_stats | unknown_stats,
    campaign_code=codes,
    preset_code=codes,
)
journeys = st.builds(
    JourneyStats,
    title=st.text(max_size=30),
    points=st.tuples() | st.lists(points, max_size=5).map(tuple),
)


def to_api_json(stats: JourneyStats) -> dict[str, Any]:
    def point(p: JourneyPoint) -> dict[str, Any]:
        stat = dict(p.stat.raw) if isinstance(p.stat, UnknownStats) else vars_of(p.stat)
        body: dict[str, Any] = {"pointTitle": p.title, "pointStat": stat}
        if p.campaign_code is not None:
            body["campaignCode"] = p.campaign_code
        if p.preset_code is not None:
            body["presetCode"] = p.preset_code
        return body

    return {"payload": {"title": stats.title, "points": [point(p) for p in stats.points]}}


def vars_of(stat: MessageStats | InAppStats) -> dict[str, Any]:
    import attrs

    return attrs.asdict(stat)


@given(journeys)
def test_any_valid_payload_round_trips(stats: JourneyStats) -> None:
    assert structure_stats(encode(to_api_json(stats))) == stats


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
junk_bodies = (
    st.binary(max_size=64)
    | json_values.map(encode)
    | json_values.map(lambda v: encode({"payload": v}))
    | json_values.map(lambda v: encode({"payload": {"title": "T", "points": v}}))
    | json_values.map(lambda v: with_stat(v))
)


@given(junk_bodies)
def test_junk_yields_stats_or_response_format_error_only(body: bytes) -> None:
    try:
        structure_stats(body)
    except ResponseFormatError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith("journey statistics response")


def test_a_number_past_pythons_digit_limit_is_named_not_called_not_json() -> None:
    # Valid JSON that json refuses to read: "is not JSON" sent users to check the body.
    body = b'{"payload": {"title": "T", "points": [{"pointTitle": "P", "pointStat": {"sent": '
    body += b"9" * 5000 + b', "opened": 1, "conversion": 0.1}}]}}'
    limit = sys.get_int_max_str_digits()
    with pytest.raises(
        ResponseFormatError,
        match=rf"^journey statistics response holds a number of over {limit} digits$",
    ):
        structure_stats(body)


def test_absurdly_deep_json_is_response_format_error() -> None:
    with pytest.raises(ResponseFormatError, match="is not JSON"):
        structure_stats(b"[" * 100_000 + b"]" * 100_000)


def test_point_stats_unstructure_to_their_kind_and_api_fields() -> None:
    # One place for the command line's JSON, CSV and tables.
    assert unstructure_point_stats(MessageStats(sent=10, opened=5, conversion=50.0)) == (
        "message",
        {"sent": 10, "opened": 5, "conversion": 50.0},
    )
    assert unstructure_point_stats(InAppStats(shows=3, interactions=2, skipped=1)) == (
        "in_app",
        {"shows": 3, "interactions": 2, "skipped": 1},
    )
    raw = MappingProxyType({"delivered": 10, "failed": 1})
    kind, fields = unstructure_point_stats(UnknownStats(raw=raw))
    assert (kind, fields) == ("unknown", {"delivered": 10, "failed": 1})
    assert type(fields) is dict  # plain data, for json.dumps
