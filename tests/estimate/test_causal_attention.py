"""Causal attention against autograd: with the keys per query read from the mask, a GPT-style
stack is estimated within 0.12 decades per layer on average, whichever way it masks (without
them: 0.21, the attention projections 0.4 decades low). And two export-path arithmetic fixes
the decoder LMs needed: ``x + c`` shifts x (it was a scale of 1, which dropped the 1 of GELU's
tanh form ``0.5 x (1 + tanh(...))`` and left Phi's MLP output 0.8 decades low), and odd
integer powers keep a zero mean (x^3 had the mean |x|^3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlint.core.graph import InputSpec
from gradlint.core.values import Target
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.run.check_file import check_model
from gradlint.trace.fx import trace_target
from gradlint.verify.compare import verify_model

VOCAB, TOKENS, WIDTH = 200, 48, 64


class Block(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.ln1, self.ln2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.qkv, self.proj = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)
        self.fc, self.out = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)
        self.register_buffer("tril", torch.tril(torch.ones(TOKENS, TOKENS)).view(
            1, 1, TOKENS, TOKENS))
        if how == "mha":
            self.mha = nn.MultiheadAttention(WIDTH, 4, batch_first=True)
            self.register_buffer("causal", torch.ones(TOKENS, TOKENS, dtype=torch.bool).triu(1))

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        if self.how == "mha":
            return self.mha(x, x, x, attn_mask=self.causal, need_weights=False)[0]
        q, k, v = (h.view(b, t, 4, c // 4).transpose(1, 2) for h in self.qkv(x).split(c, 2))
        if self.how == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (k.size(-1) ** -0.5)
            att = att.masked_fill(self.tril[:, :, :t, :t] == 0, float("-inf"))
            y = F.softmax(att, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attend(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, WIDTH), nn.Embedding(TOKENS, WIDTH)
        self.blocks = nn.Sequential(*[Block(how) for _ in range(4)])
        self.ln, self.head = nn.LayerNorm(WIDTH), nn.Linear(WIDTH, VOCAB, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.head(self.ln(self.blocks(self.wte(idx) + self.wpe(pos))))


def _verified(model: nn.Module, spec: InputSpec, inputs: torch.Tensor) -> float:
    report = check_model(model, inputs)
    assert report.status == "ok"
    v = verify_model(model, (spec,), report.layers, batch=4, seeds=(0,))
    assert v.error is None and v.mean_error is not None
    return v.mean_error


@pytest.mark.parametrize("how", ["sdpa", "masked_fill", "mha"])
def test_a_causal_gpt_is_estimated_within_a_tenth_of_a_decade(how: str) -> None:
    torch.manual_seed(0)
    model = GPT(how)
    error = _verified(model, InputSpec((4, TOKENS), "int64", VOCAB),
                      torch.randint(0, VOCAB, (4, TOKENS)))
    assert error < 0.12, error  # 0.21-0.22 with every query seeing every key


def test_a_small_gpt2_is_estimated_within_a_tenth_of_a_decade() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=3,
                                  n_head=4, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(cfg)
    error = _verified(model, InputSpec((2, 32), "int64", VOCAB),
                      torch.randint(0, VOCAB, (2, 32)))
    assert error < 0.1, error  # 0.35 before the keys and the shift (GELU's tanh form)


class TanhGelu(nn.Module):
    """GELU's tanh form written out, behind a size check fx cannot trace (export path)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 10_000:
            return x
        h = self.fc(x)
        return 0.5 * h * (1.0 + torch.tanh(0.7978845608 * (h + 0.044715 * torch.pow(h, 3.0))))


def test_the_export_path_shifts_by_a_number_and_cubes_to_a_zero_mean() -> None:
    torch.manual_seed(0)
    model = TanhGelu()
    x = torch.randn(256, 32)
    est = estimate_gradients(trace_target(Target("M", model, __file__, 1, (x,))))
    assert est.graph.tracer == "export"
    cube = next(n for n in est.graph.nodes if n.op == "pow")
    assert abs(est.moments[cube.index].mean) < 0.05 * est.moments[cube.index].second ** 0.5
    with torch.no_grad():
        measured = float((model(x) ** 2).mean())
    assert est.moments[est.graph.output].second == pytest.approx(measured, rel=0.2)
