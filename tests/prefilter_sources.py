"""Sources the pre-filter tests judge (a small net, a GPT whose parts live in another
file, a training script) and how they are written to disk."""

from __future__ import annotations

import textwrap
from pathlib import Path

NET = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)

"""

# a GPT in the style of nanoGPT: a dataclass config and a constructor that builds its blocks in
# comprehensions and loops, ties weights, initialises through self.apply and prints its size
GPT_PARTS = """\
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 16
    vocab_size: int = 64
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 16
    bias: bool = True
    extra: list = field(default_factory=list)


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x):
        q, k, v = self.attn(self.ln(x)).split(x.shape[-1], dim=2)
        return x + self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                torch.nn.init.normal_(p, std=0.02 / math.sqrt(2 * config.n_layer))
        print("parameters: %.2fM" % (self.get_num_params() / 1e6,))

    def get_num_params(self):
        return sum(p.numel() for p in self.parameters())

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))

    @classmethod
    def from_pretrained(cls, name):
        from transformers import GPT2LMHeadModel
        return GPT2LMHeadModel.from_pretrained(name)  # not called at import: not judged

    @torch.no_grad()
    def generate(self, idx, steps):
        for _ in range(steps):
            idx = torch.cat((idx, self(idx)[:, -1:].argmax(-1)), dim=1)
        return idx
"""

TRAIN = """\
import torch
from parts import GPT, GPTConfig

HIDDEN = 16
model = GPT(GPTConfig())
for step in range(3):  # MARK
    torch.save(model.state_dict(), f"step{step}.pt")
"""

# lucidrains' eval_decorator (x-transformers): calls its subject only inside the closure it
# returns, so a method it decorates does not run at import
EVAL_DECORATOR = """\
def eval_decorator(fn):
    def inner(self, *args, **kwargs):
        was_training = self.training
        self.eval()
        out = fn(self, *args, **kwargs)
        self.train(was_training)
        return out
    return inner
"""


def snippet(text: str) -> str:
    """``text`` dedented, without its leading newline."""
    return textwrap.dedent(text).lstrip("\n")


def mark_line(source: str) -> int:
    """The line holding ``# MARK``: where a test expects the work to be reported."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if "# MARK" in line)


def write_file(root: Path, rel: str, text: str) -> Path:
    """Write ``text`` at ``root/rel`` (a snippet when it starts with a newline)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(snippet(text) if text.startswith("\n") else text, encoding="utf-8")
    return path
