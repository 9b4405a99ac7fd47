"""
``journey-async stats`` given titles a terminal or UTF-8 cannot take as they
are: escape sequences and a lone surrogate, both valid JSON from a server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import TOKEN, run_cli

from journey_async.testing import EmulatorServer, JourneyEmulator, message_point, serve_emulator

ESCAPES, SURROGATE = "j-escapes", "j-surrogate"
ESCAPES_TITLE = "\x1b[2J\x1b[31mSale\r\nforged row\x07"
SURROGATE_TITLE = "Half an emoji \ud83d"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    emulator = JourneyEmulator(token=TOKEN)
    emulator.add_journey(
        ESCAPES, title=ESCAPES_TITLE, points=[message_point("Push\x1b]0;x\x07", 5, 1)]
    )
    emulator.add_journey(SURROGATE, title=SURROGATE_TITLE, points=[message_point("\udc00", 5, 1)])
    with serve_emulator(emulator) as served:
        yield served


def _stats(server: EmulatorServer, tmp_path: Path, *args: str) -> str:
    result = run_cli(
        "stats",
        "--base-url",
        server.url,
        "--token",
        TOKEN,
        *args,
        ESCAPES,
        SURROGATE,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_table_shows_control_characters_and_surrogates_as_escapes(
    server: EmulatorServer, tmp_path: Path
) -> None:
    out = _stats(server, tmp_path)

    assert "\x1b" not in out
    assert "\r" not in out
    assert "\x07" not in out
    assert "\\x1b[2J\\x1b[31mSale\\r\\nforged row\\x07" in out
    assert "Push\\x1b]0;x\\x07" in out
    assert "Half an emoji \\ud83d" in out
    assert "\\udc00" in out
    # The title's own line break is escaped too: no line starts with it.
    assert not any(line.startswith("forged row") for line in out.splitlines())


def test_json_spells_a_lone_surrogate_as_json_does(server: EmulatorServer, tmp_path: Path) -> None:
    out = _stats(server, tmp_path, "--format", "json")

    titles = [journey["title"] for journey in json.loads(out)]
    assert titles == [ESCAPES_TITLE, SURROGATE_TITLE]


def test_csv_writes_every_row_despite_a_lone_surrogate(
    server: EmulatorServer, tmp_path: Path
) -> None:
    out = _stats(server, tmp_path, "--format", "csv")

    assert len(out.strip().split("\n")) >= 3  # the header and a row per journey
    assert "Half an emoji \\ud83d" in out
