"""A model that stays small is built once, for real; past ``REAL_FIRST_BYTES`` it is sized on
the meta device first (gradlint/load/size_guard.py, building.construct). In-process through
``load_targets``: each file counts its constructor's runs in a module-level list."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch.nn as nn

from gradlint.core.values import Diagnostic, ModelReport, Target
from gradlint.load import building
from gradlint.load.size_guard import TooBig, at_most
from gradlint.load.targets import LoadRequest, load_targets

COUNTED = """
import torch.nn as nn

RUNS = []


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        RUNS.append(1)
        self.body = BODY

    def forward(self, x):
        return self.body(x)
"""


def load_one(tmp_path: Path, body: str, *, extra: str = "", budget: int | None = None
             ) -> tuple[Target | ModelReport, int]:
    """The file's one model and how many times its constructor ran."""
    path = tmp_path / f"counted_{len(list(tmp_path.iterdir()))}.py"  # a module of its own
    path.write_text(textwrap.dedent(COUNTED).replace("BODY", body) + extra, encoding="utf-8")
    found = load_targets(LoadRequest(str(path), budget=budget))
    assert not isinstance(found, Diagnostic), found.message
    (target,) = found
    runs = next(len(m.RUNS) for name, m in sys.modules.items()  # type: ignore[attr-defined]
                if getattr(m, "__file__", None) == str(path))
    return target, runs


def device_of(target: Target | ModelReport) -> str:
    assert isinstance(target, Target)
    return next(target.model.parameters()).device.type  # type: ignore[union-attr]


def test_a_small_model_is_built_once_for_real(tmp_path: Path) -> None:
    target, runs = load_one(tmp_path, "nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))")
    assert runs == 1 and device_of(target) == "cpu"


def test_past_the_limit_the_model_is_sized_on_meta_first(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the real-first limit and within the budget: the stopped build, the probe and the
    real build (three runs); over the budget too: stopped build and probe only, on meta."""
    monkeypatch.setattr(building, "REAL_FIRST_BYTES", 1024)
    body = "nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))"  # 16.9 KB
    target, runs = load_one(tmp_path, body)
    assert runs == 3 and device_of(target) == "cpu"
    target, runs = load_one(tmp_path, body, budget=4096)
    assert runs == 2 and device_of(target) == "meta"


def test_deepcopy_clones_count() -> None:
    """nn.TransformerEncoder deepcopies its layer: the clones' bytes count, once each (deepcopy
    calls itself for every submodule it copies)."""
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32)
    one = sum(t.numel() * t.element_size() for t in (*layer.parameters(), *layer.buffers()))
    with at_most(1 << 30) as count:
        nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False)
    assert count.total == 3 * one
    with pytest.raises(TooBig), at_most(2 * one):
        nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False)


def test_a_constructor_that_swallows_the_stop_is_still_sized(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare ``except:`` in the user's constructor takes the stop; the count remembers it,
    and the model is sized on meta and built within the budget as before."""
    monkeypatch.setattr(building, "REAL_FIRST_BYTES", 1024)
    body = "make()"
    extra = textwrap.dedent("""
        def make():
            try:
                return nn.Linear(64, 64)
            except:  # noqa: E722
                return nn.Linear(64, 64)
        """)
    target, runs = load_one(tmp_path, body, extra=extra, budget=4096)
    assert device_of(target) == "meta" and runs == 2


def test_a_stop_wrapped_in_another_error_is_still_sized(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A constructor that catches everything and raises its own error over the stop: the
    count says the build passed the limit, so the model is sized, not reported as broken."""
    monkeypatch.setattr(building, "REAL_FIRST_BYTES", 1024)
    extra = textwrap.dedent("""
        def make():
            try:
                return nn.Linear(64, 64)
            except BaseException as exc:
                raise RuntimeError("could not build") from exc
        """)
    target, runs = load_one(tmp_path, "make()", extra=extra)
    assert device_of(target) == "cpu" and runs == 3


def test_a_constructor_that_raises_runs_once(tmp_path: Path) -> None:
    """The user's error from the real build is reported as it is, not retried on meta."""
    extra = "\n\ndef broken():\n    raise ValueError('bad width')\n"
    target, runs = load_one(tmp_path, "broken()", extra=extra)
    assert isinstance(target, ModelReport) and runs == 1
    (diag,) = target.diagnostics
    assert diag.code == "GL906" and "bad width" in diag.message


def test_out_of_memory_in_the_real_build_goes_to_the_probe() -> None:
    """torch's CPU allocator raises a RuntimeError at the address-space limit: that, and a
    MemoryError, send the model to the meta probe; any other error is the user's."""
    assert building._out_of_memory(MemoryError())
    assert building._out_of_memory(RuntimeError(
        "[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory: you "
        "tried to allocate 4202692608 bytes. Error code 12 (Cannot allocate memory)"))
    assert not building._out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
