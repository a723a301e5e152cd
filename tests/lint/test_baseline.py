"""``--baseline FILE`` / ``--update-baseline`` end to end through the installed command, and the
baseline file's format and matching unit by unit (gradlint/lint/baseline.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gradlint.core.values import Diagnostic, Location, ModelReport, Report
from gradlint.lint.baseline import (
    BaselineError,
    Entry,
    apply_baseline,
    read_baseline,
    to_json,
    write_baseline,
)

DEEP = "examples/deep_sigmoid.py"
DIAG = re.compile(r"^\S+?:\d+:\d+: (GL\d{3}) \[")
# a second sick model, inserted above the original so every line of the original shifts
SECOND = '''

class SecondSigmoidMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.Sigmoid())
                                    for _ in range(24)])
        self.out = nn.Linear(64, 4)

    def forward(self, x):
        return self.out(self.body(x))
'''


def reported(stdout: str) -> list[str]:
    return [m[1] for m in map(DIAG.match, stdout.splitlines()) if m]


def tally(stderr: str) -> tuple[int, int]:
    """(hidden, stale) from the baseline's stderr line."""
    m = re.search(r"(\d+) findings? hidden, (\d+) (?:fixed )?entr(?:y|ies)", stderr)
    assert m, stderr
    return int(m[1]), int(m[2])


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_baseline_lifecycle(run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    source = (repo_root / DEEP).read_text(encoding="utf-8")
    model.write_text(source, encoding="utf-8")
    base = tmp_path / "gradlint-baseline.json"

    # 1. no baseline yet: record today's findings, exit 0
    first = run_gradlint("model.py", "--baseline", base.name, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert reported(first.stdout) == []
    assert "wrote 2 findings" in first.stderr
    data = json.loads(base.read_text(encoding="utf-8"))
    entries = data["findings"]
    assert sorted(e["code"] for e in entries) == ["GL101", "GL102"]
    for e in entries:
        assert set(e) == {"file", "code", "target", "module", "source"}  # no line numbers
        assert e["file"] == "model.py" and e["target"] == "DeepSigmoidMLP"
        assert e["source"].startswith("*[nn.Sequential(nn.Linear(width, width), nn.Sigmoid())")
    recorded = base.read_text(encoding="utf-8")

    # 2. unchanged code: everything hidden
    again = run_gradlint("model.py", "--baseline", base.name, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert reported(again.stdout) == []
    assert tally(again.stderr) == (2, 0)
    assert base.read_text(encoding="utf-8") == recorded  # reading never rewrites

    # 3. a new sick model above the old one: only the new model's findings, exit code on those
    marker = "\n\nclass DeepSigmoidMLP"
    model.write_text(source.replace(marker, SECOND + marker), encoding="utf-8")
    new = run_gradlint("model.py", "--baseline", base.name, "--format", "json", cwd=tmp_path)
    assert new.returncode == 1, new.stderr
    diags = json.loads(new.stdout)["diagnostics"]
    assert sorted(d["code"] for d in diags) == ["GL101", "GL102"]
    assert {d["target"] for d in diags} == {"model.py::SecondSigmoidMLP"}
    assert json.loads(new.stdout)["summary"]["diagnostics"] == 2
    assert tally(new.stderr) == (2, 0)

    # 4. fix the old model (its reported line stays as it was): its entries become stale
    model.write_text(source.replace(marker, SECOND + marker)
                     .replace("depth: int = 20", "depth: int = 2"), encoding="utf-8")
    fixed = run_gradlint("model.py", "--baseline", base.name, cwd=tmp_path)
    assert fixed.returncode == 1
    assert sorted(reported(fixed.stdout)) == ["GL101", "GL102"]
    assert tally(fixed.stderr) == (0, 2)
    assert "--update-baseline" in fixed.stderr

    # 5. --update-baseline accepts today's state: the new model in, the fixed entries out
    update = run_gradlint("model.py", "--baseline", base.name, "--update-baseline", cwd=tmp_path)
    assert update.returncode == 0, update.stderr
    entries = json.loads(base.read_text(encoding="utf-8"))["findings"]
    assert {e["target"] for e in entries} == {"SecondSigmoidMLP"}
    assert len(entries) == 2


def test_failures_are_never_baselined(run_gradlint: Any, tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import torch\nclass Net(:\n", encoding="utf-8")
    proc = run_gradlint("broken.py", "--baseline", "b.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert reported(proc.stdout) == ["GL900"]
    assert json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))["findings"] == []
    again = run_gradlint("broken.py", "--baseline", "b.json", cwd=tmp_path)
    assert again.returncode == 2 and reported(again.stdout) == ["GL900"]


@pytest.mark.parametrize("content", ["not json", '{"findings": []}',
                                     '{"gradlint_baseline": 1, "findings": [{"file": "a"}]}'])
def test_a_broken_baseline_is_a_usage_error(run_gradlint: Any, tmp_path: Path,
                                            content: str) -> None:
    (tmp_path / "plain.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "b.json").write_text(content, encoding="utf-8")
    proc = run_gradlint("plain.py", "--baseline", "b.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "b.json" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "b.json").read_text(encoding="utf-8") == content  # left alone


def test_update_baseline_needs_baseline(run_gradlint: Any, tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("x = 1\n", encoding="utf-8")
    proc = run_gradlint("plain.py", "--update-baseline", cwd=tmp_path)
    assert proc.returncode == 2 and "--baseline" in proc.stderr


# --- unit -------------------------------------------------------------------------------------


def diag(path: Path, line: int, code: str = "GL101", target: str = "Net") -> Diagnostic:
    return Diagnostic(code, "x", "error", "m", Location(str(path), line),
                      f"{path.name}::{target}", "fc")


def test_json_is_sorted_one_entry_per_line(tmp_path: Path) -> None:
    a = Entry("b.py", "GL102", "Net", "fc", "x = 1")
    b = Entry("a.py", "GL101", "Net", "fc", "y = 2")
    text = to_json([a, b, a])
    assert text == to_json([a, a, b])  # order-independent: stable diffs
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert [json.loads(line.strip().rstrip(","))["file"] for line in lines[3:6]] == [
        "a.py", "b.py", "b.py"]
    write_baseline(str(tmp_path / "b.json"), [a, b, a])
    assert sorted(read_baseline(str(tmp_path / "b.json"))) == sorted([a, b, a])


def test_matching_is_by_content_not_line_and_counts_duplicates(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "net.py"
    model.write_text("a = 1\nlayer = 2\nlayer = 2\n", encoding="utf-8")
    ok = Report((ModelReport("net.py::Net", "Net", str(model), 1, "ok"),))
    base = str(tmp_path / "b.json")
    created = apply_baseline(base, ok, [diag(model, 2), diag(model, 3)])
    assert created.created and created.written == 2 and created.shown == []
    model.write_text("# new first line\na = 1\nlayer = 2\nlayer = 2\nlayer = 2\n",
                     encoding="utf-8")
    later = apply_baseline(base, ok, [diag(model, 3), diag(model, 4), diag(model, 5)])
    assert (later.hidden, later.stale) == (2, 0)
    assert [d.location.line for d in later.shown] == [5]  # the third identical one is new
    fixed = apply_baseline(base, ok, [diag(model, 3)])
    assert (fixed.hidden, fixed.stale) == (1, 1)


def test_entries_of_unchecked_files_are_not_stale(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "net.py"
    model.write_text("layer = 2\n", encoding="utf-8")
    base = str(tmp_path / "b.json")
    apply_baseline(base, Report(), [diag(model, 1)])
    failed = Report((ModelReport("net.py::Net", "Net", str(model), 1, "failed"),))
    outcome = apply_baseline(base, failed, [], update=True)
    assert outcome.stale == 0
    assert len(read_baseline(base)) == 1  # kept: the file was not judged this run
    model.unlink()
    gone = apply_baseline(base, Report(), [])
    assert gone.stale == 1  # the file no longer exists


def test_a_folder_is_not_a_baseline(tmp_path: Path) -> None:
    with pytest.raises(BaselineError):
        apply_baseline(str(tmp_path), Report(), [])


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_fix_leaves_baselined_findings_alone(run_gradlint: Any, repo_root: Path,
                                            tmp_path: Path) -> None:
    """What the baseline accepts is not rewritten by --fix; new findings are."""
    model = tmp_path / "model.py"
    source = (repo_root / "examples" / "kaiming_sigmoid.py").read_text(encoding="utf-8")
    model.write_text(source, encoding="utf-8")
    base = tmp_path / "baseline.json"
    assert run_gradlint("model.py", "--baseline", base.name, cwd=tmp_path).returncode == 0
    fixed = run_gradlint("model.py", "--baseline", base.name, "--fix", "--unsafe-fixes",
                         cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert model.read_text(encoding="utf-8") == source
    # without the baseline the same command fixes the file
    run_gradlint("model.py", "--fix", "--unsafe-fixes", cwd=tmp_path)
    assert model.read_text(encoding="utf-8") != source
