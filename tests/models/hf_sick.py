"""A sick library model built in a user file: a Hugging Face wav2vec 2.0 whose convolutional
feature encoder (8 convs, normalized only after the first) uses sigmoid instead of GELU. Its
layers are defined in transformers; gradlint anchors the diagnostics here, at ``model = ...``."""

from __future__ import annotations

import torch
import transformers

config = transformers.Wav2Vec2Config(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=(32,) * 8, conv_kernel=(3,) * 8, conv_stride=(2,) * 8,
    feat_extract_activation="sigmoid", num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4, mask_time_prob=0.0, layerdrop=0.0, vocab_size=32)
model = transformers.Wav2Vec2Model(config)


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randn(2, 2048),)  # raw audio: 2 clips of 2048 samples
