"""The public face: `__all__` is sorted and complete, and typed."""

from __future__ import annotations

import importlib.resources
import inspect

import journey_async


def test_all_is_sorted() -> None:
    assert journey_async.__all__ == sorted(journey_async.__all__)


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(journey_async).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public | {"__version__"} == set(journey_async.__all__)


def test_every_name_in_all_exists() -> None:
    for name in journey_async.__all__:
        assert hasattr(journey_async, name), name


def test_ships_py_typed() -> None:
    assert importlib.resources.files("journey_async").joinpath("py.typed").is_file()


def test_error_tree_matches_design() -> None:
    ja = journey_async
    assert issubclass(ja.APIStatusError, ja.JourneyError)
    for cls in (ja.BadRequestError, ja.AuthenticationError, ja.NotFoundError):
        assert cls.__bases__ == (ja.APIStatusError,)
    assert ja.RateLimitError.__bases__ == (ja.APIStatusError,)
    assert ja.ServerError.__bases__ == (ja.APIStatusError,)
    assert ja.APITimeoutError.__bases__ == (ja.APIConnectionError,)
    assert ja.ResponseTooLargeError.__bases__ == (ja.ResponseFormatError,)
    for base in (ja.APIConnectionError, ja.ResponseFormatError, ja.RemovalError):
        assert base.__bases__ == (ja.JourneyError,)
