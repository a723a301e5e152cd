"""One rule registry: every code's name, severity and summary come from its rule folder, stage
diagnostics are made from them, and GL101's firing condition has one home that the reports ask.
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import gradlint.rules
import pytest

from gradlint.core import rule_catalogue
from gradlint.core.options import Options
from gradlint.core.values import Diagnostic, LayerEstimate, Location, ModelReport
from gradlint.lint import vanishing
from gradlint.report import html, text
from gradlint.run.pipeline import plan_file

RULES = Path(next(iter(gradlint.rules.__path__)))
GRADLINT = Path(__file__).resolve().parents[2] / "gradlint"


def declared(folder: Path) -> dict[str, Any]:
    """The literal class attributes the folder's check.py declares, read without importing it."""
    tree = ast.parse((folder / "check.py").read_text(encoding="utf-8"))
    classes = [{t.id: s.value for s in node.body if isinstance(s, ast.Assign)
                for t in s.targets if isinstance(t, ast.Name)}
               for node in tree.body if isinstance(node, ast.ClassDef)]
    (attrs,) = [c for c in classes if "code" in c]
    return {name: ast.literal_eval(value) for name, value in attrs.items()}


def test_every_listed_code_takes_its_metadata_from_its_folder() -> None:
    done = subprocess.run([sys.executable, "-m", "gradlint", "rules", "--format", "json"],
                          capture_output=True, text=True, check=True)
    listed = json.loads(done.stdout)
    folders = {p.name.partition("-")[0]: p for p in RULES.iterdir() if (p / "check.py").is_file()}
    assert sorted(r["code"] for r in listed) == sorted(folders)
    assert {r["code"][:3] for r in listed} >= {"GL1", "GL9"}
    for rule in listed:
        folder = folders[rule["code"]]
        meta = declared(folder)
        assert folder.name == f"{rule['code']}-{meta['name']}"
        assert (rule["name"], rule["severity"], rule["summary"]) == (
            meta["name"], meta.get("severity", "error"), meta["summary"]), rule["code"]


def test_no_module_of_gradlint_spells_out_a_diagnostic_by_code() -> None:
    """A ``Diagnostic("GL9xx", "name", "severity", ...)`` outside the catalogue would be a
    second home for a code's name and severity."""
    found = []
    for path in GRADLINT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Diagnostic"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.append(f"{path.relative_to(GRADLINT)}:{node.lineno}")
    assert not found


@pytest.fixture
def gl907_as_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    info = rule_catalogue.rule_by_code("GL907")
    assert info is not None and info.rule.severity == "info"
    monkeypatch.setattr(type(info.rule), "severity", "warning")


def test_a_stage_diagnostic_takes_its_severity_from_the_registry(
        tmp_path: Path, gl907_as_warning: None) -> None:
    script = tmp_path / "train.py"
    script.write_text("import torch.nn as nn\n\nmodel = nn.Linear(2, 2)\n"
                      "for step in range(3):\n    print(step)\n", encoding="utf-8")
    (diag,) = plan_file(str(script), (), Options())[1]  # type: ignore[index]
    assert (diag.code, diag.name, diag.severity) == ("GL907", "not-imported", "warning")
    made = rule_catalogue.diagnostic("GL902", "skipped", Location("m.py", 1), "m.py::M")
    assert (made.name, made.severity, made.target) == ("needs-configuration", "info", "m.py::M")
    with pytest.raises(KeyError):
        rule_catalogue.diagnostic("GL999", "no such rule", Location("m.py", 1))


def layer(module: str, att: float) -> LayerEstimate:
    return LayerEstimate(
        module=module, type="Linear", numel=10, location=Location("m.py", 3),
        log10_grad=att, log10_relative=att, log10_signal=att, log10_attenuation=att,
        log10_bound=att, saturating=0, depth=4, factors=4, gate=None, frozen=False,
        aliases=(), zero=False, confidence="high")


@pytest.mark.parametrize("fires", [True, False])
def test_html_and_text_ask_gl101s_one_condition(monkeypatch: pytest.MonkeyPatch,
                                                fires: bool) -> None:
    """Whatever ``vanishing.vanishes`` says is what both reports show: the text chart's ``!``
    and the HTML layer state of a layer on a GL101's line."""
    asked: list[tuple[str, float]] = []

    def vanishes(le: LayerEstimate, limit: float) -> bool:
        asked.append((le.module, limit))
        return fires

    monkeypatch.setattr(vanishing, "vanishes", vanishes)
    layers = (layer("a", -1.0), layer("b", -0.5))  # neither below the threshold by itself
    gl101 = Diagnostic("GL101", "vanishing-gradient", "error", "m", Location("m.py", 3),
                       "m.py::M", "b")
    model = ModelReport("m.py::M", "M", "m.py", 1, "ok", "fx", "actual", 0.0, layers, (gl101,))
    rows = [r for r in text.chart(model, set(), 1e-2) if r.endswith(" 0") and "Linear" in r]
    assert [r[0] for r in rows] == (["!", "!"] if fires else [" ", " "])
    states = html.layer_states(model, [gl101], math.log10(1e-2))
    assert states["a"] == ("vanishing" if fires else "healthy")
    assert states["b"] == "vanishing"  # named by the diagnostic itself
    assert ("a", -2.0) in asked
