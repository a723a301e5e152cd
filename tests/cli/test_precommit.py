"""The pre-commit hook, run by the real pre-commit tool in a temporary git repository (the
`repo: local` / `language: system` variant, so nothing is downloaded)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """repos:
  - repo: local
    hooks:
      - id: gradlint
        name: gradlint
        entry: gradlint
        language: system
        types: [python]
        require_serial: true
"""

pytestmark = pytest.mark.skipif(shutil.which("pre-commit") is None,
                                reason="the pre-commit tool is a test dependency")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_hook_fails_on_the_sick_model_and_passes_on_the_fixed_one(tmp_path: Path) -> None:
    _run(["git", "init", "-q"], tmp_path)
    (tmp_path / ".pre-commit-config.yaml").write_text(CONFIG)
    shutil.copy(ROOT / "examples" / "deep_sigmoid.py", tmp_path / "sick.py")
    shutil.copy(ROOT / "examples" / "deep_sigmoid_fixed.py", tmp_path / "fixed.py")
    (tmp_path / "train.py").write_text(  # a staged training script is never run
        "import torch.nn as nn\nmodel = nn.Linear(2, 2)\nfor step in range(3):\n"
        "    open('ran.txt', 'w').write('trained')\n")
    _run(["git", "add", "."], tmp_path)

    sick = _run(["pre-commit", "run", "--files", "sick.py", "train.py"], tmp_path)
    assert sick.returncode == 1, sick.stdout + sick.stderr
    assert "GL101" in sick.stdout and "GL907" in sick.stdout
    assert not (tmp_path / "ran.txt").exists()

    fixed = _run(["pre-commit", "run", "--files", "fixed.py"], tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Passed" in fixed.stdout
