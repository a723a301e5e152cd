"""``--format text``: ruff-like diagnostic lines with their help, then a gradient-flow chart
per model and a summary line."""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradlint.core.values import Diagnostic, LayerEstimate, ModelReport, Report, Verification
from gradlint.lint import vanishing
from gradlint.report.counts import counts_line, estimate_part, model_estimate_line, plural
from gradlint.report.emitter import Settings
from gradlint.report.short_names import short_names
from gradlint.report.term import code_text, severity_tag

BAR = 28
MAX_ROWS = 40
NAME_WIDTH = 28  # the layer column at most; longer names: report/short_names.py


def failed_files(report: Report) -> int:
    """Files that could not be checked at all (syntax, import, worker crash or timeout)."""
    return len({d.location.file for d in report.diagnostics
                if d.code.startswith("GL9") and d.severity == "error"})


def format_diagnostic(d: Diagnostic, color: bool = False) -> list[str]:
    loc = d.location
    lines = [f"{loc.file}:{loc.line}:{loc.col}: {code_text(d.code, color)} "
             f"{severity_tag(d.severity, color)} {d.message}"]
    for r in d.related:
        lines.append(f"  note: defined at {r.file}:{r.line}")
    if d.fix is not None:
        lines.append(f"  help: {d.fix.message}")
        if d.fix.edits:
            what = "; ".join(e.describe() for e in d.fix.edits[:3])
            more = f" (+{len(d.fix.edits) - 3} more)" if len(d.fix.edits) > 3 else ""
            lines.append(f"  fix [{d.fix.applicability}]: {what}{more}; apply with "
                         "--fix --unsafe-fixes, preview with --diff --unsafe-fixes")
    return lines


def chart(m: ModelReport, flagged: set[str], threshold: float) -> list[str]:
    """One bar per layer, length on a log scale of the estimated relative weight gradient."""
    rows = [le for le in m.layers if not le.frozen]
    if not rows:
        return []
    lows = [le.log10_relative for le in rows if le.log10_relative is not None]
    built = f"built as {m.built_as}, " if m.built_as else ""
    head = (f"{m.target}  ({m.tracer}, {m.init} init, {built}{len(m.layers)} layers, "
            f"{m.seconds:.2f} s)")
    name_w = min(max(5, *(len(le.module or "<root>") for le in rows)), NAME_WIDTH)
    measured = m.verify is not None and m.verify.error is None
    extra = f" {'measured':>8}" if measured else ""
    lines = [head, f"  {'layer':<{name_w}}  {'type':<10} {'gradient (log10, relative)':<{BAR + 8}}"
             f"{extra} {'atten':>6} {'sat':>4}"]
    shown: list[LayerEstimate | None] = list(rows)
    if len(rows) > MAX_ROWS + 10:
        shown = [*rows[: MAX_ROWS // 2], None, *rows[-MAX_ROWS // 2:]]
    names = iter(short_names([le.module or "<root>" for le in shown if le is not None], name_w))
    row = _Row(m, flagged, math.log10(threshold), min(min(lows, default=0.0), -1.0), measured)
    for le in shown:
        if le is None:
            lines.append(f"  … {len(rows) - MAX_ROWS} more layers")
        else:
            lines.append(row.line(le, f"{next(names):<{name_w}}"))
    lines.append(f"  threshold for GL101: attenuation below {math.log10(threshold):.1f}; "
                 "! = vanishing, ? = low confidence")
    missing = model_estimate_line(m)
    if missing:
        lines.append("  " + missing)
    if m.verify is not None:
        lines.append("  " + verify_line(m.verify))
    return lines


class _Row:
    """One chart row: the bar, the marks, the numbers."""

    def __init__(self, m: ModelReport, flagged: set[str], limit: float, floor: float,
                 measured: bool) -> None:
        self.m, self.flagged, self.limit, self.floor = m, flagged, limit, floor
        self.measured = measured

    def line(self, le: LayerEstimate, name: str) -> str:
        rel = le.log10_relative
        if any(b.holds(le) for b in self.m.opaque):
            bar, val = "".ljust(BAR), "  none"  # inside a block that could not be traced
        elif rel is None:
            bar, val = "".ljust(BAR), "  zero"
        else:
            n = max(1, round(BAR * (1 - rel / self.floor))) if self.floor < 0 else BAR
            bar, val = ("█" * n).ljust(BAR), f"{round(rel, 1) + 0.0:6.1f}"
        sick = vanishing.vanishes(le, self.limit)
        mark = "!" if le.module in self.flagged or sick else " "
        att = "" if le.log10_attenuation is None else f"{round(le.log10_attenuation, 1) + 0.0:6.1f}"
        low = "?" if le.confidence == "low" else " "
        meas = ""
        if self.measured and self.m.verify is not None:
            mr = self.m.verify.measured_relative(le.module)
            meas = f" {'zero' if mr is None else f'{round(mr, 1) + 0.0:.1f}':>8}"
        return (f"{mark} {name}  {le.type[:10]:<10} |{bar}|{val}{low}{meas} "
                f"{att:>6} {le.saturating:>4}")


def verify_line(v: Verification) -> str:
    if v.error is not None:
        return f"verify: not measured: {v.error}"
    if not v.layers:
        return "verify: no layer with both an estimate and a measured gradient"
    rho = "n/a" if v.spearman is None else f"{v.spearman:.2f}"
    grads = "per-example" if v.per_example else "batch"
    return (f"verify: estimate vs autograd over {v.layers} layers: Spearman {rho}, mean error "
            f"{v.mean_error:.2f}, max {v.max_error:.2f} decades ({len(v.seeds)} seeds, batch "
            f"{v.batch}, {grads} gradients; loss Σ⟨g, y⟩ with g ~ N(0, I) on the primary "
            "output, the loss the estimate models)")


def to_text(report: Report, diagnostics: Sequence[Diagnostic], threshold: float,
            quiet: bool = False, color: bool = False) -> str:
    out: list[str] = []
    for d in diagnostics:
        out.extend(format_diagnostic(d, color))
    if not quiet:
        for m in report.models:
            if m.status != "ok":
                continue
            flagged = {d.module for d in m.diagnostics if d.code == "GL101" and d.module}
            out.append("")
            out.extend(chart(m, flagged, threshold))
        out.append("")
        out.extend(summary_lines(report, diagnostics))
    return "\n".join(out).strip("\n") + "\n" if out else ""


def summary_line(report: Report, diagnostics: Sequence[Diagnostic]) -> str:
    """The verdict: findings in the checked models, what has no estimate, what could not be
    checked. Never "no problems" when no model was checked or most of one has no estimate."""
    counts = {s: sum(1 for d in diagnostics if d.severity == s)
              for s in ("error", "warning", "info")}
    failed = sum(1 for m in report.models if m.status == "failed")
    checked = sum(1 for m in report.models if m.status == "ok")
    parts = [plural(n, s) for s, n in counts.items() if n]
    mostly = any(m.status == "ok" and m.mostly_unestimated for m in report.models)
    found = ", ".join(parts) if parts else "nothing found" if mostly else "no problems"
    if checked:
        head = f"{found} in {plural(checked, 'checked model')}"
    else:
        head = "no model was checked" + (f" ({found})" if parts else "")
    missing = estimate_part(report.models)
    lost = [plural(n, what) for n, what in
            ((failed, "model"), (failed_files(report), "file")) if n]
    tail = (f"; {missing}" if missing else "") + (
        f"; {' and '.join(lost)} could not be checked" if lost else "")
    return f"gradlint: {head}{tail}."


def summary_lines(report: Report, diagnostics: Sequence[Diagnostic]) -> list[str]:
    """What the run examined (when it was a run over files), then the verdict, last."""
    examined = counts_line(report)
    return ([examined] if examined else []) + [summary_line(report, diagnostics)]


def emit(report: Report, diagnostics: Sequence[Diagnostic], settings: Settings) -> str:
    return to_text(report, diagnostics, settings.threshold, settings.quiet, settings.color)
