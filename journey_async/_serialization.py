"""
Results and errors to and from plain, JSON-safe dicts, for task queues
(taskiq) and processes: `result_to_dict` / `result_from_dict` and
`error_to_dict` / `error_from_dict`.

Python names, not the API's; a point's shape is told by its "kind", as the
command line's JSON tells it (`unstructure_point_stats`), and its numbers
and strings are checked by the same strict hooks that read the API's JSON.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Final

import cattrs
import httpx

from ._converter import (
    KIND_CLASSES,
    strict_float,
    strict_int,
    strict_str,
    unstructure_point_stats,
)
from ._exceptions import JourneyError, rebuild_error, response_from_summary, response_summary
from ._models import (
    JourneyPoint,
    JourneyStats,
    PointStats,
    StatsFailure,
    StatsResult,
    StatsSuccess,
    UnknownStats,
)

__all__ = ["error_from_dict", "error_to_dict", "result_from_dict", "result_to_dict"]


def _point_to_dict(point: JourneyPoint) -> dict[str, Any]:
    kind, fields = unstructure_point_stats(point.stat)
    return {
        "title": point.title,
        "campaign_code": point.campaign_code,
        "preset_code": point.preset_code,
        "kind": kind,
        "stat": fields,
    }


def _point_from_dict(data: dict[str, Any]) -> JourneyPoint:
    kind, fields = data["kind"], data["stat"]
    if not isinstance(fields, dict):
        raise TypeError(f"a point's stat must be a dict, not {type(fields).__name__}")
    stat: PointStats
    if kind == "unknown":
        stat = UnknownStats(raw=types.MappingProxyType(dict(fields)))
    elif kind in KIND_CLASSES:
        stat = _plain.structure(fields, KIND_CLASSES[kind])
    else:
        raise ValueError(f"unknown point kind {kind!r}")
    return JourneyPoint(
        title=strict_str(data["title"], None),
        stat=stat,
        campaign_code=_optional_str(data.get("campaign_code")),
        preset_code=_optional_str(data.get("preset_code")),
    )


def _optional_str(value: object) -> str | None:
    return None if value is None else strict_str(value, None)


def _make_plain_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=False)
    converter.register_structure_hook(int, strict_int)
    converter.register_structure_hook(float, strict_float)
    converter.register_structure_hook(str, strict_str)
    converter.register_unstructure_hook(JourneyPoint, _point_to_dict)
    converter.register_structure_hook(JourneyPoint, lambda data, _: _point_from_dict(data))
    return converter


_plain: Final = _make_plain_converter()


def result_to_dict(result: StatsResult) -> dict[str, Any]:
    """
    *result* as a plain, JSON-safe dict: ``journey_id``, ``ok``, ``stats``
    (title and points, each point's ``kind`` beside its ``stat``) and
    ``error`` (as `error_to_dict` gives it). `result_from_dict` reads it back.

    For task queues and processes, which move results as JSON or dicts::

        payload = ja.result_to_dict(result)
        assert ja.result_from_dict(payload) == result  # errors compare by identity

    .. versionadded:: 0.2.0
    """
    if isinstance(result, StatsSuccess):
        return {
            "journey_id": result.journey_id,
            "ok": True,
            "stats": _plain.unstructure(result.stats),
            "error": None,
        }
    if isinstance(result, StatsFailure):
        return {
            "journey_id": result.journey_id,
            "ok": False,
            "stats": None,
            "error": error_to_dict(result.error),
        }
    raise TypeError(f"expected a StatsResult, not {type(result).__name__}")


def result_from_dict(data: Mapping[str, Any]) -> StatsResult:
    """
    The `StatsResult` that `result_to_dict` gave *data* for.

    Raises:
        TypeError, ValueError: *data* is not such a dict.

    .. versionadded:: 0.2.0
    """
    try:
        journey_id = strict_str(data["journey_id"], None)
        if data["ok"] is True:
            return StatsSuccess(journey_id, _plain.structure(data["stats"], JourneyStats))
        if data["ok"] is False:
            return StatsFailure(journey_id, error_from_dict(data["error"]))
    except KeyError as exc:
        raise ValueError(f"not a result dict: no {exc}") from None
    except cattrs.BaseValidationError as exc:
        raise ValueError(f"not a result dict: {exc}") from None
    raise ValueError(f"not a result dict: ok is {data['ok']!r}")


def error_to_dict(error: JourneyError) -> dict[str, Any]:
    """
    *error* as a plain, JSON-safe dict: its ``type`` (the class name), its
    ``message`` (``str(error)``) and its attributes (``status_code``,
    ``retry_after``, ``removed``, nested errors...). `error_from_dict` reads
    it back as the same class with the same message and attributes; an
    `APIStatusError`'s ``response`` comes back as its method, URL, status and
    request id, without the body or the other headers, and never the token.

    .. versionadded:: 0.2.0
    """
    if not isinstance(error, JourneyError):
        raise TypeError(f"expected a JourneyError, not {type(error).__name__}")
    return {
        "type": type(error).__name__,
        "message": str(error),
        "attributes": {name: _encode(value, name) for name, value in vars(error).items()},
    }


def error_from_dict(data: Mapping[str, Any]) -> JourneyError:
    """
    The `JourneyError` that `error_to_dict` gave *data* for.

    Raises:
        TypeError, ValueError: *data* is not such a dict.

    .. versionadded:: 0.2.0
    """
    try:
        name, message, attributes = data["type"], data["message"], data["attributes"]
    except KeyError as exc:
        raise ValueError(f"not an error dict: no {exc}") from None
    cls = _error_classes().get(name)
    if cls is None:
        raise ValueError(f"not an error dict: unknown error type {name!r}")
    if not isinstance(message, str) or not isinstance(attributes, dict):
        raise TypeError("not an error dict: message must be a str and attributes a dict")
    return rebuild_error(
        cls, (message,), {key: _decode(value) for key, value in attributes.items()}
    )


def _error_classes() -> dict[str, type[JourneyError]]:
    # Every JourneyError class defined in the package, by name.
    found: dict[str, type[JourneyError]] = {}
    pending: list[type[JourneyError]] = [JourneyError]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("journey_async"):
            found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _encode(value: object, name: str) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_encode(item, name) for item in value]
    if isinstance(value, JourneyError):
        return {"error": error_to_dict(value)}
    if isinstance(value, httpx.Response):
        return {"response": response_summary(value)}
    raise TypeError(
        f"cannot put the attribute {name!r} ({type(value).__name__}) of an error in a dict"
    )


def _decode(value: object) -> object:
    if isinstance(value, list):
        return tuple(_decode(item) for item in value)
    if isinstance(value, dict):
        if "error" in value:
            return error_from_dict(value["error"])
        if "response" in value:
            return response_from_summary(value["response"])
        raise ValueError(f"not an error dict: attribute {value!r}")
    return value
