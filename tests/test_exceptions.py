"""
The error tree (journey_async._exceptions): the drawing in its docstring is
the tree the classes make, so that a new error cannot be left out of it.
"""

from __future__ import annotations

import re

import journey_async
from journey_async import _exceptions


def drawn_tree() -> dict[str, str]:
    """Each class in the docstring's drawing, and the class it hangs from."""
    drawing = (_exceptions.__doc__ or "").split("```")[1]
    parents: dict[str, str] = {}
    stack: list[str] = []
    for line in drawing.strip().splitlines():
        name = re.search(r"\w+", line)
        assert name is not None, line
        depth = name.start() // 4
        stack[depth:] = [name[0]]
        if depth:
            parents[name[0]] = stack[depth - 1]
    return parents


def test_the_drawing_is_the_class_tree() -> None:
    actual: dict[str, str] = {}
    pending: list[type[journey_async.JourneyError]] = [journey_async.JourneyError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("journey_async"):
                actual[sub.__name__] = cls.__name__
                pending.append(sub)
    assert drawn_tree() == actual


def test_every_error_is_public() -> None:
    assert set(drawn_tree()) <= set(journey_async.__all__)
