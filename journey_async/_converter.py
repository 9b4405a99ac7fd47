"""
The one cattrs converter: every rule for reading the API's JSON lives here.

- The API's camelCase keys map onto the models' Python names.
- A ``pointStat`` is told apart by the required fields unique to each known
  shape; a mapping that carries none of the known shapes whole becomes
  `UnknownStats`, so a new channel never fails a journey. Extra fields on a known
  shape are ignored.
- Numbers and strings are checked, not coerced: ``"12"`` where a count belongs
  is a changed API, not a count.
- Counts (every int field) are non-negative integers. A JSON number with a
  zero fraction, such as ``3.0``, is the count 3 (some serializers write every
  number as a float); ``1.5``, ``-1`` and a float above 2**53 (``1e308``),
  which no longer holds an exact integer, are refused.
- ``conversion`` (every float field) is a finite number of at least 0.
  JavaScript's ``NaN``, ``Infinity`` and ``-Infinity``, which Python's json
  module reads but JSON does not have, are refused in every field read and
  anywhere inside an unknown ``pointStat`` shape (kept, so it must stay
  JSON-safe), naming the point and the field; the extra fields ignored beside
  a known shape are not read, so not checked either.
- Any mismatch becomes one `ResponseFormatError` whose message names the JSON
  path of every field that did not fit.
"""

from __future__ import annotations

import functools
import json
import json.scanner
import math
import sys
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from ._exceptions import (
    ResponseFormatError,
)
from ._models import (
    InAppStats,
    JourneyPoint,
    JourneyStats,
    MessageStats,
    PointStats,
    UnknownStats,
)
from ._validation import integer, number

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "KIND_CLASSES",
    "POINT_KINDS",
    "decode_json",
    "strict_float",
    "strict_int",
    "strict_str",
    "structure_removal_ack",
    "structure_stats",
    "unstructure_point_stats",
]

_T = TypeVar("_T")


@attrs.frozen
class _StatsEnvelope:
    payload: JourneyStats


@attrs.frozen
class _RemovalAck:
    success: bool


_JSON_KEYS: Final[dict[type[Any], dict[str, str]]] = {
    JourneyPoint: {
        "title": "pointTitle",
        "campaign_code": "campaignCode",
        "preset_code": "presetCode",
        "stat": "pointStat",
    },
}

# Known pointStat shapes, most specific first; each is recognised by carrying
# every one of its required fields.
_KNOWN_STATS: Final = (MessageStats, InAppStats)


MAX_EXACT_FLOAT_COUNT: Final = 2**53
"""The largest float read as a count: above it a float holds no exact integer."""


def strict_int(value: object, _: object) -> int:
    # bool is an int subclass; an integral float of exact size is still a count.
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_EXACT_FLOAT_COUNT:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {_preview(value)}")
    return integer(value, "count", minimum=0)


def strict_float(value: object, _: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"expected a number, got {_preview(value)}")
    return number(value, "number")


class _NotFinite(ValueError):
    """A NaN or infinity at *subpath* inside an unknown shape."""

    def __init__(self, value: float, subpath: str) -> None:
        super().__init__(f"expected a finite number, got {value!r}")
        self.subpath = subpath


def _check_finite(value: object, path: str = "") -> None:
    """Refuse NaN and infinities anywhere inside *value* (an unknown shape)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _NotFinite(value, path)
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{path}[{index}]")


def strict_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {value!r}")


def _strict_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected true or false, got {value!r}")


def _is_variadic_tuple(type_: Any) -> bool:
    args: tuple[Any, ...] = getattr(type_, "__args__", ())
    return getattr(type_, "__origin__", None) is tuple and len(args) == 2 and args[1] is Ellipsis


def _required_fields(cls: type[Any]) -> frozenset[str]:
    return frozenset(a.name for a in attrs.fields(cls) if a.default is attrs.NOTHING)


def _make_converter(*, detailed_validation: bool) -> cattrs.Converter:
    # cattrs is imported with the first response read, not with the package.
    import cattrs
    from cattrs.cols import homogenous_tuple_structure_factory
    from cattrs.gen import make_dict_structure_fn, override

    converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=detailed_validation)
    converter.register_structure_hook(int, strict_int)
    converter.register_structure_hook(float, strict_float)
    converter.register_structure_hook(str, strict_str)
    converter.register_structure_hook(bool, _strict_bool)

    shapes: list[tuple[type[MessageStats | InAppStats], frozenset[str]]] = [
        (cls, _required_fields(cls)) for cls in _KNOWN_STATS
    ]

    def structure_point_stats(value: object, _: object) -> PointStats:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {_preview(value)}")
        for cls, required in shapes:
            if required <= value.keys():
                return converter.structure(value, cls)
        _check_finite(value)
        return UnknownStats(raw=types.MappingProxyType(dict(value)))

    converter.register_structure_hook(PointStats, structure_point_stats)
    # Plain data again: known shapes by attrs' defaults (their field names are
    # the API's keys), an unknown shape as the fields it arrived with.
    converter.register_unstructure_hook(UnknownStats, lambda stat: dict(stat.raw))

    # Without these checks a string would be iterated as an array of characters
    # and indexed as an object, giving baffling messages. JSON objects decode
    # to dicts: checking for dict, not the Mapping ABC, skips the ABC machinery.
    def object_hook(cls: type[Any]) -> Callable[[object, type[Any]], Any]:
        renames = {name: override(rename=key) for name, key in _JSON_KEYS.get(cls, {}).items()}
        structure = make_dict_structure_fn(cls, converter, **renames)  # type: ignore[arg-type]

        def structure_object(value: object, type_: type[Any]) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected an object, got {_preview(value)}")
            return structure(value, type_)

        return structure_object

    def array_hook(type_: type[Any]) -> Callable[[object, type[Any]], Any]:
        structure = homogenous_tuple_structure_factory(type_, converter)

        def structure_array(value: object, type_: type[Any]) -> Any:
            if not isinstance(value, list):
                raise TypeError(f"expected an array, got {_preview(value)}")
            return structure(value, type_)

        return structure_array

    converter.register_structure_hook_factory(attrs.has, object_hook)
    converter.register_structure_hook_factory(_is_variadic_tuple, array_hook)
    return converter


# Two converters built by the same rules. The fast one stops at the first
# problem, without collecting notes; a body it refuses is read again by the
# detailed one, only to name every field that did not fit. Valid bodies, all
# but a few, pay only for the fast one.
@functools.cache
def _fast_converter() -> cattrs.Converter:
    return _make_converter(detailed_validation=False)


@functools.cache
def _detailed_converter() -> cattrs.Converter:
    return _make_converter(detailed_validation=True)


def _json_key(cls: type[Any], name: str) -> str:
    return _JSON_KEYS.get(cls, {}).get(name, name)


def _describe(exc: BaseException, path: str) -> list[str]:
    """Flatten a cattrs validation error into ``problem @ $.json.path`` lines."""
    from cattrs.errors import ClassValidationError, IterableValidationError

    if isinstance(exc, ClassValidationError):
        with_notes, others = exc.group_exceptions()
        lines = [
            line
            for inner, note in with_notes
            for line in _describe(inner, f"{path}.{_json_key(exc.cl, note.name)}")
        ]
    elif isinstance(exc, IterableValidationError):
        with_notes_i, others = exc.group_exceptions()
        lines = [
            line
            for inner, note_i in with_notes_i
            for line in _describe(inner, f"{path}[{note_i.index}]")
        ]
    elif isinstance(exc, KeyError):
        return [f"required field missing @ {path}"]
    else:
        return [f"{exc} @ {path}{getattr(exc, 'subpath', '')}"]
    return lines + [line for inner in others for line in _describe(inner, path)]


def _structure(data: object, cls: type[_T], what: str) -> _T:
    if not isinstance(data, dict):
        raise ResponseFormatError(f"{what}: expected a JSON object, got {_preview(data)}")
    try:
        return _fast_converter().structure(data, cls)
    except (TypeError, ValueError, KeyError):
        # What the hooks raise for a body that does not fit (KeyError: a
        # required field missing); the detailed pass below says where. Any
        # other exception is a bug, and is not hidden.
        pass
    from cattrs.errors import ClassValidationError, IterableValidationError

    try:
        return _detailed_converter().structure(data, cls)
    except (ClassValidationError, IterableValidationError) as exc:
        problems = "; ".join(_describe(exc, "$"))
        raise ResponseFormatError(f"{what} does not match the API's schema: {problems}") from None


def _preview(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_scan: Final = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def decode_json(content: bytes, what: str) -> object:
    """
    Decode a response body, or raise `ResponseFormatError` saying it is not JSON.
    """
    # The C scanner straight on the text: what json.loads does once it has
    # found the encoding and skipped the whitespace, without its Python
    # layers around it (a fan-out pays them per response). Anything but
    # UTF-8 JSON with nothing around it goes to json.loads, which decides.
    try:
        text = content.decode()
        data, end = _scan(text, 0)
        if end == len(text):
            return data
    except (ValueError, StopIteration, RecursionError):
        pass
    try:
        return json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        # RecursionError: absurdly deep nesting.
        pass
    except ValueError:
        # Valid JSON all the same: an integer past sys.get_int_max_str_digits().
        raise ResponseFormatError(
            f"{what} holds a number of over {sys.get_int_max_str_digits()} digits"
        ) from None
    raise ResponseFormatError(f"{what} is not JSON: {_preview(content.decode('utf-8', 'replace'))}")


class _DirectStats:
    """
    `JourneyStats` from a decoded statistics body, by plain code for the
    common case, without cattrs' generated dispatch, which costs several
    times more than the checks (a fan-out pays it per journey).

    It reads only bodies made of the known shapes, each value of the exact
    JSON type its field wants and of the form its hook returns unchanged (a
    ``str``, an ``int`` of at least 0, a finite ``float`` of at least 0);
    any other value goes to that field's hook in the fast converter, so every
    rule about a number or a string stays written once, in the hooks. For
    anything else (a missing or mistyped field, an unknown shape, a hook
    refusing a value) `read` returns None, and the converters decide and
    word the error as before. A property test checks that whatever `read`
    returns equals what the converters return. A rule on a whole object (a
    point, the payload) must be written here as well.
    """

    def __init__(self, converter: cattrs.Converter) -> None:
        self._str = converter.get_structure_hook(str)
        self._int = converter.get_structure_hook(int)
        self._float = converter.get_structure_hook(float)
        # The readers below name these fields: a model that changes them
        # must change the readers too, so it fails here, not quietly later.
        for cls, names in _DIRECT_FIELDS.items():
            fields = attrs.fields(attrs.resolve_types(cls))
            if tuple((a.name, a.type) for a in fields) != names:
                raise AssertionError(f"_DirectStats does not read {cls.__name__} as it is now")
        self._message_keys = _required_fields(MessageStats)
        self._in_app_keys = _required_fields(InAppStats)

    def read(self, data: dict[str, Any]) -> JourneyStats | None:
        try:
            payload = data["payload"]
            if type(payload) is not dict:
                return None
            points = payload["points"]
            if type(points) is not list:
                return None
            title = payload["title"]
            if type(title) is not str:
                title = self._str(title, str)
            return JourneyStats(title, tuple([self._point(point) for point in points]))
        except Exception:
            return None

    def _point(self, point: object) -> JourneyPoint:
        if type(point) is not dict:
            raise TypeError("not an object")
        stat = point["pointStat"]
        if type(stat) is not dict:
            raise TypeError("not an object")
        title = point["pointTitle"]
        if type(title) is not str:
            title = self._str(title, str)
        campaign_code = point.get("campaignCode")
        if campaign_code is not None and type(campaign_code) is not str:
            campaign_code = self._str(campaign_code, str)
        preset_code = point.get("presetCode")
        if preset_code is not None and type(preset_code) is not str:
            preset_code = self._str(preset_code, str)
        return JourneyPoint(
            title=title, stat=self._stat(stat), campaign_code=campaign_code, preset_code=preset_code
        )

    def _stat(self, stat: dict[str, Any]) -> MessageStats | InAppStats:
        # The first shape whose required fields are all there, as the converters pick.
        keys = stat.keys()
        if keys >= self._message_keys:
            return MessageStats(
                self._count(stat["sent"]),
                self._count(stat["opened"]),
                self._percentage(stat["conversion"]),
            )
        if keys >= self._in_app_keys:
            return InAppStats(
                self._count(stat["shows"]),
                self._count(stat["interactions"]),
                self._count(stat["skipped"]),
            )
        raise TypeError("an unknown shape: the converters keep it raw")

    def _count(self, value: object) -> int:
        if type(value) is int and value >= 0:
            return value
        return self._int(value, int)  # type: ignore[no-any-return]

    def _percentage(self, value: object) -> float:
        # NaN fails both comparisons, as an infinity fails the second;
        # + 0.0 as in `number`: -0.0 reads as 0.0.
        if type(value) is float and 0.0 <= value < math.inf:
            return value + 0.0
        return self._float(value, float)  # type: ignore[no-any-return]


# What `_DirectStats` reads of each model: its fields, in order, and their types.
_DIRECT_FIELDS: Final[dict[type[Any], tuple[tuple[str, Any], ...]]] = {
    MessageStats: (("sent", int), ("opened", int), ("conversion", float)),
    InAppStats: (("shows", int), ("interactions", int), ("skipped", int)),
    JourneyPoint: (
        ("title", str),
        ("stat", PointStats),
        ("campaign_code", str | None),
        ("preset_code", str | None),
    ),
    JourneyStats: (("title", str), ("points", tuple[JourneyPoint, ...])),
}


@functools.cache
def _direct_stats() -> _DirectStats:
    return _DirectStats(_fast_converter())


def structure_stats(content: bytes) -> JourneyStats:
    """
    Read a statistics response body into `JourneyStats`.
    """
    what = "journey statistics response"
    data = decode_json(content, what)
    if type(data) is dict and (stats := _direct_stats().read(data)) is not None:
        return stats
    return _structure(data, _StatsEnvelope, what).payload


def structure_removal_ack(content: bytes) -> None:
    """
    Check that a removal response body confirms the removal.
    """
    what = "removal response"
    data = decode_json(content, what)
    if not _structure(data, _RemovalAck, what).success:
        raise ResponseFormatError(f"{what} did not confirm the removal: {_preview(data)}")


# The name of each pointStat shape in plain data: the command line's JSON and
# CSV, and the dicts of result_to_dict.
KIND_CLASSES: Final[Mapping[str, type[MessageStats | InAppStats]]] = types.MappingProxyType(
    {"message": MessageStats, "in_app": InAppStats}
)
POINT_KINDS: Final[Mapping[type[PointStats], str]] = types.MappingProxyType(
    {**{cls: kind for kind, cls in KIND_CLASSES.items()}, UnknownStats: "unknown"}
)


def unstructure_point_stats(stat: PointStats) -> tuple[str, dict[str, Any]]:
    """
    The kind of *stat* (a `POINT_KINDS` value) and its fields as plain JSON
    values: the one place that switches on the shape of a point's statistics,
    so that JSON, CSV and tables cannot disagree.
    """
    return POINT_KINDS[type(stat)], _fast_converter().unstructure(stat)
