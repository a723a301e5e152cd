"""``gradlint rules --format json`` and color in the text format (NO_COLOR / FORCE_COLOR, and only
on a terminal)."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gradlint.lint.registry import discover_rules
from gradlint.report.term import use_color

ESC = "\x1b["
SYNTAX_ERROR = "rules/GL900-syntax-error/bad.py"  # a diagnostic without importing torch


def test_rules_json(run_gradlint: Any, repo_root: Path) -> None:
    proc = run_gradlint("rules", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rules = json.loads(proc.stdout)
    assert [r["code"] for r in rules] == [i.rule.code for i in discover_rules()]
    folders = {p.name.split("-", 1)[0] for p in (repo_root / "rules").iterdir()
               if (p / "check.py").is_file()}
    assert {r["code"] for r in rules} == folders
    for r in rules:
        assert set(r) == {"code", "name", "severity", "enabled_by_default", "summary"}
        assert r["severity"] in ("error", "warning", "info")
        assert isinstance(r["enabled_by_default"], bool) and r["summary"]
    by_code = {r["code"]: r for r in rules}
    assert by_code["GL100"] == {**by_code["GL100"], "name": "unused-suppression",
                                "severity": "warning", "enabled_by_default": False}
    assert by_code["GL101"]["enabled_by_default"] is True


def test_rules_text_marks_default_off(run_gradlint: Any) -> None:
    proc = run_gradlint("rules")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("GL100"))
    assert "off by default" in line


def run_env(repo_root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    full.update(env)
    return subprocess.run(["gradlint", SYNTAX_ERROR], cwd=repo_root, env=full,
                          capture_output=True, text=True, timeout=120, check=False)


def test_no_color_when_piped(repo_root: Path) -> None:
    proc = run_env(repo_root)
    assert proc.returncode == 2
    assert "GL900 [error]" in proc.stdout and ESC not in proc.stdout


def test_force_color_colors_code_and_severity(repo_root: Path) -> None:
    proc = run_env(repo_root, FORCE_COLOR="1")
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"{SYNTAX_ERROR}:15:25: {ESC}")  # the location stays plain
    assert "GL900" in first and "[error]" in first and ESC in first
    assert "GL900 [error]" not in first  # both are wrapped in escape sequences


@pytest.mark.parametrize("value", ["1", "", "0"])
def test_no_color_wins_over_force_color(repo_root: Path, value: str) -> None:
    proc = run_env(repo_root, FORCE_COLOR="1", NO_COLOR=value)
    assert "GL900 [error]" in proc.stdout and ESC not in proc.stdout


def test_force_color_never_touches_json_or_output_file(repo_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "FORCE_COLOR": "1"}
    env.pop("NO_COLOR", None)
    out = tmp_path / "report.txt"
    for args in (["--format", "json"], ["--format", "github"], ["--output", str(out)]):
        proc = subprocess.run(["gradlint", SYNTAX_ERROR, *args], cwd=repo_root, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert ESC not in proc.stdout
    assert ESC not in out.read_text(encoding="utf-8")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("env", "tty", "expected"), [
    ({}, False, False),
    ({}, True, True),
    ({"NO_COLOR": ""}, True, False),      # set to any value, even empty
    ({"NO_COLOR": "1"}, True, False),
    ({"FORCE_COLOR": "1"}, False, True),
    ({"FORCE_COLOR": ""}, False, False),  # an empty FORCE_COLOR does not force
    ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),
])
def test_use_color(env: dict[str, str], tty: bool, expected: bool) -> None:
    stream = FakeTTY() if tty else io.StringIO()
    assert use_color(stream, env) is expected
