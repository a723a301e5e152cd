"""``--format html``: one self-contained page (inline CSS and SVG, no script, no network).

Per model a gradient-flow chart — one bar per parameterized layer (every ``LayerEstimate``, in
report order) on a log scale — then that model's diagnostics with their source lines. The page
has to open offline from a CI artifact and print legibly, so everything is inline, every state
is also a text label (not only a colour), and nothing depends on when the run happened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path

from gradlint import __version__
from gradlint.core.values import Diagnostic, LayerEstimate, Location, ModelReport, Report
from gradlint.report.text import summary_line, verify_line

# as GL101 (rules/GL101-vanishing-gradient/check.py): at least this many factors below 1, none
# carrying more than this share of the attenuation, and
# this much more attenuation where the estimate is marked low confidence
MIN_FACTORS = 3
DOMINANT = 0.5
LOW_CONFIDENCE_MARGIN = 3.0

# chart geometry (SVG user units = CSS px)
ROW, BAR_H, TOP = 18, 12, 58
NAME_X, NAME_CH = 8, 30
TYPE_X, TYPE_CH = 236, 13
PLOT_X0, PLOT_X1 = 340, 800
VALUE_X = 850  # right edge of the value column
SAT_X = 900  # right edge of the saturating column
STATUS_X = 912
WIDTH = 1030
SOURCE_CONTEXT, SOURCE_MAX = 1, 10

COLORS = {"healthy": "#3b6fb6", "below": "#e8a33d", "vanishing": "#c92a2a",
          "frozen": "#adb5bd", "zero": "#adb5bd"}
STATUS_TEXT = {"vanishing": "GL101", "below": "below", "frozen": "frozen", "zero": "zero",
               "healthy": ""}

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
  background: #fff; margin: 0 auto; padding: 16px 24px 40px; max-width: 1100px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 28px 0 4px; padding-top: 12px; border-top: 2px solid #d0d7de;
  word-break: break-all; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.meta { color: #57606a; margin: 2px 0; }
.summary { font-weight: 600; }
.status { display: inline-block; padding: 0 6px; border: 1px solid currentColor;
  border-radius: 4px; font-size: 12px; text-transform: uppercase; }
.status.ok { color: #1a7f37; } .status.failed { color: #c92a2a; }
.status.skipped { color: #57606a; }
.chart-wrap { overflow-x: auto; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg.chart text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 11px; fill: #1f2328; }
svg.chart text.head { font-weight: 700; fill: #57606a; }
svg.chart .row.vanishing text.name { font-weight: 700; fill: #c92a2a; }
svg.chart text.tick { fill: #57606a; font-size: 10px; }
svg.chart text.thr-label { fill: #7d2e00; font-weight: 700; }
.legend { display: grid; grid-template-columns: 34px 1fr; gap: 3px 8px; align-items: center;
  font-size: 12.5px; color: #313840; margin: 8px 0 4px; max-width: 960px; }
.legend svg { display: block; }
.diagnostic { border: 1px solid #d0d7de; border-left: 5px solid #57606a; border-radius: 4px;
  padding: 6px 12px; margin: 10px 0; break-inside: avoid; }
.diagnostic.error { border-left-color: #c92a2a; }
.diagnostic.warning { border-left-color: #e8a33d; }
.diagnostic.info { border-left-color: #3b6fb6; }
.diagnostic .head { font-weight: 600; }
.diagnostic .where { font-weight: 400; color: #57606a; }
.sev { display: inline-block; min-width: 58px; padding: 0 5px; border-radius: 3px;
  font-size: 12px; text-align: center; border: 1px solid currentColor; }
.sev.error { color: #c92a2a; } .sev.warning { color: #9a6200; } .sev.info { color: #3b6fb6; }
.message { margin: 4px 0; white-space: pre-wrap; }
.help { margin: 4px 0; white-space: pre-wrap; }
.suggestions { margin: 2px 0 6px; padding-left: 22px; }
pre.source { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 4px;
  padding: 6px 0; margin: 6px 0; overflow-x: auto; font-size: 12.5px; line-height: 1.4; }
pre.source .line { display: block; padding: 0 10px; }
pre.source .line.hit { background: #fff1c2; }
pre.source .ln { color: #6e7781; display: inline-block; min-width: 4ch; text-align: right; }
pre.source mark { background: #ffd33d; color: inherit; text-decoration: underline; }
.note { color: #57606a; margin: 2px 0; }
.missing { color: #57606a; font-style: italic; }
nav ol { margin: 4px 0; padding-left: 22px; }
details.how summary { font-weight: 600; cursor: pointer; margin: 10px 0 4px; }
footer { margin-top: 32px; color: #57606a; font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  section.model { break-before: auto; }
  .chart-wrap { overflow: visible; }
  nav { display: none; }
  pre.source { white-space: pre-wrap; }
}
"""

PATTERNS = "".join(
    f'<pattern id="gl-hatch-{state}" patternUnits="userSpaceOnUse" width="5" height="5" '
    f'patternTransform="rotate(45)"><rect width="5" height="5" fill="#fff"/>'
    f'<rect width="2.5" height="5" fill="{color}"/></pattern>'
    for state, color in COLORS.items())


def to_html(report: Report, diagnostics: Sequence[Diagnostic], threshold: float) -> str:
    """The whole page; ``diagnostics`` are the selected, unsuppressed ones (as for text)."""
    limit = math.log10(threshold)
    sources = _Sources()
    targets = {m.target for m in report.models}
    by_target: dict[str, list[Diagnostic]] = {}
    other: list[Diagnostic] = []
    for d in diagnostics:
        if d.target in targets:
            by_target.setdefault(d.target, []).append(d)
        else:
            other.append(d)
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="gradlint {escape(__version__)}">',
        "<title>gradlint report</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        '<svg width="0" height="0" style="position:absolute" aria-hidden="true" '
        f'focusable="false"><defs>{PATTERNS}</defs></svg>',
        "<header>", "<h1>gradlint report</h1>",
        f'<p class="summary">{escape(summary_line(report, diagnostics))}</p>',
        f'<p class="meta">gradlint {escape(__version__)} · GL101 threshold '
        f"{escape(_pow(limit))} (attenuation) · {len(report.models)} "
        f"target{'s' if len(report.models) != 1 else ''}</p>",
        "</header>",
    ]
    if len(report.models) > 1 or (report.models and other):
        parts.append(_toc(report, by_target, other))
    charted = [m for m in report.models if m.status == "ok" and m.layers]
    if charted:
        verified = any(m.verify is not None and m.verify.error is None for m in charted)
        parts.append(f'<details open class="how"><summary>How to read the charts</summary>'
                     f"{_legend(verified, limit)}</details>")
    if not report.models and not other:
        parts.append('<p class="missing">No models were found.</p>')
    for i, m in enumerate(report.models, start=1):
        parts.append(_model_section(i, m, by_target.get(m.target, []), diagnostics, limit,
                                    sources))
    if other:
        parts.append('<section class="other" id="other">')
        parts.append(f"<h2>Diagnostics outside a model ({len(other)})</h2>")
        parts.extend(_diagnostic(d, sources) for d in other)
        parts.append("</section>")
    parts += [f"<footer>Generated by gradlint {escape(__version__)}. Numbers are estimates at "
              "initialization (DESIGN §4); <code>gradlint explain CODE</code> documents each "
              "rule.</footer>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _toc(report: Report, by_target: dict[str, list[Diagnostic]],
         other: list[Diagnostic]) -> str:
    items = []
    for i, m in enumerate(report.models, start=1):
        n = len(by_target.get(m.target, []))
        items.append(f'<li><a href="#model-{i}">{escape(m.target)}</a> — {escape(m.status)}, '
                     f"{n} diagnostic{'s' if n != 1 else ''}</li>")
    if other:
        items.append(f'<li><a href="#other">outside a model</a> — {len(other)} '
                     f"diagnostic{'s' if len(other) != 1 else ''}</li>")
    return f'<nav><h3>Targets</h3><ol>{"".join(items)}</ol></nav>'


def _model_section(index: int, m: ModelReport, diags: list[Diagnostic],
                   every: Sequence[Diagnostic], limit: float, sources: _Sources) -> str:
    out = [f'<section class="model {escape(m.status)}" id="model-{index}">',
           f'<h2>{escape(m.target)} <span class="status {escape(m.status)}">'
           f"{escape(m.status)}</span></h2>"]
    if m.status == "ok":
        out.append(f'<p class="meta">tracer {escape(m.tracer or "?")}, {escape(m.init or "?")} '
                   f"init, {len(m.layers)} parameterized layer"
                   f"{'s' if len(m.layers) != 1 else ''}</p>")
        if m.layers:
            states = layer_states(m, every, limit)
            out.append('<div class="chart-wrap">')
            out.append(_chart(index, m, states, limit))
            out.append("</div>")
        else:
            out.append('<p class="missing">This model has no parameters to chart.</p>')
        if m.verify is not None:
            out.append(f'<p class="meta">{escape(verify_line(m.verify))}</p>')
    elif m.status == "failed":
        out.append('<p class="meta">Could not be checked; the diagnostics below say why.</p>')
    else:
        out.append('<p class="meta">Skipped; the diagnostics below say how to include it.</p>')
    out.append(f"<h3>Diagnostics ({len(diags)})</h3>")
    if not diags:
        out.append('<p class="missing">No diagnostics for this model.</p>')
    out.extend(_diagnostic(d, sources) for d in diags)
    out.append("</section>")
    return "\n".join(out)


def _fires(le: LayerEstimate, limit: float) -> bool:
    att = le.log10_attenuation
    margin = LOW_CONFIDENCE_MARGIN if le.confidence == "low" else 0.0
    return (not le.frozen and not le.zero and att is not None and le.factors >= MIN_FACTORS
            and le.largest_factor >= DOMINANT * att and att < limit - margin)


def layer_states(m: ModelReport, diagnostics: Sequence[Diagnostic],
                 limit: float) -> dict[str, str]:
    """module -> ``vanishing`` (a reported GL101 covers it), ``below`` (attenuation below the
    threshold but no GL101: too few compounding factors, low confidence, or not reported),
    ``frozen``, ``zero`` or ``healthy``. GL101 groups layers by source line and names only the
    deepest, so a layer counts as reported when it would fire and shares a GL101's line."""
    gl101 = [d for d in diagnostics if d.code == "GL101" and d.target == m.target]
    named = {d.module for d in gl101 if d.module is not None}
    lines = {(d.location.file, d.location.line) for d in gl101}
    states: dict[str, str] = {}
    for le in m.layers:
        anchor = le.anchor or le.location
        at = (anchor.file, anchor.line) if anchor is not None else None
        att = le.log10_attenuation
        if le.frozen:
            state = "frozen"
        elif le.module in named or (at in lines and _fires(le, limit)):
            state = "vanishing"
        elif le.zero or le.log10_relative is None:
            state = "zero"
        elif att is not None and att < limit:
            state = "below"
        else:
            state = "healthy"
        states[le.module] = state
    return states


def _pow(x: float) -> str:
    return f"10^{round(x, 1) + 0.0:.1f}" if float(x) != int(x) else f"10^{int(x)}"


def _num(x: float | None) -> str:
    return "zero" if x is None else f"{round(x, 1) + 0.0:.1f}"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1):]


def _saturating_steps(layers: Sequence[LayerEstimate]) -> list[int]:
    """How many more saturating activations each layer's path to the loss has than the next
    listed layer's (the last: all of its own) — a hint where they sit, read from counts."""
    steps = []
    for i, le in enumerate(layers):
        after = layers[i + 1].saturating if i + 1 < len(layers) else 0
        steps.append(max(0, le.saturating - after))
    return steps


def _tooltip(le: LayerEstimate, state: str, measured: float | None, has_measure: bool) -> str:
    where = le.anchor or le.location
    lines = [f"{le.module or '<root>'} ({le.type}, {le.numel:,} parameters)"]
    if le.log10_relative is None:
        lines.append("estimated weight gradient: exactly zero at init")
    else:
        lines.append(f"estimated weight gradient: {_pow(le.log10_relative)} of the largest")
    if le.log10_attenuation is not None:
        lines.append(f"attenuation (GL101 judges): {_pow(le.log10_attenuation)} over "
                     f"{le.factors} factor{'s' if le.factors != 1 else ''} below 1")
    if le.log10_bound is not None:
        lines.append(f"worst-case activation bound: {_pow(le.log10_bound)}")
    lines.append(f"saturating activations on the path to the loss: {le.saturating}; "
                 f"weight layers on it: {le.depth}")
    if has_measure:
        lines.append("measured (autograd): " + ("zero / not measured" if measured is None
                                                 else _pow(measured)))
    if le.gate:
        lines.append(f"gated by: {le.gate}")
    if le.aliases:
        lines.append("shares its parameters with: " + ", ".join(le.aliases))
    lines.append(f"confidence: {le.confidence}")
    lines.append(f"status: {STATUS_TEXT[state] or 'ok'}")
    if where is not None:
        lines.append(f"defined at {where.file}:{where.line}")
    return "\n".join(lines)


def _chart(index: int, m: ModelReport, states: dict[str, str], limit: float) -> str:
    """Horizontal bars: length = estimated relative weight gradient on a log10 axis that runs
    from a whole decade below the smallest value (left) to 1, the largest (right)."""
    layers = list(m.layers)
    verify = m.verify if m.verify is not None and m.verify.error is None else None
    measured = {le.module: verify.measured_relative(le.module) for le in layers} if verify else {}
    values = [limit, -1.0]
    for le in layers:
        values += [v for v in (le.log10_relative, le.log10_attenuation, measured.get(le.module))
                   if v is not None and math.isfinite(v)]
    floor = float(math.floor(min(values) - 0.3))
    span = -floor

    def x(v: float) -> float:
        v = min(0.0, max(floor, v))
        return PLOT_X0 + (v - floor) / span * (PLOT_X1 - PLOT_X0)

    height = TOP + ROW * len(layers) + 26
    bottom = TOP + ROW * len(layers)
    title_id = f"chart-{index}-title"
    out = [f'<svg class="chart" role="img" '
           f'aria-labelledby="{title_id}" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}">',
           f'<title id="{title_id}">Gradient-flow chart for {escape(m.target)}: estimated '
           "weight gradient per layer, relative to the largest, log10</title>",
           f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>']
    head_y = 14
    out += [f'<text class="head" x="{NAME_X}" y="{head_y}">layer</text>',
            f'<text class="head" x="{TYPE_X}" y="{head_y}">type</text>',
            f'<text class="head" x="{PLOT_X0}" y="{head_y}">estimated weight gradient, '
            "relative to the largest (log scale)</text>",
            f'<text class="head" x="{VALUE_X}" y="{head_y}" text-anchor="end">log10</text>',
            f'<text class="head" x="{SAT_X}" y="{head_y}" text-anchor="end">sat</text>',
            f'<text class="head" x="{STATUS_X}" y="{head_y}">status</text>']
    # decade grid and labels
    step = 1 if span <= 12 else 2 if span <= 24 else 5 if span <= 60 else 10
    out.append('<g class="axis">')
    for k in range(0, int(floor) - 1, -step):
        if k < floor:
            break
        xk = x(k)
        out.append(f'<line x1="{xk:.1f}" y1="{TOP - 6}" x2="{xk:.1f}" y2="{bottom}" '
                   'stroke="#e6e8eb" stroke-width="1"/>')
        label = "1" if k == 0 else f'10<tspan dy="-4" font-size="8">{k}</tspan>'
        out.append(f'<text class="tick" x="{xk:.1f}" y="{TOP - 9}" '
                   f'text-anchor="middle">{label}</text>')
    out.append("</g>")
    steps = _saturating_steps(layers)
    for i, le in enumerate(layers):
        state = states.get(le.module, "healthy")
        y = TOP + ROW * i
        cy = y + ROW / 2
        low = le.confidence == "low"
        classes = f"row {state}" + (" low" if low else "")
        mr = measured.get(le.module)
        out.append(f'<g class="{classes}" data-module="{escape(le.module)}">')
        out.append(f"<title>{escape(_tooltip(le, state, mr, verify is not None))}</title>")
        out.append(f'<rect class="rowbg" x="0" y="{y}" width="{WIDTH}" height="{ROW}" '
                   f'fill="{"#f6f8fa" if i % 2 else "#ffffff"}"/>')
        mark = "! " if state == "vanishing" else "  "
        out.append(f'<text class="name" x="{NAME_X}" y="{cy + 4:.1f}" xml:space="preserve">'
                   f"{escape(mark + _clip(le.module or '<root>', NAME_CH))}</text>")
        out.append(f'<text class="type" x="{TYPE_X}" y="{cy + 4:.1f}">'
                   f"{escape(_clip(le.type, TYPE_CH))}</text>")
        rel = le.log10_relative
        width = 0.0 if rel is None else max(1.5, x(rel) - PLOT_X0)
        fill = f"url(#gl-hatch-{state})" if low else COLORS[state]
        stroke = f' stroke="{COLORS[state]}" stroke-width="1" stroke-dasharray="3 2"' if low \
            else ""
        bar_cls = f"bar {state}" + (" low" if low else "")
        out.append(f'<rect class="{bar_cls}" x="{PLOT_X0}" y="{cy - BAR_H / 2:.1f}" '
                   f'width="{width:.1f}" height="{BAR_H}" fill="{fill}"{stroke}/>')
        att = le.log10_attenuation
        if att is not None and not le.frozen:
            xa = x(att)
            out.append(f'<path class="atten" d="M{xa:.1f} {cy - 4:.1f} l4 4 l-4 4 l-4 -4 z" '
                       'fill="#1f2328" stroke="#fff" stroke-width="0.8"/>')
        if verify is not None and mr is not None:
            out.append(f'<circle class="measured" cx="{x(mr):.1f}" cy="{cy:.1f}" r="3.6" '
                       'fill="#fff" stroke="#1f2328" stroke-width="1.6"/>')
        value = _num(rel) + ("?" if low else " ")
        out.append(f'<text class="value" x="{VALUE_X}" y="{cy + 4:.1f}" text-anchor="end" '
                   f'xml:space="preserve">{escape(value)}</text>')
        if steps[i]:
            out.append(f'<text class="sat-step" x="{SAT_X - 24}" y="{cy + 4:.1f}" '
                       f'text-anchor="end" fill="#9a6200">▲+{steps[i]}</text>')
        out.append(f'<text class="sat" x="{SAT_X}" y="{cy + 4:.1f}" text-anchor="end">'
                   f"{le.saturating}</text>")
        status = STATUS_TEXT[state] + (" low conf." if low else "")
        out.append(f'<text class="state" x="{STATUS_X}" y="{cy + 4:.1f}">'
                   f"{escape(status.strip())}</text>")
        out.append("</g>")
    xt = x(limit)
    out.append(f'<line class="threshold" x1="{xt:.1f}" y1="{TOP - 4}" x2="{xt:.1f}" '
               f'y2="{bottom + 4}" stroke="#7d2e00" stroke-width="1.6" '
               'stroke-dasharray="6 3"/>')
    out.append(f'<text class="thr-label" x="{xt:.1f}" y="{TOP - 25}" text-anchor="middle">'
               f"GL101 threshold {escape(_pow(limit))}</text>")
    out.append(f'<text class="tick" x="{PLOT_X0}" y="{bottom + 18}">← less gradient'
               f'</text><text class="tick" x="{PLOT_X1}" y="{bottom + 18}" '
               'text-anchor="end">more gradient →</text>')
    out.append("</svg>")
    return "".join(out)


def _swatch(body: str) -> str:
    return (f'<svg width="30" height="14" viewBox="0 0 30 14" aria-hidden="true">{body}'
            "</svg>")


def _legend(verify: bool, limit: float) -> str:
    items = [
        (_swatch(f'<rect x="0" y="1" width="30" height="12" fill="{COLORS["healthy"]}"/>'),
         "bar: the estimated per-entry weight-gradient RMS at init, relative to the model's "
         "largest (log10, the <b>log10</b> column); a shorter bar is a layer that learns "
         "more slowly."),
        (_swatch(f'<rect x="0" y="1" width="30" height="12" fill="{COLORS["vanishing"]}"/>'),
         "<b>GL101</b> (name marked <b>!</b>): a layer GL101 reports as vanishing."),
        (_swatch(f'<rect x="0" y="1" width="30" height="12" fill="{COLORS["below"]}"/>'),
         "<b>below</b>: attenuation below the threshold, but GL101 does not report it "
         f"(fewer than {MIN_FACTORS} compounding factors, low confidence, or the rule not "
         "selected / suppressed)."),
        (_swatch('<path d="M15 3 l4 4 l-4 4 l-4 -4 z" fill="#1f2328"/>'
                 '<line x1="24" y1="0" x2="24" y2="14" stroke="#7d2e00" stroke-width="1.6" '
                 'stroke-dasharray="4 2"/>'),
         "◆ attenuation: what GL101 judges — the per-layer gains below 1 between the layer "
         f"and the loss; dashed line: the threshold {escape(_pow(limit))}. A bar may end left "
         "of the line without a ◆ there: a small gradient that does not compound with depth "
         "is not vanishing."),
        (_swatch(f'<rect x="0" y="1" width="30" height="12" fill="url(#gl-hatch-healthy)" '
                 f'stroke="{COLORS["healthy"]}" stroke-dasharray="3 2"/>'),
         "hatched, dashed outline, <b>?</b> after the value, <b>low conf.</b>: the estimate "
         "is known to be weak for this structure (DESIGN §4)."),
        (_swatch('<text x="2" y="11" font-size="11" fill="#9a6200">▲+1</text>'),
         "<b>sat</b>: saturating activations (sigmoid, tanh, …) on the layer's strongest path "
         "to the loss. <b>▲+k</b>: k more than the next listed layer has, i.e. about k "
         "saturating activations sit between the two (read from the counts; with branches "
         "the listing order is only a hint)."),
    ]
    if verify:
        items.append((_swatch('<circle cx="15" cy="7" r="3.6" fill="#fff" stroke="#1f2328" '
                              'stroke-width="1.6"/>'),
                      "○ measured with autograd (<code>--verify</code>), relative to the "
                      "largest measured layer."))
    items.append((_swatch('<rect x="0" y="1" width="30" height="12" '
                          f'fill="{COLORS["frozen"]}"/>'),
                  "<b>frozen</b> (requires_grad=False, never diagnosed) or <b>zero</b> (an "
                  "exactly zero gradient at init, e.g. behind a zero-initialized gate). Hover a "
                  "row for all its numbers."))
    cells = "".join(f"<div>{sw}</div><div>{text}</div>" for sw, text in items)
    return f'<div class="legend">{cells}</div>'


class _Sources:
    """Source files read once per page; ``None`` where a file cannot be read."""

    def __init__(self) -> None:
        self._files: dict[str, list[str] | None] = {}

    def lines(self, path: str) -> list[str] | None:
        if path not in self._files:
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
                self._files[path] = text.splitlines()
            except (OSError, ValueError):
                self._files[path] = None
        return self._files[path]


def _source(loc: Location, sources: _Sources) -> str:
    lines = sources.lines(loc.file)
    if not lines or not 1 <= loc.line <= len(lines):
        return '<p class="missing">(source not available)</p>'
    end = min(max(loc.line, loc.end_line or loc.line), loc.line + SOURCE_MAX - 1, len(lines))
    first = max(1, loc.line - SOURCE_CONTEXT)
    last = min(len(lines), end + SOURCE_CONTEXT)
    width = len(str(last))
    out = []
    for n in range(first, last + 1):
        text = lines[n - 1]
        hit = loc.line <= n <= end
        if hit and n == loc.line and (loc.end_line in (None, loc.line)) and loc.col >= 1 \
                and loc.end_col is not None and loc.end_col > loc.col:
            a, b = loc.col - 1, loc.end_col - 1
            body = (f"{escape(text[:a])}<mark>{escape(text[a:b])}</mark>"
                    f"{escape(text[b:])}")
        else:
            body = escape(text)
        marker = "&gt;" if hit else " "
        out.append(f'<span class="line{" hit" if hit else ""}"><span class="ln">'
                   f"{n:>{width}}</span> {marker} {body}</span>")
    return f'<pre class="source">{"".join(out)}</pre>'


def _diagnostic(d: Diagnostic, sources: _Sources) -> str:
    loc = d.location
    where = f"{loc.file}:{loc.line}:{loc.col}"
    out = [f'<article class="diagnostic {escape(d.severity)}" data-code="{escape(d.code)}">',
           f'<div class="head"><span class="sev {escape(d.severity)}">{escape(d.severity)}'
           f'</span> <code class="code">{escape(d.code)}</code> {escape(d.name)} '
           f'<span class="where mono">{escape(where)}</span>'
           + (f' <span class="where">module <code>{escape(d.module)}</code></span>'
              if d.module else "") + "</div>",
           f'<p class="message">{escape(d.message)}</p>']
    if d.fix is not None:
        out.append(f'<p class="help"><b>help:</b> {escape(d.fix.message)}</p>')
        extra = [s for s in d.fix.suggestions if s not in d.fix.message]
        if extra:
            out.append('<ul class="suggestions">'
                       + "".join(f"<li>{escape(s)}</li>" for s in extra) + "</ul>")
    out.append(_source(loc, sources))
    for r in d.related:
        out.append(f'<p class="note">note: defined at <span class="mono">'
                   f"{escape(r.file)}:{r.line}</span></p>")
        out.append(_source(r, sources))
    out.append("</article>")
    return "\n".join(out)
