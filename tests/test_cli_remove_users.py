"""
``journey-async remove-users`` end to end: a subprocess against the emulator
served by this process; the failed-users file and its re-run.
"""

from __future__ import annotations

from pathlib import Path

from cli_support import SECRET, USERS, WELCOME, WINBACK, api, assert_one_error_line, run_cli

from journey_async.testing import EmulatorServer, Fault, JourneyEmulator


def test_remove_users_from_stdin(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    result = run_cli(
        "remove-users",
        *api(cli_server),
        "--journey",
        WELCOME,
        "-",
        stdin="user-1\n\n user-2 \nuser-1\n",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("removed 2 users from 1 journey: 1 request in ")
    assert result.stderr == ""
    assert cli_emulator.users_in(WELCOME) == set(USERS) - {"user-1", "user-2"}
    assert cli_emulator.users_in(WINBACK) == set(USERS[:3])  # not a target
    assert not (tmp_path / "failed-users.txt").exists()


def test_failed_users_are_written_to_a_file_that_retries_them(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    (tmp_path / "users.txt").write_text("\n".join(USERS) + "\n")
    # One batch at a time: the first of three fails for good (no retries).
    cli_emulator.inject(Fault.status(503), endpoint="remove")
    remove = ["remove-users", *api(cli_server), "--no-retry", "--all-journeys"]

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
    assert cli_emulator.users_in(WELCOME) == set(USERS[:2])
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
    assert cli_emulator.users_in(WELCOME) == set()


def test_a_removal_nobody_got_through_lists_every_user_and_hides_the_token(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    result = run_cli(
        "remove-users",
        "--base-url",
        cli_server.url,
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
    assert cli_emulator.users_in(WELCOME) == set(USERS)
    assert_one_error_line(
        result.stderr,
        "no removal was confirmed: AuthenticationError: ",
        "-> 401",
        f"remove-users --journey={WELCOME} --journey={WINBACK} --users-file failed-users.txt",
    )
    assert SECRET not in result.stdout + result.stderr
