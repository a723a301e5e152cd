"""Issue 17 (item 8): a Hugging Face model held in a wrapper, built on the meta device, is
checked as the same model subclassed directly is. torch.fx cannot trace the Llama, so it is
spliced: on meta its own forward cannot run (``Tensor.item()`` on a mask), so the shape pass
takes its outputs from its exported program, which the splice then uses."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn as nn

import gradlint

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256}
LLAMA_70B = {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
             "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256}


class Model(nn.Module):
    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__()
        self.net = transformers.LlamaForCausalLM(transformers.LlamaConfig(
            **sizes, use_cache=False))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.net(input_ids=input_ids).logits


def check_on_meta(sizes: dict[str, int]) -> tuple[nn.Module, gradlint.core.values.ModelReport]:
    with torch.device("meta"):
        model = Model(sizes)
    ids = torch.randint(0, sizes["vocab_size"], (1, 16))
    return model, gradlint.check(model, ids)


def assert_every_layer_estimated(model: nn.Module,
                                 report: gradlint.core.values.ModelReport) -> None:
    assert report.status == "ok", report.diagnostics
    assert report.init == "default" and report.tracer == "fx+export"
    owners = {name for name, m in model.named_modules()
              if any(p is not None for p in m._parameters.values())}
    assert owners == {le.module for le in report.layers if le.log10_relative is not None}
    assert not report.opaque
    assert all(p.device.type == "meta" for p in model.parameters())
    assert "forward" not in vars(model.net)  # the shape pass's stand-in is gone


def test_a_wrapped_llama_on_meta_is_checked() -> None:
    assert_every_layer_estimated(*check_on_meta(SMALL))


@pytest.mark.slow  # ~40-60 s on 2 busy cores; bench/speed.py times it beside the subclass
def test_a_wrapped_llama_at_70b_sizes_on_meta_is_checked() -> None:
    model, report = check_on_meta(LLAMA_70B)
    assert_every_layer_estimated(model, report)
    assert sum(le.numel for le in report.layers) > 69e9
