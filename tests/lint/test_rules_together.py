"""GL103, GL105 and GL106 together: quiet on healthy architectures (the zoo in tests/models
and Hugging Face configs), reported at the user's line through the file pipeline, and listed
and explained by the CLI."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn
from models.convnext import ConvNeXtish
from models.mlp import SmallBNCNN
from models.resnet import ResNet
from models.transformer import Transformer, token_inputs
from rule_helpers import NEW, check, codes, explain

from gradlint.core.options import Options
from gradlint.core.values import Diagnostic
from gradlint.run.pipeline import check_paths, selected

# --- the zoo in tests/models -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet", "bn-cnn", "convnext", "transformer", "mha"])
def test_healthy_zoo_is_quiet_for_the_new_rules(name: str) -> None:
    torch.manual_seed(0)
    model, inputs = {
        "resnet": lambda: (ResNet(), (torch.randn(8, 3, 32, 32),)),
        "bn-cnn": lambda: (SmallBNCNN(), (torch.randn(8, 3, 32, 32),)),
        "convnext": lambda: (ConvNeXtish(), (torch.randn(4, 3, 32, 32),)),
        "transformer": lambda: (Transformer(explicit=True), token_inputs()),
        "mha": lambda: (Transformer(explicit=False), token_inputs()),
    }[name]()
    report = check(model, *inputs)
    assert not codes(report) & {"GL101", "GL103", "GL105"}, explain(report)
    assert ("GL106" in codes(report)) == (name == "convnext"), explain(report)


# --- Hugging Face configs (export tracer) ------------------------------------------------------

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _hf(name: str) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    if name == "bert":
        return transformers.BertModel(transformers.BertConfig(
            hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
            vocab_size=1000))
    if name == "gpt2":
        return transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_embd=64, n_layer=4, n_head=4, vocab_size=1000, use_cache=False, bos_token_id=0,
            eos_token_id=0))
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=1000, use_cache=False))


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama"])
def test_hugging_face_models_are_quiet_for_the_new_rules(name: str) -> None:
    torch.manual_seed(0)
    report = check(_hf(name), torch.randint(0, 1000, (2, 16)))
    assert report.tracer == "export"
    assert not codes(report) & set(NEW), explain(report)


# --- locations: the user's line, through the file pipeline ---------------------------------------

MODELS = '''\
import math

import torch
import torch.nn as nn


class Overscaled(nn.Module):
    def __init__(self, width=64, depth=20):
        super().__init__()
        self.layers = nn.Sequential(
            *[nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth)]
        )
        self.head = nn.Linear(width, 10)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=2.0 / math.sqrt(m.in_features))

    def forward(self, x):
        return self.head(self.layers(x))


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)
        self.gamma = nn.Parameter(1e-6 * torch.ones(width))

    def forward(self, x):
        return x + self.gamma * torch.relu(self.fc(self.norm(x)))


class Scaled(nn.Module):
    def __init__(self, width=64, depth=4):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.blocks(x))
'''


@pytest.fixture(scope="module")
def file_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Diagnostic]]:
    path = tmp_path_factory.mktemp("gl10x") / "models.py"
    path.write_text(textwrap.dedent(MODELS), encoding="utf-8")
    options = Options()
    report, missing = check_paths([str(path)], options)
    assert not missing
    return path, list(selected(report, options))


def _line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    (line,) = [i for i, t in enumerate(lines, start=1) if text in t]
    return line


def test_locations_are_the_lines_that_build_the_layers(
        file_report: tuple[Path, list[Diagnostic]]) -> None:
    path, diags = file_report
    by_code = {d.code: d for d in diags if d.code in NEW}
    assert set(by_code) == set(NEW), [(d.code, d.message) for d in diags]
    linear = _line_of(path, "nn.Sequential(nn.Linear(width, width), nn.ReLU())")
    for code in ("GL103", "GL105"):
        d = by_code[code]
        assert d.target.endswith("::Overscaled")
        assert os.path.samefile(d.location.file, path) and d.location.line == linear, d
        text = path.read_text(encoding="utf-8").splitlines()[linear - 1]
        assert d.location.col == text.index("nn.Linear(") + 1, d
    gl106 = by_code["GL106"]
    assert gl106.target.endswith("::Scaled") and gl106.module == "blocks.0"
    assert gl106.location.line == _line_of(path, "[Block(width) for _ in range(depth)]")
    assert "4 learnable scales built here" in gl106.message


def test_rules_are_listed_and_explained(run_gradlint: Any, repo_root: Path) -> None:
    listed = run_gradlint("rules")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    for code, name, severity in (("GL103", "exploding-gradient", "error"),
                                 ("GL105", "init-gain", "warning"),
                                 ("GL106", "gated-branch", "info")):
        assert name in lines[code] and severity in lines[code]
        page = run_gradlint("explain", code)
        assert page.returncode == 0, page.stderr
        (folder,) = (repo_root / "rules").glob(f"{code}-*")
        assert page.stdout.strip() == (folder / "README.md").read_text(encoding="utf-8").strip()
