"""
The project's sessions: ``nox -s tests``, ``lint``, ``typing``, ``bench``
(``nox -s bench -- fanout`` runs one benchmark, ``nox -s bench -- peers --config A``
one with its options), and ``mutants``, mutation testing of the transport and
the retry loop (``nox -s mutants -- journey_async/_http/_wire.py`` for one module).

Python versions come from the trove classifiers in pyproject.toml, so adding a
version there adds it here.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True
# Only the versions installed are run; CI sets CI=true, which would make every
# other classifier version an error on a machine that has just one Python.
nox.options.error_on_missing_interpreters = False

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)


def install(session: nox.Session, *groups: str, extras: str = "cli") -> None:
    session.install("-e", f".[{extras}]", *nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    install(session, "tests")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    install(session, "typing", "bench")
    session.run("mypy", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    install(session, "bench")
    # ``nox -s bench -- peers --config A`` runs one benchmark with its options.
    if session.posargs:
        session.run("python", "-m", f"benchmarks.{session.posargs[0]}", *session.posargs[1:])
        return
    for benchmark in ["peers", "fanout", "batching", "hotpath", "ratelimit"]:
        session.run("python", "-m", f"benchmarks.{benchmark}")


@nox.session
def mutants(session: nox.Session) -> None:
    # Not a default session: all modules take about two hours on two cores.
    install(session, "tests")
    session.install("mutmut>=2.5,<3")  # only its mutant generator is used
    session.run("python", "-m", "benchmarks.mutants", *session.posargs)
