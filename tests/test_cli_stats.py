"""
``journey-async stats`` end to end: a subprocess against the emulator served
by this process, in each output format.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import EMPTY, MISSING, SECRET, TOKEN, WELCOME, WINBACK, api, cli_env, run_cli

from journey_async import JourneyPoint, JourneyStats, MessageStats, StatsSuccess
from journey_async._cli._stats import _write_csv
from journey_async.testing import (
    EmulatorServer,
    JourneyEmulator,
    message_point,
    serve_emulator,
)


def test_stats_json_is_one_object_per_journey_in_input_order(
    cli_server: EmulatorServer, tmp_path: Path
) -> None:
    result = run_cli(
        "stats",
        *api(cli_server),
        "--format",
        "json",
        WINBACK,
        MISSING,
        WELCOME,
        EMPTY,
        cwd=tmp_path,
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


def test_stats_csv_is_one_row_per_point(cli_server: EmulatorServer, tmp_path: Path) -> None:
    result = run_cli(
        "stats", *api(cli_server), "--format=csv", WELCOME, EMPTY, WINBACK, cwd=tmp_path
    )

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
    cli_server: EmulatorServer, tmp_path: Path
) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{WELCOME}\n\n  {WINBACK}  \n{WELCOME}\n")
    env = cli_env(PUSHWOOSH_API_TOKEN=TOKEN, PUSHWOOSH_JOURNEY_BASE_URL=cli_server.url)

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


def test_a_wrong_token_fails_every_journey_and_is_never_printed(
    cli_server: EmulatorServer, tmp_path: Path
) -> None:
    env = cli_env(PUSHWOOSH_API_TOKEN=SECRET)

    result = run_cli(
        "stats", "--base-url", cli_server.url, "--format", "json", WELCOME, cwd=tmp_path, env=env
    )

    assert result.returncode == 1
    [outcome] = json.loads(result.stdout)
    assert outcome["error"]["type"] == "AuthenticationError"
    assert outcome["error"]["status_code"] == 401
    assert SECRET not in result.stdout + result.stderr


# Each a formula to a spreadsheet (OWASP's "CSV injection" list), from the server.
_FORMULAS = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_stats_csv_makes_no_text_cell_a_formula_and_json_stays_exact(tmp_path: Path) -> None:
    emulator = JourneyEmulator(token=TOKEN)
    for n, formula in enumerate(_FORMULAS):
        emulator.add_journey(
            f"j-{n}",
            title=formula,
            points=[message_point(formula, 5, 1, campaign_code=formula, preset_code=formula)],
        )
    # An id (the user's) is text too.
    emulator.add_journey("=1+1", title="Plain", points=[message_point("p", 5, 1)])
    ids = [*(f"j-{n}" for n in range(len(_FORMULAS))), "=1+1"]
    with serve_emulator(emulator) as server:
        # Bytes: text mode would read the CR of "\rx" as a line end.
        as_csv = subprocess.run(  # noqa: S603 - this interpreter, our own module
            [sys.executable, "-m", "journey_async", "stats", *api(server), "--format=csv", *ids],
            capture_output=True,
            cwd=tmp_path,
            env=cli_env(),
            timeout=60,
            check=False,
        )
        as_json = run_cli("stats", *api(server), "--format=json", *ids, cwd=tmp_path)

    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout.decode(), newline="")))
    text = ("journey_title", "point_title", "campaign_code", "preset_code")
    for row, formula in zip(rows, _FORMULAS, strict=False):
        assert [row[column] for column in text] == ["'" + formula] * 4
    last = rows[-1]
    assert (last["journey_id"], last["journey_title"]) == ("'=1+1", "Plain")
    assert (last["kind"], last["sent"], last["opened"]) == ("message", "5", "1")
    assert len(rows) == len(ids)

    assert as_json.returncode == 0, as_json.stderr
    journeys = json.loads(as_json.stdout)
    assert [journey["title"] for journey in journeys] == [*_FORMULAS, "Plain"]
    assert journeys[0]["points"][0]["campaign_code"] == _FORMULAS[0]
    assert journeys[-1]["id"] == "=1+1"


def test_stats_csv_writes_a_negative_number_as_a_number() -> None:
    # The client refuses a negative count from the wire; a float can still
    # be written as -0.0 or come from a fake: a number is never made text.
    stat = MessageStats(sent=-5, opened=0, conversion=-0.5)
    stats = JourneyStats(title="-x", points=(JourneyPoint(title="p", stat=stat),))
    out = io.StringIO()

    _write_csv([StatsSuccess("j", stats)], out)

    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert (row["journey_title"], row["sent"], row["conversion"]) == ("'-x", "-5", "-0.5")
