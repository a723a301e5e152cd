"""Reproducibility: two runs of the installed command over the same files give the same report.

The only fields allowed to differ are timings, named here: ``models[].seconds`` in JSON and the
``, 0.92 s)`` at the end of each model's chart header in text. The two runs differ in everything
else that could leak into a report: the string hash seed (set iteration order), and the number
of worker processes (which worker checks which file, in what order). ``--verify`` measures the
gradients with random inputs and init, which must be seeded too.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

RunGradlint = Callable[..., "subprocess.CompletedProcess[str]"]  # the conftest fixture

FILES = ("examples", "tests/models/mlp.py", "tests/models/transformer.py")
VERIFIED = ("examples/three_layer_sigmoid.py",)  # --verify is slower: one small file
RUNS = (("1", "1"), ("2", "2"))  # (PYTHONHASHSEED, --jobs) per run
TIMING_FIELDS = ("seconds",)  # per model, in JSON
TEXT_TIMING = re.compile(r", \d+\.\d+ s\)$")  # chart header "(fx, actual init, 21 layers, 0.92 s)"


def _runs(run_gradlint: RunGradlint, monkeypatch: pytest.MonkeyPatch, *args: str) -> list[str]:
    """stdout of the two runs of ``gradlint ARGS``."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    out, codes = [], []
    for hash_seed, jobs in RUNS:
        monkeypatch.setenv("PYTHONHASHSEED", hash_seed)
        proc = run_gradlint(*args, "--jobs", jobs)
        assert proc.returncode in (0, 1), proc.stderr  # every target was checked
        out.append(proc.stdout)
        codes.append(proc.returncode)
    assert codes[0] == codes[1]
    return out


def _without_timing(doc: dict[str, Any]) -> dict[str, Any]:
    for model in doc["models"]:
        for key in TIMING_FIELDS:
            assert key in model, f"timing field {key!r} is gone: update TIMING_FIELDS"
            del model[key]
    return doc


def _same_json(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert [m["target"] for m in first["models"]] == [m["target"] for m in second["models"]]
    for a, b in zip(first["models"], second["models"], strict=True):
        assert a == b, a["target"]
    assert first == second


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_json_reports_are_identical_but_for_timing(run_gradlint: RunGradlint,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = (_without_timing(json.loads(s)) for s in
                     _runs(run_gradlint, monkeypatch, *FILES, "--format", "json"))
    assert first["summary"]["checked"] >= 5 and first["summary"]["diagnostics"] > 0
    _same_json(first, second)


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_verified_reports_are_identical_but_for_timing(run_gradlint: RunGradlint,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = (_without_timing(json.loads(s)) for s in _runs(
        run_gradlint, monkeypatch, *VERIFIED, "--format", "json", "--verify"))
    assert all("measured_log10_grad" in le for m in first["models"] for le in m["layers"])
    _same_json(first, second)


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_text_output_is_identical_but_for_timing(run_gradlint: RunGradlint,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = ([TEXT_TIMING.sub(", <t> s)", line) for line in s.splitlines()]
                     for s in _runs(run_gradlint, monkeypatch, *FILES, "--format", "text"))
    assert sum(", <t> s)" in line for line in first) >= 5  # one chart per checked model
    assert first == second, "\n".join(difflib.unified_diff(first, second, lineterm=""))


def test_checking_a_model_leaves_it_unchanged() -> None:
    """Tracing runs the model in train mode: BatchNorm's running statistics and the submodules'
    modes must be put back, or a user's tests would depend on whether gradlint ran first."""
    import torch
    import torch.nn as nn

    import gradlint

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)).eval()
    model[1].train()  # a mixed state, as when a backbone's norms are frozen
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    x = torch.randn(4, 8)
    first = gradlint.check(model, x)
    assert first.status == "ok"
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert [m.training for m in model.modules()] == modes
    assert gradlint.check(model, x).layers == first.layers


def test_inferring_an_input_leaves_the_global_random_stream_alone() -> None:
    """Without inputs, gradlint draws an example from a generator of its own: a test that
    calls ``gradlint.check`` does not shift the random numbers the tests after it draw."""
    import torch
    import torch.nn as nn

    import gradlint

    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    torch.manual_seed(0)
    expected = torch.randn(4)
    torch.manual_seed(0)
    assert gradlint.check(model).status == "ok"
    assert torch.equal(torch.randn(4), expected)
