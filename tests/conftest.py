"""Shared fixtures: the checkout root and a runner for the installed ``gradlint`` command."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RunGradlint = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout (holds ``examples/`` and ``rules/``)."""
    return ROOT


@pytest.fixture(scope="session")
def run_gradlint() -> RunGradlint:
    """``run_gradlint(*args, cwd=...)`` runs the installed console command, capturing output."""

    def run(*args: object, cwd: Path | str = ROOT,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["gradlint", *map(str, args)], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, check=False)

    return run
