"""Accuracy benchmark: gradlint's per-layer gradient estimate against autograd ground truth.

For every model (an MLP grid the estimator may be tuned on, and held-out architectures it may not)
it compares gradlint's ``log10_relative`` with the measured weight-gradient RMS (docs/design.md,
"Ground truth", ``gradlint.verify.measure``), relative to the model's largest layer, always
beside the naive
rule of thumb (product of sup|f'| along the path, ``log10_bound``). Verdicts (GL101/GL104 recall on
sick models, GL101/GL103 false alarms on healthy ones) are reported separately.

Run:  python bench/accuracy.py [--quick] [--seeds N] [--out bench/results/accuracy.md]
Not part of the test suite (tests/verify/test_bench_accuracy.py runs ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import math
import os
import platform
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import gradlint  # noqa: E402
from bench import zoo  # noqa: E402
from gradlint.verify.agreement import auroc, f1, spearman  # noqa: E402
from gradlint.verify.measure import measure_gradients  # noqa: E402

VANISH = -2.0  # vanishing label: measured < 1e-2 of the model's strongest layer
DEFAULT_OUT = ROOT / "bench" / "results" / "accuracy.md"
BUDGET_S = 25 * 60


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    model: str
    module: str
    type: str
    pred: float  # gradlint, log10 relative to the model's largest layer
    naive: float  # sup-product bound, relative to the model's largest bound
    meas: float  # autograd, relative to the model's largest measured layer
    low: bool  # confidence "low"

    @property
    def err(self) -> float:
        return abs(self.pred - self.meas)

    @property
    def naive_err(self) -> float:
        return abs(self.naive - self.meas)


@dataclass
class ModelResult:
    name: str
    base: str  # the configuration without the seed (verdicts group instances by it)
    set: str  # "grid" | "heldout" | "verdict"
    groups: tuple[str, ...]  # labels this model's layers are reported under
    tag: str | None = None
    layers: list[Layer] = field(default_factory=list)
    skipped: int = 0
    per_example: bool | None = None
    codes: tuple[str, ...] = ()  # diagnostic codes, one per diagnostic
    error: str | None = None
    seconds: float = 0.0


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def run_model(name: str, base: str, set_: str, groups: Sequence[str],
              build: Callable[[], torch.nn.Module], make_inputs: zoo.Inputs, batch: int,
              seed: int, tag: str | None = None) -> ModelResult:
    """Build under ``seed``, estimate, measure, and pair the layers (exceptions are recorded)."""
    res = ModelResult(name, base, set_, tuple(groups), tag)
    t0 = time.perf_counter()
    try:
        torch.manual_seed(seed)
        model = build()
        torch.manual_seed(10_000 + seed)
        report = gradlint.check(model, inputs=make_inputs(batch))
        if report.status != "ok":
            codes = ", ".join(sorted({d.code for d in report.diagnostics}))
            raise RuntimeError(f"gradlint status {report.status} ({codes})")
        res.codes = tuple(d.code for d in report.diagnostics)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = measure_gradients(model, make_inputs, batch=batch, seeds=(seed,))
        res.per_example = m.per_example
        measured = [v for v in m.log10_grad.values() if _finite(v)]
        top = max(measured, default=None)
        bounds = [le.log10_bound for le in report.layers
                  if _finite(le.log10_bound) and not le.frozen]
        top_bound = max(bounds, default=None)
        for le in report.layers:
            mv = m.log10_grad.get(le.module)
            if (le.frozen or le.zero or not _finite(le.log10_relative) or not _finite(mv)
                    or not _finite(le.log10_bound) or top is None or top_bound is None):
                res.skipped += 1
                continue
            assert le.log10_relative is not None and mv is not None
            assert le.log10_bound is not None
            res.layers.append(Layer(name, le.module, le.type, le.log10_relative,
                                    le.log10_bound - top_bound, mv - top,
                                    le.confidence == "low"))
    except Exception as exc:  # noqa: BLE001 - record and continue
        last = traceback.extract_tb(exc.__traceback__)[-1]
        res.error = f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})"
    res.seconds = time.perf_counter() - t0
    return res


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    models: int
    failed: int
    layers: int
    skipped: int
    grad_mode: str
    spearman: tuple[float | None, float | None]  # (gradlint, naive), pooled over layers
    median_spearman: tuple[float | None, float | None]  # median of per-model Spearman
    mean_err: tuple[float | None, float | None]
    max_err: tuple[float | None, float | None]
    auroc: tuple[float | None, float | None]
    f1: tuple[float | None, float | None]
    vanishing: int  # layers with the vanishing label
    big_err: int  # layers with gradlint error > 1 decade
    big_err_low: float | None  # share of those marked confidence "low"
    low_share: float | None  # share of all layers marked "low"


def _median(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def grad_mode(results: Sequence[ModelResult]) -> str:
    flags = [r.per_example for r in results if r.per_example is not None]
    pe = sum(1 for f in flags if f)
    if not flags:
        return "—"
    if pe == len(flags):
        return "per-example"
    if pe == 0:
        return "batch"
    return f"mixed ({pe} per-example, {len(flags) - pe} batch)"


def compute(results: Sequence[ModelResult]) -> Stats:
    layers = [la for r in results for la in r.layers]
    meas = [la.meas for la in layers]
    labels = [m < VANISH for m in meas]

    def both(fn: Callable[[list[float]], float | None]) -> tuple[float | None, float | None]:
        return fn([la.pred for la in layers]), fn([la.naive for la in layers])

    def per_model(pick: Callable[[Layer], float]) -> float | None:
        return _median(spearman([pick(la) for la in r.layers], [la.meas for la in r.layers])
                       for r in results if len(r.layers) >= 3)

    def errs(xs: list[float]) -> list[float]:
        return [abs(x - m) for x, m in zip(xs, meas, strict=True)]

    big = [la for la in layers if la.err > 1]
    return Stats(
        models=len(results), failed=sum(1 for r in results if r.error),
        layers=len(layers), skipped=sum(r.skipped for r in results),
        grad_mode=grad_mode(results),
        spearman=both(lambda xs: spearman(xs, meas) if len(xs) >= 2 else None),
        median_spearman=(per_model(lambda la: la.pred), per_model(lambda la: la.naive)),
        mean_err=both(lambda xs: statistics.fmean(errs(xs)) if xs else None),
        max_err=both(lambda xs: max(errs(xs)) if xs else None),
        auroc=both(lambda xs: auroc([-x for x in xs], labels)),
        f1=both(lambda xs: f1([x < VANISH for x in xs], labels)),
        vanishing=sum(labels), big_err=len(big),
        big_err_low=(sum(la.low for la in big) / len(big)) if big else None,
        low_share=(sum(la.low for la in layers) / len(layers)) if layers else None,
    )


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def pair(p: tuple[float | None, float | None], digits: int = 2) -> str:
    return f"{fmt(p[0], digits)} / {fmt(p[1], digits)}"


HEADER = ("| set | models | layers (skipped) | gradients | Spearman | median per-model Spearman "
          "| mean err (dec) | max err (dec) | AUROC | F1 | vanishing layers | err > 1 dec: low "
          "| low share |")
ALIGN = "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"


def row(label: str, s: Stats) -> str:
    models = f"{s.models}" + (f" ({s.failed} failed)" if s.failed else "")
    return (f"| {label} | {models} | {s.layers} ({s.skipped}) | {s.grad_mode} | {pair(s.spearman)}"
            f" | {pair(s.median_spearman)} | {pair(s.mean_err)} | {pair(s.max_err, 1)}"
            f" | {pair(s.auroc, 3)} | {pair(s.f1)} | {s.vanishing}"
            f" | {pct(s.big_err_low)} of {s.big_err} | {pct(s.low_share)} |")


def table(rows: Sequence[tuple[str, Stats]]) -> list[str]:
    return [HEADER, ALIGN, *(row(label, s) for label, s in rows)]


def stdout_row(label: str, s: Stats) -> str:
    return (f"{label[:30]:30s} {s.models:5d} {s.layers:6d}  {pair(s.spearman):>11s}  "
            f"{pair(s.mean_err):>11s}  {pair(s.max_err, 1):>11s}  {pair(s.auroc, 3):>13s}  "
            f"{pair(s.f1):>11s}  {pct(s.low_share):>4s}")


STDOUT_HEADER = (f"{'set':30s} {'models':>5s} {'layers':>6s}  {'Spearman':>11s}  "
                 f"{'mean err':>11s}  {'max err':>11s}  {'AUROC':>13s}  {'F1':>11s}  {'low':>4s}")


@dataclass(frozen=True)
class Target:
    what: str
    value: float | None
    goal: str
    met: bool | None

    def cells(self) -> str:
        verdict = "—" if self.met is None else ("met" if self.met else "**not met**")
        return f"| {self.what} | {fmt(self.value, 3)} | {self.goal} | {verdict} |"


def targets(grid: Stats | None, held: Stats | None, everything: Stats) -> list[Target]:
    def t(what: str, value: float | None, goal: str, ok: Callable[[float], bool]) -> Target:
        return Target(what, value, goal, None if value is None else ok(value))

    out: list[Target] = []
    if grid is not None:
        out += [
            t("Grid: Spearman (pooled)", grid.spearman[0], "≥ 0.95", lambda v: v >= 0.95),
            t("Grid: mean error (decades)", grid.mean_err[0], "≤ 0.25", lambda v: v <= 0.25),
            t("Grid: AUROC (vanishing)", grid.auroc[0], "≥ 0.97", lambda v: v >= 0.97),
            t("Grid: F1 (vanishing)", grid.f1[0], "≥ 0.85", lambda v: v >= 0.85),
        ]
    if held is not None:
        gap = (None if held.auroc[0] is None or held.auroc[1] is None
               else held.auroc[0] - held.auroc[1])
        out += [
            t("Held-out: AUROC (vanishing)", held.auroc[0], "≥ 0.90", lambda v: v >= 0.90),
            t("Held-out: AUROC − naive AUROC", gap, "≥ 0.15", lambda v: v >= 0.15),
        ]
    # vacuously met when no layer is off by more than a decade
    big_low = everything.big_err_low
    out.append(Target(f"All: share of the {everything.big_err} layers with error > 1 decade "
                      "marked low", big_low,
                      "= 1.000", True if big_low is None else big_low >= 1.0))
    out.append(t("All: share of all layers marked low", everything.low_share, "≤ 0.20",
                 lambda v: v <= 0.20))
    return out


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------


def grid_gl101_lines(results: Sequence[ModelResult]) -> tuple[list[str], list[str]]:
    """Supplementary: GL101 on the grid against a measured label. No gates in the grid, so a
    model counts as measured-vanishing when its first (deepest) weight layer gets < 10^-2 of the
    strongest layer's gradient."""
    grid = [r for r in results if r.set == "grid" and not r.error and r.layers]
    if not grid:
        return [], []
    cells: dict[tuple[bool, bool], int] = dict.fromkeys(
        itertools.product((True, False), repeat=2), 0)
    wrong: dict[tuple[str, str], list[float]] = {}
    for r in grid:
        first = r.layers[0].meas
        fired = "GL101" in r.codes
        sick = first < VANISH
        cells[(fired, sick)] += 1
        if fired != sick:
            wrong.setdefault(("false alarm" if fired else "missed", r.base), []).append(first)
    tp, fp, fn = cells[(True, True)], cells[(True, False)], cells[(False, True)]
    md = ["### GL101 on the grid (supplementary)", "",
          "Measured label: the first weight layer's measured relative gradient < 10^-2 (the grid "
          "has no gates). The label also counts a first layer that is small because the later "
          "layers' *inputs* grow (residual sigmoid stacks accumulate sigmoid's 0.5 mean), while "
          "GL101 judges backward attenuation (≥ 3 compounding factors) — read “missed” rows with "
          "that in mind.", "",
          "| | measured vanishing | measured not vanishing |", "|---|---:|---:|",
          f"| GL101 fired | {tp} | {fp} |", f"| GL101 quiet | {fn} | {cells[(False, False)]} |",
          "", f"Precision {pct(tp / (tp + fp) if tp + fp else None)}, recall "
          f"{pct(tp / (tp + fn) if tp + fn else None)}.", ""]
    if wrong:
        md += ["| disagreement | configuration | instances | measured first-layer relative |",
               "|---|---|---:|---:|"]
        ordered = sorted(wrong.items(), key=lambda kv: (kv[0][0], -len(kv[1]), kv[0][1]))
        for (kind, base), firsts in ordered[:20]:
            md.append(f"| {kind} | {base} | {len(firsts)} | "
                      f"{fmt(statistics.median(firsts))} (median) |")
        if len(ordered) > 20:
            md.append(f"| … | {len(ordered) - 20} more configurations | | |")
        md.append("")
    out = [f"grid GL101 vs measured: {tp} caught, {fp} false alarms, {fn} missed, "
           f"{cells[(False, False)]} quiet"]
    return md, out


def verdict_lines(results: Sequence[ModelResult]) -> tuple[list[str], list[str]]:
    """(markdown lines, stdout lines) for GL101/GL104 recall and GL101/GL103 false alarms."""
    by_name: dict[str, list[ModelResult]] = {}
    for r in results:
        if r.tag:
            by_name.setdefault(r.base, []).append(r)
    sick = {n: rs for n, rs in by_name.items() if rs[0].tag == "sick"}
    healthy = {n: rs for n, rs in by_name.items() if rs[0].tag == "healthy"}

    md: list[str] = []
    out: list[str] = []

    def count(r: ModelResult, *codes: str) -> int:
        return sum(1 for c in r.codes if c in codes)

    md += ["### Recall on sick models (GL101, or GL104 for recurrent horizons)", "",
           "| model | instances | GL101 fired | GL104 fired | caught |",
           "|---|---:|---:|---:|---:|"]
    caught_total = inst_total = 0
    for n, rs in sick.items():
        ok = [r for r in rs if not r.error]
        c101 = sum(1 for r in ok if count(r, "GL101"))
        c104 = sum(1 for r in ok if count(r, "GL104"))
        caught = sum(1 for r in ok if count(r, "GL101", "GL104"))
        caught_total += caught
        inst_total += len(ok)
        md.append(f"| {n} | {len(ok)} | {c101} | {c104} | {caught}/{len(ok)} |")
    recall = caught_total / inst_total if inst_total else None
    md += ["", f"Recall (GL101 or GL104 on a sick instance): **{pct(recall)}** "
           f"({caught_total}/{inst_total}).", ""]
    out.append(f"verdicts: recall on sick {pct(recall)} ({caught_total}/{inst_total})")

    md += ["### False alarms on healthy models (GL101 / GL103)", "",
           "| model | instances | GL101 diagnostics | GL103 diagnostics | instances flagged |",
           "|---|---:|---:|---:|---:|"]
    flagged_total = inst_h = 0
    for n, rs in healthy.items():
        ok = [r for r in rs if not r.error]
        d101 = sum(count(r, "GL101") for r in ok)
        d103 = sum(count(r, "GL103") for r in ok)
        flagged = sum(1 for r in ok if count(r, "GL101", "GL103"))
        flagged_total += flagged
        inst_h += len(ok)
        md.append(f"| {n} | {len(ok)} | {d101} | {d103} | {flagged}/{len(ok)} |")
    rate = flagged_total / inst_h if inst_h else None
    md += ["", f"Healthy instances with a GL101/GL103 false alarm: **{pct(rate)}** "
           f"({flagged_total}/{inst_h}).", ""]
    out.append(f"verdicts: false alarms on healthy {pct(rate)} ({flagged_total}/{inst_h})")
    return md, out


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    name: str
    base: str
    set: str
    groups: tuple[str, ...]
    build: Callable[[], torch.nn.Module]
    inputs: zoo.Inputs
    batch: int
    seed: int
    tag: str | None = None
    depth: int = 0


QUICK_GRID = (("plain", "sigmoid", "default", 5), ("residual", "relu", "kaiming", 10),
              ("layernorm", "tanh", "xavier", 5), ("batchnorm", "gelu", "default", 5))


def grid_jobs(quick: bool, seeds: int, deep_seeds: int) -> list[Job]:
    configs = (QUICK_GRID if quick else
               itertools.product(zoo.FAMILIES, zoo.ACTIVATIONS, zoo.INITS, zoo.DEPTHS))
    jobs = []
    for family, act, init, depth in configs:
        n = deep_seeds if depth == 40 else seeds
        for seed in range(n):
            base = f"{family} {act} {init} d{depth}"
            jobs.append(Job(f"{base} s{seed}", base, "grid",
                            (f"family: {family}", f"activation: {act}", f"init: {init}",
                             f"depth: {depth}", f"{family} × {act}"),
                            lambda f=family, a=act, i=init, d=depth: zoo.grid_mlp(f, a, i, d),
                            zoo.vector_inputs(), zoo.GRID_BATCH, seed, depth=depth))
    return jobs


def heldout_jobs(quick: bool, seeds: int) -> list[Job]:
    specs = zoo.heldout_specs()
    if quick:
        specs = [s for s in specs if s.name in zoo.QUICK_HELDOUT]
    jobs = []
    for s in specs:
        for seed in range(seeds):
            jobs.append(Job(s.name if seeds == 1 else f"{s.name} s{seed}", s.name,
                            "heldout" if s.pooled else "verdict", (s.family,), s.build, s.inputs,
                            s.batch, seed, s.tag))
    return jobs


def worst_layers(results: Sequence[ModelResult], k: int = 10) -> list[Layer]:
    """The k layers with the largest gradlint error, at most one per configuration (seeds of one
    configuration repeat the same miss)."""
    best: dict[str, Layer] = {}
    for r in results:
        for la in r.layers:
            if r.base not in best or la.err > best[r.base].err:
                best[r.base] = la
    return sorted(best.values(), key=lambda la: -la.err)[:k]


def machine() -> str:
    return (f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"torch {torch.__version__}, gradlint {gradlint.__version__}")


def build_report(results: list[ModelResult], args: argparse.Namespace, argv: Sequence[str],
                 seconds: float, deep_seeds: int, started: datetime.datetime
                 ) -> tuple[str, list[str]]:
    grid = [r for r in results if r.set == "grid"]
    held = [r for r in results if r.set == "heldout"]
    verdict = [r for r in results if r.set == "verdict"]
    s_grid = compute(grid) if grid else None
    s_held = compute(held) if held else None
    s_all = compute(results)

    def groups(rs: Sequence[ModelResult], prefix: str = "") -> list[tuple[str, Stats]]:
        labels: dict[str, None] = {}
        for r in rs:
            for g in r.groups:
                if g.startswith(prefix):
                    labels.setdefault(g)
        return [(g, compute([r for r in rs if g in r.groups])) for g in labels]

    cmd = "python bench/accuracy.py" + ("" if not argv else " " + " ".join(argv))
    md = [
        "# gradlint accuracy benchmark", "",
        f"- date: {started:%Y-%m-%d %H:%M} (local)",
        f"- machine: {machine()}",
        f"- command: `{cmd}`",
        f"- run time: {seconds:.0f} s ({seconds / 60:.1f} min)",
        f"- seeds: {args.seeds} per configuration"
        + (f"; depth 40 grid configurations use {deep_seeds} (runtime budget)"
           if deep_seeds != args.seeds and grid else ""),
        "- ground truth: `gradlint.verify.measure.measure_gradients` (docs/design.md: float64, "
        "train mode, "
        "dropout 0, loss Σ_b ⟨g_b, y_b⟩, g_b ~ N(0, I); per-example gradients where the model "
        "allows, batch gradients × √B where it mixes examples — the *gradients* column says "
        "which); main-weight RMS per layer, relative to the model's largest layer.",
        "- every cell is **gradlint / naive**: gradlint's `log10_relative` vs the naive rule of "
        "thumb (`log10_bound`, the product of sup|f′| along the path, relative to the model's "
        "largest bound). Errors are absolute, in decades.",
        f"- vanishing label: measured relative < 10^{VANISH:.0f}; AUROC score = −relative; "
        f"F1 predicts vanishing where the relative estimate < 10^{VANISH:.0f}.",
        "- Spearman is pooled over all layers of the set; the median per-model Spearman skips "
        "models with < 3 layers or a constant side (e.g. the naive bound of a ReLU net). "
        "“err > 1 dec: low” is the share of layers with gradlint error > 1 decade that carried "
        "`confidence: low`; “low share” the share of all layers marked low (≤ 20% required).",
        "- layers are skipped (counted in parentheses) where the estimate, the bound or the "
        "measurement is zero/None/non-finite or the layer is frozen.",
        "",
        "## Targets (issue 4)", "",
        "| target | value | goal | status |", "|---|---:|---|---|",
        *(t.cells() for t in targets(s_grid, s_held, s_all)), "",
    ]
    out = [STDOUT_HEADER]
    if s_grid is not None:
        md += ["## Grid (MLPs, width 128, batch 32)", "", *table([("grid (all)", s_grid)]), ""]
        for title, prefix in (("family", "family: "), ("activation", "activation: "),
                              ("init", "init: "), ("depth", "depth: ")):
            md += [f"### Grid by {title}", "", *table(groups(grid, prefix)), ""]
        md += ["### Grid: gradlint mean error (decades) by family × activation", "",
               "| family | " + " | ".join(zoo.ACTIVATIONS) + " |",
               "|---|" + "---:|" * len(zoo.ACTIVATIONS)]
        for fam in zoo.FAMILIES:
            cells = []
            for act in zoo.ACTIVATIONS:
                rs = [r for r in grid if f"{fam} × {act}" in r.groups]
                cells.append(fmt(compute(rs).mean_err[0]) if rs else "·")
            if any(c != "·" for c in cells):
                md.append(f"| {fam} | " + " | ".join(cells) + " |")
        md.append("")
        out.append(stdout_row("grid (all)", s_grid))
        out += [stdout_row("  " + g, s) for g, s in groups(grid, "family: ")]
        out += [stdout_row("  " + g, s) for g, s in groups(grid, "activation: ")]
    if s_held is not None:
        md += ["## Held-out architectures (not used for tuning)", "",
               *table([("held-out (all)", s_held), *groups(held)]), ""]
        out.append(stdout_row("held-out (all)", s_held))
        out += [stdout_row("  " + g, s) for g, s in groups(held)]
    if verdict:
        s_v = compute(verdict)
        md += ["### Verdict-only MLPs (grid-like, not pooled into the held-out numbers)", "",
               *table([("verdict MLPs", s_v)]), ""]
        out.append(stdout_row("verdict MLPs", s_v))
    rate_md, rate_out = rnn_rate_lines()
    md += ["### Recurrent cells: per-step rate (decades per step, log10 ρ)", "", *rate_md, ""]
    out.extend(rate_out)

    vmd, vout = verdict_lines(results)
    gmd, gout = grid_gl101_lines(results)
    md += ["## Verdicts (rules, not the estimate)", "", *vmd, *gmd]
    out += vout + gout

    for title, rs in (("all sets", results),
                      ("held-out", [r for r in results if r.set == "heldout"])):
        if not rs:
            continue
        md += [f"## 10 worst layers, {title} (gradlint error; at most one per configuration)", "",
               "| model | layer | type | predicted | measured | naive | error | confidence |",
               "|---|---|---|---:|---:|---:|---:|---|"]
        for la in worst_layers(rs):
            md.append(f"| {la.model} | `{la.module}` | {la.type} | {la.pred:.2f} | "
                      f"{la.meas:.2f} | {la.naive:.2f} | {la.err:.2f} | "
                      f"{'low' if la.low else 'high'} |")
        md.append("")
    failures = [r for r in results if r.error]
    md += ["## Failures", ""]
    if failures:
        md += [f"- {r.name}: {r.error}" for r in failures]
        out += [f"FAILED {r.name}: {r.error}" for r in failures]
    else:
        md.append("none")
    md.append("")
    slow = sorted(results, key=lambda r: -r.seconds)[:5]
    md += ["## Slowest models", "", *(f"- {r.name}: {r.seconds:.1f} s" for r in slow), ""]
    out.append(f"run time {seconds:.0f} s; {len(results)} models, {len(failures)} failed")
    return "\n".join(md), out


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true",
                   help="a tiny subset (4 grid configs, 2 held-out models, 1 seed), < 30 s")
    p.add_argument("--seeds", type=int, default=None, help="seeds per configuration (5; quick 1)")
    p.add_argument("--deep-seeds", type=int, default=None,
                   help="seeds for depth-40 grid configurations (default: --seeds, reduced "
                        "automatically if the run would exceed the time budget)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown report path")
    return p.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 5
    started = datetime.datetime.now()
    t0 = time.perf_counter()

    held = heldout_jobs(args.quick, args.seeds)
    shallow = [j for j in grid_jobs(args.quick, args.seeds, args.seeds) if j.depth != 40]
    deep_seeds = args.deep_seeds if args.deep_seeds is not None else args.seeds
    results: list[ModelResult] = []

    def run(jobs: Sequence[Job], label: str) -> None:
        for i, j in enumerate(jobs):
            results.append(run_model(j.name, j.base, j.set, j.groups, j.build, j.inputs, j.batch,
                                     j.seed, j.tag))
            if (i + 1) % 100 == 0:
                print(f"  {label}: {i + 1}/{len(jobs)} ({time.perf_counter() - t0:.0f} s)",
                      file=sys.stderr, flush=True)

    run(held, "held-out")
    run(shallow, "grid")
    if not args.quick:
        # budget check: time one seed of the depth-40 configurations, then decide how many more
        first = [j for j in grid_jobs(False, 1, 1) if j.depth == 40]
        t_deep = time.perf_counter()
        run(first, "grid d40 seed 0")
        per_seed = time.perf_counter() - t_deep
        left = BUDGET_S - (time.perf_counter() - t0) - 30
        if args.deep_seeds is None:
            deep_seeds = max(1, min(args.seeds, 1 + int(left // max(per_seed, 1e-9))))
        rest = [j for j in grid_jobs(False, args.seeds, deep_seeds)
                if j.depth == 40 and j.seed > 0]
        run(rest, "grid d40")
    else:
        run([j for j in grid_jobs(True, args.seeds, deep_seeds) if j.depth == 40], "grid d40")
    seconds = time.perf_counter() - t0

    md, out = build_report(results, args, argv, seconds, deep_seeds, started)
    print("cells are gradlint / naive")
    print("\n".join(out))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(md + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def rnn_rate_lines(steps: int = 60, seeds: int = 3) -> tuple[list[str], list[str]]:
    """Predicted log10 rho per cell type beside the measured slope of the input gradient."""
    from gradlint.core.values import Target
    from gradlint.estimate.recurrent import analyse_cell
    from gradlint.estimate.sweeps import estimate_gradients
    from gradlint.trace.fx import trace_target
    from gradlint.verify.measure import measure_time_decay

    md = ["| cell | predicted | measured | error | confidence |", "|---|---:|---:|---:|---|"]
    out = []
    for cell in ("rnn", "lstm", "gru"):
        pred, meas = [], []
        for seed in range(seeds):
            torch.manual_seed(seed)
            model = zoo.RecurrentClassifier(cell)
            graph = trace_target(Target("t", model, "bench", 1, (torch.randn(4, steps, 16),)))
            est = estimate_gradients(graph)
            node = next(n for n in graph.nodes if n.op == "recurrent")
            pred.append(math.log10(analyse_cell(node, est.moments[node.inputs[0]].second).rho))
            meas.append(measure_time_decay(model, steps, 16))
        p, m = sum(pred) / seeds, sum(meas) / seeds
        conf = "high" if cell == "rnn" else "low"
        md.append(f"| {cell} (T={steps}, H=64) | {p:.3f} | {m:.3f} | {abs(p - m):.3f} | {conf} |")
        out.append(f"RNN per-step rate {cell}: predicted {p:.3f}, measured {m:.3f} "
                   f"decades/step")
    return md, out


if __name__ == "__main__":
    raise SystemExit(main())
