"""Sessions: `nox -s tests`, `nox -s bench`, `nox -s gate`, `nox -s reproduce`, `nox -s lint`.

Every session builds its own virtualenv and installs what it needs, so a
fresh clone works with nothing but nox installed. torch is installed first,
pinned by RNNSUITE_TORCH_SPEC (default ``torch==2.13.0``): on the project's
machines that pin resolves to the local CPU wheel, and because the package
itself only asks for ``torch>=2.4`` nothing else is fetched afterwards — in
particular never a multi-GB CUDA build. On a machine of your own set the spec
to whatever torch you want (``RNNSUITE_TORCH_SPEC="torch==2.5.1"``), or extra
pip arguments such as a CUDA or CPU index via RNNSUITE_TORCH_PIP_ARGS.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

ROOT = Path(__file__).parent
TORCH_SPEC = os.environ.get("RNNSUITE_TORCH_SPEC", "torch==2.13.0")
TORCH_PIP_ARGS = shlex.split(os.environ.get("RNNSUITE_TORCH_PIP_ARGS", ""))


def _data_env() -> dict[str, str]:
    """Point the data loaders at ../shared/data when it sits beside the clone."""
    env: dict[str, str] = {}
    shared = (ROOT.parent / "shared" / "data").resolve()
    if "RNNSUITE_DATA" not in os.environ and shared.is_dir():
        env["RNNSUITE_DATA"] = str(shared)
    return env


def _install(session: nox.Session, *extras: str) -> None:
    session.install(*TORCH_PIP_ARGS, TORCH_SPEC)
    target = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", target)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (CPU; CUDA tests skip with a reason when no GPU). The native
    kernels are required here (RNNSUITE_NATIVE=1) so that a failed build fails the run
    instead of quietly testing the torch ops alone; set RNNSUITE_NATIVE=auto to allow it."""
    _install(session, "test", "ray")  # tests/test_ray.py runs a real Ray instance
    env = {**_data_env(), "RNNSUITE_NATIVE": os.environ.get("RNNSUITE_NATIVE", "1")}
    session.run("pytest", *session.posargs, env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmark (the quick matrix unless --matrix says otherwise) and its report."""
    _install(session)
    session.run("python", "-m", "bench", "run", "--report", *session.posargs, env=_data_env())


@nox.session
def gate(session: nox.Session) -> None:
    """Regression gate against results/baseline (add -- --deterministic-only to skip timing)."""
    _install(session)
    session.run("python", "-m", "bench", "gate", *session.posargs, env=_data_env())


@nox.session
def reproduce(session: nox.Session) -> None:
    """Re-run the documents' recipes (3 seeds; -- --seeds 0 for one) and write the
    reproduction report to reports/reproduction/."""
    _install(session)
    session.run("python", "-m", "bench", "reproduce", *session.posargs, env=_data_env())


@nox.session
def quality(session: nox.Session) -> None:
    """Train every cell of the quality matrix for its budget (architecture × implementation
    × layers × regularization × input, Transformer included) and write reports/quality/."""
    _install(session)
    session.run("python", "-m", "bench", "quality", *session.posargs, env=_data_env())


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
