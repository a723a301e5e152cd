"""The HTML page's stylesheet and the colour of each layer state (bars, hatching, legend)."""

COLORS = {"healthy": "#3b6fb6", "below": "#e8a33d", "vanishing": "#c92a2a",
          "frozen": "#adb5bd", "zero": "#adb5bd"}
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
