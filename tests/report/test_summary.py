"""The run's summary in every format: files examined by outcome and reason, models by status and
reason, weight layers without an estimate (never "no problems" for a model that is mostly
unestimated or a run that checked nothing), and table rows whose names stay distinguishable."""

from __future__ import annotations

import json
from typing import Any

from gradlint.core.values import (
    Diagnostic,
    LayerEstimate,
    Location,
    ModelReport,
    OpaqueBlock,
    Report,
    RunCounts,
)
from gradlint.report.emitter import Settings
from gradlint.report.formats import emit
from gradlint.report.github import to_github
from gradlint.report.short_names import short_names
from gradlint.report.text import chart, summary_line, to_text


def layer(module: str, grad: float | None = -1.0, frozen: bool = False) -> LayerEstimate:
    return LayerEstimate(
        module=module, type="Linear", numel=10, location=Location("m.py", 3), log10_grad=grad,
        log10_relative=None if grad is None else grad + 1.0, log10_signal=None,
        log10_attenuation=None if grad is None else 0.0, log10_bound=None, saturating=0,
        depth=1, factors=0, gate=None, frozen=frozen, aliases=(), zero=grad is None,
        confidence="high")


def stage_diag(code: str, name: str, severity: str = "error", file: str = "m.py"
               ) -> Diagnostic:
    return Diagnostic(code, name, severity, "msg", Location(file, 1))  # type: ignore[arg-type]


def model(name: str, status: str = "ok", layers: tuple[LayerEstimate, ...] = (),
          diags: tuple[Diagnostic, ...] = (), opaque: tuple[OpaqueBlock, ...] = ()
          ) -> ModelReport:
    ok = status == "ok"
    return ModelReport(f"m.py::{name}", name, "m.py", 1, status,  # type: ignore[arg-type]
                       tracer="fx" if ok else None, init="actual" if ok else None,
                       seconds=0.1, layers=layers, diagnostics=diags, opaque=opaque)


def wrapped_gpt() -> ModelReport:
    """A wrapper whose inner GPT (10 weight layers, one tied to the head outside it, one frozen)
    could not be traced: 9 of its 11 learning layers have no estimate."""
    layers = (layer("gpt.emb", None), *(layer(f"gpt.blocks.{i}.fc", None) for i in range(8)),
              layer("gpt.tied", -0.5), layer("gpt.frozen", None, frozen=True),
              layer("gpt2.fc", None), layer("out", 0.0))
    block = OpaqueBlock.around("gpt", "GPT", "its inputs do not match the call", layers)
    return model("Wrapper", layers=layers, opaque=(block,))


RUN = RunCounts(examined=12, imported=3, skipped={"no-model": 7, "GL907": 1},
                failed={"GL900": 1})


def test_opaque_block_counts_only_its_learning_layers_without_an_estimate() -> None:
    m = wrapped_gpt()
    # not the tied layer (estimated through its other use), the frozen one, nor gpt2.fc
    assert m.opaque[0].layers == 9
    assert (m.unestimated, m.weight_layers, m.mostly_unestimated) == (9, 12, True)
    few = model("Net", layers=m.layers[8:], opaque=(OpaqueBlock.around(
        "gpt", "GPT", "why", m.layers[8:]),))
    assert (few.unestimated, few.weight_layers, few.mostly_unestimated) == (1, 4, False)


def test_text_summary_counts_files_and_models_by_reason() -> None:
    models = (model("Net", layers=(layer("fc"),)), model("Other", layers=(layer("fc"),)),
              model("Wide", "skipped", diags=(stage_diag("GL902", "needs-configuration", "info"),)),
              model("Bad", "failed", diags=(stage_diag("GL903", "trace-failed"),)))
    report = Report(models, (stage_diag("GL900", "syntax-error"),), RUN)
    text = to_text(report, [], 1e-2)
    *_, examined, verdict = text.splitlines()
    assert examined == ("12 files examined: 3 imported, 8 skipped (7 without a model, 1 not "
                        "imported: GL907), 1 failed (syntax error: GL900); 2 models checked, 1 "
                        "skipped (needs configuration: GL902), 1 failed (trace failed: GL903).")
    assert verdict == ("gradlint: no problems in 2 checked models; 1 model and 1 file could "
                       "not be checked.")


def test_nothing_checked_is_never_no_problems() -> None:
    skipped = model("Wide", "skipped", diags=(stage_diag("GL902", "needs-configuration", "info"),))
    report = Report((skipped,), (), RunCounts(2, 1, {"no-model": 1}))
    info = stage_diag("GL902", "needs-configuration", "info")
    assert summary_line(report, [info]) == "gradlint: no model was checked (1 info)."
    assert summary_line(Report(counts=RunCounts(3, 0, {"no-model": 3})), []) == (
        "gradlint: no model was checked.")
    lines = to_text(Report(counts=RunCounts(3, 0, {"no-model": 3})), [], 1e-2).splitlines()
    assert lines[0] == ("3 files examined: 0 imported, 3 skipped (without a model); "
                        "0 models checked.")


def test_a_mostly_unestimated_model_is_not_no_problems() -> None:
    report = Report((wrapped_gpt(),), (), RunCounts(1, 1))
    line = summary_line(report, [])
    assert "no problems" not in line
    assert line == ("gradlint: nothing found in 1 checked model; 9 of 12 weight layers have no "
                    "estimate (1 block neither torch.fx nor torch.export could trace: GL904); "
                    "Wrapper is mostly unchecked.")
    text = to_text(report, [], 1e-2)
    assert ("  9 of 12 weight layers (most of this model) have no estimate, inside blocks "
            "neither torch.fx nor torch.export could trace (GL904): block gpt (GPT): its "
            "inputs do not match the call") in text.splitlines()
    rows = {line.split()[0]: line for line in text.splitlines() if "|" in line}
    assert "none" in rows["gpt.emb"] and "zero" in rows["gpt2.fc"]  # no estimate vs zero
    # a minority without an estimate: counted, and the findings are still "no problems"
    few = wrapped_gpt().layers[8:]
    minority = model("Net", layers=few, opaque=(OpaqueBlock.around("gpt", "GPT", "why", few),))
    assert summary_line(Report((minority,)), []) == (
        "gradlint: no problems in 1 checked model; 1 of 4 weight layers have no estimate "
        "(1 block neither torch.fx nor torch.export could trace: GL904).")


def test_json_summary_and_model_fields() -> None:
    models = (wrapped_gpt(),
              model("Wide", "skipped", diags=(stage_diag("GL902", "needs-configuration", "info"),)),
              model("Bad", "failed", diags=(stage_diag("GL906", "construction-failed"),)))
    doc = json.loads(emit("json", Report(models, (), RUN), [], Settings(1e-2)))
    summary = doc["summary"]
    assert summary["files"] == {"examined": 12, "imported": 3,
                                "skipped": {"no-model": 7, "GL907": 1}, "failed": {"GL900": 1}}
    assert summary["models"] == {"checked": 1, "skipped": {"GL902": 1},
                                 "failed": {"GL906": 1}}
    assert summary["unestimated"] == {"layers": 9, "weight_layers": 12, "blocks": 1}
    assert (summary["targets"], summary["checked"], summary["failed"]) == (3, 1, 1)
    first = doc["models"][0]
    assert first["unestimated"] == 9
    assert first["opaque"] == [{"module": "gpt", "type": "GPT", "layers": 9,
                                "reason": "its inputs do not match the call"}]
    assert "unestimated" not in doc["models"][1]  # only checked models have layers
    # a report made in code (no run over files) has no file counts
    assert json.loads(emit("json", Report(), [], Settings(1e-2)))["summary"]["files"] is None


def test_sarif_html_and_github_carry_the_counts() -> None:
    report = Report((wrapped_gpt(),), (), RUN)
    sarif = json.loads(emit("sarif", report, [], Settings(1e-2)))
    props: dict[str, Any] = sarif["runs"][0]["properties"]["summary"]
    assert props["files"]["examined"] == 12 and props["unestimated"]["layers"] == 9
    page = emit("html", report, [], Settings(1e-2))
    assert "12 files examined: 3 imported" in page and "mostly unchecked" in page
    lines = to_github(report, []).splitlines()
    assert lines[-2].startswith("12 files examined: 3 imported, 8 skipped")
    assert lines[-1].startswith("gradlint: nothing found in 1 checked model")


def test_short_names_keep_what_tells_neighbours_apart() -> None:
    names = [f"down{i}.maxpool_conv.1.double_conv.{j}" for i in range(1, 5) for j in (0, 3)]
    short = short_names(names, 28)
    assert all(len(s) <= 28 for s in short)
    assert len(set(short)) == len(names)
    for name, kept in zip(names, short, strict=True):  # the block and the sublayer show
        assert kept.startswith(name[:6]) and kept.endswith(name[-2:]), kept
    assert short[1:3] == ["down1.….1.double_conv.3", "down2.….1.double_conv.0"]
    deep = ["model.encoder.down1.blocks.0.conv.0", "model.encoder.down2.blocks.0.conv.0"]
    assert short_names(deep, 28) == ["….down1.blocks.0.conv.0", "….down2.blocks.0.conv.0"]
    last = ["encoder.layer.11.attention.self.query", "encoder.layer.11.attention.self.key"]
    assert short_names(last, 28) == ["encoder.layer.11.….query", "encoder.layer.11.….key"]
    assert short_names(["fc", "a" * 40], 28) == ["fc", "a" * 13 + "…" + "a" * 14]


def test_chart_rows_of_sibling_blocks_differ() -> None:
    layers = tuple(layer(f"down{i}.maxpool_conv.1.double_conv.0") for i in range(1, 5))
    rows = [line for line in chart(model("UNet", layers=layers), set(), 1e-2)
            if "|" in line and "gradient" not in line]
    names = [row.split()[0] for row in rows]
    assert len(rows) == 4 and len(set(names)) == 4 and names[0].startswith("down1")


def test_a_model_built_by_a_convention_says_how() -> None:
    built = ModelReport("m.py::GPT", "GPT", "m.py", 1, "ok", tracer="fx", init="actual",
                        layers=(layer("fc"),), built_as="GPT(GPTConfig())")
    assert "(fx, actual init, built as GPT(GPTConfig()), 1 layers" in chart(built, set(), 1e-2)[0]
    doc = json.loads(emit("json", Report((built, model("Net"))), [], Settings(1e-2)))
    assert [m["built_as"] for m in doc["models"]] == ["GPT(GPTConfig())", None]
