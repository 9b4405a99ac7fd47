"""
The caller's input checks (journey_async._validation): the one number check
of the package, journey ids that would change the URL, user ids, targets.
"""

from __future__ import annotations

import math
import re
import sys

import pytest

from journey_async._validation import (
    fanout_ids,
    integer,
    number,
    positive_int,
    removal_target,
    validate_journey_id,
    validate_user_ids,
)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (True, TypeError, "size must be an int, not bool"),
        (2.0, TypeError, "size must be an int, not float"),
        ("3", TypeError, "size must be an int, not str"),
        (0, ValueError, "size must be at least 1, got 0"),
    ],
)
def test_positive_int_refuses(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        positive_int(value, "size")


def test_integer_bounds() -> None:
    assert integer(0, "port", minimum=0, maximum=65535) == 0
    assert integer(65535, "port", minimum=0, maximum=65535) == 65535
    with pytest.raises(ValueError, match=r"^port must be between 0 and 65535, got 65536$"):
        integer(65536, "port", minimum=0, maximum=65535)
    # The command line's form: no name, a message that reads after the option.
    with pytest.raises(ValueError, match=r"^must be at least 1, got -1$"):
        integer(-1, "", minimum=1)


@pytest.mark.parametrize(
    ("value", "kwargs", "error", "message"),
    [
        (True, {}, TypeError, "delay must be a number, not bool"),
        ("5", {}, TypeError, "delay must be a number, not str"),
        (None, {}, TypeError, "delay must be a number, not NoneType"),
        (-0.1, {}, ValueError, "delay must be at least 0, got -0.1"),
        (math.nan, {}, ValueError, "delay must be a finite number, got nan"),
        (math.inf, {}, ValueError, "delay must be a finite number, got inf"),
        (0, {"exclusive": True}, ValueError, "delay must be greater than 0, got 0"),
        (1.5, {"maximum": 1}, ValueError, "delay must be between 0 and 1, got 1.5"),
    ],
)
def test_number_refuses(
    value: object, kwargs: dict[str, float], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        number(value, "delay", **kwargs)  # type: ignore[arg-type]


def test_an_int_too_large_for_a_float_is_a_value_error() -> None:
    with pytest.raises(
        ValueError, match=r"^delay must be a finite number, got an integer of 401 digits$"
    ):
        number(10**400, "delay")


def test_an_int_past_pythons_digit_limit_is_refused_by_name() -> None:
    # str() of an int over sys.get_int_max_str_digits() (4300) digits raises
    # a ValueError of its own, which named no argument.
    limit = sys.get_int_max_str_digits()
    huge = 10**5000
    with pytest.raises(
        ValueError, match=rf"^delay must be a finite number, got an integer of over {limit} digits$"
    ):
        number(huge, "delay")
    shown = f"an integer of over {limit} digits"
    with pytest.raises(ValueError, match=rf"^max_attempts must be between 1 and 9, got {shown}$"):
        integer(huge, "max_attempts", minimum=1, maximum=9)
    with pytest.raises(ValueError, match=rf"^burst must be at least 1, got {shown}$"):
        integer(-huge, "burst", minimum=1)


def test_number_accepts_ints_and_floats_as_floats() -> None:
    assert number(0, "delay") == 0.0
    assert isinstance(number(3, "delay"), float)
    assert number(1, "rate", maximum=1) == 1.0
    assert number(0.001, "timeout", exclusive=True) == 0.001


@pytest.mark.parametrize("journey_id", ["", ".", "..", "a/b", "a?b", "a#b", "a%2Fb", "a\nb"])
def test_journey_ids_that_would_change_the_url_are_refused(journey_id: str) -> None:
    with pytest.raises(ValueError, match="journey id"):
        validate_journey_id(journey_id)


@pytest.mark.parametrize(
    "journey_id",
    [
        " ",
        " 1111",
        "1111 ",
        "1111\u3000",
        "a\u00a0b",
        "\ufeff1111",
        "1111\u200b",
        "a\u202eb",
        "\u2028",
    ],
)
def test_journey_ids_with_whitespace_around_or_invisible_characters_are_refused(
    journey_id: str,
) -> None:
    # Sent percent-encoded, they would come back as a 404 that does not say why.
    with pytest.raises(ValueError, match="whitespace around it or characters that cannot be seen"):
        validate_journey_id(journey_id)


@pytest.mark.parametrize("journey_id", ["11111111-2222-3333-4444-555555555555", "j\u00e9", "a b"])
def test_printable_journey_ids_are_kept(journey_id: str) -> None:
    assert validate_journey_id(journey_id) == journey_id


def test_fanout_ids_checks_collections_now_and_iterators_as_pulled() -> None:
    with pytest.raises(ValueError, match=r"^journey_ids\[1\]: "):
        fanout_ids(["ok", "a/b"])
    lazy = fanout_ids(iter(["ok", "a/b"]))
    pulled = iter(lazy)
    assert next(pulled) == "ok"
    with pytest.raises(ValueError, match=r"^journey_ids\[1\]: "):
        next(pulled)
    with pytest.raises(TypeError, match="bare str"):
        fanout_ids("abc")


def test_user_ids_are_deduplicated_in_order_and_checked() -> None:
    assert validate_user_ids(["b", "a", "b"]) == ("b", "a")
    with pytest.raises(ValueError, match="empty"):
        validate_user_ids([])
    with pytest.raises(TypeError, match=r"user_ids\[1\] must be a string"):
        validate_user_ids(["a", 1])  # type: ignore[list-item]


def test_removal_target_is_one_form() -> None:
    assert removal_target(None, True) == {"all_journeys": True}
    assert removal_target(["j1", "j1"], False) == {"journey_uuids": ["j1"]}
    with pytest.raises(ValueError, match="not both"):
        removal_target(["j1"], True)
    with pytest.raises(ValueError, match="pass journey_ids"):
        removal_target(None, False)
    with pytest.raises(TypeError, match="all_journeys must be a bool"):
        removal_target(None, 1)  # type: ignore[arg-type]
