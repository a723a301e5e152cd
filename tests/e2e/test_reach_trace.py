"""Issue 17's trace acceptance through the installed command (items 6, 7, 9): a forward that
assigns ``self.attr`` is checked (fx fails, export traces it, the attribute is put back); a
wrapper around a ``forward(idx, targets=None)`` GPT has every layer estimated; a failure inside
an installed library is reported at the user's line with the library's as related information.
Plain torch fixtures written here (the wrapped Llama on meta: tests/trace/test_wrapped_llama.py).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from reach_counts import assert_counts

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # also on torch 2.13; CI's slow step (.ci/run)

STORES_ATTRIBUTE = '''
import torch
import torch.nn as nn


class CLIPText(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(16, 16)
        self.proj = nn.Linear(16, 4)
        self.mask = torch.ones(16)

    def forward(self, x):
        self.mask = self.mask.to(x.dtype)
        h = torch.tanh(self.embed(x)) * self.mask
        if x.size(-1) == 16:
            h = h * 0.5
        return self.proj(h)


def example_inputs():
    return (torch.randn(4, 16),)


if __name__ == "__main__":
    pass
'''

WRAPPED_GPT = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)

    def forward(self, x):
        return x + self.proj(F.gelu(self.fc(self.ln(x))))


class GPT(nn.Module):
    def __init__(self, vocab=64, d=32, n_layer=4, block_size=16):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block_size, d)
        self.h = nn.ModuleList([Block(d) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        assert t <= self.block_size, f"cannot forward {t} tokens"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        else:
            logits = self.lm_head(x[:, [-1], :])
            loss = None
        return logits, loss


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.gpt = GPT()

    def forward(self, idx):
        return self.gpt(idx)[0]


def example_inputs():
    return (torch.randint(0, 64, (2, 8)),)
'''

LIBRARY = '''
def positive(x):
    if x.sum() > 0:
        return x
    return -x
'''

USES_LIBRARY = '''
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).parent / "site-packages"))
from fakelib.ops import positive  # noqa: E402


class UsesLibrary(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        return positive(h)


def example_inputs():
    return (torch.randn(2, 8),)
'''


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _run(run_gradlint: Any, folder: Path, name: str) -> tuple[int, dict[str, Any]]:
    proc = run_gradlint(name, "--format", "json", cwd=folder)
    doc = json.loads(proc.stdout)
    assert_counts(doc, examined=1)
    return proc.returncode, doc


def test_a_forward_that_stores_an_attribute_is_checked(run_gradlint: Any,
                                                       tmp_path: Path) -> None:
    _write(tmp_path, "clip_text.py", STORES_ATTRIBUTE)
    code, doc = _run(run_gradlint, tmp_path, "clip_text.py")
    assert code == 0, doc
    (model,) = doc["models"]
    assert model["status"] == "ok" and model["tracer"] == "export"
    assert [le["module"] for le in model["layers"]] == ["embed", "proj"]
    assert all(le["log10_relative"] is not None for le in model["layers"])
    assert doc["summary"]["models"]["checked"] == 1 and not doc["diagnostics"]


@pytest.mark.parametrize("given", [True, False], ids=["example_inputs", "inferred"])
def test_a_wrapped_gpt_has_every_layer_estimated(run_gradlint: Any, tmp_path: Path,
                                                  given: bool) -> None:
    """With example_inputs() or without: the input is inferred from the wrapped GPT's first
    layer (its token embedding), which the wrapper's fx graph keeps inside a whole block."""
    source = WRAPPED_GPT if given else WRAPPED_GPT.split("\n\ndef example_inputs")[0] + "\n"
    assert given or "example_inputs" not in source
    _write(tmp_path, "train_gpt.py", source)
    code, doc = _run(run_gradlint, tmp_path, "train_gpt.py")
    assert code == 0, doc
    checked = {m["name"]: m for m in doc["models"]}
    wrapper = checked["Wrapper"]
    assert wrapper["tracer"] == "fx+export"
    layers = wrapper["layers"]
    assert len(layers) == 2 + 4 * 3 + 2  # embeddings, 4 blocks of ln/fc/proj, ln_f, head
    assert all(le["log10_relative"] is not None and le["confidence"] == "high"
               for le in layers), [le["module"] for le in layers if le["log10_relative"] is None]
    assert not [d for d in doc["diagnostics"] if d["code"] == "GL904"]
    assert doc["summary"]["unestimated"] == {"layers": 0, "weight_layers": 16, "blocks": 0}


def test_a_failure_in_a_library_is_reported_at_the_users_line(run_gradlint: Any,
                                                              tmp_path: Path) -> None:
    library = _write(tmp_path, "site-packages/fakelib/ops.py", LIBRARY)
    _write(tmp_path, "site-packages/fakelib/__init__.py", "")
    user = _write(tmp_path, "uses_library.py", USES_LIBRARY)
    code, doc = _run(run_gradlint, tmp_path, "uses_library.py")
    assert code == 2, doc
    (diag,) = doc["diagnostics"]
    assert diag["code"] == "GL903"
    assert (diag["file"], diag["line"]) == ("uses_library.py", _line(user, "return positive(h)"))
    (related,) = diag["related"]
    assert (tmp_path / related["file"]).resolve() == library.resolve()  # relative to the cwd
    assert related["line"] == _line(library, "if x.sum() > 0")


LIBRARY_BASE = '''
import torch.nn as nn


class BaseModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward_features(self, x, mask=None):
        return self.fc(x)

    def forward(self, x, mask=None):
        return self.forward_features(x, mask=mask)
'''

OVERRIDES_LIBRARY = '''
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "site-packages"))
from fakebase import BaseModel  # noqa: E402


class Pooled(BaseModel):
    def forward_features(self, x):  # the library's newer release passes mask=
        return self.fc(x).relu()
'''


def test_an_override_the_library_calls_with_other_arguments_is_gl903_at_the_class(
        run_gradlint: Any, tmp_path: Path) -> None:
    """MAE's models_vit.py under a newer timm: the library's forward calls the user's
    forward_features with a keyword it does not take. No input can fix that: GL903 at the
    user's class (no user frame is in the traceback), the library's call as related. Before,
    GL902 "cannot infer an example input", reported in site-packages."""
    library = _write(tmp_path, "site-packages/fakebase/__init__.py", LIBRARY_BASE)
    user = _write(tmp_path, "overrides.py", OVERRIDES_LIBRARY)
    code, doc = _run(run_gradlint, tmp_path, "overrides.py")
    assert code == 2, doc
    (diag,) = doc["diagnostics"]
    assert diag["code"] == "GL903" and "unexpected keyword argument 'mask'" in diag["message"]
    assert (diag["file"], diag["line"]) == ("overrides.py", _line(user, "class Pooled"))
    (related,) = diag["related"]
    assert (tmp_path / related["file"]).resolve() == library.resolve()
    assert related["line"] == _line(library, "return self.forward_features(x, mask=mask)")
