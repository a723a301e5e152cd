"""The torch.export fallback: models torch.fx cannot trace are exported and mapped onto the
same LayerGraph (Hugging Face models built from small configs, no downloads)."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn as nn

import gradlint

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")


def _check_all_owners_reported(model: nn.Module, report: gradlint.core.values.ModelReport) -> None:
    named = {le.module for le in report.layers} | {a for le in report.layers for a in le.aliases}
    for name, mod in model.named_modules():
        if any(p is not None for p in mod._parameters.values()):
            assert name in named, name


class LoopsOverTime(nn.Module):
    """fx cannot iterate over a symbolic size; export sees concrete shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros_like(x[:, 0])
        for t in range(x.shape[1]):
            h = torch.sigmoid(self.cell(h + x[:, t]))
        return self.head(h)


def test_a_model_fx_cannot_trace_is_exported() -> None:
    torch.manual_seed(0)
    report = gradlint.check(LoopsOverTime(), torch.randn(4, 6, 16))
    assert report.status == "ok", report.diagnostics
    assert report.tracer == "export"
    assert {le.module for le in report.layers} == {"cell", "head"}
    assert all(le.log10_grad is not None for le in report.layers)


def test_without_inferable_inputs_and_untraceable_is_gl902_with_the_config_line() -> None:
    class NoLayers(nn.Module):  # raw weights: no layer tells the input's size
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(16, 16) / 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.zeros_like(x[:, 0])
            for t in range(x.shape[1]):
                h = torch.sigmoid((h + x[:, t]) @ self.w)
            return h

    report = gradlint.check(NoLayers())
    (diag,) = report.diagnostics
    assert diag.code == "GL902" and diag.severity == "info", diag
    assert '[tool.gradlint.targets."<model>::NoLayers"] inputs = [' in diag.message


def _bert() -> nn.Module:
    cfg = transformers.BertConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=3,
                                  num_attention_heads=4, vocab_size=1000)
    return transformers.BertModel(cfg)


def _gpt2() -> nn.Module:
    cfg = transformers.GPT2Config(n_embd=64, n_layer=3, n_head=4, vocab_size=1000,
                                  use_cache=False, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def _llama() -> nn.Module:
    cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                   num_attention_heads=4, num_key_value_heads=2,
                                   vocab_size=1000, use_cache=False)
    return transformers.LlamaForCausalLM(cfg)


@pytest.mark.parametrize("build", [_bert, _gpt2, _llama], ids=["bert", "gpt2", "llama"])
def test_hugging_face_models_are_checked_quietly(build) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build()
    report = gradlint.check(model, torch.randint(0, 1000, (2, 16)))
    assert report.status == "ok", report.diagnostics
    assert report.tracer == "export"
    codes = {d.code for d in report.diagnostics}
    assert not codes & {"GL101", "GL102", "GL103"}, report.diagnostics
    _check_all_owners_reported(model, report)


def test_tied_embedding_is_one_layer_with_its_alias_and_gets_a_gradient() -> None:
    torch.manual_seed(0)
    report = gradlint.check(_gpt2(), torch.randint(0, 1000, (2, 16)))
    wte = next(le for le in report.layers if le.module == "transformer.wte")
    assert "lm_head" in wte.aliases
    assert not wte.zero and wte.log10_grad is not None
