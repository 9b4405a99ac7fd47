"""
The ``journey-async`` command, end to end: each test runs ``python -m
journey_async`` in a subprocess, as a user would, against the emulator served
on 127.0.0.1 by this process, and checks exit codes, stdout and stderr.

Argument errors need no server and no subprocess: they call `main` directly.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from journey_async._cli import main
from journey_async.testing import (
    EmulatorServer,
    Fault,
    JourneyEmulator,
    in_app_point,
    message_point,
    raw_point,
    serve_emulator,
)

TOKEN = "cli-test-token"
SECRET = "s3cr3t-t0ken-do-not-print"
WELCOME, WINBACK, EMPTY, MISSING = "j-welcome", "j-winback", "j-empty", "j-missing"
MARKUP = "j-markup"
USERS = [f"user-{n}" for n in range(1, 7)]
# Environment variables that would change what the command does or prints.
_AMBIENT = ("PUSHWOOSH_API_TOKEN", "PUSHWOOSH_JOURNEY_BASE_URL")
_TERMINAL = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS")


def make_emulator() -> JourneyEmulator:
    emulator = JourneyEmulator(token=TOKEN)
    emulator.add_journey(
        WELCOME,
        title="Welcome",
        points=[
            message_point("Push", 22648, 60, campaign_code="AAAAA-00000", preset_code="1-2"),
            in_app_point("Banner", 3148, 2759, 36, campaign_code="BBBBB-11111", preset_code="3-4"),
            raw_point(
                "Webhook", {"delivered": 10, "failed": 1}, campaign_code="C", preset_code="P"
            ),
        ],
        users=USERS,
    )
    emulator.add_journey(
        WINBACK, title="Winback", points=[message_point("Email", 1000, 250)], users=USERS[:3]
    )
    emulator.add_journey(EMPTY, title="Empty", points=[])
    # Square brackets are rich's markup: an unbalanced closing tag would crash it.
    emulator.add_journey(MARKUP, title="[/b] sale", points=[message_point("Push", 5, 1)])
    return emulator


@pytest.fixture
def emulator() -> JourneyEmulator:
    return make_emulator()


@pytest.fixture
def server(emulator: JourneyEmulator) -> Iterator[EmulatorServer]:
    with serve_emulator(emulator) as served:
        yield served


RUN_MAIN = "from journey_async._cli import main; raise SystemExit(main())"


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _AMBIENT + _TERMINAL}
    env.update(extra)
    return env


def run_cli(
    *args: str,
    cwd: Path,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "journey_async", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env() if env is None else dict(env),
        timeout=60,
        check=False,
    )


def api(server: EmulatorServer) -> list[str]:
    return ["--base-url", server.url, "--token", TOKEN]


def assert_one_error_line(stderr: str, *fragments: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("journey-async: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]


# --- stats ----------------------------------------------------------------------------------


def test_stats_json_is_one_object_per_journey_in_input_order(
    server: EmulatorServer, tmp_path: Path
) -> None:
    result = run_cli(
        "stats", *api(server), "--format", "json", WINBACK, MISSING, WELCOME, EMPTY, cwd=tmp_path
    )

    assert result.returncode == 1  # one journey failed
    assert json.loads(result.stdout) == [
        {
            "id": WINBACK,
            "title": "Winback",
            "points": [
                {
                    "title": "Email",
                    "campaign_code": "AAAAA-00000",
                    "preset_code": "12345-67890",
                    "kind": "message",
                    "stat": {"sent": 1000, "opened": 250, "conversion": 25.0},
                }
            ],
        },
        {
            "id": MISSING,
            "error": {
                "type": "NotFoundError",
                "message": f"GET /api/journey/{MISSING}/statistics/external -> 404: "
                "journey not found",
                "status_code": 404,
            },
        },
        {
            "id": WELCOME,
            "title": "Welcome",
            "points": [
                {
                    "title": "Push",
                    "campaign_code": "AAAAA-00000",
                    "preset_code": "1-2",
                    "kind": "message",
                    "stat": {"sent": 22648, "opened": 60, "conversion": 60 / 22648 * 100},
                },
                {
                    "title": "Banner",
                    "campaign_code": "BBBBB-11111",
                    "preset_code": "3-4",
                    "kind": "in_app",
                    "stat": {"shows": 3148, "interactions": 2759, "skipped": 36},
                },
                {
                    "title": "Webhook",
                    "campaign_code": "C",
                    "preset_code": "P",
                    "kind": "unknown",
                    "stat": {"delivered": 10, "failed": 1},
                },
            ],
        },
        {"id": EMPTY, "title": "Empty", "points": []},
    ]
    # The summary goes to stderr, so stdout stays one JSON document.
    assert result.stderr.startswith("4 journeys: 3 ok, 1 failed, in ")
    assert "(NotFoundError: 1)" in result.stderr


def test_stats_csv_is_one_row_per_point(server: EmulatorServer, tmp_path: Path) -> None:
    result = run_cli("stats", *api(server), "--format=csv", WELCOME, EMPTY, WINBACK, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["journey_id"], r["point_title"], r["kind"]) for r in rows] == [
        (WELCOME, "Push", "message"),
        (WELCOME, "Banner", "in_app"),
        (WELCOME, "Webhook", "unknown"),
        (EMPTY, "", ""),  # no points, still listed
        (WINBACK, "Email", "message"),
    ]
    push, banner, webhook, _, email = rows
    assert push["journey_title"] == "Welcome"
    assert (push["campaign_code"], push["preset_code"]) == ("AAAAA-00000", "1-2")
    assert (push["sent"], push["opened"], push["shows"]) == ("22648", "60", "")
    assert float(push["conversion"]) == pytest.approx(60 / 22648 * 100)
    assert (banner["shows"], banner["interactions"], banner["skipped"]) == ("3148", "2759", "36")
    assert banner["sent"] == ""
    assert json.loads(webhook["other"]) == {"delivered": 10, "failed": 1}
    assert email["conversion"] == "25.0"
    assert all(r["error"] == "" for r in rows)
    assert result.stderr.startswith("3 journeys: 3 ok, 0 failed, in ")


def test_stats_table_reads_ids_file_and_settings_from_the_environment(
    server: EmulatorServer, tmp_path: Path
) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{WELCOME}\n\n  {WINBACK}  \n{WELCOME}\n")
    env = cli_env(PUSHWOOSH_API_TOKEN=TOKEN, PUSHWOOSH_JOURNEY_BASE_URL=server.url)

    # A global option before the subcommand works as well as after it.
    result = run_cli("--concurrency", "2", "stats", "--ids-file", "ids.txt", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "Journey", "ID", "Point", "Kind", "Sent", "Opened", "Conv.", "%",
        "Shows", "Interactions", "Skipped", "Other", "fields",
    ]  # fmt: skip
    assert lines[2].split() == ["Welcome", WELCOME, "Push", "message", "22,648", "60", "0.26"]
    assert lines[3].split() == ["Banner", "in_app", "3,148", "2,759", "36"]
    assert lines[4].split() == ["Webhook", "unknown", "delivered=10", "failed=1"]
    assert lines[5].split() == ["Winback", WINBACK, "Email", "message", "1,000", "250", "25.00"]
    # The duplicate id was fetched once.
    assert lines[6].startswith("2 journeys: 2 ok, 0 failed, in ")
    assert len(lines) == 7


def test_stats_on_a_terminal_draws_rich_tables(server: EmulatorServer, tmp_path: Path) -> None:
    # rich's own switches make the pipes count as an interactive terminal.
    env = cli_env(TTY_COMPATIBLE="1", TTY_INTERACTIVE="1", COLUMNS="160")

    result = run_cli("stats", *api(server), WINBACK, MISSING, MARKUP, cwd=tmp_path, env=env)

    assert result.returncode == 1
    assert result.stdout.startswith("┏━")
    assert "│ Winback   │ j-winback │ Email" in result.stdout
    assert "│ error: NotFoundError: 404 journey not found" in result.stdout
    assert "│ [/b] sale │ j-markup  │ Push" in result.stdout
    assert "3 journeys: 2 ok, 1 failed" in result.stdout


def test_without_rich_a_terminal_gets_plain_text(server: EmulatorServer, tmp_path: Path) -> None:
    env = cli_env(TTY_COMPATIBLE="1", TTY_INTERACTIVE="1")
    without_rich = "import sys; sys.modules['rich'] = None; " + RUN_MAIN

    result = subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-c", without_rich, "stats", *api(server), WINBACK],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].split()[:3] == ["Winback", WINBACK, "Email"]
    assert result.stderr == ""  # and no progress bar


def test_a_wrong_token_fails_every_journey_and_is_never_printed(
    server: EmulatorServer, tmp_path: Path
) -> None:
    env = cli_env(PUSHWOOSH_API_TOKEN=SECRET)

    result = run_cli(
        "stats", "--base-url", server.url, "--format", "json", WELCOME, cwd=tmp_path, env=env
    )

    assert result.returncode == 1
    [outcome] = json.loads(result.stdout)
    assert outcome["error"]["type"] == "AuthenticationError"
    assert outcome["error"]["status_code"] == 401
    assert SECRET not in result.stdout + result.stderr


# --- remove-users ---------------------------------------------------------------------------


def test_remove_users_from_stdin(
    server: EmulatorServer, emulator: JourneyEmulator, tmp_path: Path
) -> None:
    result = run_cli(
        "remove-users",
        *api(server),
        "--journey",
        WELCOME,
        "-",
        stdin="user-1\n\n user-2 \nuser-1\n",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("removed 2 users from 1 journey: 1 request in ")
    assert result.stderr == ""
    assert emulator.users_in(WELCOME) == set(USERS) - {"user-1", "user-2"}
    assert emulator.users_in(WINBACK) == set(USERS[:3])  # not a target
    assert not (tmp_path / "failed-users.txt").exists()


def test_failed_users_are_written_to_a_file_that_retries_them(
    server: EmulatorServer, emulator: JourneyEmulator, tmp_path: Path
) -> None:
    (tmp_path / "users.txt").write_text("\n".join(USERS) + "\n")
    # One batch at a time: the first of three fails for good (no retries).
    emulator.inject(Fault.status(503), endpoint="remove")
    remove = ["remove-users", *api(server), "--no-retry", "--all-journeys"]

    result = run_cli(
        *remove,
        "--users-file",
        "users.txt",
        "--batch-size=2",
        "--concurrency=1",
        "--failed-file",
        "retry.txt",
        cwd=tmp_path,
    )

    assert result.returncode == 1
    failed = (tmp_path / "retry.txt").read_text().splitlines()
    assert failed == USERS[:2]
    assert emulator.users_in(WELCOME) == set(USERS[:2])
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith(
        "removed 4 users from all journeys; failed for 2 (written to retry.txt), in "
    )
    assert_one_error_line(
        result.stderr,
        "1 removal request failed; first: ServerError: ",
        "-> 503",
        "retry them with: journey-async remove-users --all-journeys --users-file retry.txt",
    )

    # Fed back in, as the message says.
    again = run_cli(*remove, "--users-file", "retry.txt", cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("removed 2 users from all journeys: 1 request in ")
    assert emulator.users_in(WELCOME) == set()


def test_a_removal_nobody_got_through_lists_every_user_and_hides_the_token(
    server: EmulatorServer, emulator: JourneyEmulator, tmp_path: Path
) -> None:
    result = run_cli(
        "remove-users",
        "--base-url",
        server.url,
        f"--token={SECRET}",
        "--journey",
        WELCOME,
        "--journey",
        WINBACK,
        "user-1",
        "user-2",
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert (tmp_path / "failed-users.txt").read_text() == "user-1\nuser-2\n"
    assert emulator.users_in(WELCOME) == set(USERS)
    assert_one_error_line(
        result.stderr,
        "no removal was confirmed: AuthenticationError: ",
        "-> 401",
        f"remove-users --journey={WELCOME} --journey={WINBACK} --users-file failed-users.txt",
    )
    assert SECRET not in result.stdout + result.stderr


# --- emulator and demo ----------------------------------------------------------------------


def test_emulator_command_serves_journeys_that_stats_can_read(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "journey_async", "emulator", "--port=0", "--journeys=3"]
    with subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    ) as process:
        try:
            assert process.stdout is not None
            listening = process.stdout.readline()
            assert listening.startswith("journey-async emulator listening on http://127.0.0.1:")
            url = listening.split()[-1]
            assert process.stdout.readline().startswith("3 sample journeys (seed 0)")
            hint = process.stdout.readline().split()
            assert hint[:6] == ["try:", "journey-async", "stats", "--base-url", url, "--token"]
            ids = hint[7:]
            assert len(ids) == 3

            # What the hint says, as a user would type it in another terminal.
            result = run_cli(*hint[2:], "--format=json", cwd=tmp_path)

            assert result.returncode == 0, result.stderr
            assert [journey["id"] for journey in json.loads(result.stdout)] == ids
        finally:
            process.terminate()
            process.wait(10)
    assert process.returncode == 0


def test_demo_fetches_removes_and_verifies(tmp_path: Path) -> None:
    result = run_cli(
        "demo",
        "--journeys=20",
        "--users=200",
        "--batch-size=50",
        "--latency-ms=0",
        "--fault-rate=0",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1. Statistics of all 20 journeys" in out
    assert "20 journeys: 20 ok, 0 failed" in out
    assert "Top 10 journeys by messages sent" in out
    assert "Totals per channel" in out
    assert "2. Removal of 200 users from all journeys, in 4 batches of up to 50" in out
    assert "removed 200 users in " in out
    assert ": 4 batches, 4 requests (0 met a transient fault)" in out
    assert "verified in the emulator: none of them is in any journey any more" in out
    assert out.rstrip().splitlines()[-1].startswith("Done in ")
    assert result.stderr == ""


# --- interruption and usage errors ----------------------------------------------------------


def test_ctrl_c_exits_130_with_one_line(
    server: EmulatorServer, emulator: JourneyEmulator, tmp_path: Path
) -> None:
    emulator.inject(Fault.delay(30), endpoint="stats")
    command = [sys.executable, "-m", "journey_async", "stats", *api(server), WELCOME]
    with subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    ) as process:
        deadline = time.monotonic() + 30
        while emulator.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the request is held by the server
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 130
    assert stdout == ""
    assert stderr == "journey-async: error: interrupted\n"


def test_usage_error_in_a_subprocess_is_one_line(tmp_path: Path) -> None:
    result = run_cli("stats", "--format", "yaml", "j1", cwd=tmp_path)

    assert result.returncode == 2
    assert_one_error_line(result.stderr, "argument --format: invalid choice: 'yaml'")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["stats"], "no journey ids", id="no-ids"),
        pytest.param(["stats", "j1", "--ids-file", "x"], "not both", id="ids-twice"),
        pytest.param(["stats", "--ids-file", "/nonexistent/ids"], "cannot read", id="no-file"),
        pytest.param(["stats", "a/b"], "would change the request's URL path", id="bad-id"),
        pytest.param(["stats", "j1"], "no API token: pass --token or set", id="no-token"),
        pytest.param(
            ["stats", "--token", "t", "--base-url", "http://example.com", "j1"],
            "plain http",
            id="http-not-loopback",
        ),
        pytest.param(["stats", "--timeout", "0", "j1"], "--timeout: must be", id="timeout"),
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
        pytest.param(["emulator", "--port", "70000"], "must be in 0..65535", id="port"),
        pytest.param(["--timeout", "3", "emulator"], "--timeout does not apply to 'emulator'"),
        pytest.param(["demo", "--fault-rate", "2"], "between 0 and 1", id="fault-rate"),
        pytest.param([], "the following arguments are required: COMMAND", id="no-command"),
    ],
)
def test_usage_errors_exit_2_before_sending_anything(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in _AMBIENT:
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


def test_a_token_in_a_usage_error_is_blanked_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--token", SECRET, "--base-url", f"ftp://{SECRET}/", "j1"]) == 2

    _, err = capsys.readouterr()
    assert SECRET not in err
    assert "[secret]" in err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "remove-users" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("journey-async ")
