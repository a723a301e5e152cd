"""``[tool.gradlint]`` (README, "Configuration"): per-file-ignores, extend-rules, value checks that
name the key and the file, and command-line flags winning over the file; end to end through the
installed command and unit by unit (gradlint/cli/config.py, gradlint/lint/per_file_ignores.py,
gradlint/lint/registry.py).
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gradlint.cli.config import ConfigError, load_config
from gradlint.lint.per_file_ignores import PerFileIgnores
from gradlint.lint.registry import RuleError, discover_rules, use_rule_folders

DEEP = "examples/deep_sigmoid.py"
REPORTED = "for _ in range(depth)]\n"  # the line GL101/GL102 are reported on in DEEP
WIDE_MODEL = textwrap.dedent("""\
    import torch.nn as nn


    class Wide(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 5000)
            self.out = nn.Linear(5000, 1)

        def forward(self, x):
            return self.out(self.fc(x).relu())
    """)


def readme_rule(repo_root: Path) -> str:
    """The custom rule the README shows (so the docs and this test cannot drift)."""
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    m = re.search(r"```python\n(# tools/gradlint_rules/GL500-wide-linear/check\.py\n.*?)```",
                  text, re.S)
    assert m, "README.md lost its extend-rules example"
    return m.group(1)


def project(tmp_path: Path, config: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[tool.gradlint]\n{config}\n", encoding="utf-8")
    return tmp_path


def rule_project(tmp_path: Path, repo_root: Path) -> Path:
    folder = tmp_path / "tools" / "gradlint_rules" / "GL500-wide-linear"
    folder.mkdir(parents=True)
    (folder / "check.py").write_text(readme_rule(repo_root), encoding="utf-8")
    (folder / "README.md").write_text("# GL500 wide-linear\n\nFlags very wide Linear layers.\n",
                                      encoding="utf-8")
    return project(tmp_path, 'extend-rules = ["tools/gradlint_rules"]')


def deep_copy(repo_root: Path, path: Path, old: str = "", new: str = "") -> Path:
    source = (repo_root / DEEP).read_text(encoding="utf-8")
    if old:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def found(proc: Any) -> list[tuple[str, str]]:
    """(file, code) of every diagnostic of a JSON run, files with forward slashes."""
    assert proc.returncode in (0, 1), proc.stderr + proc.stdout[-2000:]
    return sorted((Path(d["file"]).as_posix().removeprefix("../").removeprefix("./"),
                   d["code"]) for d in json.loads(proc.stdout)["diagnostics"])


# --- per-file-ignores -------------------------------------------------------------------------


def test_per_file_ignores_end_to_end(run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    root = project(tmp_path, textwrap.dedent("""\
        [tool.gradlint.per-file-ignores]
        "tests/*" = ["GL101"]
        "legacy/**/*.py" = ["GL1"]
        """))
    stale = REPORTED.replace("\n", "  # gradlint: ignore[GL104]\n")
    deep_copy(repo_root, root / "model.py", REPORTED, stale)  # GL104 never fires: GL100
    # GL101 is off in tests/: a comment for it there did not run, so it is not stale either
    deep_copy(repo_root, root / "tests" / "test_model.py", REPORTED,
              REPORTED.replace("\n", "  # gradlint: ignore[GL101]\n"))
    deep_copy(repo_root, root / "legacy" / "sub" / "old.py", REPORTED, stale)
    deep_copy(repo_root, root / "legacy" / "top.py")
    # run from a subfolder: the globs are relative to the pyproject, not the working directory
    proc = run_gradlint("..", "--select", "GL1,GL9,GL100", "--format", "json",
                        cwd=root / "legacy")
    assert found(proc) == [("model.py", "GL100"), ("model.py", "GL101"), ("model.py", "GL102"),
                           ("tests/test_model.py", "GL102")]


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("tests/*", "tests/test_a.py", True),
    ("tests/*", "tests/unit/test_a.py", True),  # `*` crosses `/`, as in ruff
    ("tests/*", "src/tests/a.py", False),  # relative to the pyproject's folder
    ("legacy/**/*.py", "legacy/a.py", True),  # `**/` is zero or more folders
    ("legacy/**/*.py", "legacy/x/y/a.py", True),
    ("legacy/**/*.py", "legacy/a.txt", False),
    ("conftest.py", "deep/down/conftest.py", True),  # no `/`: the file name alone
    ("model_?.py", "model_1.py", True),
    ("model_[ab].py", "model_c.py", False),
    ("./src/*.py", "src/m.py", True),
    ("!src/**", "tools/m.py", True),  # negated: every file outside src/
    ("!src/**", "src/m.py", False),
])
def test_glob_semantics(tmp_path: Path, pattern: str, path: str, hit: bool) -> None:
    ignores = PerFileIgnores(((pattern, ("GL1",)),), str(tmp_path))
    assert ignores.ignores("GL101", str(tmp_path / path)) is hit
    assert not ignores.ignores("GL900", str(tmp_path / path))


def test_per_file_ignores_are_parsed_in_order(tmp_path: Path) -> None:
    project(tmp_path, 'per-file-ignores = {"tests/*" = ["gl101"], "!src/**" = "GL1"}')
    config = load_config(str(tmp_path))
    assert config.per_file_ignores == (("tests/*", ("GL101",)), ("!src/**", ("GL1",)))
    ignores = PerFileIgnores(config.per_file_ignores, config.base)
    assert ignores.codes_for(str(tmp_path / "tests" / "a.py")) == ("GL101", "GL1")


# --- bad values name the key and the file ---------------------------------------------------


@pytest.mark.parametrize(("body", "words"), [
    ("colour = 1", ["unknown key", "'colour'", "per-file-ignores", "extend-rules"]),
    ("threshold = 2", ["threshold"]),
    ("threshold = true", ["threshold"]),
    ("select = 3", ["select"]),
    ('per-file-ignores = ["tests/*"]', ["per-file-ignores", "table"]),
    ('per-file-ignores = {"tests/*" = "GL-1"}', ["per-file-ignores", "'tests/*'", "'GL-1'"]),
    ('per-file-ignores = {"tests/*" = [101]}', ["per-file-ignores", "'tests/*'"]),
    ('per-file-ignores = {"tests/*" = []}', ["per-file-ignores", "'tests/*'"]),
    ('per-file-ignores = {"" = ["GL1"]}', ["per-file-ignores", "empty"]),
    ('extend-rules = ["no/such/folder"]', ["extend-rules", "'no/such/folder'"]),
    ("extend-rules = 3", ["extend-rules"]),
    ("targets = 3", ["targets"]),
    ('[tool.gradlint.targets."m.py::Net"]\nkwarg = {}', ["'kwarg'", "m.py::Net"]),
    ('[tool.gradlint.targets."m.py::Net"]\nkwargs = 3', ["kwargs", "m.py::Net"]),
    ('[tool.gradlint.targets."m.py::Net"]\ninputs = [8]', ["inputs", "m.py::Net"]),
    ('[tool.gradlint.targets."m.py::Net"]\nbuild = "Net(C())"\nkwargs = {a = 1}',
     ["m.py::Net", "build", "kwargs"]),
    ('[tool.gradlint.targets."m.py::Net"]\nbuild = "Net(C())"\nargs = [1]',
     ["m.py::Net", "build", "args"]),
    ('[tool.gradlint.targets."m.py::Net"]\nbuild = "Net(("', ["m.py::Net", "build",
                                                             "not a Python expression"]),
    ('[tool.gradlint.targets."m.py::Net"]\nbuild = "x = Net()"', ["m.py::Net", "build"]),
    ('[tool.gradlint.targets."m.py::Net"]\nbuild = 3', ["m.py::Net", "build", "string"]),
])
def test_bad_values_name_key_and_file(tmp_path: Path, body: str, words: list[str]) -> None:
    project(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_config(str(tmp_path))
    message = str(err.value)
    assert str(tmp_path / "pyproject.toml") in message
    for word in words:
        assert word in message


def test_a_build_expression_is_read(tmp_path: Path) -> None:
    project(tmp_path, '[tool.gradlint.targets."gpt/model.py::GPT"]\n'
            'build = " GPT(GPTConfig(n_layer=4)) "\ninputs = ["2x8:int64"]')
    target = load_config(str(tmp_path)).targets["gpt/model.py::GPT"]
    assert (target.build, target.args, target.kwargs, target.inputs) == (
        "GPT(GPTConfig(n_layer=4))", (), {}, ("2x8:int64",))


def test_config_error_through_the_command(run_gradlint: Any, tmp_path: Path) -> None:
    project(tmp_path, 'per-file-ignores = {"tests/*" = "GL-1"}')
    (tmp_path / "plain.py").write_text("x = 1\n", encoding="utf-8")
    for args in (["plain.py"], ["rules"], ["explain", "GL101"]):
        proc = run_gradlint(*args, cwd=tmp_path)
        assert proc.returncode == 2, args
        assert "per-file-ignores" in proc.stderr and "pyproject.toml" in proc.stderr
        assert "Traceback" not in proc.stderr


MALFORMED = [  # (the whole pyproject.toml, words its one-line message must hold)
    (b'tool = "x"\n', ["'tool'", "table", "a string"]),
    (b"tool = [1]\n", ["'tool'", "table", "an array"]),
    (b"[tool]\ngradlint = 3\n", ["[tool.gradlint]", "table", "an integer"]),
    (b"[tool.gradlint]\nselect = ['GL1']\n# caf\xe9\n", ["not valid UTF-8", "0xe9"]),
    (b"a = " + b"[" * 3000 + b"]" * 3000 + b"\n", ["nested too deeply"]),
    (b"[tool.gradlint]\nselect = [\n", ["cannot read"]),
    (b'[tool.gradlint.targets]\n"m.py::Net" = 3\n', ["m.py::Net", "table", "an integer"]),
    (b'[tool.gradlint.targets."m.py"]\ninputs = ["8x4"]\n', ["'m.py'", "file.py::Model"]),
    (b'[tool.gradlint.targets."m.py::Net"]\nkwargs = [1]\n', ["m.py::Net", "kwargs", "table"]),
    (b'[tool.gradlint.targets."m.py::Net"]\nargs = 1\n', ["m.py::Net", "args", "list"]),
    (b'[tool.gradlint.targets."m.py::Net"]\ninputs = "8xq"\n', ["m.py::Net", "'8xq'"]),
    (b'[tool.gradlint.targets."m.py::Net"]\ninputs = [[8]]\n', ["m.py::Net", "inputs"]),
    (b'[tool.gradlint.targets."m.py::Net"]\ninputs = ["8x4:int7"]\n', ["'8x4:int7'", "dtype"]),
    (b'[tool.gradlint.targets."m.py::Net"]\noutput = 0\n', ["m.py::Net", "output"]),
    (b'[tool.gradlint.per-file-ignores]\n"tests/*" = 3\n', ["per-file-ignores", "'tests/*'"]),
    (b'[tool.gradlint.per-file-ignores]\n"tests/*" = {a = 1}\n', ["'tests/*'", "list"]),
    (b'[tool.gradlint.per-file-ignores]\n"[z-a].py" = ["GL1"]\n', ["'[z-a].py'", "glob"]),
    (b"[tool.gradlint]\nexclude = [1]\n", ["exclude", "list of strings"]),
    (b"[tool.gradlint]\nthreshold = nan\n", ["threshold"]),
    (b'[tool.gradlint]\nselect = ["GL1O1"]\n', ["select", "'GL1O1'", "did you mean GL101?"]),
    (b'[tool.gradlint]\nignore = ["GL1", "XY"]\n', ["ignore", "'XY'", "matches no rule"]),
    (b'[tool.gradlint.per-file-ignores]\n"t/*" = ["GL1020"]\n', ["'t/*'", "'GL1020'", "GL102?"]),
]
MALFORMED_IDS = [
    "tool-string", "tool-array", "gradlint-integer", "not-utf8", "nested-deep", "not-toml",
    "target-integer", "target-key", "kwargs-array", "args-integer", "inputs-bad-spec",
    "inputs-nested", "inputs-dtype", "output-integer", "pfi-integer", "pfi-table", "pfi-bad-glob",
    "exclude-integers", "threshold-nan", "select-unknown", "ignore-unknown", "pfi-unknown"]


@pytest.mark.parametrize(("content", "words"), MALFORMED, ids=MALFORMED_IDS)
def test_malformed_pyproject_is_one_line_error(run_gradlint: Any, tree_digest: Any,
                                               tmp_path: Path, content: bytes,
                                               words: list[str]) -> None:
    """Whatever shape the file has, the command names it and the key, exits 2, changes
    nothing; the check, `rules` and `explain` alike (they all read the configuration)."""
    (tmp_path / "pyproject.toml").write_bytes(content)
    (tmp_path / "m.py").write_text(WIDE_MODEL, encoding="utf-8")
    before = tree_digest(tmp_path)
    for args in (["m.py", "--format", "json"], ["rules", "--format", "json"]):
        proc = run_gradlint(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stdout == ""
        assert "Traceback" not in proc.stderr
        (line,) = proc.stderr.splitlines()
        assert line.startswith(f"gradlint: error: {tmp_path / 'pyproject.toml'}: "), line
        for word in words:
            assert word in line, (word, line)
    assert tree_digest(tmp_path) == before


# --- command-line flags win -----------------------------------------------------------------


def test_flags_win_over_config(run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    project(tmp_path, 'ignore = ["GL102"]\nthreshold = 1e-30')
    deep_copy(repo_root, tmp_path / "model.py")
    assert found(run_gradlint("model.py", "--format", "json", cwd=tmp_path)) == []
    flags = run_gradlint("model.py", "--format", "json", "--threshold", "1e-2", "--ignore", "GL104",
                         cwd=tmp_path)
    assert found(flags) == [("model.py", "GL101"), ("model.py", "GL102")]


# --- extend-rules -----------------------------------------------------------------------------


def test_custom_rule_is_listed_and_explained(run_gradlint: Any, repo_root: Path,
                                             tmp_path: Path) -> None:
    root = rule_project(tmp_path, repo_root)
    (root / "src").mkdir()
    listed = run_gradlint("rules", "--format", "json", cwd=root / "src")  # nearest pyproject
    assert listed.returncode == 0, listed.stderr
    rules = {r["code"]: r for r in json.loads(listed.stdout)}
    assert rules["GL500"]["name"] == "wide-linear" and rules["GL500"]["severity"] == "warning"
    assert "GL101" in rules
    text = run_gradlint("rules", cwd=root)
    assert re.search(r"^GL500\s+wide-linear\s+warning", text.stdout, re.M)
    page = run_gradlint("explain", "gl500", cwd=root)
    assert page.returncode == 0 and page.stdout.startswith("# GL500 wide-linear")
    assert run_gradlint("explain", "GL500", cwd=tmp_path.parent).returncode == 2  # not here


def test_custom_rule_runs_in_the_workers(run_gradlint: Any, repo_root: Path,
                                         tmp_path: Path) -> None:
    root = rule_project(tmp_path, repo_root)
    for name in ("a.py", "b.py"):
        (root / name).write_text(WIDE_MODEL, encoding="utf-8")
    proc = run_gradlint("a.py", "b.py", "--jobs", "2", "--format", "sarif", cwd=root)
    run = json.loads(proc.stdout)["runs"][0]
    assert proc.returncode == 1, [r["message"]["text"] for r in run["results"]]
    assert "GL500" in [r["id"] for r in run["tool"]["driver"]["rules"]]
    hits = [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in run["results"]]
    assert sorted(hits) == [("GL500", "a.py", 7), ("GL500", "b.py", 7)]
    assert run_gradlint("a.py", "--ignore", "GL500", cwd=root).returncode == 0  # flag wins


@pytest.mark.parametrize(("folder", "source", "words"), [
    ("GL101-mine", 'from gradlint.lint.rule_api import Rule\n\nclass Mine(Rule):\n'
     '    code = "GL101"\n    name = "mine"\n', ["GL101", "already used", "built-in"]),
    ("GL501-broken", "import no_such_module_for_gradlint\n",
     ["check.py:1", "ModuleNotFoundError"]),
    ("GL502-empty", "X = 1\n", ["exactly one Rule subclass"]),
    ("GL503-nameless", 'from gradlint.lint.rule_api import Rule\n\nclass Mine(Rule):\n'
     '    code = "GL503"\n', ["name"]),
])
def test_bad_custom_rules_are_config_errors(run_gradlint: Any, tmp_path: Path, folder: str,
                                            source: str, words: list[str]) -> None:
    rule = tmp_path / "myrules" / folder
    rule.mkdir(parents=True)
    (rule / "check.py").write_text(source, encoding="utf-8")
    project(tmp_path, 'extend-rules = ["myrules"]')
    proc = run_gradlint("rules", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    for word in ["pyproject.toml", "extend-rules", str(rule / "check.py"), *words]:
        assert word in proc.stderr, (word, proc.stderr)


def test_extension_rule_codes_are_known(run_gradlint: Any, repo_root: Path,
                                        tmp_path: Path) -> None:
    """select/ignore/per-file-ignores and --select/--ignore may name a code extend-rules adds
    (checked after the rules load); without the rule the same code is an error."""
    root = rule_project(tmp_path, repo_root)
    with open(root / "pyproject.toml", "a", encoding="utf-8") as f:
        f.write('ignore = ["GL50"]\n[tool.gradlint.per-file-ignores]\n"t/*" = ["GL500"]\n')
    (root / "m.py").write_text(WIDE_MODEL, encoding="utf-8")
    assert run_gradlint("rules", cwd=root).returncode == 0
    proc = run_gradlint("m.py", "--select", "GL500", "--ignore", "GL9", "--format", "json",
                        cwd=root)
    assert found(proc) == [("m.py", "GL500")]
    bad = run_gradlint("m.py", "--select", "GL5001", cwd=root)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr == ("gradlint: error: --select: 'GL5001' matches no rule; did you mean "
                          "GL500? (`gradlint rules` lists them)\n")
    shutil.rmtree(root / "tools")  # the same configuration without the rule's folder
    (root / "tools" / "gradlint_rules").mkdir(parents=True)
    (root / "tools" / "gradlint_rules" / "GL600-other").mkdir()
    (root / "tools" / "gradlint_rules" / "GL600-other" / "check.py").write_text(
        readme_rule(repo_root).replace("GL500", "GL600"), encoding="utf-8")
    gone = run_gradlint("rules", cwd=root)
    assert gone.returncode == 2 and "Traceback" not in gone.stderr
    assert "[tool.gradlint] ignore: 'GL50' matches no rule" in gone.stderr


NOISY_RULE = textwrap.dedent("""\
    import os
    import sys

    from gradlint.lint.rule_api import Rule

    print("noisy rule: print at import")
    sys.stdout.write("noisy rule: sys.stdout.write at import\\n")
    os.write(1, b"noisy rule: descriptor 1 at import\\n")


    class Noisy(Rule):
        code = "GL510"
        name = "noisy"
        severity = "warning"
        summary = "Prints while it loads."

        def __init__(self) -> None:
            print("noisy rule: print in __init__")

        def check(self, analysis):
            return []
    """)


def test_extension_rule_output_goes_to_stderr(run_gradlint: Any, tree_digest: Any,
                                              tmp_path: Path) -> None:
    """A rule that prints while it loads (in the parent, and again in each worker) leaves
    stdout to the one JSON document."""
    rule = tmp_path / "myrules" / "GL510-noisy"
    rule.mkdir(parents=True)
    (rule / "check.py").write_text(NOISY_RULE, encoding="utf-8")
    project(tmp_path, 'extend-rules = ["myrules"]')
    (tmp_path / "m.py").write_text(WIDE_MODEL, encoding="utf-8")
    before = tree_digest(tmp_path)
    listed = run_gradlint("rules", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "GL510" in [r["code"] for r in json.loads(listed.stdout)]
    for what in ("print at import", "sys.stdout.write", "descriptor 1", "print in __init__"):
        assert f"noisy rule: {what}" in listed.stderr
    checked = run_gradlint("m.py", "--format", "json", "--select", "GL510", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["summary"]["checked"] == 1
    assert "noisy rule" not in checked.stdout
    assert "Traceback" not in listed.stderr + checked.stderr
    assert tree_digest(tmp_path) == before


@pytest.fixture()
def restore_rules() -> Iterator[None]:
    yield
    use_rule_folders(())


def test_use_rule_folders_in_process(restore_rules: None, repo_root: Path,
                                     tmp_path: Path) -> None:
    builtin = [i.rule.code for i in discover_rules()]
    single = tmp_path / "GL500-wide-linear"  # a folder may also be one rule itself
    single.mkdir()
    (single / "check.py").write_text(readme_rule(repo_root), encoding="utf-8")
    use_rule_folders([str(single)])
    assert [i.rule.code for i in discover_rules()] == sorted([*builtin, "GL500"])
    with pytest.raises(RuleError, match="already used by the rule"):
        use_rule_folders([str(single), str(single)])
    (tmp_path / "nothing").mkdir()
    with pytest.raises(RuleError, match="no rule folders"):
        use_rule_folders([str(tmp_path / "nothing")])
    assert "GL500" in [i.rule.code for i in discover_rules()]  # a failure changes nothing
