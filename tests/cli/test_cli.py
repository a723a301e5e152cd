"""End-to-end through the installed ``gradlint`` command (README, docs/output.md: CLI, JSON report,
exit codes).

Each run costs a few seconds (importing torch), so runs that several tests look at are shared
through module-scoped fixtures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gradlint import __version__

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

DEEP = "examples/deep_sigmoid.py"
DIAG_LINE = re.compile(r"^(?P<path>\S+?):(?P<line>\d+):(?P<col>\d+): (?P<code>GL\d{3}) "
                       r"\[(?P<severity>error|warning|info)\] \S")

TOP_KEYS = {"schema_version", "gradlint", "summary", "models", "diagnostics"}
SUMMARY_KEYS = {"targets", "checked", "failed", "diagnostics"}
MODEL_KEYS = {"target", "name", "file", "line", "status", "tracer", "init", "seconds"}
LAYER_KEYS = {"module", "type", "numel", "file", "line", "col", "log10_grad", "log10_relative",
              "log10_signal", "log10_attenuation", "log10_bound", "saturating", "depth", "gate",
              "frozen", "aliases", "zero", "confidence"}
DIAG_KEYS = {"code", "name", "severity", "message", "target", "module", "file", "line", "col",
             "end_line", "end_col", "related", "fix"}
FIX_KEYS = {"message", "suggestions", "applicability"}


def codes_in_text(stdout: str) -> list[str]:
    return [m["code"] for m in map(DIAG_LINE.match, stdout.splitlines()) if m]


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout
    assert "Traceback" not in proc.stderr


def source_position(path: Path, needle: str) -> tuple[int, int]:
    """1-based (line, col) of the first occurrence of ``needle`` in the file."""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in text:
            return number, text.index(needle) + 1
    raise AssertionError(f"{needle!r} not found in {path}")


@pytest.fixture(scope="module")
def deep_text(run_gradlint: Any) -> subprocess.CompletedProcess[str]:
    return run_gradlint(DEEP)


@pytest.fixture(scope="module")
def deep_json(run_gradlint: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = run_gradlint(DEEP, "--format", "json")
    return proc, json.loads(proc.stdout)


# ---------------------------------------------------------------------------- deep sigmoid


def test_deep_sigmoid_text_reports_gl101_and_gl102(deep_text: Any) -> None:
    assert deep_text.returncode == 1, deep_text.stderr
    codes = codes_in_text(deep_text.stdout)
    assert "GL101" in codes and "GL102" in codes
    lines = deep_text.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if " GL101 [error] " in line)
    assert lines[first].startswith(f"{DEEP}:")
    assert lines[first + 1].startswith("  help: ")
    assert any(" GL102 [warning] " in line for line in lines)
    # the gradient-flow chart and the summary line
    assert f"{DEEP}::DeepSigmoidMLP" in deep_text.stdout
    assert "█" in deep_text.stdout
    assert lines[-1].startswith("gradlint: ") and "1 error" in lines[-1]
    no_traceback(deep_text)


def test_deep_sigmoid_json_schema(deep_json: Any) -> None:
    proc, doc = deep_json
    assert proc.returncode == 1, proc.stderr
    assert TOP_KEYS <= doc.keys()
    assert doc["schema_version"] == 1
    assert doc["gradlint"] == __version__
    assert SUMMARY_KEYS <= doc["summary"].keys()
    assert doc["summary"]["targets"] == len(doc["models"]) == 1
    assert doc["summary"]["checked"] == 1 and doc["summary"]["failed"] == 0
    assert doc["summary"]["diagnostics"] == len(doc["diagnostics"])

    (model,) = doc["models"]
    assert MODEL_KEYS <= model.keys()
    assert model["target"] == f"{DEEP}::DeepSigmoidMLP"
    assert model["name"] == "DeepSigmoidMLP"
    assert model["file"] == DEEP
    assert model["status"] == "ok"
    assert model["tracer"] in ("fx", "fx+leaves", "export")
    assert model["init"] in ("actual", "default")
    assert isinstance(model["seconds"], (int, float))
    layers = model["layers"]
    assert len(layers) == 21  # 20 hidden Linear layers and the head
    for layer in layers:
        assert LAYER_KEYS <= layer.keys(), LAYER_KEYS - layer.keys()
        assert layer["confidence"] in ("high", "low")
        assert isinstance(layer["aliases"], list)
        assert layer["log10_relative"] is None or layer["log10_relative"] <= 1e-9
    assert [layer["module"] for layer in layers][-1] == "head"
    assert layers[0]["module"] == "layers.0.0" and layers[0]["type"] == "Linear"

    for diag in doc["diagnostics"]:
        assert DIAG_KEYS <= diag.keys(), DIAG_KEYS - diag.keys()
        assert diag["file"] == DEEP
        assert diag["target"] == f"{DEEP}::DeepSigmoidMLP"
        assert diag["fix"] is None or FIX_KEYS <= diag["fix"].keys()


def test_json_text_one_layer_per_line_and_the_same_document(deep_json: Any) -> None:
    """Flat values (layer rows, locations, the summary) take one line each; everything else
    is json.dumps(indent=2)'s layout, and the text is the same document."""
    from gradlint.report.json import json_text

    proc, doc = deep_json
    lines = proc.stdout.splitlines()
    assert json.loads(json_text(doc)) == doc
    assert sum(1 for line in lines if line.lstrip().startswith('{"module": ')) == 21
    assert lines[:3] == ["{", '  "schema_version": 1,', f'  "gradlint": "{__version__}",']
    assert proc.stdout.rstrip("\n") == json_text(doc)
    nested = {"a": [{"b": [1, 2], "c": {"d": None}}, [], {}], "e": [[1], [2]], "f": "x"}
    assert json.loads(json_text(nested)) == nested
    assert json_text(nested).splitlines()[1:4] == ['  "a": [', "    {", '      "b": [1, 2],']


def test_deep_sigmoid_json_locations(deep_json: Any, repo_root: Path) -> None:
    _, doc = deep_json
    by_code = {d["code"]: d for d in doc["diagnostics"]}
    assert {"GL101", "GL102"} <= by_code.keys()
    line, col = source_position(repo_root / DEEP, "nn.Linear(width, width)")
    gl101 = by_code["GL101"]
    assert gl101["severity"] == "error" and gl101["name"] == "vanishing-gradient"
    assert (gl101["line"], gl101["col"]) == (line, col)
    assert gl101["end_line"] == line
    assert gl101["module"] and gl101["module"].startswith("layers.")
    sig_line, sig_col = source_position(repo_root / DEEP, "nn.Sigmoid()")
    gl102 = by_code["GL102"]
    assert gl102["severity"] == "warning" and gl102["name"] == "saturating-chain"
    assert (gl102["line"], gl102["col"]) == (sig_line, sig_col)
    # the layers are located at the comprehension that builds them, too
    first = doc["models"][0]["layers"][0]
    assert (first["file"], first["line"], first["col"]) == (DEEP, line, col)


# ---------------------------------------------------------------------------- options


def test_exit_zero_masks_findings(run_gradlint: Any) -> None:
    proc = run_gradlint(DEEP, "--exit-zero")
    assert proc.returncode == 0, proc.stderr
    assert "GL101" in codes_in_text(proc.stdout)


def test_ignore_prefix(run_gradlint: Any) -> None:
    proc = run_gradlint(DEEP, "--ignore", "GL1")
    assert proc.returncode == 0, proc.stderr
    codes = codes_in_text(proc.stdout)
    assert "GL101" not in codes and "GL102" not in codes


def test_select_one_code(run_gradlint: Any) -> None:
    proc = run_gradlint(DEEP, "--select", "GL102")
    assert proc.returncode == 1, proc.stderr
    assert codes_in_text(proc.stdout) == ["GL102"]


def test_threshold_silences_gl101_only(run_gradlint: Any) -> None:
    proc = run_gradlint(DEEP, "--threshold", "1e-30", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    codes = {d["code"] for d in json.loads(proc.stdout)["diagnostics"]}
    assert "GL101" not in codes
    assert "GL102" in codes


def test_output_file(run_gradlint: Any, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = run_gradlint(DEEP, "--format", "json", "--output", out)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert {d["code"] for d in doc["diagnostics"]} >= {"GL101", "GL102"}


def test_quiet_prints_no_chart(run_gradlint: Any) -> None:
    proc = run_gradlint(DEEP, "--quiet")
    assert proc.returncode == 1, proc.stderr
    assert "GL101" in codes_in_text(proc.stdout)
    assert "█" not in proc.stdout
    assert "::DeepSigmoidMLP" not in proc.stdout
    assert "threshold for GL101" not in proc.stdout


# ---------------------------------------------------------------------------- healthy models


@pytest.fixture(scope="module")
def healthy(run_gradlint: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = run_gradlint("examples/deep_sigmoid_fixed.py", "examples/resnet_cnn.py",
                        "examples/three_layer_sigmoid.py", "--format", "json")
    return proc, json.loads(proc.stdout)


def test_healthy_examples_pass(healthy: Any) -> None:
    proc, doc = healthy
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = {m["file"] for m in doc["models"]}
    assert files == {"examples/deep_sigmoid_fixed.py", "examples/resnet_cnn.py",
                     "examples/three_layer_sigmoid.py"}
    assert all(m["status"] == "ok" for m in doc["models"])
    codes = {d["code"] for d in doc["diagnostics"]}
    assert not codes & {"GL101", "GL102"}
    assert not [d for d in doc["diagnostics"] if d["severity"] in ("error", "warning")]


def test_three_layer_theta1_gets_least_gradient(healthy: Any) -> None:
    _, doc = healthy
    (model,) = [m for m in doc["models"] if m["file"] == "examples/three_layer_sigmoid.py"]
    grads = {layer["module"]: layer["log10_grad"] for layer in model["layers"]}
    assert set(grads) == {"theta1", "theta2", "theta3"}
    assert min(grads, key=lambda k: grads[k]) == "theta1"
    assert grads["theta1"] < grads["theta2"] < grads["theta3"]


# ---------------------------------------------------------------------------- usage


def test_version(run_gradlint: Any) -> None:
    proc = run_gradlint("--version")
    assert proc.returncode == 0, proc.stderr
    assert "0.1.0" in proc.stdout


def test_missing_path(run_gradlint: Any, tmp_path: Path) -> None:
    proc = run_gradlint("does_not_exist.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert "does_not_exist.py" in proc.stderr
    assert "error" in proc.stderr.lower()
    no_traceback(proc)


def test_missing_path_wins_over_findings_and_exit_zero(run_gradlint: Any) -> None:
    proc = run_gradlint(DEEP, "does_not_exist.py", "--exit-zero", "--quiet")
    assert proc.returncode == 2
    assert "GL101" in codes_in_text(proc.stdout)
    assert "does_not_exist.py" in proc.stderr
    no_traceback(proc)


def test_output_into_missing_folder_is_usage_error(run_gradlint: Any, tmp_path: Path) -> None:
    proc = run_gradlint(DEEP, "--quiet", "--output", tmp_path / "no" / "such" / "dir" / "r.txt")
    assert proc.returncode == 2
    assert "error" in proc.stderr.lower()
    no_traceback(proc)


@pytest.mark.parametrize(("args", "message"), [
    (["model.py", "--output", "model.py"], "--output model.py is model.py, which is being "
     "checked"),
    (["model.py::DeepSigmoidMLP", "-o", "./model.py"], "--output ./model.py is "
     "model.py::DeepSigmoidMLP"),
    (["model.py", "-o", "link.py"], "--output link.py is model.py"),  # a symlink to it
    (["link.py", "-o", "model.py"], "--output model.py is link.py"),
    (["model.py", "-o", "hard.py"], "--output hard.py is model.py"),  # a hard link
    (["src", "-o", "src/sub/../a.py"], "--output src/sub/../a.py is a .py file in src"),
    (["src", "-o", "src/new.py"], "--output src/new.py is a .py file in src"),  # not there yet
    ([".", "-o", "report.py"], "--output report.py is a .py file in ."),
    (["model.py", "--baseline", "model.py", "--update-baseline"], "--baseline model.py is "
     "model.py"),
    (["model.py", "-o", "b.json", "--baseline", "./b.json"], "--output b.json and --baseline "
     "./b.json are the same file"),
])
def test_output_over_a_checked_file_is_refused(run_gradlint: Any, tree_digest: Any,
                                               repo_root: Path, tmp_path: Path,
                                               args: list[str], message: str) -> None:
    """The report would replace the model it is about (or the baseline it is compared with)."""
    source = (repo_root / DEEP).read_bytes()
    (tmp_path / "model.py").write_bytes(source)
    (tmp_path / "link.py").symlink_to("model.py")
    (tmp_path / "hard.py").hardlink_to(tmp_path / "model.py")
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.py").write_bytes(source)
    before = tree_digest(tmp_path)
    proc = run_gradlint(*args, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"gradlint: error: {message}"), line
    no_traceback(proc)
    assert tree_digest(tmp_path) == before


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_a_file_name_that_is_not_utf8(tree_digest: Any, repo_root: Path,
                                      tmp_path: Path) -> None:
    """``caf\\xe9.py`` (Latin-1 bytes) is checked like any other file (gradlint's own module
    name for it used to fail, GL901) and every format shows the byte as ``\\xe9`` in UTF-8
    output; a baseline records the name and reads it back."""
    src = tmp_path / "src"
    src.mkdir()
    try:
        (src / os.fsdecode(b"caf\xe9.py")).write_bytes((repo_root / DEEP).read_bytes())
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses a name that is not UTF-8")
    before = tree_digest(src)

    def run(*args: str) -> str:
        proc = subprocess.run(["gradlint", "src", *args], cwd=tmp_path, capture_output=True,
                              check=False, timeout=300)
        stderr = proc.stderr.decode("utf-8", "replace")
        assert "Traceback" not in stderr
        assert proc.returncode == (0 if "--baseline" in args else 1), stderr
        return proc.stdout.decode("utf-8")  # strict: the output is UTF-8

    doc = json.loads(run("--format", "json"))
    assert {d["code"] for d in doc["diagnostics"]} == {"GL101", "GL102"}
    assert {d["file"] for d in doc["diagnostics"]} == {"src/caf\\xe9.py"}
    assert [m["target"] for m in doc["models"]] == ["src/caf\\xe9.py::DeepSigmoidMLP"]
    assert "src/caf\\xe9.py:15:29: GL101 [error]" in run("--format", "text")
    assert "::error file=src/caf\\xe9.py,line=15," in run("--format", "github")
    assert run("--format", "html", "--output", str(tmp_path / "report.html")) == ""
    assert "src/caf\\xe9.py::DeepSigmoidMLP" in (tmp_path / "report.html").read_text(
        encoding="utf-8")
    baseline = str(tmp_path / "baseline.json")
    for _ in range(2):  # records, then hides what it recorded
        assert json.loads(run("--format", "json", "--baseline", baseline))["diagnostics"] == []
    assert tree_digest(src) == before


def test_malformed_input_shape_is_usage_error(run_gradlint: Any) -> None:
    proc = run_gradlint(DEEP, "--input", "3xq", "--quiet")
    assert proc.returncode == 2
    assert "--input" in proc.stderr  # told as a usage error, not blamed on the model file
    assert "GL906" not in proc.stdout
    no_traceback(proc)


@pytest.mark.parametrize(("args", "message"), [
    (["--select", "GL1O1"], "--select: 'GL1O1' matches no rule; did you mean GL101?"),
    (["--ignore", "GL101, gl1o2"], "--ignore: 'gl1o2' matches no rule; did you mean GL102?"),
    (["--select", "GL1", "--ignore", "GL8"], "--ignore: 'GL8' matches no rule; did you mean"),
    (["--select", "ALL"], "--select: 'ALL' matches no rule"),
])
def test_unknown_rule_code_is_usage_error(run_gradlint: Any, tree_digest: Any, repo_root: Path,
                                          tmp_path: Path, args: list[str], message: str) -> None:
    """A typo in a code would deselect every rule and pass silently: it is a usage error."""
    (tmp_path / "model.py").write_bytes((repo_root / DEEP).read_bytes())
    before = tree_digest(tmp_path)
    proc = run_gradlint("model.py", "--format", "json", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"gradlint: error: {message}"), line
    assert line.endswith("(`gradlint rules` lists them)")
    no_traceback(proc)
    assert tree_digest(tmp_path) == before


def test_prefixes_of_known_codes_stay_valid(run_gradlint: Any, repo_root: Path,
                                            tmp_path: Path) -> None:
    (tmp_path / "model.py").write_bytes((repo_root / DEEP).read_bytes())
    proc = run_gradlint("model.py", "--format", "json", "--select", "GL,gl1,GL10",
                        "--ignore", "GL9,GL102", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert {d["code"] for d in json.loads(proc.stdout)["diagnostics"]} == {"GL101"}


def test_no_arguments_is_usage_error(run_gradlint: Any) -> None:
    proc = run_gradlint()
    assert proc.returncode == 2
    assert proc.stderr.strip()
    no_traceback(proc)
