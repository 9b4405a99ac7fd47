"""
``journey-async remove-users`` end to end: a subprocess against the emulator
served by this process; the remaining-users file, its re-run, and Ctrl-C.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cli_support import (
    SECRET,
    USERS,
    WELCOME,
    WINBACK,
    api,
    assert_one_error_line,
    cli_env,
    run_cli,
)

from journey_async.testing import EmulatorServer, Fault, JourneyEmulator, RecordedRequest


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
    assert not (tmp_path / "remaining-users.txt").exists()


def test_a_journey_given_twice_is_one_journey(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    result = run_cli(
        "remove-users",
        *api(cli_server),
        "--journey",
        WELCOME,
        "--journey",
        WELCOME,
        "user-1",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("removed 1 user from 1 journey: 1 request in ")
    assert cli_emulator.users_in(WELCOME) == set(USERS) - {"user-1"}


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
        "removed 4 users from all journeys; not confirmed for 2 users (written to retry.txt), in "
    )
    assert_one_error_line(
        result.stderr,
        "1 removal request failed; first: ServerError: ",
        "-> 503",
        "finish with: journey-async remove-users --all-journeys --users-file retry.txt",
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
    assert (tmp_path / "remaining-users.txt").read_text() == "user-1\nuser-2\n"
    assert cli_emulator.users_in(WELCOME) == set(USERS)
    assert_one_error_line(
        result.stderr,
        "the API refused the token (401",
        "check --token; nothing was removed",
        f"remove-users --journey={WELCOME} --journey={WINBACK} --users-file remaining-users.txt",
    )
    assert SECRET not in result.stdout + result.stderr


def test_a_journey_id_that_would_change_the_path_is_a_usage_error_before_anything(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    # As for the users and as `stats` does for its ids: refused up front, not
    # a failed run that writes a file and suggests re-running the same id.
    result = run_cli("remove-users", *api(cli_server), "--journey", "../x", "user-1", cwd=tmp_path)

    assert result.returncode == 2
    assert_one_error_line(result.stderr, "journey id '../x' would change the request's URL path")
    assert result.stdout == ""
    assert not (tmp_path / "remaining-users.txt").exists()
    assert cli_emulator.requests == []


# --- Ctrl-C -----------------------------------------------------------------------------------


MANY = [f"many-{n:03d}" for n in range(60)]


def start_removal(server: EmulatorServer, tmp_path: Path) -> subprocess.Popen[str]:
    """``remove-users`` of `MANY` in batches of 5, two at a time, in a subprocess."""
    (tmp_path / "users.txt").write_text("\n".join(MANY) + "\n")
    command = [
        sys.executable,
        "-m",
        "journey_async",
        "remove-users",
        *api(server),
        "--journey",
        WELCOME,
        "--users-file",
        "users.txt",
        "--batch-size=5",
        "--concurrency=2",
    ]
    return subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
    )


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the removal did not get that far"
        time.sleep(0.005)


def removed_by(requests: Sequence[RecordedRequest]) -> list[str]:
    """Every user id the removals applied in *requests* carried, repeats kept."""
    return [
        user
        for r in requests
        if r.endpoint == "remove" and r.status == 200
        for user in r.json["user_ids"]
    ]


def finish(server: EmulatorServer, emulator: JourneyEmulator, tmp_path: Path) -> list[str]:
    """Re-run with the remaining file, as the error line says; the users it sent."""
    emulator.reset_counters()
    emulator.clear_faults()
    again = run_cli(
        "remove-users",
        *api(server),
        f"--journey={WELCOME}",
        "--users-file",
        "remaining-users.txt",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert emulator.users_in(WELCOME) == set(USERS)
    return removed_by(emulator.requests)


def test_ctrl_c_waits_for_the_batches_in_flight_and_a_rerun_finishes_the_job(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    cli_emulator.add_users(WELCOME, MANY)
    # Each removal is applied on arrival and answered later: a run that left
    # without waiting for its answers would not know who was removed.
    cli_emulator.inject(*[Fault.delay(0.2, after_apply=True)] * 12, endpoint="remove")

    with start_removal(cli_server, tmp_path) as process:
        wait_for(lambda: cli_emulator.removals_applied >= 2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    left = cli_emulator.users_in(WELCOME) - set(USERS)
    remaining = (tmp_path / "remaining-users.txt").read_text().splitlines()
    # The batches in flight were waited for: the file holds exactly who is left.
    assert set(remaining) == left
    assert remaining == [user for user in MANY if user in left]  # input order
    assert 0 < len(left) < len(MANY)
    assert "interrupted: no new batch is sent" in stderr
    assert "finish with: journey-async remove-users --journey=j-welcome" in stderr
    assert f"not confirmed for {len(left)} users (written to remaining-users.txt)" in stdout
    # Removed at most once each, and the re-run sends exactly the others, once.
    assert sorted(removed_by(cli_emulator.requests)) == sorted(set(MANY) - left)
    assert sorted(finish(cli_server, cli_emulator, tmp_path)) == sorted(left)


def test_a_second_ctrl_c_stops_at_once_counting_batches_in_flight_as_not_confirmed(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    cli_emulator.add_users(WELCOME, MANY)
    # Every removal is held long past the grace period: only a second Ctrl-C ends the run.
    cli_emulator.inject(*[Fault.delay(60)] * 2, endpoint="remove")

    with start_removal(cli_server, tmp_path) as process:
        wait_for(lambda: cli_emulator.in_flight == 2)
        process.send_signal(signal.SIGINT)
        assert process.stderr is not None
        # The first Ctrl-C is handled (its note is out) before the second one.
        ready, _, _ = select.select([process.stderr], [], [], 30)
        assert ready, "no word of the first Ctrl-C"
        first_note = process.stderr.readline()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "interrupted: no new batch is sent" in first_note
    remaining = (tmp_path / "remaining-users.txt").read_text().splitlines()
    # Nothing was confirmed: the two batches in flight count as not removed.
    assert remaining == MANY
    assert "removed 0 users from 1 journey; not confirmed for 60 users" in stdout
    assert sorted(finish(cli_server, cli_emulator, tmp_path)) == sorted(MANY)


def test_a_ctrl_c_after_the_last_batch_went_out_says_nothing_is_left_to_rerun(
    cli_server: EmulatorServer, cli_emulator: JourneyEmulator, tmp_path: Path
) -> None:
    cli_emulator.add_users(WELCOME, MANY)
    # Every batch applied on arrival, answered later: Ctrl-C once the last two
    # are applied lands while they are in flight, and waiting confirms them.
    cli_emulator.inject(*[Fault.delay(0.3, after_apply=True)] * 12, endpoint="remove")

    with start_removal(cli_server, tmp_path) as process:
        wait_for(lambda: cli_emulator.removals_applied >= 12)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert cli_emulator.users_in(WELCOME) == set(USERS)
    assert (tmp_path / "remaining-users.txt").read_text() == ""
    assert "removed 60 users from 1 journey; not confirmed for 0 users" in stdout
    # No re-run to offer: it would be refused for want of users (exit 2).
    assert "finish with" not in stderr
    assert stderr.splitlines()[-1] == (
        "journey-async: interrupted, but every user was confirmed removed: nothing is left to do"
    )
