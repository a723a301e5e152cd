"""The HTML report's gradient-flow chart: one SVG per model, a bar per parameterized layer on a
log10 axis, with the attenuation GL101 judges, the measured gradient (``--verify``) and a
tooltip per row."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from gradlint.core.values import LayerEstimate, ModelReport
from gradlint.report.html_style import COLORS

# chart geometry (SVG user units = CSS px)
ROW, BAR_H, TOP = 18, 12, 58
NAME_X, NAME_CH = 8, 30
TYPE_X, TYPE_CH = 236, 13
PLOT_X0, PLOT_X1 = 340, 800
VALUE_X = 850  # right edge of the value column
SAT_X = 900  # right edge of the saturating column
STATUS_X = 912
WIDTH = 1030
STATUS_TEXT = {"vanishing": "GL101", "below": "below", "frozen": "frozen", "zero": "zero",
               "healthy": ""}


def pow10(x: float) -> str:
    """``10^-3.2``, ``10^-2`` for a whole decade."""
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
        lines.append(f"estimated weight gradient: {pow10(le.log10_relative)} of the largest")
    if le.log10_attenuation is not None:
        lines.append(f"attenuation (GL101 judges): {pow10(le.log10_attenuation)} over "
                     f"{le.factors} factor{'s' if le.factors != 1 else ''} below 1")
    if le.log10_bound is not None:
        lines.append(f"worst-case activation bound: {pow10(le.log10_bound)}")
    lines.append(f"saturating activations on the path to the loss: {le.saturating}; "
                 f"weight layers on it: {le.depth}")
    if has_measure:
        lines.append("measured (autograd): " + ("zero / not measured" if measured is None
                                                 else pow10(measured)))
    if le.gate:
        lines.append(f"gated by: {le.gate}")
    if le.aliases:
        lines.append("shares its parameters with: " + ", ".join(le.aliases))
    lines.append(f"confidence: {le.confidence}")
    lines.append(f"status: {STATUS_TEXT[state] or 'ok'}")
    if where is not None:
        lines.append(f"defined at {where.file}:{where.line}")
    return "\n".join(lines)


class _Axis:
    """The log10 axis, from ``floor`` (left) to 0, the largest layer (right)."""

    def __init__(self, floor: float) -> None:
        self.floor, self.span = floor, -floor

    def x(self, v: float) -> float:
        v = min(0.0, max(self.floor, v))
        return PLOT_X0 + (v - self.floor) / self.span * (PLOT_X1 - PLOT_X0)


def chart(index: int, m: ModelReport, states: dict[str, str], limit: float) -> str:
    """Horizontal bars: length = estimated relative weight gradient on a log10 axis that runs
    from a whole decade below the smallest value (left) to 1, the largest (right)."""
    layers = list(m.layers)
    verify = m.verify if m.verify is not None and m.verify.error is None else None
    measured = {le.module: verify.measured_relative(le.module) for le in layers} if verify else {}
    values = [limit, -1.0]
    for le in layers:
        values += [v for v in (le.log10_relative, le.log10_attenuation, measured.get(le.module))
                   if v is not None and math.isfinite(v)]
    axis = _Axis(float(math.floor(min(values) - 0.3)))
    bottom = TOP + ROW * len(layers)
    out = _frame(index, m.target, bottom + 26)
    out += _grid(axis, bottom)
    steps = _saturating_steps(layers)
    for i, le in enumerate(layers):
        out += _row(i, le, states.get(le.module, "healthy"), axis, measured.get(le.module),
                    verify is not None, steps[i])
    out += _threshold(axis, limit, bottom)
    out.append("</svg>")
    return "".join(out)


def _frame(index: int, target: str, height: int) -> list[str]:
    """The SVG's opening, its accessible title, background and column heads."""
    title_id = f"chart-{index}-title"
    head_y = 14
    return [f'<svg class="chart" role="img" '
            f'aria-labelledby="{title_id}" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}">',
            f'<title id="{title_id}">Gradient-flow chart for {escape(target)}: estimated '
            "weight gradient per layer, relative to the largest, log10</title>",
            f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>',
            f'<text class="head" x="{NAME_X}" y="{head_y}">layer</text>',
            f'<text class="head" x="{TYPE_X}" y="{head_y}">type</text>',
            f'<text class="head" x="{PLOT_X0}" y="{head_y}">estimated weight gradient, '
            "relative to the largest (log scale)</text>",
            f'<text class="head" x="{VALUE_X}" y="{head_y}" text-anchor="end">log10</text>',
            f'<text class="head" x="{SAT_X}" y="{head_y}" text-anchor="end">sat</text>',
            f'<text class="head" x="{STATUS_X}" y="{head_y}">status</text>']


def _grid(axis: _Axis, bottom: int) -> list[str]:
    """A vertical line and a label per decade (every 2nd, 5th or 10th on a long axis)."""
    floor, span = axis.floor, axis.span
    step = 1 if span <= 12 else 2 if span <= 24 else 5 if span <= 60 else 10
    out = ['<g class="axis">']
    for k in range(0, int(floor) - 1, -step):
        if k < floor:
            break
        xk = axis.x(k)
        out.append(f'<line x1="{xk:.1f}" y1="{TOP - 6}" x2="{xk:.1f}" y2="{bottom}" '
                   'stroke="#e6e8eb" stroke-width="1"/>')
        label = "1" if k == 0 else f'10<tspan dy="-4" font-size="8">{k}</tspan>'
        out.append(f'<text class="tick" x="{xk:.1f}" y="{TOP - 9}" '
                   f'text-anchor="middle">{label}</text>')
    out.append("</g>")
    return out


def _row(i: int, le: LayerEstimate, state: str, axis: _Axis, mr: float | None,
         has_measure: bool, sat_step: int) -> list[str]:
    """One layer: name, type, bar, attenuation mark, measured mark, value, sat, status."""
    y = TOP + ROW * i
    cy = y + ROW / 2
    low = le.confidence == "low"
    classes = f"row {state}" + (" low" if low else "")
    out = [f'<g class="{classes}" data-module="{escape(le.module)}">',
           f"<title>{escape(_tooltip(le, state, mr, has_measure))}</title>",
           f'<rect class="rowbg" x="0" y="{y}" width="{WIDTH}" height="{ROW}" '
           f'fill="{"#f6f8fa" if i % 2 else "#ffffff"}"/>']
    mark = "! " if state == "vanishing" else "  "
    out.append(f'<text class="name" x="{NAME_X}" y="{cy + 4:.1f}" xml:space="preserve">'
               f"{escape(mark + _clip(le.module or '<root>', NAME_CH))}</text>")
    out.append(f'<text class="type" x="{TYPE_X}" y="{cy + 4:.1f}">'
               f"{escape(_clip(le.type, TYPE_CH))}</text>")
    rel = le.log10_relative
    width = 0.0 if rel is None else max(1.5, axis.x(rel) - PLOT_X0)
    fill = f"url(#gl-hatch-{state})" if low else COLORS[state]
    stroke = f' stroke="{COLORS[state]}" stroke-width="1" stroke-dasharray="3 2"' if low \
        else ""
    bar_cls = f"bar {state}" + (" low" if low else "")
    out.append(f'<rect class="{bar_cls}" x="{PLOT_X0}" y="{cy - BAR_H / 2:.1f}" '
               f'width="{width:.1f}" height="{BAR_H}" fill="{fill}"{stroke}/>')
    att = le.log10_attenuation
    if att is not None and not le.frozen:
        xa = axis.x(att)
        out.append(f'<path class="atten" d="M{xa:.1f} {cy - 4:.1f} l4 4 l-4 4 l-4 -4 z" '
                   'fill="#1f2328" stroke="#fff" stroke-width="0.8"/>')
    if has_measure and mr is not None:
        out.append(f'<circle class="measured" cx="{axis.x(mr):.1f}" cy="{cy:.1f}" r="3.6" '
                   'fill="#fff" stroke="#1f2328" stroke-width="1.6"/>')
    value = _num(rel) + ("?" if low else " ")
    out.append(f'<text class="value" x="{VALUE_X}" y="{cy + 4:.1f}" text-anchor="end" '
               f'xml:space="preserve">{escape(value)}</text>')
    if sat_step:
        out.append(f'<text class="sat-step" x="{SAT_X - 24}" y="{cy + 4:.1f}" '
                   f'text-anchor="end" fill="#9a6200">▲+{sat_step}</text>')
    out.append(f'<text class="sat" x="{SAT_X}" y="{cy + 4:.1f}" text-anchor="end">'
               f"{le.saturating}</text>")
    status = STATUS_TEXT[state] + (" low conf." if low else "")
    out.append(f'<text class="state" x="{STATUS_X}" y="{cy + 4:.1f}">'
               f"{escape(status.strip())}</text>")
    out.append("</g>")
    return out


def _threshold(axis: _Axis, limit: float, bottom: int) -> list[str]:
    """GL101's threshold as a dashed line, and which way is less gradient."""
    xt = axis.x(limit)
    return [f'<line class="threshold" x1="{xt:.1f}" y1="{TOP - 4}" x2="{xt:.1f}" '
            f'y2="{bottom + 4}" stroke="#7d2e00" stroke-width="1.6" '
            'stroke-dasharray="6 3"/>',
            f'<text class="thr-label" x="{xt:.1f}" y="{TOP - 25}" text-anchor="middle">'
            f"GL101 threshold {escape(pow10(limit))}</text>",
            f'<text class="tick" x="{PLOT_X0}" y="{bottom + 18}">← less gradient'
            f'</text><text class="tick" x="{PLOT_X1}" y="{bottom + 18}" '
            'text-anchor="end">more gradient →</text>']
