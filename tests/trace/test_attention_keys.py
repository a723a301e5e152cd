"""Keys per query, read from attention masks: near-uniform attention averages its values over
the n_i keys query i can see. Without them a causal decoder was estimated as if every query saw
every key: the values' gradient and the attention output n/H_n too small (Llama, Mistral,
Qwen2 at 32 tokens: the MLP branch +0.6 decades against the attention's; decoder LM Spearman
0.79 on the zoo)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlint.core.values import Target
from gradlint.trace import attention_keys
from gradlint.trace.fx import trace_target


def harmonic(n: int, power: int = 1) -> float:
    return sum(1.0 / k ** power for k in range(1, n + 1))


def test_causal_rows_see_themselves_and_what_came_before() -> None:
    h1, h2 = attention_keys.causal(6, 6)
    assert h1 == pytest.approx(harmonic(6) / 6)
    assert h2 == pytest.approx(harmonic(6, 2) / 6)
    assert attention_keys.causal(1, 1) is None


@pytest.mark.parametrize("hidden", [float("-inf"), torch.finfo(torch.float32).min, -1e4,
                                    -100.0])
def test_an_additive_mask_hides_what_it_pushes_far_down(hidden: float) -> None:
    mask = torch.zeros(5, 5).masked_fill(torch.ones(5, 5).triu(1).bool(), hidden)
    assert attention_keys.from_mask(mask, 5) == pytest.approx(attention_keys.causal(5, 5))


def test_boolean_masks_in_both_conventions() -> None:
    allowed = torch.ones(4, 4, dtype=torch.bool).tril()
    assert attention_keys.from_mask(allowed, 4) == pytest.approx(attention_keys.causal(4, 4))
    assert attention_keys.from_mask(~allowed, 4, hides=True) == pytest.approx(
        attention_keys.causal(4, 4))


def test_a_mask_that_hides_nothing_is_every_key() -> None:
    assert attention_keys.from_mask(torch.zeros(2, 1, 7, 7), 7) is None
    assert attention_keys.from_mask(torch.ones(7, 7, dtype=torch.bool), 7) is None
    assert attention_keys.from_mask(torch.zeros(7, 7, device="meta"), 7) is None


def test_padding_and_a_causal_mask_together() -> None:
    """nn.MultiheadAttention: True hides, in both masks; example 1 pads its last 2 keys."""
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 4, 8)
    causal = torch.ones(4, 4, dtype=torch.bool).triu(1)
    padding = torch.zeros(2, 4, dtype=torch.bool)
    padding[1, 2:] = True
    keys = attention_keys.of_call("multihead_attention", (x, x, x),
                                  {"attn_mask": causal, "key_padding_mask": padding}, mha)
    rows = [1, 2, 3, 4] + [1, 2, 2, 2]
    assert keys == pytest.approx((sum(1 / n for n in rows) / 8,
                                  sum(1 / n ** 2 for n in rows) / 8))


def test_logits_far_below_their_row_maximum_are_masked() -> None:
    logits = torch.randn(3, 6, 2)  # softmax over dim 1
    logits[:, 4:, :] = float("-inf")
    assert attention_keys.from_logits(logits, 1) == pytest.approx((1 / 4, 1 / 16))
    assert attention_keys.from_logits(torch.randn(3, 6), -1) is None


class CausalSelfAttention(nn.Module):
    """nanoGPT's block: the fused kernel, or the explicit masked softmax with the mask sliced
    from a buffer (fx cannot slice a tensor by a traced size: export), or built in forward."""

    def __init__(self, how: str, width: int = 16, tokens: int = 8) -> None:
        super().__init__()
        self.how = how
        self.qkv = nn.Linear(width, 3 * width)
        self.register_buffer("tril", torch.tril(torch.ones(tokens, tokens)))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if self.how == "fused":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        t = x.shape[1]
        att = q @ k.transpose(-2, -1)
        mask = self.tril[:t, :t] if self.how == "buffer" else torch.ones_like(att).tril()
        att = att.masked_fill(mask == 0, float("-inf"))
        return (self.softmax(att) if self.how == "module" else F.softmax(att, dim=-1)) @ v


class Branchy(CausalSelfAttention):
    """Control flow on a size: fx cannot trace it, so the whole model goes to torch.export."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > 100:
            return x
        return super().forward(x)


class Outer(nn.Module):
    """fx traces this and splices the untraceable inner block in from its export."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = Branchy("built")
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.attn(x))


@pytest.mark.parametrize(("model", "tracer"), [
    (CausalSelfAttention("fused"), "fx"), (CausalSelfAttention("built"), "fx"),
    (CausalSelfAttention("module"), "fx"),
    (CausalSelfAttention("buffer"), "export"), (Branchy("fused"), "export"),
    (Branchy("built"), "export"), (Outer(), "fx+export")],
    ids=["sdpa is_causal", "masked_fill", "nn.Softmax", "buffer mask", "export sdpa",
         "export masked_fill", "spliced block"])
def test_every_tracer_reads_the_mask(model: nn.Module, tracer: str) -> None:
    torch.manual_seed(0)
    g = trace_target(Target("M", model, __file__, 1, (torch.randn(2, 8, 16),)))
    assert g.tracer == tracer
    (keys,) = [n.attrs.get("keys") for n in g.nodes if n.op in ("sdpa", "softmax")]
    assert keys == pytest.approx(attention_keys.causal(8, 8))


def test_an_hf_decoder_mask_is_read_on_the_export_path() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=64,
                                   max_position_embeddings=32)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    g = trace_target(Target("M", model, __file__, 1, (torch.randint(0, 100, (2, 12)),)))
    keys = [n.attrs.get("keys") for n in g.nodes if n.op == "sdpa"]
    assert len(keys) == 2 and keys[0] == pytest.approx(attention_keys.causal(12, 12))
    assert math.isclose(keys[0][0], harmonic(12) / 12)


class BadDim(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.fc(x), dim=5)


def test_a_call_that_rejects_its_arguments_fails_at_the_users_line() -> None:
    """Reading the mask must not fail first: it made the user's bad dim gradlint's GL905."""
    from gradlint.run.check_file import check_model

    report = check_model(BadDim(), torch.randn(2, 8))
    assert [d.code for d in report.diagnostics] == ["GL903"]
