"""``--format sarif``: valid SARIF 2.1.0 (the official OASIS schema) for clean runs, runs with
findings and runs with failed targets, with repository-relative locations."""

from __future__ import annotations

import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gradlint import __version__
from gradlint.core.values import Location
from gradlint.lint.registry import discover_rules
from gradlint.report.sarif import readme_section, region

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"
DEEP = "examples/deep_sigmoid.py"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def sarif(run_gradlint: Any, *args: str, cwd: Path | None = None,
          expect: int) -> dict[str, Any]:
    proc = run_gradlint(*args, "--format", "sarif", **({"cwd": cwd} if cwd else {}))
    assert proc.returncode == expect, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, schema())
    return doc  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def findings(run_gradlint: Any) -> dict[str, Any]:
    return sarif(run_gradlint, "examples/deep_sigmoid.py", expect=1)


def test_clean_run_is_valid(run_gradlint: Any) -> None:
    doc = sarif(run_gradlint, "examples/deep_sigmoid_fixed.py", expect=0)
    assert doc["runs"][0]["results"] == []
    assert doc["runs"][0]["tool"]["driver"]["rules"]  # the rules are listed anyway


def test_findings_are_valid_results(findings: dict[str, Any]) -> None:
    assert findings["version"] == "2.1.0" and findings["$schema"]
    (run,) = findings["runs"]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["GL101", "GL102"]
    assert [r["level"] for r in results] == ["error", "warning"]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        (loc,) = r["locations"]
        phys = loc["physicalLocation"]
        assert phys["artifactLocation"] == {"uri": "examples/deep_sigmoid.py",
                                            "uriBaseId": "%SRCROOT%"}
        reg = phys["region"]
        assert reg["startLine"] == reg["endLine"] == 15
        assert reg["endColumn"] >= reg["startColumn"] + 1
        assert "\nhelp: " in r["message"]["text"]
    assert results[0]["locations"][0]["physicalLocation"]["region"]["startColumn"] == 29


def test_driver_lists_every_rule_with_its_readme(findings: dict[str, Any]) -> None:
    driver = findings["runs"][0]["tool"]["driver"]
    assert driver["name"] == "gradlint"
    assert driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    infos = discover_rules()
    assert [r["id"] for r in driver["rules"]] == [i.rule.code for i in infos]
    levels = {"error": "error", "warning": "warning", "info": "note"}
    for entry, info in zip(driver["rules"], infos, strict=True):
        assert entry["name"] == info.rule.name
        assert entry["shortDescription"]["text"] == info.rule.summary
        what = readme_section(info.readme, "What it does")
        assert what and entry["fullDescription"]["text"] == what
        assert entry["help"]["text"] == entry["help"]["markdown"] == info.readme
        assert entry["defaultConfiguration"]["level"] == levels[info.rule.severity]
        assert entry["properties"]["tags"]
    gl100 = next(r for r in driver["rules"] if r["id"] == "GL100")
    assert gl100["defaultConfiguration"]["enabled"] is False


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_failed_targets_are_results(run_gradlint: Any) -> None:
    doc = sarif(run_gradlint, "rules/GL903-trace-failed/bad.py",
                "rules/GL900-syntax-error/bad.py", expect=2)
    results = doc["runs"][0]["results"]
    assert sorted(r["ruleId"] for r in results) == ["GL900", "GL903"]
    for r in results:
        assert r["level"] == "error"
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith(f"rules/{r['ruleId']}-") and uri.endswith("/bad.py")


def test_uri_is_relative_to_the_repository_root(run_gradlint: Any, repo_root: Path) -> None:
    doc = sarif(run_gradlint, "deep_sigmoid.py", cwd=repo_root / "examples", expect=1)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in doc["runs"][0]["results"]}
    assert uris == {"examples/deep_sigmoid.py"}


def test_outside_a_repository_the_cwd_is_the_root(run_gradlint: Any, repo_root: Path,
                                                   tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "model.py").write_text(
        (repo_root / "examples/deep_sigmoid.py").read_text(encoding="utf-8"), encoding="utf-8")
    doc = sarif(run_gradlint, "pkg/model.py", cwd=tmp_path, expect=1)
    (run,) = doc["runs"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in run["results"]}
    assert uris == {"pkg/model.py"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")


def test_a_file_name_that_is_not_utf8(run_gradlint: Any, tree_digest: Any, repo_root: Path,
                                      tmp_path: Path) -> None:
    """``caf\\xe9.py`` (Latin-1 bytes) is checked like any other file; its URI percent-encodes
    the bytes and the messages show them as ``\\xe9``, in one valid document."""
    folder = tmp_path / "pkg"
    folder.mkdir()
    try:
        (folder / os.fsdecode(b"caf\xe9.py")).write_bytes((repo_root / DEEP).read_bytes())
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses a name that is not UTF-8")
    before = tree_digest(tmp_path)
    proc = subprocess.run(["gradlint", "pkg", "--format", "sarif"], cwd=tmp_path,
                          capture_output=True, check=False, timeout=300)
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    doc = json.loads(proc.stdout.decode("utf-8"))  # strict: the document is UTF-8
    jsonschema.validate(doc, schema())
    results = doc["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"GL101", "GL102"}  # checked, not GL901
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in results} == {"pkg/caf%E9.py"}
    assert "pkg/caf\\xe9.py:15" in results[0]["message"]["text"]
    assert tree_digest(tmp_path) == before


def test_region_columns() -> None:
    assert region(Location("m.py", 3, 5, 3, 9)) == {
        "startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 9}
    # an empty span still covers one character
    assert region(Location("m.py", 3, 5, 3, 5))["endColumn"] == 6
    # unknown end column: omitted, so the region runs to the end of the line
    assert region(Location("m.py", 7, 1)) == {"startLine": 7, "startColumn": 1, "endLine": 7}
    assert region(Location("m.py", 2, 4, 5, 2))["endColumn"] == 2  # multi-line span


def test_readme_section() -> None:
    text = "# GL1 x\n\n## What it does\n\nFlags it.\n\nTwice.\n\n## Why is this bad?\n\nNo.\n"
    assert readme_section(text, "What it does") == "Flags it.\n\nTwice."
    assert readme_section(text, "Missing") == ""


def test_related_locations_and_notes_validate(tmp_path: Path, monkeypatch: Any) -> None:
    from gradlint.core.values import Diagnostic, Fix, Report
    from gradlint.report.sarif import to_sarif

    monkeypatch.chdir(tmp_path)
    lib = "/opt/somewhere/site-packages/lib/model.py"
    diags = [
        Diagnostic("GL101", "vanishing-gradient", "error", "deep: 10%, a:b",
                   Location("net.py", 12, 9, 12, 30), "net.py::Net", "enc",
                   (Location(lib, 40, 5),), Fix("use ReLU")),
        Diagnostic("GL902", "needs-configuration", "info", "skipped", Location("net.py", 3)),
        Diagnostic("GL199", "custom", "warning", "no such rule", Location("sub dir/x.py", 1)),
    ]
    doc = json.loads(to_sarif(Report(), diags))
    jsonschema.validate(doc, schema())
    first, note, unknown = doc["runs"][0]["results"]
    assert first["message"]["text"] == "deep: 10%, a:b\nhelp: use ReLU"
    (rel,) = first["relatedLocations"]
    assert rel["physicalLocation"]["artifactLocation"] == {"uri": "file://" + lib}
    assert note["level"] == "note"
    assert "ruleIndex" not in unknown
    assert unknown["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "sub%20dir/x.py"
