"""Shared fixtures: the checkout root and a runner for the installed ``gradlint`` command."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RunGradlint = Callable[..., "subprocess.CompletedProcess[str]"]
TreeDigest = Callable[[Path], dict[bytes, str]]


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


def _tree_digest(root: Path) -> dict[bytes, str]:
    """Every file under ``root`` (names as bytes: they need not be UTF-8) -> its SHA-256."""
    out: dict[bytes, str] = {}
    for folder, _, names in os.walk(os.fsencode(root)):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, os.fsencode(root))] = hashlib.sha256(
                    f.read()).hexdigest()
    return out


@pytest.fixture(scope="session")
def tree_digest() -> TreeDigest:
    """``tree_digest(root)``: compare before and after a run to prove no file changed, none
    appeared and none went away."""
    return _tree_digest
