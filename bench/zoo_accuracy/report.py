"""Metrics over the zoo records, the Markdown report and the per-layer JSON beside it."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.zoo_accuracy.records import QK_MODELS, LayerRecord, ModelRecord
from bench.zoo_accuracy.specs import FAMILIES
from gradlint.verify.agreement import spearman

WITHIN = 0.5  # decades: "a high-confidence layer is right"


@dataclass(frozen=True)
class Stats:
    models: int
    failed: int
    layers: int
    excluded: dict[str, int]  # layers not paired, by status
    spearman: float | None
    median_model_spearman: float | None
    mean_err: float | None
    max_err: float | None
    high_share: float | None  # share of paired layers with confidence high
    high_within: float | None  # share of high layers within WITHIN decades
    low_within: float | None  # share of low layers within WITHIN decades
    per_example: str


def _mean(xs: Sequence[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _spearman(layers: Sequence[LayerRecord]) -> float | None:
    xy = [la.xy for la in layers]
    return spearman([x for x, _ in xy], [y for _, y in xy])


def grad_mode(records: Sequence[ModelRecord]) -> str:
    flags = [r.per_example for r in records if r.per_example is not None]
    if not flags:
        return "—"
    pe = sum(flags)
    if pe == len(flags):
        return "per-example"
    return "batch ×√B" if pe == 0 else f"{pe} per-example, {len(flags) - pe} batch"


def compute(records: Sequence[ModelRecord]) -> Stats:
    paired = [la for r in records for la in r.paired]
    excluded: dict[str, int] = {}
    for r in records:
        for la in r.layers:
            if la.status != "paired":
                excluded[la.status] = excluded.get(la.status, 0) + 1
    errs = [la.err for la in paired]
    high = [la for la in paired if la.confidence == "high"]
    low = [la for la in paired if la.confidence != "high"]
    per_model = [_spearman(r.paired) for r in records if len(r.paired) >= 3]
    pm = [x for x in per_model if x is not None]
    return Stats(
        models=len(records), failed=sum(1 for r in records if r.error), layers=len(paired),
        excluded=excluded,
        spearman=_spearman(paired) if len(paired) >= 3 else None,
        median_model_spearman=statistics.median(pm) if pm else None,
        mean_err=_mean(errs), max_err=max(errs, default=None),
        high_share=len(high) / len(paired) if paired else None,
        high_within=(sum(la.err <= WITHIN for la in high) / len(high)) if high else None,
        low_within=(sum(la.err <= WITHIN for la in low) / len(low)) if low else None,
        per_example=grad_mode(records),
    )


def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def pct1(x: float | None) -> str:
    """A share to a tenth of a percent, where a target sits near a whole one (94.6%, not 95%)."""
    return "—" if x is None else f"{100 * x:.1f}%"


STATS_HEADER = ("| | models | layers | Spearman | median per-model Spearman | mean err (dec) "
                "| max err (dec) | high within 0.5 dec | low within 0.5 dec | high share "
                "| gradients | excluded layers |")
STATS_ALIGN = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"


def stats_row(label: str, s: Stats) -> str:
    models = f"{s.models}" + (f" ({s.failed} failed)" if s.failed else "")
    excl = ", ".join(f"{n} {k}" for k, n in sorted(s.excluded.items())) or "—"
    return (f"| {label} | {models} | {s.layers} | {fmt(s.spearman, 3)} | "
            f"{fmt(s.median_model_spearman, 3)} | {fmt(s.mean_err)} | {fmt(s.max_err)} | "
            f"{pct(s.high_within)} | {pct(s.low_within)} | {pct(s.high_share)} | "
            f"{s.per_example} | {excl} |")


def families(records: Sequence[ModelRecord]) -> list[str]:
    present = {r.family for r in records}
    return [f for f in FAMILIES if f in present] + sorted(present - set(FAMILIES))


def qk_layers(records: Sequence[ModelRecord], only: Sequence[str] | None = QK_MODELS
              ) -> dict[str, list[LayerRecord]]:
    """Paired Q/K projection layers per model (of ``only``'s models, or of all)."""
    out: dict[str, list[LayerRecord]] = {}
    for r in records:
        if only is not None and r.name not in only:
            continue
        qk = [la for la in r.paired if la.qk]
        if qk:
            out[r.name] = qk
    return out


def zoo_alarms(records: Sequence[ModelRecord]) -> list[tuple[ModelRecord, str, list[str]]]:
    """GL101/GL103 on library models at default init (each should be zero)."""
    return [(r, code, r.fired[code]) for r in records if r.source != "classic"
            for code in ("GL101", "GL103") if r.fired.get(code)]


@dataclass(frozen=True)
class Target:
    what: str
    value: str
    goal: str
    met: bool | None

    def row(self) -> str:
        verdict = "—" if self.met is None else ("met" if self.met else "**not met**")
        return f"| {self.what} | {self.value} | {self.goal} | {verdict} |"


def targets(records: Sequence[ModelRecord]) -> list[Target]:
    pooled = compute(records)

    def num(what: str, v: float | None, goal: str, ok: Callable[[float], bool],
            digits: int = 3) -> Target:
        return Target(what, fmt(v, digits), goal, None if v is None else ok(v))

    out = [num("pooled Spearman", pooled.spearman, "≥ 0.95", lambda v: v >= 0.95),
           num("pooled mean error (decades)", pooled.mean_err, "≤ 0.3", lambda v: v <= 0.3)]
    for fam in families(records):
        s = compute([r for r in records if r.family == fam])
        out.append(num(f"{fam}: Spearman", s.spearman, "≥ 0.85", lambda v: v >= 0.85))
    qk = [la.err for las in qk_layers(records).values() for la in las]
    out.append(num("Q/K projections: mean error (decades), the issue's models", _mean(qk),
                   "≤ 0.4", lambda v: v <= 0.4))
    hw, hs = pooled.high_within, pooled.high_share
    out.append(Target("high-confidence layers within 0.5 decades, while ≥ 80% are high",
                      f"{pct1(hw)} within, {pct1(hs)} high", "≥ 95%, ≥ 80%",
                      None if hw is None or hs is None else hw >= 0.95 and hs >= 0.80))
    zoo = [r for r in records if r.source != "classic" and not r.error]
    alarms = {r.name for r, _, _ in zoo_alarms(records)}
    out.append(Target("zoo models (default init) with GL101/GL103", f"{len(alarms)} of {len(zoo)}",
                      "0", len(alarms) == 0 if zoo else None))
    sick = [r for r in records if r.sick and not r.error]
    caught = [r for r in sick if r.fired.get("GL101") or r.fired.get("GL104")]
    out.append(Target("classic failures caught (GL101 or GL104)", f"{len(caught)} of {len(sick)}",
                      "all", len(caught) == len(sick) if sick else None))
    return out


def _layer_cells(r: ModelRecord, la: LayerRecord) -> str:
    rng = "" if la.range is None else f" [{la.range[0]:.2f}, {la.range[1]:.2f}]"
    return (f"| {r.name} | {r.family} | `{la.module}` | {la.type} | {fmt(la.pred)}{rng} | "
            f"{fmt(la.meas)} | {fmt(la.err)} | {la.confidence} |")


def markdown(records: Sequence[ModelRecord], header: Sequence[str], left_out: Sequence[str],
             worst: int = 20) -> str:
    md = ["# gradlint zoo accuracy benchmark", "", *header, ""]
    md += ["## Targets (issue 18)", "", "| target | value | goal | status |", "|---|---|---|---|",
           *(t.row() for t in targets(records)), ""]

    md += ["## Pooled and per family", "",
           "Point estimate `log10_relative` against the measured weight-gradient RMS relative to "
           "the model's largest measured layer, over every parameterized layer with a nonzero "
           "measured gradient (frozen excluded). Errors are absolute, in decades. *high/low "
           "within 0.5 dec*: the share of layers marked `confidence: high` (low) whose error is "
           "≤ 0.5 decades; *high share*: the share of layers marked high. *excluded layers* are "
           "not in any figure: measured zero, frozen, unestimated (inside a block gradlint "
           "could not trace), estimated zero while measured nonzero, not measured (a tied "
           "weight counted under another name).", "",
           STATS_HEADER, STATS_ALIGN, stats_row("**pooled**", compute(records))]
    for fam in families(records):
        md.append(stats_row(fam, compute([r for r in records if r.family == fam])))
    for src in ("torchvision", "timm", "transformers", "classic"):
        rs = [r for r in records if r.source == src]
        if rs:
            md.append(stats_row(f"source: {src}", compute(rs)))
    md.append("")

    md += ["## Q and K projections", "",
           "Layers named `query`/`key`, `q`/`k` or `q_proj`/`k_proj` (fused `qkv`, `in_proj`, "
           "`c_attn` count in their family figures only). The target is over the issue's "
           "models (" + ", ".join(n.removeprefix("hf/") for n in QK_MODELS) + "); the others "
           "that keep them separate are listed below the line.", "",
           "| model | Q/K layers | mean err (dec) | max err (dec) | mean signed (pred − meas) |",
           "|---|---:|---:|---:|---:|"]
    ours = qk_layers(records)
    every = qk_layers(records, None)
    others = [(n, v) for n, v in every.items() if n not in ours]
    rows = [*ours.items(), *([("*not in the issue's list:*", [])] if others else []), *others]
    for name, las in rows:
        if not las:
            md.append(f"| {name} | | | | |")
            continue
        errs = [la.err for la in las]
        signed = [la.signed for la in las]
        md.append(f"| {name} | {len(las)} | {fmt(_mean(errs))} | {fmt(max(errs))} | "
                  f"{fmt(_mean(signed))} |")
    allq = [la.err for las in ours.values() for la in las]
    md += ["", f"Over the issue's models: {len(allq)} layers, mean error **{fmt(_mean(allq))}** "
           "decades.", ""]

    md += ["## GL101 / GL103 on default-init zoo models", "",
           "These should be zero: every torchvision, timm and Hugging Face model here trains "
           "from its default init.", ""]
    alarms = zoo_alarms(records)
    if alarms:
        md += ["| model | family | rule | diagnostics | on |", "|---|---|---|---:|---|"]
        for r, code, mods in alarms:
            shown = ", ".join(f"`{m}`" for m in mods[:4]) + (" …" if len(mods) > 4 else "")
            md.append(f"| {r.name} | {r.family} | {code} | {len(mods)} | {shown} |")
    else:
        md.append("none")
    md.append("")

    sick = [r for r in records if r.sick]
    if sick:
        md += ["## Classic failures (must be caught)", "",
               "| model | family | GL101 | GL104 | caught |", "|---|---|---:|---:|---|"]
        for r in sick:
            if r.error:
                md.append(f"| {r.name} | {r.family} | — | — | failed |")
                continue
            n1, n4 = len(r.fired.get("GL101", [])), len(r.fired.get("GL104", []))
            md.append(f"| {r.name} | {r.family} | {n1} | {n4} | "
                      f"{'yes' if n1 or n4 else '**no**'} |")
        md.append("")

    ranked = sorted(((r, la) for r in records for la in r.paired), key=lambda p: -p[1].err)
    md += [f"## The {worst} worst layers", "",
           "| model | family | layer | type | estimate [range] | measured | error | confidence |",
           "|---|---|---|---|---:|---:|---:|---|", *(_layer_cells(r, la)
                                                    for r, la in ranked[:worst]), ""]

    scored = sorted((r for r in records if len(r.paired) >= 3),
                    key=lambda r: -(compute([r]).mean_err or 0.0))
    md += ["## The 15 worst models (mean error)", "",
           "| model | family | layers | Spearman | mean err | max err | mean signed | high share |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in scored[:15]:
        s = compute([r])
        md.append(f"| {r.name} | {r.family} | {s.layers} | {fmt(s.spearman, 3)} | "
                  f"{fmt(s.mean_err)} | {fmt(s.max_err)} | "
                  f"{fmt(_mean([la.signed for la in r.paired]))} | {pct(s.high_share)} |")
    md.append("")

    md += zero_lines(records)

    md += ["## Per model", "",
           "| model | family | params | input | gradients | layers | Spearman | mean err "
           "| max err | high share | rules fired | seconds (estimate / measure) |",
           "|---|---|---:|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in records:
        if r.error:
            continue
        s = compute([r])
        mode = ("per-example" + (f" (chunks of {r.chunk})" if r.chunk else "")
                if r.per_example else "batch ×√B")
        fired = ", ".join(f"{c}×{len(m)}" for c, m in sorted(r.fired.items())) or "—"
        meas_s = f"{fmt(r.measure_seconds, 1)}{' cached' if r.cached else ''}"
        md.append(f"| {r.name} | {r.family} | {fmt((r.params or 0) / 1e6, 1)} M | {r.input} "
                  f"(batch {r.batch}) | {mode} | {s.layers} | {fmt(s.spearman, 3)} | "
                  f"{fmt(s.mean_err)} | {fmt(s.max_err)} | {pct(s.high_share)} | {fired} | "
                  f"{fmt(r.estimate_seconds, 1)} / {meas_s} |")
    md.append("")

    failed = [r for r in records if r.error]
    md += ["## Failures", ""]
    md += [f"- {r.name} ({r.family}), at {r.stage}: {r.error}" for r in failed] or ["none"]
    md.append("")
    if left_out:
        md += ["## Left out", "", "Over the parameter budget (~100 M):", "",
               *(f"- {n}" for n in left_out), ""]
    return "\n".join(md)


def zero_lines(records: Sequence[ModelRecord]) -> list[str]:
    """Layers autograd measures exactly zero (a zero-initialized layer downstream: timm's
    ``zero_init_last`` BatchNorm, NFNet's skip-init gains, a loss that never reaches an
    auxiliary head): excluded from the figures, but the estimate should say zero too."""
    rows = []
    for r in records:
        zero = [la for la in r.layers if la.status == "measured zero"]
        finite = [la for la in zero if la.pred is not None]
        if zero:
            rows.append((r, len(zero), finite))
    md = ["## Layers measured exactly zero", "",
          "Excluded from every figure above. A layer whose every path to the loss passes a "
          "zero-initialized weight (timm's `zero_init_last` BatchNorm gains, NFNet skip-init "
          "gains, an auxiliary head the loss does not use) gets no gradient at init; *estimated "
          "nonzero* counts those that gradlint nevertheless gives a finite `log10_relative`.",
          ""]
    if not rows:
        return [*md, "none", ""]
    md += ["| model | family | measured zero | estimated nonzero | e.g. |",
           "|---|---|---:|---:|---|"]
    for r, n, finite in sorted(rows, key=lambda x: -len(x[2])):
        eg = f"`{finite[0].module}` ({fmt(finite[0].pred)})" if finite else ""
        md.append(f"| {r.name} | {r.family} | {n} | {len(finite)} | {eg} |")
    total = sum(n for _, n, _ in rows)
    est = sum(len(f) for _, _, f in rows)
    return [*md, "", f"In all: {total} layers measured zero, {est} of them estimated nonzero.",
            ""]


LAYER_FIELDS = ("module", "type", "status", "pred", "meas", "confidence", "range", "qk",
                "low_reason")
"""The columns of each row of a model's ``layers`` in the JSON (one layer per line)."""


def _row(la: LayerRecord) -> list[Any]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)
    rng = None if la.range is None else [r(la.range[0]), r(la.range[1])]
    return [la.module, la.type, la.status, r(la.pred), r(la.meas), la.confidence, rng,
            int(la.qk), la.low_reason]


def to_json(records: Sequence[ModelRecord], meta: dict[str, Any]) -> str:
    """One document: ``meta``, ``layer_fields`` and ``models``; each model's fields, and its
    ``layers`` as rows of ``layer_fields``, one line each so two runs diff layer by layer
    (``load_json`` turns them back into dicts). Values in decades, 3 decimals."""
    def dump(x: Any) -> str:
        return json.dumps(x, ensure_ascii=False, separators=(",", ":"))

    out = ["{", *(f" {dump(k)}: {dump(v)}," for k, v in meta.items()),
           f' "layer_fields": {dump(list(LAYER_FIELDS))},', ' "models": [']
    for i, rec in enumerate(records):
        head = {k: v for k, v in asdict(rec).items() if k != "layers"}
        for k in ("measure_seconds", "estimate_seconds", "seconds"):
            if head[k] is not None:
                head[k] = round(head[k], 2)
        rows = ",\n   ".join(dump(_row(la)) for la in rec.layers)
        out.append(f"  {dump(head)[:-1]},\"layers\":[\n   {rows}]}}"
                   + ("," if i < len(records) - 1 else ""))
    out += [" ]", "}"]
    return "\n".join(out)


def load_json(path: Path) -> dict[str, Any]:
    """The JSON ``to_json`` wrote, each layer row as a dict of ``layer_fields``."""
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    fields = doc["layer_fields"]
    for m in doc["models"]:
        m["layers"] = [dict(zip(fields, row, strict=True)) for row in m["layers"]]
    return doc


def write(out: Path, md: str, js: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md + "\n", encoding="utf-8")
    jpath = out.with_suffix(".json")
    jpath.write_text(js + "\n", encoding="utf-8")
    return jpath
