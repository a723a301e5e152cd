"""``--verify`` puts autograd's measurement beside the estimate."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from gradlint.core.graph import InputSpec
from gradlint.verify.compare import verify_model


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_verify_json_and_text_on_the_deep_sigmoid_example(run_gradlint) -> None:  # type: ignore[no-untyped-def]
    run = run_gradlint("--verify", "--format", "json", "examples/deep_sigmoid.py")
    assert run.returncode == 1, run.stderr
    model = json.loads(run.stdout)["models"][0]
    v = model["verify"]
    assert v["gradients"] == "per-example" and v["batch"] >= 16 and len(v["seeds"]) >= 2
    assert v["spearman"] > 0.95 and v["mean_error"] < 0.3
    layers = {le["module"]: le for le in model["layers"]}
    first = layers["layers.0.0"]
    assert first["measured_log10_relative"] < -10
    assert abs(first["measured_log10_relative"] - first["log10_relative"]) < 0.5
    assert layers["head"]["measured_log10_relative"] == 0.0

    text = run_gradlint("--verify", "examples/deep_sigmoid.py").stdout
    assert "measured" in text.splitlines()[text.splitlines().index(
        next(line for line in text.splitlines() if line.startswith("examples/deep_sigmoid.py::")))
        + 1]
    assert "verify: estimate vs autograd over 21 layers" in text


def test_a_meta_model_is_not_measured() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 2))
    v = verify_model(model, (InputSpec((4, 8), "float32"),), ())
    assert v.error is not None and "meta" in v.error
    assert v.measured == {} and v.spearman is None


def test_a_model_that_cannot_run_says_why() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(4, 2))  # shapes do not chain
    v = verify_model(model, (InputSpec((4, 8), "float32"),), ())
    assert v.error is not None and "running the model failed" in v.error


def test_a_norm_right_before_a_wide_global_pool_is_marked_low(run_gradlint) -> None:  # type: ignore[no-untyped-def]
    """The last BatchNorm before a 32x32 global average pool: its γ sums δ·x̂ over positions
    whose x̂ is spatially correlated, which the moments do not carry. Autograd shows the
    estimate off by more than half a decade there, and only there: that layer alone is low."""
    run = run_gradlint("--verify", "--format", "json", "tests/models/mlp.py::SmallBNCNN")
    layers = {le["module"]: le for le in json.loads(run.stdout)["models"][0]["layers"]}
    errors = {m: abs(le["log10_relative"] - le["measured_log10_relative"])
              for m, le in layers.items()}
    assert layers["features.10"]["confidence"] == "low" and errors["features.10"] > 0.5
    rest = {m: e for m, e in errors.items() if m != "features.10"}
    assert all(layers[m]["confidence"] == "high" for m in rest), layers
    assert max(rest.values()) < 0.3, rest
