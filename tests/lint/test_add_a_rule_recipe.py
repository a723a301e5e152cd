"""docs/adding-a-rule.md, followed once: its four files, written as a rule folder of a project
that names it in ``extend-rules``, make a rule that the installed ``gradlint`` lists, explains
and runs through the whole pipeline (load, trace, estimate, rules, report)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

FOLDER = "GL150-starved-first-layer"
FILES = ("check.py", "README.md", "bad.py", "good.py")


def recipe_files(repo_root: Path) -> dict[str, str]:
    """File name -> text of each code block the recipe labels `rules/<FOLDER>/<file>`:."""
    text = (repo_root / "docs" / "adding-a-rule.md").read_text(encoding="utf-8")
    blocks = re.findall(rf"^`rules/{FOLDER}/([\w.]+)`:\n\n```\w*\n(.*?)^```$", text, re.M | re.S)
    found = dict(blocks)
    assert sorted(found) == sorted(FILES), f"docs/adding-a-rule.md lost a file: {sorted(found)}"
    return found


def test_recipe_rule_runs_through_extend_rules(run_gradlint: Any, repo_root: Path,
                                               tmp_path: Path) -> None:
    files = recipe_files(repo_root)
    folder = tmp_path / "tools" / "gradlint_rules" / FOLDER
    folder.mkdir(parents=True)
    for name in ("check.py", "README.md"):
        (folder / name).write_text(files[name], encoding="utf-8")
    for name in ("bad.py", "good.py"):  # the models a project would lint
        (tmp_path / name).write_text(files[name], encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gradlint]\nextend-rules = ["tools/gradlint_rules"]\n', encoding="utf-8")

    listed = run_gradlint("rules", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rule = {r["code"]: r for r in json.loads(listed.stdout)}["GL150"]
    assert (rule["name"], rule["severity"]) == ("starved-first-layer", "warning")
    page = run_gradlint("explain", "GL150", cwd=tmp_path)
    assert page.returncode == 0, page.stderr
    assert page.stdout.strip() == files["README.md"].strip()

    proc = run_gradlint("bad.py", "good.py", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert {m["target"]: m["status"] for m in report["models"]} == {
        "bad.py::DeepSigmoid": "ok", "good.py::ShallowReLU": "ok"}
    hits = [d for d in report["diagnostics"] if d["code"] == "GL150"]
    assert [(d["file"], d["line"], d["module"]) for d in hits] == [("bad.py", 7, "layers.0.0")]
    assert hits[0]["name"] == "starved-first-layer" and hits[0]["severity"] == "warning"
    assert "10^-" in hits[0]["message"] and hits[0]["fix"]["message"]
