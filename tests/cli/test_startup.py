"""`gradlint --version`, `rules` and `explain` answer without importing torch (issue 7: the
command must feel instant in a pre-commit hook)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from gradlint.cli.command import main
sys.argv = ["gradlint", *{args!r}]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print("torch imported:", "torch" in sys.modules)
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (what it imports is what a gradlint process imports)."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.parametrize("args", [["--version"], ["rules"], ["explain", "GL101"],
                                  ["rules", "--format", "json"]])
def test_no_torch_at_startup(args: list[str]) -> None:
    run = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True,
                         text=True, check=True)
    assert run.stdout.strip().endswith("torch imported: False"), run.stdout[-300:]


@pytest.mark.parametrize("args", [["--version"], ["rules"], ["explain", "GL101"]])
def test_console_command_imports_no_heavy_module(args: list[str]) -> None:
    """The installed ``gradlint`` command itself (not only ``cli.main``): Python's own import
    log (``PYTHONPROFILEIMPORTTIME``) lists neither torch nor libcst (~2 s and ~0.35 s)."""
    command = shutil.which("gradlint")
    if command is None:
        pytest.skip("the gradlint command is not installed")
    run = subprocess.run([command, *args], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()
                if line.startswith("import time:")}
    assert "click" in imported, run.stderr[-500:]  # the log was written
    assert not imported & {"torch", "libcst", "numpy"}, sorted(imported & {"torch", "libcst",
                                                                           "numpy"})


def test_checking_a_file_leaves_torch_to_the_worker(repo_root: Path) -> None:
    """The parent process walks, filters, validates --input and reports; only the worker pays
    torch's import (~1 s), so a run costs one torch import, not two."""
    code = ("import sys\nfrom gradlint import cli\n"
            "try:\n    cli.main(['examples/three_layer_sigmoid.py', '--format', 'json'])\n"
            "except SystemExit:\n    pass\n"
            "print('torch' in sys.modules, file=sys.stderr)\n")
    proc = _python(code, repo_root)
    assert proc.stderr.strip().splitlines()[-1] == "False", proc.stderr
    assert "three_layer_sigmoid.py::ThreeLayerNet" in proc.stdout  # it was checked


def test_analysing_a_fixable_model_leaves_libcst_to_the_cli(repo_root: Path) -> None:
    """The worker decides which activations a fix may change (gradlint.lint.fix_targets) without the
    codemod's libcst (~0.25 s of every run that reports a fixable finding)."""
    code = ("import sys\n"
            "from gradlint.run.check_file import analyse_file\n"
            "from gradlint.core.options import Options\n"
            "models, _ = analyse_file('examples/deep_sigmoid.py', (), Options())\n"
            "edits = [e for m in models for d in m.diagnostics if d.fix for e in d.fix.edits]\n"
            "print(len(edits), 'libcst' in sys.modules)\n")
    proc = _python(code, repo_root)
    edits, libcst_loaded = proc.stdout.split()[-2:]
    assert int(edits) > 0, proc.stdout + proc.stderr  # the fix path ran
    assert libcst_loaded == "False", proc.stdout


TINY_LM = '''
import torch.nn as nn


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)  # normal_ init: torch's meta kernel imports dynamo
        self.head = nn.Linear(16, 100)
        nn.init.normal_(self.head.weight, std=0.02)
        self.head.bias.data.normal_()

    def forward(self, x):
        return self.head(self.embed(x))
'''


POSITIONAL_LM = '''
import math
import torch
import torch.nn as nn


class PosLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        pe = torch.zeros(32, 16)
        pos = torch.arange(32).float()[:, None]
        div = torch.exp(torch.arange(0, 16, 2).float() * (-math.log(10000.0) / 16))
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe)
        self.register_buffer("mask", torch.ones(32, 32).triu(1).bool())
        self.pos = nn.Parameter(0.02 * torch.randn(1, 32, 16))
        self.head = nn.Linear(16, 100)

    def forward(self, x):
        return self.head(self.embed(x) + self.pe[: x.shape[1]] + self.pos[:, : x.shape[1]])
'''


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_arithmetic_in_a_constructor_sized_on_meta_does_not_import_dynamo(
        tmp_path: Path) -> None:
    """Positional tables and masks on meta go through torch's Python kernels, whose wrapper
    imports torch._dynamo (~0.55 s) to mark them untraceable; the probe hands them a stand-in.
    Afterwards torch is as it was: the real import works, the kernels are wrapped by it, meta
    arithmetic still runs."""
    (tmp_path / "pos.py").write_text(POSITIONAL_LM, encoding="utf-8")
    code = ("import sys\nfrom gradlint.load.targets import LoadRequest, load_targets\n"
            "found = load_targets(LoadRequest('pos.py', (), inputs=('2x8:int64',)))\n"
            "before = 'torch._dynamo' in sys.modules\n"
            "import torch\nimport torch._dynamo\n"
            "x = (torch.ones(3, 3, device='meta').triu(1) * 2).sum()\n"
            "print([type(t).__name__ for t in found], before, type(torch._dynamo).__name__,\n"
            "      hasattr(torch._dynamo, 'optimize'), tuple(x.shape))\n")
    proc = _python(code, tmp_path)
    assert proc.stdout.split() == ["['Target']", "False", "module", "True", "()"], (
        proc.stdout + proc.stderr)


ASKS_DYNAMO = '''
import torch
import torch.nn as nn


class AsksDynamo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        import torch._dynamo
        assert torch._dynamo.__file__  # the stand-in has no __file__: the probe runs again
        self.fc = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.ones(4) * 0.5)

    def forward(self, x):
        return self.fc(x) * self.scale
'''


def test_a_constructor_the_dynamo_stand_in_cannot_serve_is_sized_again_without_it(
        tmp_path: Path) -> None:
    """The stand-in is missing what it does not stand in for; where a constructor fails for
    that, the probe runs again with torch as it is (never a real build of a model that may
    not fit in memory because the probe failed)."""
    (tmp_path / "asks.py").write_text(ASKS_DYNAMO, encoding="utf-8")
    code = ("from gradlint.load.targets import LoadRequest, load_targets\n"
            "found = load_targets(LoadRequest('asks.py', (), inputs=('2x4',), meta=True))\n"
            "print([(type(t).__name__, next(t.model.parameters()).device.type) "
            "for t in found])\n")
    proc = _python(code, tmp_path)
    assert proc.stdout.split("\n")[-2] == "[('Target', 'meta')]", proc.stdout + proc.stderr


def test_sizing_a_model_on_meta_does_not_import_dynamo(tmp_path: Path) -> None:
    """The meta-device size probe runs the constructor's random inits; on meta they draw
    nothing, so gradlint skips torch's detour through torch._dynamo (~1 s per worker)."""
    (tmp_path / "lm.py").write_text(TINY_LM, encoding="utf-8")
    code = ("import sys\nfrom gradlint.load.targets import LoadRequest, load_targets\n"
            "found = load_targets(LoadRequest('lm.py', (), inputs=('2x8:int64',)))\n"
            "print([type(t).__name__ for t in found], 'torch._dynamo' in sys.modules)\n")
    proc = _python(code, tmp_path)
    assert proc.stdout.split()[-2:] == ["['Target']", "False"], proc.stdout + proc.stderr
