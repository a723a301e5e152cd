"""Every shipped model's JSON report is the stored one (bench/snapshot.py): restructuring
gradlint must not move a number or a message. A change meant to move them rewrites the snapshot
(``python -m bench.snapshot --write``) and says so in its commit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_every_shipped_models_report_is_the_stored_one() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.snapshot"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("args", [["--version"], ["examples/deep_sigmoid.py"],
                                  ["examples/deep_sigmoid.py", "--format", "json"]])
def test_python_m_gradlint_is_the_script(args: list[str]) -> None:
    env = dict(os.environ, NO_COLOR="1")
    script = subprocess.run(["gradlint", *args], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=300)
    module = subprocess.run([sys.executable, "-m", "gradlint", *args], cwd=ROOT,
                            capture_output=True, text=True, env=env, timeout=300)
    assert module.returncode == script.returncode
    assert _untimed(module.stdout) == _untimed(script.stdout)


def _untimed(text: str) -> str:
    """The output without its timings (JSON "seconds", the text header's "0.08 s)")."""
    return re.sub(r'"seconds": [0-9.e-]+|[0-9.]+ s\)', "<time>", text)
