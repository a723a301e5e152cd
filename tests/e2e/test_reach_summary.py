"""The run's summary through the installed command: files examined and why each was skipped or
failed, models checked and skipped, layers left without an estimate, and the exit code, on a
small tree with one file of each kind (issue 17: never silently check nothing)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # also on torch 2.13; CI's slow step (.ci/run)

RunGradlint = Callable[..., "subprocess.CompletedProcess[str]"]  # the conftest fixture

MODEL = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())
"""

HELPERS = """\
def add(a, b):
    return a + b
"""

TRAIN = """\
import torch
import torch.nn as nn


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


for step in range(2):
    print("training step", step)
"""

BROKEN = """\
def oops(:
    pass
"""

NEEDS = """\
import torch.nn as nn


class Wide(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x)
"""

# the inner model branches on its data: neither torch.fx nor torch.export can trace it, so
# none of its layers gets an estimate
WRAPPED = """\
import torch
import torch.nn as nn


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(4)])

    def forward(self, x):
        if x.sum() > 0:
            x = x * 2
        for layer in self.layers:
            x = layer(x)
        return x


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Inner()
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.inner(x))
"""


CONFIGURED = """\
from dataclasses import dataclass

import torch.nn as nn


@dataclass
class GPTConfig:
    n_embd: int = 16
    n_layer: int = 2


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.layers = nn.Sequential(
            *[nn.Linear(config.n_embd, config.n_embd) for _ in range(config.n_layer)])

    def forward(self, x):
        return self.layers(x)
"""


def tree(root: Path, **files: str) -> Path:
    for name, text in files.items():
        (root / f"{name}.py").write_text(text)
    return root


def summary(stdout: str) -> list[str]:
    """The last two lines of the text report: what was examined, and the verdict."""
    return stdout.splitlines()[-2:]


def test_every_file_and_model_is_counted(run_gradlint: RunGradlint, tmp_path: Path) -> None:
    tree(tmp_path, model=MODEL, helpers=HELPERS, train=TRAIN, broken=BROKEN, needs=NEEDS)
    text = run_gradlint(".", cwd=tmp_path)
    assert text.returncode == 2, text.stderr  # the syntax error
    assert summary(text.stdout) == [
        "5 files examined: 2 imported, 2 skipped (1 without a model, 1 not imported: GL907), "
        "1 failed (syntax error: GL900); 1 model checked, 1 skipped (needs configuration: GL902).",
        "gradlint: 1 error, 2 infos in 1 checked model; 1 file could not be checked."]
    assert "training step" not in text.stderr  # the training script was not started
    doc = json.loads(run_gradlint(".", "--format", "json", cwd=tmp_path).stdout)
    assert doc["summary"]["files"] == {"examined": 5, "imported": 2,
                                       "skipped": {"no-model": 1, "GL907": 1},
                                       "failed": {"GL900": 1}}
    assert doc["summary"]["models"] == {"checked": 1, "skipped": {"GL902": 1}, "failed": {}}
    assert doc["summary"]["unestimated"] == {"layers": 0, "weight_layers": 2, "blocks": 0}


def test_checking_nothing_says_so(run_gradlint: RunGradlint, tmp_path: Path) -> None:
    tree(tmp_path, helpers=HELPERS, needs=NEEDS)
    done = run_gradlint(".", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # an info only: the exit code contract holds
    assert summary(done.stdout) == [
        "2 files examined: 1 imported, 1 skipped (without a model); 0 models checked, "
        "1 skipped (needs configuration: GL902).",
        "gradlint: no model was checked (1 info)."]


def test_a_configured_target_imports_a_skipped_file(run_gradlint: RunGradlint,
                                                    tmp_path: Path) -> None:
    tree(tmp_path, train=TRAIN)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gradlint.targets."train.py::Small"]\ninputs = ["2x4"]\n')
    done = run_gradlint("train.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "training step" in done.stderr  # imported whatever the pre-filter says
    assert summary(done.stdout) == ["1 file examined: 1 imported; 1 model checked.",
                                    "gradlint: no problems in 1 checked model."]


def test_a_mostly_unestimated_model_is_not_no_problems(run_gradlint: RunGradlint,
                                                       tmp_path: Path) -> None:
    tree(tmp_path, wrapped=WRAPPED)
    done = run_gradlint("wrapped.py", "--select", "GL101", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no problems" not in done.stdout
    assert summary(done.stdout)[1] == (
        "gradlint: nothing found in 1 checked model; 4 of 5 weight layers have no estimate "
        "(1 block neither torch.fx nor torch.export could trace: GL904); Wrapper is mostly "
        "unchecked.")
    assert "  4 of 5 weight layers (most of this model) have no estimate" in done.stdout
    doc = json.loads(run_gradlint("wrapped.py", "--format", "json", cwd=tmp_path).stdout)
    (model,) = doc["models"]
    assert model["unestimated"] == 4
    assert [(b["module"], b["type"], b["layers"]) for b in model["opaque"]] == [
        ("inner", "Inner", 4)]
    assert doc["summary"]["unestimated"] == {"layers": 4, "weight_layers": 5, "blocks": 1}


def test_a_model_built_by_a_convention_is_announced(run_gradlint: RunGradlint,
                                                    tmp_path: Path) -> None:
    tree(tmp_path, gpt=CONFIGURED)
    done = run_gradlint("gpt.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "gpt.py::GPT  (fx, actual init, built as GPT(GPTConfig()), 2 layers" in done.stdout
    doc = json.loads(run_gradlint("gpt.py", "--format", "json", cwd=tmp_path).stdout)
    assert [m["built_as"] for m in doc["models"]] == ["GPT(GPTConfig())"]
