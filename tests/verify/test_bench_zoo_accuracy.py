"""The zoo accuracy benchmark's machinery on three tiny models of its quick subset, in a fresh
cache: the report has its tables, the records are sensible, a second run reads the cache."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.zoo_accuracy import cli, records, report, specs, truth  # noqa: E402

TINY = "classic/sigmoid MLP d20,classic/rnn T=200,hf/bert"


@pytest.mark.slow  # ~15-20 s (two runs, a small BERT among them): CI's slow step runs it
def test_quick_run_tables_records_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cache, out = tmp_path / "cache", tmp_path / "zoo.md"
    calls: list[str] = []
    real = truth.measure

    def counting(model: Any, *args: Any, **kwargs: Any) -> truth.Truth:
        calls.append(type(model).__name__)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(truth, "measure", counting)
    argv = ["--quick", "--models", TINY, "--cache", str(cache), "--out", str(out)]
    assert cli.main(argv) == 0
    assert len(calls) == 3
    assert len(list(cache.glob("*.json"))) == 3

    text = out.read_text(encoding="utf-8")
    for heading in ("## Targets (issue 18)", "## Pooled and per family", "## Q and K projections",
                    "## GL101 / GL103 on default-init zoo models",
                    "## Classic failures (must be caught)", "## The 20 worst layers",
                    "## Per model", "## Failures\n\nnone"):
        assert heading in text, heading
    assert "| **pooled** | 3 |" in text
    assert "| MLP | 1 |" in text and "| encoder LM | 1 |" in text
    assert "| pooled Spearman |" in text and "| MLP: Spearman |" in text

    doc = report.load_json(out.with_suffix(".json"))
    models = {m["name"]: m for m in doc["models"]}
    assert set(models) == set(TINY.split(","))
    mlp = models["classic/sigmoid MLP d20"]
    assert mlp["family"] == "MLP" and mlp["per_example"] is True and mlp["error"] is None
    paired = [la for la in mlp["layers"] if la["status"] == "paired"]
    assert len(paired) == 21  # 20 hidden Linears and the head
    # a deep sigmoid stack: the estimate ranks (and sizes) the layers as autograd does
    rho = report.spearman([la["pred"] for la in paired], [la["meas"] for la in paired])
    assert rho is not None and rho > 0.9
    assert min(la["meas"] for la in paired) < -3  # it vanishes: 20 sigmoids, > 3 decades
    assert max(abs(la["pred"] - la["meas"]) for la in paired) < 0.5
    assert "GL101" in mlp["fired"]
    assert "GL104" in models["classic/rnn T=200"]["fired"]
    bert = models["hf/bert"]
    assert bert["family"] == "encoder LM" and bert["error"] is None
    qk = [la for la in bert["layers"] if la["qk"] and la["status"] == "paired"]
    assert len(qk) == 8  # 4 layers x (query, key)
    assert all(la["module"].endswith((".query", ".key")) for la in qk)
    for m in models.values():
        for la in m["layers"]:
            if la["status"] == "paired":
                assert la["meas"] <= 0 and la["pred"] is not None
                assert la["confidence"] in ("high", "low")

    # the second run reads the ground truth from the cache: no measurement at all
    calls.clear()
    assert cli.main(argv) == 0
    assert calls == []
    doc2 = report.load_json(out.with_suffix(".json"))
    assert all(m["cached"] for m in doc2["models"])
    assert [la["meas"] for la in doc2["models"][0]["layers"]] == \
        [la["meas"] for la in doc["models"][0]["layers"]]
    assert "3 from the cache" in out.read_text(encoding="utf-8")
    capsys.readouterr()


def test_a_failing_model_is_recorded_not_raised(tmp_path: Path) -> None:
    def broken() -> Any:
        raise ValueError("no such layer")

    spec = specs.ZooModel("test/broken", "CNN", "classic", broken, specs.images(8), "3x8x8",
                          "broken()")
    rec = records.run_model(spec, 0, tmp_path)
    assert rec.error is not None and "no such layer" in rec.error and rec.stage == "build"
    md = report.markdown([rec], [], [])
    assert "- test/broken (CNN), at build: ValueError: no such layer" in md


def test_cache_key_depends_on_what_the_truth_depends_on() -> None:
    spec = next(m for m in specs.classic_models() if m.name == "classic/sigmoid MLP d20")
    base = records.cache_fields(spec, 0)
    assert truth.cache_key(base) == truth.cache_key(dict(base))
    for k, v in (("seed", 1), ("torch", "0.0"), ("input", "other"), ("batch", 3),
                 ("build", "other")):
        assert truth.cache_key({**base, k: v}) != truth.cache_key(base), k
