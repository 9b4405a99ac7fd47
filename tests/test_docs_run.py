"""
Docs that run: every Python sample of README.md and docs/ runs, as written,
against the emulator served on 127.0.0.1, in a process of its own
(`run_sample` says how a sample that needs an account gets the emulator).
A sample that raises, or one whose functions cannot be called, fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_sample import BASE_URL_VARIABLE, JOURNEY_ID, USERS
from samples import ROOT, Sample, markdown_files, python_samples

from journey_async.testing import EmulatorServer, JourneyEmulator, serve_emulator

SAMPLES = [sample for path in markdown_files() for sample in python_samples(path)]
TOKEN = "docs-token"


@pytest.fixture
def docs_server() -> Iterator[EmulatorServer]:
    emulator = JourneyEmulator.with_sample_data(journeys=5, token=TOKEN)
    emulator.add_journey(JOURNEY_ID, title="Welcome", users=USERS)
    with serve_emulator(emulator) as server:
        yield server


def test_every_markdown_file_with_samples_is_read() -> None:
    files = {sample.path.relative_to(ROOT).as_posix() for sample in SAMPLES}
    assert {"README.md", "docs/performance.md", "docs/retries.md"} <= files


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.name for sample in SAMPLES])
def test_sample_runs_against_the_emulator(
    sample: Sample, docs_server: EmulatorServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PUSHWOOSH_API_TOKEN": TOKEN,
        BASE_URL_VARIABLE: docs_server.url,
        "PYTHONWARNINGS": "error::DeprecationWarning",
    }
    env.pop("JOURNEY_ASYNC_LOG", None)
    result = subprocess.run(  # noqa: S603 - this interpreter, the project's own samples
        [
            sys.executable,
            str(ROOT / "tests" / "run_sample.py"),
            str(sample.path.relative_to(ROOT)),
            str(sample.line),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, f"{sample.name}:\n{result.stdout}{result.stderr}"
    # Against the emulator, with its token: nothing was refused.
    requests = docs_server.emulator.requests
    assert requests, "the sample's functions sent nothing"
    assert all(request.authorized for request in requests)
