"""Opt-in fixes (``--fix``, ``--diff``, ``--unsafe-fixes``) through the installed command, on
copies in ``tmp_path``: hidden saturating activations become ReLU-family ones; outputs, gates
and attention softmax never change; the rest of the file stays byte-for-byte."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gradlint.core.values import Diagnostic, Edit, Fix, Location

DIAG_LINE = r"^\S+?:\d+:\d+: (GL\d{3}) \["


def codes(proc: subprocess.CompletedProcess[str]) -> list[str]:
    import re

    return [m.group(1) for m in map(re.compile(DIAG_LINE).match, proc.stdout.splitlines()) if m]


def copy_example(repo_root: Path, tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copy(repo_root / "examples" / name, dest)
    return dest


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# (a) the only problem is the activations: the fix removes GL101 and GL102


def test_fix_removes_gl101_and_gl102_when_activations_are_the_cause(
        run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    path = copy_example(repo_root, tmp_path, "kaiming_sigmoid.py")
    before = path.read_bytes()
    first = run_gradlint(path.name, "--format", "json", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    found = {d["code"]: d for d in json.loads(first.stdout)["diagnostics"]}
    assert {"GL101", "GL102"} <= found.keys()
    for code in ("GL101", "GL102"):  # the JSON report marks the fix and its edit
        fix = found[code]["fix"]
        assert fix["applicability"] == "unsafe"
        (edit,) = fix["edits"]
        assert (edit["old"], edit["new"], edit["action"]) == ("sigmoid", "relu",
                                                                "replace-activation")
        assert edit["file"] == path.name and edit["line"] == 20

    proc = run_gradlint(path.name, "--fix", "--unsafe-fixes", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "applied 1 edit in 1 file" in proc.stderr
    after_doc = json.loads(proc.stdout)  # the report is the re-check after the fix
    assert after_doc["diagnostics"] == []
    assert after_doc["models"][0]["layers"][0]["saturating"] == 1  # only the output sigmoid
    # one call changed; comments, odd spacing and the output sigmoid are byte-for-byte intact
    expected = before.replace(b"nn.Sigmoid())  # hidden activation",
                              b"nn.ReLU())  # hidden activation")
    assert expected != before
    assert path.read_bytes() == expected


# (b) a default-init plain stack: GL102 goes, GL101 stays and names the init


def test_fix_on_default_init_stack_leaves_gl101_naming_the_init(
        run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    path = copy_example(repo_root, tmp_path, "deep_sigmoid.py")
    proc = run_gradlint(path.name, "--fix", "--unsafe-fixes", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "nn.ReLU()) for _ in range(depth)" in path.read_text(encoding="utf-8")
    assert "nn.Sigmoid" not in path.read_text(encoding="utf-8")
    # GL105 (init-gain) names the same cause for the whole stack
    assert codes(proc) == ["GL101", "GL105"]
    lines = proc.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if " GL101 [error] " in line)
    help_line = lines[first + 1]
    assert help_line.startswith("  help: ") and "init" in help_line
    assert "kaiming_normal_" in help_line
    assert not lines[first + 2].startswith("  fix ")  # nothing left to fix automatically


# (c) gates, outputs and attention softmax are never touched

GATED = '''\
import torch
import torch.nn as nn


class Gated(nn.Module):
    """A hidden tanh between weight layers, then SE and LSTM-style gates, attention and an
    output sigmoid: only the hidden tanh may change (to GELU: the model has attention)."""

    def __init__(self, w: int = 32) -> None:
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(w, w) for _ in range(5)])
        self.act = nn.Tanh()  # hidden
        self.proj = nn.Linear(w, w)
        self.se = nn.Linear(w, w)
        self.cell = nn.Linear(w, 4 * w)
        self.c0 = nn.Linear(w, w)
        self.q, self.k, self.v = nn.Linear(w, w), nn.Linear(w, w), nn.Linear(w, w)
        self.head = nn.Linear(w, 1)
        self.out = nn.Sigmoid()  # output

    def forward(self, x):
        for fc in self.fcs:
            x = self.act(fc(x))
        h = self.proj(x)
        x = h * torch.sigmoid(self.se(h))  # squeeze-excitation gate
        i, f, g, o = self.cell(x).chunk(4, dim=-1)
        c = torch.sigmoid(f) * self.c0(x) + torch.sigmoid(i) * torch.tanh(g)
        x = o.sigmoid() * torch.tanh(c)  # LSTM-style output gate
        a = torch.softmax(self.q(x) @ self.k(x).transpose(0, 1), dim=-1)
        x = a @ self.v(x)
        return self.out(self.head(x))


class LoopOutput(nn.Module):
    """Four sigmoids from one comprehension; the last is the model output, so the site also
    builds an output activation and stays as it is."""

    def __init__(self, w: int = 32) -> None:
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(w, w) for _ in range(4)])
        self.acts = nn.ModuleList([nn.Sigmoid() for _ in range(4)])

    def forward(self, x):
        for fc, act in zip(self.fcs, self.acts):
            x = act(fc(x))
        return x
'''


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_gates_outputs_and_softmax_are_untouched(run_gradlint: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "gated.py", GATED)
    report = run_gradlint(path.name, "--format", "json", cwd=tmp_path)
    doc = json.loads(report.stdout)
    assert {d["code"] for d in doc["diagnostics"]} >= {"GL102"}
    edits = {(e["line"], e["old"], e["new"]) for d in doc["diagnostics"] if d["fix"]
             for e in d["fix"]["edits"]}
    assert edits == {(12, "tanh", "gelu")}
    # GL102 judges one real chain per model, never a gate on its own
    chains = [d for d in doc["diagnostics"] if d["code"] == "GL102"]
    assert all("1 saturating" not in d["message"] for d in chains)

    proc = run_gradlint(path.name, "--fix", "--unsafe-fixes", cwd=tmp_path)
    assert "applied 1 edit in 1 file" in proc.stderr, proc.stderr
    assert path.read_text(encoding="utf-8") == GATED.replace(
        "self.act = nn.Tanh()  # hidden", "self.act = nn.GELU()  # hidden")


# (d) --diff shows, writes nothing, keeps the exit code


def test_diff_prints_unified_diff_and_writes_nothing(run_gradlint: Any, repo_root: Path,
                                                     tmp_path: Path) -> None:
    path = copy_example(repo_root, tmp_path, "kaiming_sigmoid.py")
    before = path.read_bytes()
    proc = run_gradlint(path.name, "--diff", "--unsafe-fixes", cwd=tmp_path)
    assert proc.returncode == 1  # as without --diff: the findings are still there
    assert path.read_bytes() == before
    lines = proc.stdout.splitlines()
    assert lines[0] == f"--- {path.name}" and lines[1] == f"+++ {path.name}"
    assert lines[2].startswith("@@ ")
    assert [ln for ln in lines if ln[:1] in "+-" and ln[:3] not in ("---", "+++")] == [
        "-            *[nn.Sequential(nn.Linear(width, width),   nn.Sigmoid())  # hidden "
        "activation",
        "+            *[nn.Sequential(nn.Linear(width, width),   nn.ReLU())  # hidden "
        "activation"]
    assert "would apply 1 edit in 1 file" in proc.stderr
    if shutil.which("patch"):  # the diff applies cleanly
        patched = subprocess.run(["patch", "-p0", "--dry-run"], input=proc.stdout,
                                 cwd=tmp_path, capture_output=True, text=True, check=False)
        assert patched.returncode == 0, patched.stdout


# (e) --fix without --unsafe-fixes applies nothing


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_fix_without_unsafe_fixes_changes_nothing(run_gradlint: Any, repo_root: Path,
                                                  tmp_path: Path) -> None:
    path = copy_example(repo_root, tmp_path, "kaiming_sigmoid.py")
    before = path.read_bytes()
    proc = run_gradlint(path.name, "--fix", cwd=tmp_path)
    assert proc.returncode == 1
    assert path.read_bytes() == before
    assert "2 unsafe fixes available with --unsafe-fixes" in proc.stderr
    assert codes(proc) == ["GL101", "GL102"]
    marks = [ln for ln in proc.stdout.splitlines() if ln.startswith("  fix [unsafe]: ")]
    assert len(marks) == 2 and all("sigmoid → relu" in m for m in marks)
    # --diff without --unsafe-fixes shows nothing either, as in ruff
    quiet = run_gradlint(path.name, "--diff", cwd=tmp_path)
    assert quiet.stdout == "" and quiet.returncode == 1
    assert "unsafe fixes available" in quiet.stderr


# functional forms: torch.sigmoid, F.tanh, x.tanh(), a bare imported name

FUNCTIONAL = '''\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import sigmoid


class Functional(nn.Module):
    def __init__(self, w: int = 32) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(w, w), nn.Linear(w, w), nn.Linear(w, w)
        self.fc4, self.fc5 = nn.Linear(w, w), nn.Linear(w, w)
        self.head = nn.Linear(w, 10)

    def forward(self, x):
        x = torch.sigmoid(self.fc1(x))
        x = F.tanh(self.fc2(x))  # a comment that stays
        x = self.fc3(x).tanh()
        x = torch.tanh(
            self.fc4(x)  # inside the call
        )
        x = sigmoid(self.fc5(x))
        return torch.sigmoid(self.head(x))  # output: stays
'''


def test_functional_forms(run_gradlint: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "functional.py", FUNCTIONAL)
    proc = run_gradlint(path.name, "--fix", "--unsafe-fixes", "--format", "json", cwd=tmp_path)
    assert "applied 5 edits in 1 file" in proc.stderr, proc.stderr
    expected = (FUNCTIONAL
                .replace("from torch import sigmoid", "from torch import relu, sigmoid")
                .replace("x = torch.sigmoid(self.fc1(x))", "x = torch.relu(self.fc1(x))")
                .replace("x = F.tanh(self.fc2(x))", "x = F.relu(self.fc2(x))")
                .replace("x = self.fc3(x).tanh()", "x = self.fc3(x).relu()")
                .replace("x = torch.tanh(\n", "x = torch.relu(\n")
                .replace("x = sigmoid(self.fc5(x))", "x = relu(self.fc5(x))"))
    assert path.read_text(encoding="utf-8") == expected
    assert "GL102" not in {d["code"] for d in json.loads(proc.stdout)["diagnostics"]}


# only files under the checked paths are edited


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_definitions_outside_the_checked_paths_stay(run_gradlint: Any, tmp_path: Path) -> None:
    helper = write(tmp_path, "blocks.py", '''\
        import torch.nn as nn


        def block(w: int) -> nn.Module:
            return nn.Sequential(nn.Linear(w, w), nn.Sigmoid())
        ''')
    (tmp_path / "pkg").mkdir()
    model = write(tmp_path / "pkg", "net.py", '''\
        import os
        import sys

        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

        import torch.nn as nn
        from blocks import block


        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.layers = nn.Sequential(*[block(32) for _ in range(8)])
                self.head = nn.Linear(32, 1)

            def forward(self, x):
                return self.head(self.layers(x))
        ''')
    helper_before, model_before = helper.read_bytes(), model.read_bytes()
    proc = run_gradlint("net.py", "--fix", "--unsafe-fixes", cwd=tmp_path / "pkg")
    assert "GL102" in codes(proc), proc.stdout + proc.stderr
    assert helper.read_bytes() == helper_before and model.read_bytes() == model_before
    assert "no fixes available" in proc.stderr
    # naming the folder that holds the helper makes it fair game
    both = run_gradlint(".", "--fix", "--unsafe-fixes", cwd=tmp_path)
    assert "applied 1 edit in 1 file" in both.stderr, both.stdout + both.stderr
    assert b"nn.ReLU()" in helper.read_bytes()


def test_diagnostics_with_edits_pickle() -> None:
    """Reports cross process boundaries (worker pool): fixes must survive pickling."""
    loc = Location("m.py", 3, 5, 3, 17)
    d = Diagnostic("GL102", "saturating-chain", "warning", "chain", loc,
                   fix=Fix("replace", ("replace",), "unsafe", (Edit(loc, "sigmoid", "relu",
                                                                     exact=True),)))
    assert pickle.loads(pickle.dumps(d)) == d
