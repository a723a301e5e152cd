"""Every rule folder ``rules/<CODE>-<name>/`` documents itself and proves itself
(docs/adding-a-rule.md): ``bad.py`` must raise the rule, ``good.py`` must not, and
``README.md`` is the page that ``gradlint explain CODE`` prints."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gradlint.core.options import Options
from gradlint.lint.registry import rule_by_code
from gradlint.run.pipeline import check_paths, selected

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

RULES = Path(__file__).resolve().parents[2] / "rules"
FOLDERS = sorted(p for p in RULES.iterdir() if (p / "check.py").is_file())
EXAMPLES = sorted(p for folder in FOLDERS for p in (folder / "bad.py", folder / "good.py")
                  if p.is_file())
SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead")


def code_of(folder: Path) -> str:
    return folder.name.split("-", 1)[0]


def codes_reported(path: Path, select: tuple[str, ...] = ()) -> set[str]:
    """Every code the full pipeline reports on one file (file-level GL9xx and model rules)."""
    options = Options(select=select)
    report, missing = check_paths([str(path)], options)
    assert not missing
    return {d.code for d in selected(report, options)}


def test_rule_folders_exist() -> None:
    assert FOLDERS, f"no rule folders under {RULES}"
    for folder in FOLDERS:
        assert re.fullmatch(r"GL\d{3}-[a-z0-9-]+", folder.name), folder.name


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name.split("-", 1)[0] for f in FOLDERS])
def test_rule_folder_is_complete(folder: Path) -> None:
    for name in ("check.py", "README.md", "bad.py", "good.py"):
        assert (folder / name).is_file(), f"{folder.name} has no {name}"


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name.split("-", 1)[0] for f in FOLDERS])
def test_readme_sections(folder: Path) -> None:
    readme = folder / "README.md"
    assert readme.is_file(), f"{folder.name} has no README.md"
    text = readme.read_text(encoding="utf-8")
    headings = [line.strip() for line in text.splitlines()]
    positions = []
    for section in SECTIONS:
        assert section in headings, f"{readme} lacks {section!r}"
        positions.append(headings.index(section))
    assert positions == sorted(positions), f"{readme}: sections out of order"
    assert code_of(folder) in text


@pytest.mark.parametrize(
    "path", EXAMPLES, ids=[f"{code_of(p.parent)}-{p.stem}" for p in EXAMPLES])
def test_example_models(path: Path) -> None:
    code = code_of(path.parent)
    info = rule_by_code(code)
    # a rule that is off by default (GL100) is selected by its code, beside the default rules
    select = ("GL", code) if info is not None and not info.rule.enabled_by_default else ()
    codes = codes_reported(path, select)
    if path.stem == "bad":
        assert code in codes, f"{path} should raise {code}, got {sorted(codes)}"
    else:
        assert code not in codes, f"{path} should not raise {code}, got {sorted(codes)}"


def test_explain_prints_readme(run_gradlint: Any) -> None:
    folder = next(f for f in FOLDERS if code_of(f) == "GL101")
    proc = run_gradlint("explain", "GL101")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (folder / "README.md").read_text(encoding="utf-8").strip()


def test_explain_unknown_code(run_gradlint: Any) -> None:
    proc = run_gradlint("explain", "GL999")
    assert proc.returncode == 2
    assert "GL999" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rules_lists_every_folder(run_gradlint: Any) -> None:
    proc = run_gradlint("rules")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert {code_of(f) for f in FOLDERS} <= listed
