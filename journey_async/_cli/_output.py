"""
Where and how the command writes: rich tables and progress bars on a
terminal, aligned plain text elsewhere; results on stdout, notes on stderr;
the number formats and the one-line description of an error.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeAlias

import attrs

from journey_async._exceptions import APIStatusError, JourneyError

if TYPE_CHECKING:
    from rich.console import Console


@attrs.frozen
class _Column:
    header: str
    numeric: bool = False


ProgressCallback: TypeAlias = Callable[[int], None]


class _Output:
    """
    Where a command writes: rich on a terminal when it is installed, plain
    text otherwise. Results go to stdout, progress and notes to stderr.
    """

    def __init__(self) -> None:
        self._out: Console | None = None
        self._err: Console | None = None
        if not _installed("rich"):
            return
        from rich.console import Console

        # rich decides what a terminal is (isatty, FORCE_COLOR, TTY_COMPATIBLE).
        out = Console(highlight=False)
        err = Console(stderr=True, highlight=False)
        self._out = out if out.is_terminal else None
        self._err = err if err.is_interactive else None

    def line(self, text: str = "") -> None:
        """A line of results on stdout."""
        if self._out is not None:
            self._out.print(text, markup=False, soft_wrap=True)
        else:
            print(text, flush=True)

    def note(self, text: str) -> None:
        """A line about the run on stderr, so that stdout stays machine-readable."""
        print(text, file=sys.stderr, flush=True)

    def table(
        self, columns: Sequence[_Column], rows: Sequence[Sequence[str]], *, title: str = ""
    ) -> None:
        """A table on stdout: rich's on a terminal, aligned plain text elsewhere."""
        if self._out is None:
            print(_plain_table(columns, rows, title=title), flush=True)
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title or None, title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(
                column.header,
                justify="right" if column.numeric else "left",
                overflow="fold",
            )
        for row in rows:
            # Text, not str: a journey title like "[b]ig sale" is not markup.
            table.add_row(*map(Text, row))
        self._out.print(table)

    @contextlib.contextmanager
    def progress(self, description: str, total: int) -> Iterator[ProgressCallback | None]:
        """
        A progress bar on stderr while the block runs, when stderr is an
        interactive terminal; yields the callback to advance it, or None.
        """
        if self._err is None or total == 0:
            yield None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._err,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield lambda settled: bar.advance(task, settled)


def _plain_table(columns: Sequence[_Column], rows: Sequence[Sequence[str]], *, title: str) -> str:
    widths = [len(column.header) for column in columns]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def render(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if column.numeric else cell.ljust(width)
            for column, cell, width in zip(columns, cells, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [title] if title else []
    lines.append(render([column.header for column in columns]))
    lines.append(render(["-" * width for width in widths]))
    lines.extend(render(row) for row in rows)
    return "\n".join(lines)


def _count(value: int) -> str:
    return f"{value:,}"


def _percent(value: float) -> str:
    return f"{value:.2f}"


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    return f"{_count(count)} {noun}" + ("es" if noun.endswith("ch") else "s")


def _rate(count: int, seconds: float, unit: str) -> str:
    return f"{count / seconds:,.0f} {unit}/s" if seconds > 0 else f"- {unit}/s"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return False


def _describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _short_error(error: JourneyError) -> str:
    # The table's row already names the journey: not the request's path again.
    if isinstance(error, APIStatusError):
        return f"{type(error).__name__}: {error.status_code} {error.message}"
    return _describe_error(error)
