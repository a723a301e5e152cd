"""``--format github``: workflow-command annotations, escaped as the Actions toolkit does, the most
important first and at most 10 per level, with nothing lost beyond the cap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gradlint.core.values import Diagnostic, Fix, Location, Report
from gradlint.report.github import annotation, escape_data, escape_property, to_github


def diag(code: str, severity: str, line: int, file: str = "m.py", message: str = "msg",
         **loc: int) -> Diagnostic:
    return Diagnostic(code, "name", severity, message,  # type: ignore[arg-type]
                      Location(file, line, loc.get("col", 1), loc.get("end_line"),
                               loc.get("end_col")))


@pytest.mark.parametrize(("raw", "data", "prop"), [
    ("plain", "plain", "plain"),
    ("100% sure", "100%25 sure", "100%25 sure"),
    ("a\r\nb\nc", "a%0D%0Ab%0Ac", "a%0D%0Ab%0Ac"),
    ("a: b, c", "a: b, c", "a%3A b%2C c"),
    ("%0A", "%250A", "%250A"),  # an already escaped-looking value is escaped again
    ("C:\\x,y.py", "C:\\x,y.py", "C%3A\\x%2Cy.py"),
])
def test_escaping(raw: str, data: str, prop: str) -> None:
    assert escape_data(raw) == data
    assert escape_property(raw) == prop


def test_annotation_line(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    d = Diagnostic("GL101", "vanishing-gradient", "error", "shrinks by 99%: bad\nreally",
                   Location("dir/a,b.py", 15, 29, 15, 52), fix=Fix("use nn.ReLU"))
    assert annotation(d, str(tmp_path)) == (
        "::error file=dir/a%2Cb.py,line=15,endLine=15,col=29,endColumn=52,"
        "title=gradlint (GL101)::shrinks by 99%25: bad%0Areally%0Ahelp: use nn.ReLU")


def test_levels_and_columns() -> None:
    assert annotation(diag("GL102", "warning", 3)).startswith("::warning file=m.py,line=3,")
    info = annotation(diag("GL904", "info", 4))
    assert info.startswith("::notice file=m.py,line=4,endLine=4,col=1,title=gradlint (GL904)::")
    assert "endColumn" not in info  # unknown end column
    multi = annotation(diag("GL101", "error", 4, col=3, end_line=6, end_col=2))
    assert "endLine=6" in multi and "col=" not in multi and "endColumn=" not in multi


def test_cap_orders_by_severity_and_keeps_everything() -> None:
    diags = ([diag("GL904", "info", i) for i in range(1, 13)]
             + [diag("GL101", "error", 100 + i) for i in range(13)]
             + [diag("GL102", "warning", 200 + i) for i in range(2)])
    lines = to_github(Report(), diags).splitlines()
    commands = [line.split(" ", 1)[0] for line in lines if line.startswith("::")]
    assert commands == ["::error"] * 10 + ["::warning"] * 2 + ["::notice"] * 10
    # within a level, file order
    assert [int(line.split("line=")[1].split(",")[0]) for line in lines[:10]] == list(
        range(100, 110))
    plain = [line for line in lines if not line.startswith("::")]
    assert plain[:-1] == [
        *(f"m.py:{100 + i}:1: GL101 [error] msg" for i in range(10, 13)),
        "m.py:11:1: GL904 [info] msg", "m.py:12:1: GL904 [info] msg"]
    assert plain[-1] == ("gradlint: 3 more errors and 2 more notices not shown as "
                         "annotations; see the job log")


def test_no_summary_under_the_cap() -> None:
    out = to_github(Report(), [diag("GL101", "error", 1)])
    assert out.count("\n") == 1 and "not shown" not in out
    assert to_github(Report(), []) == ""


def test_end_to_end_findings(run_gradlint: Any) -> None:
    proc = run_gradlint("examples/deep_sigmoid.py", "--format", "github")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4  # two annotations, then what was examined and the verdict
    assert lines[2:] == ["1 file examined: 1 imported; 1 model checked.",
                         "gradlint: 1 error, 1 warning in 1 checked model."]
    assert lines[0].startswith("::error file=examples/deep_sigmoid.py,line=15,endLine=15,"
                               "col=29,endColumn=")
    assert ",title=gradlint (GL101)::vanishing gradient" in lines[0]
    assert "%0Ahelp: " in lines[0]
    assert lines[1].startswith("::warning file=examples/deep_sigmoid.py,line=15,")
    assert "title=gradlint (GL102)::" in lines[1]


def test_end_to_end_clean_and_failed(run_gradlint: Any, repo_root: Path) -> None:
    clean = run_gradlint("examples/deep_sigmoid_fixed.py", "--format", "github")
    assert clean.returncode == 0
    assert clean.stdout == ("1 file examined: 1 imported; 1 model checked.\n"
                            "gradlint: no problems in 1 checked model.\n")
    failed = run_gradlint("GL900-syntax-error/bad.py", "--format", "github",
                          cwd=repo_root / "rules")
    assert failed.returncode == 2
    # the path is repository-relative even when run from a subfolder
    assert failed.stdout.startswith(
        "::error file=rules/GL900-syntax-error/bad.py,line=15,endLine=15,col=25,")
    assert "title=gradlint (GL900)::syntax error" in failed.stdout
