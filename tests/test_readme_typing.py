"""
The Python samples of README.md and docs/ pass mypy --strict and pyright
strict, as users' code that uses the library as documented must.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from samples import ROOT, Sample, markdown_files, python_samples

SAMPLES = [sample for path in markdown_files() for sample in python_samples(path)]


def write_samples(directory: Path) -> list[Path]:
    # One module per sample, named after its line, so a message points at it.
    files = []
    for sample in SAMPLES:
        file = directory / module_name(sample)
        file.write_text(sample.code, encoding="utf-8")
        files.append(file)
    return files


def module_name(sample: Sample) -> str:
    stem = sample.path.stem.lower().replace("-", "_")
    return f"sample_{stem}_line_{sample.line}.py"


def where(output: str, samples: list[Sample]) -> str:
    for sample in samples:
        output = output.replace(module_name(sample), f"the sample at {sample.name}")
    return output


def test_readme_has_samples() -> None:
    assert len(SAMPLES) >= 5
    assert {sample.path.name for sample in SAMPLES} >= {"README.md", "retries.md"}
    assert any("StatsSuccess" in sample.code for sample in SAMPLES)


def test_readme_samples_pass_mypy_strict(tmp_path: Path) -> None:
    files = write_samples(tmp_path)
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-version=3.11",
            f"--cache-dir={ROOT / '.mypy_cache' / 'readme'}",
            *map(str, files),
        ],
        cwd=tmp_path,  # away from pyproject.toml's own mypy files
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, where(result.stdout + result.stderr, SAMPLES)


def test_readme_samples_pass_pyright_strict(tmp_path: Path) -> None:
    files = write_samples(tmp_path)
    config = {"typeCheckingMode": "strict", "pythonVersion": "3.11"}
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config), encoding="utf-8")
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-m",
            "pyright",
            f"--pythonpath={sys.executable}",
            "--project",
            str(tmp_path),
            *map(str, files),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, where(result.stdout + result.stderr, SAMPLES)


@pytest.mark.parametrize(
    "pattern",
    [
        "if result.ok:\n        return result.stats.title",
        "if result.stats is not None:\n        return result.stats.title",
    ],
)
def test_ok_narrows_under_mypy(tmp_path: Path, pattern: str) -> None:
    # The narrowing the README promises, and the ok-checking users write.
    code = (
        "import journey_async as ja\n\n\n"
        "def title(result: ja.StatsResult) -> str:\n"
        f"    {pattern}\n"
        "    return type(result.error).__name__\n"
    )
    (tmp_path / "narrow.py").write_text(code, encoding="utf-8")
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            f"--cache-dir={ROOT / '.mypy_cache' / 'readme'}",
            "narrow.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout


# A whole user program --------------------------------------------------------

USER_PROGRAM = ROOT / "tests" / "user_program.py"


def public_names() -> set[str]:
    import journey_async
    import journey_async.redis
    import journey_async.testing

    modules = (journey_async, journey_async.testing, journey_async.redis)
    return {name for module in modules for name in module.__all__} - {"__version__"}


def test_the_user_program_uses_every_public_name() -> None:
    # A new public name joins the program, so that its types are checked too.
    code = USER_PROGRAM.read_text(encoding="utf-8")
    missing = {name for name in public_names() if not re.search(rf"\b{name}\b", code)}
    assert not missing, f"tests/user_program.py does not use {sorted(missing)}"


@pytest.mark.parametrize("checker", ["mypy", "pyright"])
def test_the_user_program_passes_strict_type_checking(tmp_path: Path, checker: str) -> None:
    # Away from the project's own configuration, as a user's project is.
    program = tmp_path / "user_program.py"
    program.write_text(USER_PROGRAM.read_text(encoding="utf-8"), encoding="utf-8")
    if checker == "mypy":
        cache = f"--cache-dir={ROOT / '.mypy_cache' / 'readme'}"
        command = ["-m", "mypy", "--strict", "--python-version=3.11", cache, program.name]
    else:
        config = {"typeCheckingMode": "strict", "pythonVersion": "3.11"}
        (tmp_path / "pyrightconfig.json").write_text(json.dumps(config), encoding="utf-8")
        command = ["-m", "pyright", f"--pythonpath={sys.executable}", program.name]
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
