"""Issue 3 (1a): when torch.fx fails inside a submodule, that block is exported alone and
spliced into the fx graph, so one untraceable block does not sink the model; a block that
export cannot trace either stays one opaque node with a GL904 saying why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data"


def layers_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (model,) = doc["models"]
    return {layer["module"]: layer for layer in model["layers"]}


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def test_a_block_fx_cannot_trace_is_exported_and_spliced(run_gradlint: Any) -> None:
    path = DATA / "splice_loops.py"
    proc = run_gradlint(path.name, "--format", "json", "--verify", cwd=DATA)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (model,) = doc["models"]
    assert model["status"] == "ok" and model["tracer"] == "fx+export"
    layers = layers_of(doc)
    assert sorted(layers) == ["embed", "head", "mixers.0.mix", "mixers.1.mix"]
    mix = layers["mixers.0.mix"]
    assert mix["line"] == line_of(path, "self.mix = nn.Linear")  # where the user built it
    assert mix["saturating"] == 1 and mix["confidence"] == "high"
    # the spliced estimate agrees with autograd on the same model
    for layer in layers.values():
        assert abs(layer["log10_relative"] - layer["measured_log10_relative"]) < 0.3, layer
    assert not doc["diagnostics"]
    assert "def forward" not in proc.stderr  # torch.export's chatter stays out of the output


def test_a_block_nothing_can_trace_stays_opaque(run_gradlint: Any) -> None:
    path = DATA / "splice_blocky.py"
    proc = run_gradlint(path.name, "--format", "json", cwd=DATA)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (model,) = doc["models"]
    assert model["status"] == "ok" and model["tracer"] == "fx"
    layers = layers_of(doc)
    assert layers["head"]["log10_relative"] == 0.0
    assert layers["inp"]["log10_relative"] is not None
    assert layers["inp"]["confidence"] == "low"  # behind an opaque block
    assert layers["blocks.0.a"]["log10_relative"] is None  # inside it: no estimate
    (diag,) = doc["diagnostics"]
    assert diag["code"] == "GL904" and diag["severity"] == "info"
    assert "neither by torch.fx nor by torch.export" in diag["message"]
    assert f"splice_blocky.py:{line_of(path, 'if x.mean() > 0')}" in diag["message"]
    assert "def forward" not in proc.stderr
