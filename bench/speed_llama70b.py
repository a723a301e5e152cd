"""The Llama-3 70B config as a user's model file would give it, with its example input:
``gradlint bench/speed_llama70b.py`` builds it on the meta device (bench/speed.py times it)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM


class Llama70B(LlamaForCausalLM):
    def __init__(self) -> None:
        super().__init__(LlamaConfig(
            hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
            num_attention_heads=64, num_key_value_heads=8, vocab_size=128256, use_cache=False))


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randint(0, 128256, (1, 16)),)
