"""The pre-filter through the installed command: files whose import-time code (or whose local
modules' import-time code) would do work are skipped with GL907 and never run — the files they
would write never appear — while model files that only build models are checked."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from prefilter_sources import EVAL_DECORATOR

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

PARTS = """
    import math
    from dataclasses import dataclass

    import torch
    import torch.nn as nn


    @dataclass
    class GPTConfig:
        vocab_size: int = 64
        n_layer: int = 2
        n_embd: int = 16


    class Block(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.ln = nn.LayerNorm(config.n_embd)
            self.fc = nn.Linear(config.n_embd, config.n_embd)

        def forward(self, x):
            return x + self.fc(self.ln(x))


    class GPT(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
            self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.apply(self._init_weights)
            for name, p in self.named_parameters():
                if name.endswith("fc.weight"):
                    torch.nn.init.normal_(p, std=0.02 / math.sqrt(2 * config.n_layer))

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, std=0.02)

        def forward(self, idx):
            x = self.wte(idx)
            for block in self.h:
                x = block(x)
            return self.head(x)
    """

FILES = {
    "parts.py": PARTS,
    "gpt_model.py": """
        from parts import GPT, GPTConfig

        gpt = GPT(GPTConfig())


        def example_inputs():
            import torch
            return (torch.randint(0, 64, (2, 8)),)
        """,
    "net_loops.py": """
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, depth=3, width=8):
                super().__init__()
                layers = []
                for _ in range(depth):
                    layers += [nn.Linear(width, width), nn.ReLU()]
                self.body = nn.Sequential(*layers)
                self.apply(self._init_weights)

            def _init_weights(self, module):
                if isinstance(module, nn.Linear):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                    nn.init.zeros_(module.bias)

            def forward(self, x):
                return self.body(x)


        torch.manual_seed(0)
        """,
    "hf_tiny.py": """
        from transformers import AutoModel, BertConfig

        bert = AutoModel.from_config(BertConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            vocab_size=100))
        """,
    "train.py": """
        import pathlib

        import torch
        from parts import GPT, GPTConfig

        HIDDEN = 16
        model = GPT(GPTConfig())
        for step in range(2):  # MARK
            pathlib.Path(__file__).with_name("TRAINED").write_text(str(step))
        """,
    "uses_train.py": """
        import torch.nn as nn
        from train import HIDDEN  # MARK


        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(HIDDEN, 2)

            def forward(self, x):
                return self.fc(x)
        """,
    "saver.py": """
        import pathlib

        import torch.nn as nn


        class Saver(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                pathlib.Path(__file__).with_name("CTOR_RAN").write_text("built")

            def forward(self, x):
                return self.fc(x)


        model = Saver()  # MARK
        """,
    "helper.py": """
        import torch.nn as nn


        def note(text):
            with open(__file__.replace("helper.py", "HELPER_RAN"), "w") as out:
                out.write(text)


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x)


        note("imported")  # MARK
        """,
    "wrapped.py": "import pathlib\nimport shutil\n\nimport torch.nn as nn\n\n\n"
                  + EVAL_DECORATOR + textwrap.dedent("""

        class Sampler(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            @eval_decorator
            def generate(self, x):
                shutil.rmtree(pathlib.Path(__file__).with_name("cache"))
                return self.fc(x)

            def forward(self, x):
                return self.fc(x)
        """),
    "wrapped_call.py": """
        import pathlib

        import torch.nn as nn


        def logged(fn):
            def inner(*args):
                pathlib.Path(__file__).with_name("WRAPPER_RAN").touch()
                return fn(*args)
            return inner


        @logged
        def make():
            return nn.Linear(4, 4)


        layer = make()  # MARK
        """,
    "pkg/__init__.py": "",
    "pkg/parts.py": """
        import pathlib

        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x)


        pathlib.Path(__file__).with_name("PARTS_RAN").touch()  # MARK
        """,
    "pkg/model.py": """
        import torch.nn as nn

        from .parts import Block  # MARK


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = Block()

            def forward(self, x):
                return self.block(x)
        """,
}
MARKERS = ("TRAINED", "CTOR_RAN", "HELPER_RAN", "pkg/PARTS_RAN", "WRAPPER_RAN")


def _mark(path: Path) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "# MARK" in line)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory, run_gradlint: Any
            ) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    root = tmp_path_factory.mktemp("prefilter")
    for rel, text in FILES.items():
        path = root / "case" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    proc = run_gradlint("case", "--format", "json", "--jobs", "2", cwd=root)
    assert "Traceback" not in proc.stderr, proc.stderr
    return root / "case", proc, json.loads(proc.stdout)


def _gl907(doc: dict[str, Any], rel: str) -> dict[str, Any]:
    (diag,) = [d for d in doc["diagnostics"] if d["file"] == f"case/{rel}"]
    assert diag["code"] == "GL907" and diag["severity"] == "info", diag
    return diag


def test_nothing_the_skipped_code_would_write_exists(checked: Any) -> None:
    folder, proc, _ = checked
    assert proc.returncode == 0, proc.stderr
    assert [m for m in MARKERS if (folder / m).exists()] == []


@pytest.mark.parametrize("rel", ["train.py", "saver.py", "helper.py", "pkg/parts.py",
                                 "wrapped_call.py"])
def test_files_that_do_work_at_import_are_skipped_at_the_line(checked: Any, rel: str) -> None:
    folder, _, doc = checked
    assert _gl907(doc, rel)["line"] == _mark(folder / rel)
    assert not [m for m in doc["models"] if m["file"] == f"case/{rel}"]


def test_a_file_importing_a_training_script_names_it(checked: Any) -> None:
    folder, _, doc = checked
    diag = _gl907(doc, "uses_train.py")
    assert diag["line"] == _mark(folder / "uses_train.py")
    assert (f"not imported: importing case/train.py runs its module-level `for` loop at line "
            f"{_mark(folder / 'train.py')}") in diag["message"]


def test_a_relative_import_of_a_module_that_does_work_is_skipped(checked: Any) -> None:
    folder, _, doc = checked
    diag = _gl907(doc, "pkg/model.py")
    assert diag["line"] == _mark(folder / "pkg" / "model.py")
    assert "importing case/pkg/parts.py runs its module-level call" in diag["message"]
    assert f"at line {_mark(folder / 'pkg' / 'parts.py')}" in diag["message"]


@pytest.mark.parametrize("target", ["gpt_model.py::gpt", "net_loops.py::Net", "hf_tiny.py::bert",
                                    "wrapped.py::Sampler"])
def test_model_files_that_only_build_models_are_checked(checked: Any, target: str) -> None:
    _, _, doc = checked
    (model,) = [m for m in doc["models"] if m["target"] == f"case/{target}"]
    assert model["status"] == "ok" and model["layers"], model
    file = target.partition("::")[0]
    assert not [d for d in doc["diagnostics"] if d["file"] == f"case/{file}"]
