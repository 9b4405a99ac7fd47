"""
The Python samples of the project's Markdown files, for the tests that
type-check and run them: one helper, so that every such test reads the
samples the same way.

A sample is a fenced block opened with ```` ```python ````; ```` ```console ````
and other languages are not samples.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import attrs

ROOT: Final = Path(__file__).resolve().parent.parent
"""The project's root, where README.md and docs/ are."""

_FENCE: Final = re.compile(r"^(?P<indent>[ ]*)```(?P<info>[^`\n]*)$")


@attrs.frozen
class Sample:
    """One sample: where it is (for test ids and messages) and its code."""

    path: Path
    line: int  # of the opening fence, from 1
    code: str

    @property
    def name(self) -> str:
        """``README.md:42``: a test id, relative to the project's root."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def python_samples(path: Path) -> list[Sample]:
    """Every Python sample of the Markdown file *path*, in order."""
    return list(_samples(path))


def _samples(path: Path) -> Iterator[Sample]:
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent = len(opening["indent"])
        start = index
        while index < len(lines) and lines[index].strip() != "```":
            index += 1
        if opening["info"].strip().split(" ")[0] in ("python", "py"):
            body = [line[indent:] for line in lines[start:index]]
            yield Sample(path, start, "\n".join(body) + "\n")
        index += 1  # the closing fence


def markdown_files() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
