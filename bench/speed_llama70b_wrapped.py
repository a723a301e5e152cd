"""The Llama-3 70B config held in a wrapper module, as a user's model file would give it (issue
17, item 8): ``gradlint bench/speed_llama70b_wrapped.py`` builds it on the meta device, traces
the wrapper with torch.fx and the Llama with torch.export, spliced in (bench/speed.py times it
beside the subclassed one, bench/speed_llama70b.py)."""

from __future__ import annotations

import torch
import torch.nn as nn
from transformers import LlamaConfig, LlamaForCausalLM


class WrappedLlama70B(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = LlamaForCausalLM(LlamaConfig(
            hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
            num_attention_heads=64, num_key_value_heads=8, vocab_size=128256, use_cache=False))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.net(input_ids=input_ids).logits


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randint(0, 128256, (1, 16)),)
