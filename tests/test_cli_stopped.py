"""
The command line when a call stops early (`_cli/_stopped.py`): a wrong token
or a base URL where nothing listens is one line on stderr naming what to
check, a non-zero exit, no table of identical errors and no retry advice.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import SECRET, assert_one_error_line, cli_env, run_cli

from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

RIGHT = "the-right-token"


@pytest.fixture(scope="module")
def many() -> Iterator[EmulatorServer]:
    with serve_emulator(JourneyEmulator.with_sample_data(300, seed=2, token=RIGHT)) as server:
        yield server


@pytest.fixture
def emulator(many: EmulatorServer) -> JourneyEmulator:
    many.emulator.reset_counters()
    return many.emulator


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_wrong_token_in_the_environment_is_one_line_naming_it(
    many: EmulatorServer, emulator: JourneyEmulator, tmp_path: Path
) -> None:
    env = cli_env(PUSHWOOSH_API_TOKEN=SECRET)
    result = run_cli("stats", "--base-url", many.url, *emulator.journey_ids, cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stdout == ""  # no table of 300 identical errors
    assert_one_error_line(
        result.stderr,
        "the API refused the token (401",
        "check $PUSHWOOSH_API_TOKEN (or pass --token)",
        "300 journeys not fetched",
    )
    assert "retry" not in result.stderr.lower()
    assert SECRET not in result.stderr
    assert len(emulator.requests) <= 32  # the client's default in flight


def test_a_wrong_token_flag_is_named_and_json_keeps_every_journey(
    many: EmulatorServer, emulator: JourneyEmulator, tmp_path: Path
) -> None:
    ids = emulator.journey_ids[:50]
    result = run_cli(
        "stats", "--base-url", many.url, f"--token={SECRET}", "--format", "json", *ids,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    outcomes = json.loads(result.stdout)
    assert [o["id"] for o in outcomes] == ids
    assert {o["error"]["type"] for o in outcomes} == {"AuthenticationError", "NotAttemptedError"}
    assert_one_error_line(result.stderr, "the API refused the token", "check --token")
    assert SECRET not in result.stdout + result.stderr


def test_a_base_url_where_nothing_listens_says_what_it_tried(tmp_path: Path) -> None:
    url = closed_url()
    ids = [f"journey-{n}" for n in range(300)]
    result = run_cli("stats", "--base-url", url, "--token=t", "--no-retry", *ids, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_error_line(
        result.stderr, f"could not connect to {url} (", "check --base-url", "300 journeys"
    )


def test_remove_users_with_a_wrong_token_names_it_and_removes_nothing(
    many: EmulatorServer, emulator: JourneyEmulator, tmp_path: Path
) -> None:
    users = [f"u{n}" for n in range(100)]
    result = run_cli(
        "remove-users", "--base-url", many.url, f"--token={SECRET}", "--all-journeys",
        "--batch-size", "5", *users, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert (tmp_path / "remaining-users.txt").read_text().split() == users
    error_line = result.stderr.splitlines()[-1]
    assert error_line.startswith("journey-async: error: the API refused the token (401")
    assert "check --token; nothing was removed" in error_line
    assert "once that is fixed, finish with:" in error_line
    assert len(emulator.requests) <= 32
    assert SECRET not in result.stdout + result.stderr
