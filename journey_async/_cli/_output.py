"""
Where and how the command writes: rich tables and progress bars on a
terminal, aligned plain text elsewhere; results on stdout, notes on stderr;
the number formats and the one-line description of an error.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import textwrap
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Final, NamedTuple, TypeAlias

from journey_async._exceptions import APIStatusError, JourneyError

if TYPE_CHECKING:
    from rich.console import Console


class _Column(NamedTuple):
    header: str
    numeric: bool = False
    # Ids: folded only when the other text columns cannot give way enough.
    whole: bool = False


ProgressCallback: TypeAlias = Callable[[int], None]

# Below this a column's cells would fold into more lines than words.
_MIN_COLUMN_WIDTH: Final = 6
_GAP: Final = "  "


# What makes a spreadsheet read a cell as a formula (OWASP, "CSV injection"):
# a journey title such as ``=HYPERLINK(...)`` would run when the CSV is opened.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value: str) -> str:
    """
    A text cell for CSV output, a single quote put before a formula's first
    character (as OWASP recommends), so a spreadsheet shows it as text.
    Only for text: numbers (a negative count) are written as they are, and
    JSON output keeps every string exact.
    """
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


class _Output:
    """
    Where a command writes: rich on a terminal when it is installed, plain
    text otherwise. Results go to stdout, progress and notes to stderr.

    On a terminal, results fit its width (`width`): tables fold their cells,
    lines wrap at words. Pipes and files get every line whole.
    """

    def __init__(self) -> None:
        self._out: Console | None = None
        self._err: Console | None = None
        self.width: int | None = _terminal_width()
        """The width results must fit, or None when stdout is not a terminal."""
        if not _installed("rich"):
            return
        from rich.console import Console

        # rich decides what a terminal is (isatty, FORCE_COLOR, TTY_COMPATIBLE).
        out = Console(highlight=False, emoji=False)
        err = Console(stderr=True, highlight=False, emoji=False)
        self._out = out if out.is_terminal else None
        self._err = err if err.is_interactive else None
        if self._out is not None:
            self.width = self._out.width

    def line(self, text: str = "") -> None:
        """A line of results on stdout, wrapped at words to fit a terminal."""
        text = _printable(text)
        if self._out is not None:
            self._out.print(text, markup=False)
        elif self.width is not None:
            print(_wrap(text, self.width), flush=True)
        else:
            print(text, flush=True)

    def note(self, text: str) -> None:
        """A line about the run on stderr, so that stdout stays machine-readable."""
        print(_printable(text), file=sys.stderr, flush=True)

    def table(
        self, columns: Sequence[_Column], rows: Sequence[Sequence[str]], *, title: str = ""
    ) -> None:
        """A table on stdout: rich's on a terminal, aligned plain text elsewhere."""
        title = _printable(title)
        rows = [[_printable(cell) for cell in row] for row in rows]
        if self._out is None:
            print(_plain_table(columns, rows, title=title, width=self.width), flush=True)
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title or None, title_justify="left", header_style="bold")
        # Widths chosen as for plain text (rich alone would fold ids and numbers
        # as readily as prose); rich then folds each cell to its column.
        widths = _fit(
            columns, _natural_widths(columns, rows), self._out.width - _rich_frame(columns)
        )
        for column, width in zip(columns, widths, strict=True):
            table.add_column(
                column.header,
                justify="right" if column.numeric else "left",
                overflow="fold",
                width=width,
            )
        for row in rows:
            # Text, not str: a journey title like "[b]ig sale" is not markup.
            table.add_row(*map(Text, row))
        self._out.print(table)

    def fits(self, columns: Sequence[_Column], rows: Sequence[Sequence[str]]) -> bool:
        """Whether the table fits the terminal without folding a cell (always, off one)."""
        if self.width is None:
            return True
        widths = _natural_widths(columns, rows)
        frame = _rich_frame(columns) if self._out is not None else len(_GAP) * (len(columns) - 1)
        return sum(widths) + frame <= self.width

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


def _terminal_width() -> int | None:
    try:
        if not os.isatty(sys.stdout.fileno()):
            return None
    except (AttributeError, OSError, ValueError):  # replaced or closed stdout: not a terminal
        return None
    return shutil.get_terminal_size().columns


def _rich_frame(columns: Sequence[_Column]) -> int:
    # rich's box: a bar and a space either side of every cell.
    return 3 * len(columns) + 1


def _wrap(text: str, width: int) -> str:
    """*text* wrapped at words to *width*, continuation lines keeping its indent."""
    if len(text) <= width:
        return text
    indent = text[: len(text) - len(text.lstrip())]
    return textwrap.fill(
        text,
        width,
        subsequent_indent=indent,
        break_long_words=True,
        break_on_hyphens=False,
    )


def _natural_widths(columns: Sequence[_Column], rows: Sequence[Sequence[str]]) -> list[int]:
    widths = [len(column.header) for column in columns]
    for row in rows:
        widths = [
            max(width, *map(len, cell.split("\n"))) for width, cell in zip(widths, row, strict=True)
        ]
    return widths


def _fit(columns: Sequence[_Column], widths: Sequence[int], budget: int) -> list[int]:
    """
    Narrow the widest text columns, one character at a time, until they fit
    *budget*: ids only once the other text is at its least; numbers never.
    """
    fitted = list(widths)
    for foldable in (
        [index for index, column in enumerate(columns) if not column.numeric and not column.whole],
        [index for index, column in enumerate(columns) if column.whole],
    ):
        while foldable and sum(fitted) > budget:
            widest = max(foldable, key=fitted.__getitem__)
            if fitted[widest] <= _MIN_COLUMN_WIDTH:
                break
            fitted[widest] -= 1
    # Still too wide when every column is at its least: aligned, wider than the terminal.
    return fitted


def _fold(cell: str, width: int) -> list[str]:
    lines: list[str] = []
    for part in cell.split("\n"):
        lines.extend(
            textwrap.wrap(part, width, break_long_words=True, break_on_hyphens=False) or [""]
        )
    return lines


def _plain_table(
    columns: Sequence[_Column],
    rows: Sequence[Sequence[str]],
    *,
    title: str,
    width: int | None = None,
) -> str:
    """
    Aligned plain text; given a *width*, the cells fold onto more lines so
    that no line is wider (as long as every column keeps a few characters).
    """
    widths = _natural_widths(columns, rows)
    if width is not None:
        widths = _fit(columns, widths, width - len(_GAP) * (len(columns) - 1))

    def render(cells: Sequence[str]) -> list[str]:
        folded = [_fold(cell, w) for cell, w in zip(cells, widths, strict=True)]
        out = []
        for index in range(max(map(len, folded))):
            parts = []
            for column, cell_lines, w in zip(columns, folded, widths, strict=True):
                text = cell_lines[index] if index < len(cell_lines) else ""
                parts.append(text.rjust(w) if column.numeric else text.ljust(w))
            out.append(_GAP.join(parts).rstrip())
        return out

    lines = [_wrap(title, width) if width else title] if title else []
    lines.extend(render([column.header for column in columns]))
    lines.append(_GAP.join("-" * w for w in widths).rstrip())
    for row in rows:
        lines.extend(render(row))
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


def _printable(text: str, *, lines: bool = True) -> str:
    """
    *text* with what a terminal would act on rather than show spelled as a
    Python escape (``\\x1b``): control characters (escape sequences, carriage
    returns, bells), the bidirectional overrides that reorder what follows,
    and lone surrogates, which UTF-8 cannot write. A journey's title is the
    server's text: raw, it could clear the screen or forge a row. Line breaks
    stay with *lines* (the tables put a title and an id on two lines of one
    cell), else they are escaped too (a title's own); other unprintable
    characters (a no-break space, an emoji's joiner) are shown.
    """
    if text.isprintable():
        return text
    if not lines:
        return "".join(map(_shown, text))
    return "\n".join("".join(map(_shown, line)) for line in text.split("\n"))


def _shown(char: str) -> str:
    if char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cs"):
        return repr(char)[1:-1]
    return char


# Embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


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
