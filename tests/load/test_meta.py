"""Big models on the meta device: sized first, never allocated, default-init statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from gradlint.load.targets import LoadRequest, load_targets
from gradlint.trace.weight_stats import default_init, parameter_stats

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

LLAMA = '''
from transformers import LlamaConfig, LlamaForCausalLM


class SmallLlama(LlamaForCausalLM):
    def __init__(self):
        super().__init__(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                                     num_attention_heads=4, num_key_value_heads=2,
                                     vocab_size=1000, use_cache=False))
'''


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_meta_flag_lints_a_llama_config_end_to_end(tmp_path: Path, run_gradlint) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("transformers")
    (tmp_path / "llama.py").write_text(LLAMA)
    run = run_gradlint("llama.py", "--meta", "--input", "1x16:int64", "--format", "json",
                       cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    model = json.loads(run.stdout)["models"][0]
    assert (model["status"], model["tracer"], model["init"]) == ("ok", "export", "default")
    names = {layer["module"] for layer in model["layers"]}
    assert "model.embed_tokens" in names and "model.layers.3.mlp.down_proj" in names
    # every layer gets a finite estimate from the default init statistics
    assert all(layer["log10_grad"] is not None for layer in model["layers"]
               if layer["module"] != "lm_head")


MAKES_TENSORS = """
import torch
import torch.nn as nn


class Timed(nn.Module):
    def __init__(self):
        super().__init__()
        self.time = nn.Linear(16, 32)
        self.fc = nn.Linear(32, 32)

    def forward(self, x, t):
        if x.shape[0] > 0:  # fx cannot branch on a size: the export path
            x = x * 1.0
        freqs = torch.exp(-torch.arange(8) / 8.0)  # made in forward, on the default device
        emb = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], -1)
        return self.fc(x + self.time(emb))
"""


def test_a_meta_model_that_makes_tensors_in_forward_is_exported_on_meta(
        tmp_path: Path, run_gradlint) -> None:  # type: ignore[no-untyped-def]
    """DiT-XL over --jobs 2's memory budget is built on meta; its forward makes a frequency
    table with torch.arange. Exported on the CPU inputs it failed (GL903 "weight is on meta,
    different from other tensors on cpu"); the export runs on meta inputs and device now."""
    (tmp_path / "timed.py").write_text(MAKES_TENSORS)
    run = run_gradlint("timed.py", "--meta", "--format", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    model = json.loads(run.stdout)["models"][0]
    assert (model["status"], model["tracer"], model["init"]) == ("ok", "export", "default")
    assert {layer["module"] for layer in model["layers"]} == {"time", "fc"}


def test_a_model_over_the_memory_budget_is_built_on_meta(tmp_path: Path) -> None:
    (tmp_path / "wide.py").write_text(
        "import torch.nn as nn\n\n\nclass Wide(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.fc = nn.Linear(4096, 4096)\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n")
    path = str(tmp_path / "wide.py")  # 64 MiB of parameters
    (target,) = load_targets(LoadRequest(path, budget=1 << 20))  # 1 MiB
    assert next(target.model.parameters()).device.type == "meta"  # type: ignore[union-attr]
    (target,) = load_targets(LoadRequest(path, budget=1 << 40))  # capped at a quarter of RAM
    assert next(target.model.parameters()).device.type == "cpu"  # type: ignore[union-attr]


def test_default_init_statistics_match_pytorch_defaults() -> None:
    torch.manual_seed(0)
    real = nn.Sequential(nn.Linear(256, 512), nn.LayerNorm(512), nn.Embedding(1000, 64),
                         nn.Conv2d(16, 32, 3))
    with torch.device("meta"):
        meta = nn.Sequential(nn.Linear(256, 512), nn.LayerNorm(512), nn.Embedding(1000, 64),
                             nn.Conv2d(16, 32, 3))
    measured, default_r = parameter_stats(real)
    expected, default_m = parameter_stats(meta)
    assert not default_r and default_m
    for name, stats in measured.items():  # sampling noise of a few dozen entries is ~20%
        rel = 0.1 if stats.numel >= 1000 else 0.6
        assert expected[name].mean_sq == pytest.approx(stats.mean_sq, rel=rel, abs=1e-6), name
    assert default_init(nn.Linear(8, 8), "weight", torch.empty(8, 8), 0.02) == (0.0, 0.02 ** 2)


def test_real_tensor_statistics_in_chunks_are_the_float64_ones() -> None:
    """tensor_stats sums float64 copies one cache-sized chunk at a time: the whole tensor's
    float64 mean and mean square to rounding, for tensors of several chunks, views that are
    not contiguous and half precision; zeros where there is nothing to average."""
    from gradlint.trace.weight_stats import _CHUNK, tensor_stats

    torch.manual_seed(0)
    big = torch.randn(17 * (_CHUNK // 4) + 17) * 0.3 + 0.05  # over 4 chunks
    for t in (big, big.reshape(-1, 17)[:, ::2], torch.randn(64, 32).half(), torch.ones(5)):
        d = t.to(torch.float64)
        stats = tensor_stats("w", t, True)
        assert stats.shape == tuple(t.shape)
        assert stats.mean == pytest.approx(float(d.mean()), rel=1e-12, abs=1e-15)
        assert stats.mean_sq == pytest.approx(float((d * d).mean()), rel=1e-12)
    for t in (torch.empty(0, 3), torch.arange(4), torch.empty(2, 2, device="meta")):
        assert (tensor_stats("w", t, False).mean, tensor_stats("w", t, False).mean_sq) == (0, 0)
