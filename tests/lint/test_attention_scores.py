"""Attention's scores are a side branch for GL101: the layers that make queries and keys get
their gradient through the softmax's Jacobian, which near-uniform attention at init makes small
once (BART's encoder q/k_proj measure 10^-5 of its largest layer), not per layer. Before, GL101
fired on Hugging Face BART, timm's pvt_v2_b0 and twins_svt_small at default init (on a q or
k_proj); all train. (pvt_v2_b0 with 10 classes at 64 px still gets GL101 on its first norms:
the open verdict work of the accuracy issue.)"""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn as nn
import transformers

from gradlint.run.check_file import check_model


def _bart() -> tuple[nn.Module, torch.Tensor]:
    config = transformers.BartConfig(
        vocab_size=128, d_model=32, encoder_layers=3, decoder_layers=3,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=64, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0)
    return transformers.BartModel(config), torch.randint(3, 128, (2, 32))


def _timm(name: str, **kwargs: object) -> tuple[nn.Module, torch.Tensor]:
    """As the zoo benchmark builds them (1000 classes, 128 px)."""
    return timm.create_model(name, **kwargs), torch.randn(2, 3, 128, 128)


@pytest.mark.parametrize("make", [
    _bart, lambda: _timm("pvt_v2_b0"), lambda: _timm("twins_svt_small", img_size=128),
], ids=["bart", "pvt_v2_b0", "twins_svt_small"])
def test_stock_attention_models_are_quiet(make: object) -> None:
    torch.manual_seed(0)
    model, x = make()  # type: ignore[operator]
    report = check_model(model, x)
    assert report.status == "ok"
    assert [d for d in report.diagnostics if d.code in ("GL101", "GL103")] == []
    scores = [le for le in report.layers if le.side_branch is not None]
    assert scores  # the query and key layers, each with where its branch joins


class SickScores(nn.Module):
    """Queries and keys made by deep sigmoid stacks: the branch's own layers compound."""

    def __init__(self, depth: int = 12, width: int = 32) -> None:
        super().__init__()
        self.q = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width),
                                                                    nn.Sigmoid())])
        self.v = nn.Linear(width, width)
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.q(x)
        attn = torch.softmax(q @ q.transpose(1, 2) / 32 ** 0.5, dim=-1)
        return self.head((attn @ self.v(x)).mean(1))


def test_a_deep_sick_score_branch_still_fires() -> None:
    torch.manual_seed(0)
    report = check_model(SickScores(), torch.randn(4, 16, 32))
    fired = [d.module for d in report.diagnostics if d.code == "GL101"]
    assert fired and all(m is not None and m.startswith("q.") for m in fired), fired
