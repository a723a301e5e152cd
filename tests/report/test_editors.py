"""The README's VS Code problem matcher parses gradlint's own text output (docs/output.md: `text`).

The tasks.json snippet is read out of README.md, so the documentation and this test cannot drift:
its JavaScript regexp is translated to Python ``re`` and run, in the task's environment, over
``gradlint`` on the deep sigmoid example plus a training script (an info finding, an absolute
path); every group must agree with the JSON report of the same run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

DEEP = "examples/deep_sigmoid.py"
SCRIPT = """import torch.nn as nn

model = nn.Linear(4, 4)
for step in range(3):
    model.zero_grad()
"""


def readme_task(repo_root: Path) -> dict[str, Any]:
    """The gradlint task of the README's tasks.json block."""
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        if '"problemMatcher"' not in block:
            continue
        data = json.loads(block)  # plain JSON: tasks.json would allow comments, this test not
        if isinstance(data, dict) and "tasks" in data:
            return next(t for t in data["tasks"] if "problemMatcher" in t)
    raise AssertionError("README.md has no VS Code tasks.json block with a problemMatcher")


def js_regex(source: str) -> re.Pattern[str]:
    """A VS Code (JavaScript) regexp as Python ``re``: named groups are spelled ``(?P<..>``,
    ``\\/`` is ``/``, and ``\\d``/``\\w`` are ASCII-only as in JavaScript."""
    assert not re.search(r"\\[uxcpPk]", source), "translate this escape before using it"
    python = source.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")
    return re.compile(python.replace("\\/", "/"), re.ASCII)


@pytest.fixture(scope="module")
def task(repo_root: Path) -> dict[str, Any]:
    return readme_task(repo_root)


def run(repo_root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["gradlint", *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=300, check=False, env=env)


def test_task_snippet_is_sane(task: dict[str, Any]) -> None:
    matcher = task["problemMatcher"]
    assert task["command"].split()[0] == "gradlint"
    assert matcher["owner"] == "gradlint"
    assert "NO_COLOR" in task["options"]["env"]  # a task runs in a terminal: colors off
    pattern = matcher["pattern"]
    assert {k: pattern[k] for k in ("file", "line", "column", "code", "severity", "message")}


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_problem_matcher_parses_gradlint_output(task: dict[str, Any], repo_root: Path,
                                                tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    # as in the editor's terminal: colors would be on, the task's env turns them off
    env = {**os.environ, "FORCE_COLOR": "1", **task["options"]["env"]}
    text = run(repo_root, env, DEEP, str(script))
    report = run(repo_root, env, DEEP, str(script), "--format", "json")
    assert text.returncode == report.returncode == 1, text.stderr
    expected = json.loads(report.stdout)["diagnostics"]
    assert {d["severity"] for d in expected} == {"error", "warning", "info"}

    pattern = task["problemMatcher"]["pattern"]
    regex = js_regex(pattern["regexp"])
    matches = [m for m in map(regex.search, text.stdout.splitlines()) if m]
    assert len(matches) == len(expected), text.stdout  # help lines and the chart never match
    for m, d in zip(matches, expected, strict=True):
        assert m.group(pattern["file"]) == d["file"]
        assert int(m.group(pattern["line"])) == d["line"]
        assert int(m.group(pattern["column"])) == d["col"]
        assert m.group(pattern["code"]) == d["code"]
        assert m.group(pattern["severity"]) == d["severity"]
        assert m.group(pattern["message"]) == d["message"]
    files = {m.group(pattern["file"]) for m in matches}
    assert files == {DEEP, str(script)}  # relative and absolute paths: fileLocation autoDetect
    assert task["problemMatcher"]["fileLocation"][0] == "autoDetect"
