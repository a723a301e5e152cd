"""What the parent counts about each examined file (pipeline.count_files), and that a target
configured in pyproject.toml imports its file whatever the pre-filter says without
restricting discovery to it (pipeline.plan_file) — in-process, no worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradlint.core.options import Config, FileJob, Options, TargetConfig
from gradlint.core.values import Diagnostic, Location, RunCounts
from gradlint.lint.registry import diagnostic
from gradlint.run.pipeline import count_files, plan_file

TRAIN = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


for step in range(3):
    print(step)
"""

# no literal torch import: the pre-filter sees no model in it
STAR = """\
from parts import *


class Net(Base):
    pass
"""


def file_diag(code: str, path: str = "m.py") -> Diagnostic:
    return diagnostic(code, "msg", Location(path, 1))


def test_each_file_counted_once_by_outcome() -> None:
    results = [
        (([], []), False),  # the pre-filter found no nn.Module
        (([], []), False),
        (([], [file_diag("GL907")]), False),  # does work at import
        (([], [file_diag("GL900")]), False),  # syntax error
        (([], []), True),  # imported; no models in it is still imported
        (([], [file_diag("GL902")]), True),  # an info about the file: imported
        (([], [file_diag("GL901")]), True),  # import raised
        (([], [file_diag("GL905")]), True),  # the worker crashed or timed out
    ]
    counts = count_files(results)
    assert counts == RunCounts(examined=8, imported=2, skipped={"no-model": 2, "GL907": 1},
                               failed={"GL900": 1, "GL901": 1, "GL905": 1})
    assert counts.examined == (counts.imported + sum(counts.skipped.values())
                               + sum(counts.failed.values()))
    assert count_files([]) == RunCounts()


def configured(tmp_path: Path, key: str) -> Options:
    return Options(config=Config(targets={key: TargetConfig()},
                                 path=str(tmp_path / "pyproject.toml")))


@pytest.mark.parametrize(("source", "skipped_as"), [(TRAIN, "GL907"), (STAR, None)],
                         ids=["does-work", "no-model"])
def test_a_configured_target_imports_its_file_and_discovers(
        tmp_path: Path, source: str, skipped_as: str | None) -> None:
    path = tmp_path / "m.py"
    path.write_text(source)
    alone = plan_file(str(path), (), Options())  # the pre-filter keeps it back
    assert not isinstance(alone, FileJob)
    assert [d.code for d in alone[1]] == ([skipped_as] if skipped_as else [])
    # configured: imported anyway, and discovery is not restricted to the configured name
    assert plan_file(str(path), (), configured(tmp_path, "m.py::Net")) == FileJob(str(path), ())
    assert plan_file(str(path), (), configured(tmp_path, "other.py::Net")) == alone
    # named on the command line: only that model
    assert plan_file(str(path), ("Net",), Options()) == FileJob(str(path), ("Net",))


def test_a_configured_target_does_not_hide_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("def broken(:\n")
    found = plan_file(str(path), (), configured(tmp_path, "m.py::Net"))
    assert not isinstance(found, FileJob) and [d.code for d in found[1]] == ["GL900"]
