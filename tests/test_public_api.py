"""The public face: `__all__` is sorted and complete, and typed."""

from __future__ import annotations

import ast
import importlib.resources
import inspect
from pathlib import Path

import pytest

import journey_async


def test_all_is_sorted() -> None:
    assert journey_async.__all__ == sorted(journey_async.__all__)


def test_all_is_complete() -> None:
    # Names are loaded on first use (PEP 562): those not used yet are in _WHERE.
    public = {
        name
        for name, value in vars(journey_async).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    lazy = set(journey_async._WHERE)
    assert public | lazy | {"__version__"} == set(journey_async.__all__)
    assert set(dir(journey_async)) >= set(journey_async.__all__)


def test_the_lazy_names_are_the_ones_type_checkers_see() -> None:
    # The imports under TYPE_CHECKING and the runtime table name the same
    # modules for the same names.
    tree = ast.parse(Path(journey_async.__file__).read_text(encoding="utf-8"))
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "_typing.TYPE_CHECKING"
    ]
    seen = {
        alias.name: "." * node.level + (node.module or "")
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == journey_async._WHERE
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        journey_async.nothing  # type: ignore[attr-defined]  # noqa: B018 - the lookup is the test


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
