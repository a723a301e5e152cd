"""Issue 17 (item 7): a model held in a wrapper is traced through. A minimal GPT's
``forward(idx, targets=None)`` returns ``(logits, loss)``, checks ``idx.size()`` with an
assert and picks the last position with a list index in its inference branch: torch.fx
cannot trace it, so it is exported alone on the arguments it was really called with and
spliced into the wrapper's graph, and every one of its layers gets an estimate."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import gradlint


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(F.gelu(self.fc(self.ln(x))))


class GPT(nn.Module):
    def __init__(self, vocab: int = 64, d: int = 32, n_layer: int = 3,
                 block_size: int = 16) -> None:
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block_size, d)
        self.blocks = nn.ModuleList([Block(d) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, t = idx.size()
        assert t <= self.block_size, f"{t} tokens, block size {self.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        x = self.ln_f(x)
        if targets is not None:
            logits = self.head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        else:
            logits = self.head(x[:, [-1], :])  # a tensor constant export lifts to an input
            loss = None
        return logits, loss


class Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gpt = GPT()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.gpt(idx)[0]


def every_layer_estimated(model: nn.Module, report: gradlint.core.values.ModelReport) -> None:
    assert report.status == "ok", report.diagnostics
    owners = {name for name, m in model.named_modules()
              if any(p is not None for p in m._parameters.values())}
    estimated = {le.module for le in report.layers if le.log10_relative is not None}
    assert owners == estimated
    assert not [d for d in report.diagnostics if d.code == "GL904"]
    assert not report.opaque


def test_a_wrapped_gpt_has_every_layer_estimated() -> None:
    model = Wrapper()
    report = gradlint.check(model, torch.randint(0, 64, (2, 8)))
    every_layer_estimated(model, report)
    assert report.tracer == "fx+export"  # the GPT exported alone, spliced in


class CallsWithKeywords(nn.Module):
    """The block is called with a keyword argument and a keyword default it does not pass."""

    def __init__(self) -> None:
        super().__init__()
        self.gpt = GPT(n_layer=1)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        logits, _ = self.gpt(idx=idx)  # unpacking a Proxy: the wrapper goes to export whole
        return logits


def test_a_block_called_with_keywords_is_estimated() -> None:
    model = CallsWithKeywords()
    every_layer_estimated(model, gradlint.check(model, torch.randint(0, 64, (2, 8))))


def test_a_lazy_import_in_a_constructor_keeps_the_size_probe_on_meta(tmp_path: Path) -> None:
    """A wrapper that imports its library inside ``__init__`` (the 70B Llama's factory in
    bench/speed_models.py): what the import does (ctypes runs ldconfig) is not the
    constructor's outside effect, so the probe stays on meta instead of building for real."""
    import sys

    from gradlint.load.meta_probe import MetaDrawsNothing, outside_refused

    (tmp_path / "starts_a_process.py").write_text(
        "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'pass'], check=True)\n")

    class LazyImport(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            import starts_a_process  # noqa: F401

            self.fc = nn.Linear(8, 8)

    sys.path.insert(0, str(tmp_path))
    try:
        with MetaDrawsNothing(), torch.device("meta"), outside_refused() as tried:
            model = LazyImport()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("starts_a_process", None)
    assert not tried and model.fc.weight.is_meta
