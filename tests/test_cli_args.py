"""
The command line's grammar (`journey_async._cli._args`): every misuse exits 2
with one line before anything is sent.
"""

from __future__ import annotations

import sys

import pytest
from cli_support import AMBIENT, assert_one_error_line

from journey_async._cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["stats"], "no journey ids", id="no-ids"),
        pytest.param(["stats", "j1", "--ids-file", "x"], "not both", id="ids-twice"),
        pytest.param(["stats", "--ids-file", "/nonexistent/ids"], "cannot read", id="no-file"),
        pytest.param(["stats", "a/b"], "would change the request's URL path", id="bad-id"),
        pytest.param(["stats", "j1"], "no API token: pass --token or set", id="no-token"),
        pytest.param(["stats", "--token", "", "j1"], "--token is empty", id="empty-token"),
        pytest.param(
            ["stats", "--token", "t", "--base-url", "http://example.com", "j1"],
            "plain http",
            id="http-not-loopback",
        ),
        pytest.param(["stats", "--timeout", "0", "j1"], "--timeout: must be", id="timeout"),
        pytest.param(["stats", "--timeout", "nan", "j1"], "--timeout: must be a finite", id="nan"),
        pytest.param(["remove-users", "u1"], "one of the arguments", id="no-target"),
        pytest.param(
            ["remove-users", "--all-journeys", "--journey", "j", "u"],
            "not allowed with",
            id="two-targets",
        ),
        pytest.param(["remove-users", "--all-journeys"], "no users", id="no-users"),
        pytest.param(
            ["remove-users", "--all-journeys", "u1", "-"], "must be the only", id="dash-and-ids"
        ),
        pytest.param(
            ["remove-users", "--all-journeys", "--users-file", "f", "u1"],
            "not several",
            id="users-twice",
        ),
        pytest.param(["remove-users", "--all-journeys", "--batch-size=0", "u"], "at least 1"),
        pytest.param(["--base-url", "https://x", "demo"], "--base-url does not apply to 'demo'"),
        pytest.param(["emulator", "--port", "70000"], "must be between 0 and 65535", id="port"),
        pytest.param(["--timeout", "3", "emulator"], "--timeout does not apply to 'emulator'"),
        pytest.param(["demo", "--fault-rate", "2"], "between 0 and 1", id="fault-rate"),
        pytest.param([], "the following arguments are required: COMMAND", id="no-command"),
        pytest.param(
            ["--token", "t"], "the following arguments are required: COMMAND", id="only-options"
        ),
        # An unknown option is named, not hidden behind "COMMAND required".
        pytest.param(["--bogus"], "unrecognized arguments: --bogus", id="unknown-option"),
        pytest.param(
            ["--bogus", "stats", "j1"], "unrecognized arguments: --bogus", id="bogus-stats"
        ),
        pytest.param(["stats", "--bogus", "j1"], "unrecognized arguments: --bogus", id="sub-bogus"),
        pytest.param(["bogus"], "invalid choice: 'bogus'", id="unknown-command"),
    ],
)
def test_usage_errors_exit_2_before_sending_anything(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in AMBIENT:
        monkeypatch.delenv(name, raising=False)

    assert main(argv) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert_one_error_line(err, message)


@pytest.mark.parametrize("command", ["demo", "emulator"])
def test_serving_without_uvicorn_says_what_to_install(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)

    assert main([command]) == 2

    assert_one_error_line(capsys.readouterr().err, "pip install 'journey-async[cli]'")


def test_the_timeout_help_says_what_it_bounds_and_what_bounds_an_attempt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --timeout is httpx's per-phase timeout; a bigger one still ends at the
    # attempt's wall-clock bound, which the help must name ("per attempt" did not).
    assert main(["stats", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "--timeout SECONDS longest wait to connect, send or read, per attempt "
        "(default: 10, 5 to connect); an attempt ends after 30 s in all"
    ) in help_text
