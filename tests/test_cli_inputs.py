"""
What a command reads (journey_async._cli._inputs): ids from arguments,
files and stdin, and the client the flags describe, its complaints in flags.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from journey_async._cli._args import UsageError
from journey_async._cli._inputs import _client, _journey_ids, _read_lines, _user_ids


def stats_args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"ids": [], "ids_file": None, **given})


def test_ids_from_a_file_skip_blank_lines_and_repeats(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("j1\n\n  j2 \nj1\n", encoding="utf-8")
    args = stats_args(ids_file=str(tmp_path / "ids.txt"))
    assert _journey_ids(args) == ["j1", "j2"]


def test_a_file_that_is_not_text_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "ids.bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="not UTF-8 text"):
        _read_lines(str(tmp_path / "ids.bin"), "--ids-file")


def test_users_are_checked_and_deduplicated() -> None:
    args = argparse.Namespace(users=["u2", "u1", "u2"], users_file=None)
    assert _user_ids(args) == ("u2", "u1")


def test_the_client_comes_from_the_flags_and_its_complaints_name_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PUSHWOOSH_API_TOKEN", raising=False)
    monkeypatch.delenv("PUSHWOOSH_JOURNEY_BASE_URL", raising=False)
    flags = {"base_url": None, "concurrency": 3, "timeout": 2.5, "no_retry": True}

    client = _client(argparse.Namespace(token="t0ken", **flags))
    assert (client.max_concurrency, client.retry) == (3, None)

    with pytest.raises(UsageError, match=r"^no API token: pass --token or set PUSHWOOSH_API_TOKEN"):
        _client(argparse.Namespace(token=None, **flags))
    with pytest.raises(UsageError, match=r"^--base-url must be an http\(s\) URL"):
        _client(argparse.Namespace(token="t0ken", **{**flags, "base_url": "ftp://x"}))


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_a_byte_order_mark_and_crlf_line_ends_are_not_part_of_the_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stdin: bool
) -> None:
    # What Windows editors (Notepad, Excel's "CSV UTF-8") save: a UTF-8 BOM, CRLF.
    text = "\ufeffj1\r\n\r\nj2\r\n"
    if stdin:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        path = "-"
    else:
        (tmp_path / "ids.txt").write_bytes(text.encode())
        path = str(tmp_path / "ids.txt")
    assert _journey_ids(stats_args(ids_file=path)) == ["j1", "j2"]


def test_a_lone_dash_reads_journey_ids_from_stdin_as_for_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `cut -f1 journeys.tsv | journey-async stats -`, as remove-users takes users:
    # "-" was sent as a journey id, and came back a 404.
    monkeypatch.setattr("sys.stdin", io.StringIO("j1\nj2\n"))
    assert _journey_ids(stats_args(ids=["-"])) == ["j1", "j2"]
    with pytest.raises(UsageError, match=r"'-' \(read journey ids from stdin\) must be the only"):
        _journey_ids(stats_args(ids=["j1", "-"]))
