"""The report stage: text (ruff-like lines, help, a gradient-flow chart) and JSON (DESIGN §3)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from gradlint import __version__
from gradlint.core.values import (
    Diagnostic,
    Edit,
    LayerEstimate,
    Location,
    ModelReport,
    Report,
    Verification,
)

SCHEMA_VERSION = 1
BAR = 28
MAX_ROWS = 40


# A file name that is not valid UTF-8 reaches Python with each undecodable byte as a lone
# surrogate (U+DCE9 for 0xE9, PEP 383), which no UTF-8 output can hold: every format shows such a
# byte as the four characters \xe9 (caf\xe9.py), SARIF's URIs percent-encode the raw bytes.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# in a JSON document: a surrogate pair escape (one astral character) is kept, a lone surrogate
# (escaped by ensure_ascii, or raw without it) is rewritten, and any other escape is stepped over
# whole, so the text \\udce9 (an escaped backslash, then udce9) is not mistaken for one
_JSON_LONE = re.compile(r"\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|\\u(d[89a-f][0-9a-f]{2})|\\."
                        "|([\ud800-\udfff])")


def _escape(code: int) -> str:
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def escape_surrogates(text: str) -> str:
    """``text`` with every lone surrogate as a backslash escape, so that it encodes as UTF-8."""
    return LONE_SURROGATE.sub(lambda m: _escape(ord(m.group())), text)


def _json_escape(m: re.Match[str]) -> str:
    escaped, raw = m.groups()
    if escaped is None and raw is None:
        return m.group()
    return "\\" + _escape(int(escaped, 16) if escaped else ord(raw))  # JSON's \\ for \


def escape_json_surrogates(text: str, ensure_ascii: bool = True) -> str:
    """``escape_surrogates`` on the strings of a JSON document written by json.dumps with
    ``ensure_ascii`` or without it; the text left as it is when it has none."""
    if "\\ud" not in text if ensure_ascii else LONE_SURROGATE.search(text) is None:
        return text
    return _JSON_LONE.sub(_json_escape, text)


def _r(x: float | None) -> float | None:
    return None if x is None or math.isinf(x) or math.isnan(x) else round(x, 3)


def _loc(loc: Location | None) -> dict[str, Any]:
    if loc is None:
        return {"file": None, "line": None, "col": None}
    return {"file": loc.file, "line": loc.line, "col": loc.col}


def layer_json(le: LayerEstimate, verification: Verification | None = None) -> dict[str, Any]:
    loc = le.location  # _loc's fields, inline: one row per layer
    out = {
        "module": le.module, "type": le.type, "numel": le.numel,
        "file": loc.file if loc else None, "line": loc.line if loc else None,
        "col": loc.col if loc else None, "log10_grad": _r(le.log10_grad),
        "log10_relative": _r(le.log10_relative),
        "log10_signal": _r(le.log10_signal), "log10_attenuation": _r(le.log10_attenuation),
        "log10_bound": _r(le.log10_bound), "saturating": le.saturating, "depth": le.depth,
        "factors": le.factors, "gate": le.gate, "frozen": le.frozen,
        "aliases": list(le.aliases), "zero": le.zero, "confidence": le.confidence,
    }
    if le.range is not None:  # the estimate depends on attention's token coherence
        out["range"] = list(le.range)
    if verification is not None and verification.error is None:
        out["measured_log10_grad"] = _r(verification.measured.get(le.module))
        out["measured_log10_relative"] = _r(verification.measured_relative(le.module))
    return out


def verify_json(v: Verification) -> dict[str, Any]:
    if v.error is not None:
        return {"error": v.error, "seeds": list(v.seeds), "batch": v.batch}
    return {"spearman": _r(v.spearman), "mean_error": _r(v.mean_error),
            "max_error": _r(v.max_error), "layers": v.layers, "seeds": list(v.seeds),
            "batch": v.batch, "gradients": "per-example" if v.per_example else "batch"}


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    loc = d.location
    return {
        "code": d.code, "name": d.name, "severity": d.severity, "message": d.message,
        "target": d.target, "module": d.module, "file": loc.file, "line": loc.line,
        "col": loc.col, "end_line": loc.end_line or loc.line, "end_col": loc.end_col,
        "related": [_loc(r) for r in d.related],
        "fix": None if d.fix is None else {"message": d.fix.message,
                                           "suggestions": list(d.fix.suggestions),
                                           "applicability": d.fix.applicability,
                                           "edits": [edit_json(e) for e in d.fix.edits]},
    }


def edit_json(e: Edit) -> dict[str, Any]:
    """A machine-applicable edit (``--fix --unsafe-fixes``): the call at this span becomes
    the ``new`` activation."""
    loc = e.location
    return {"action": e.action, "old": e.old, "new": e.new, "file": loc.file, "line": loc.line,
            "col": loc.col, "end_line": loc.end_line or loc.line, "end_col": loc.end_col}


def model_json(m: ModelReport) -> dict[str, Any]:
    out: dict[str, Any] = {"target": m.target, "name": m.name, "file": m.file, "line": m.line,
                           "status": m.status, "tracer": m.tracer, "init": m.init,
                           "seconds": round(m.seconds, 3)}
    if m.status == "ok":
        out["layers"] = [layer_json(le, m.verify) for le in m.layers]
    if m.verify is not None:
        out["verify"] = verify_json(m.verify)
    return out


def failed_files(report: Report) -> int:
    """Files that could not be checked at all (syntax, import, worker crash or timeout)."""
    return len({d.location.file for d in report.diagnostics
                if d.code.startswith("GL9") and d.severity == "error"})


def to_json(report: Report, diagnostics: Sequence[Diagnostic]) -> str:
    failed = sum(1 for m in report.models if m.status == "failed")
    doc = {
        "schema_version": SCHEMA_VERSION,
        "gradlint": __version__,
        "summary": {"targets": len(report.models),
                    "checked": sum(1 for m in report.models if m.status == "ok"),
                    "failed": failed, "files_failed": failed_files(report),
                    "diagnostics": len(diagnostics)},
        "models": [model_json(m) for m in report.models],
        "diagnostics": [diagnostic_json(d) for d in diagnostics],
    }
    return escape_json_surrogates(json_text(doc))


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flat(value: Any) -> bool:
    """A scalar, or a dict or list of scalars and lists of scalars (a layer row, a location)."""
    scalars = _SCALARS
    if type(value) in scalars:
        return True
    for v in value.values() if type(value) is dict else value:
        if type(v) not in scalars and (type(v) is dict or any(
                type(x) not in scalars for x in v)):
            return False
    return True


def json_text(doc: Any, indent: int = 2) -> str:
    """``json.dumps(doc, indent=2)``, except that flat dicts and lists (``_flat``: a layer row,
    a location, the summary) take one line each. Easier to read and to diff for a model of a
    thousand layers, and ~10x faster: json's ``indent=`` writer is pure Python (17 ms for
    1,000 layer rows), a flat value goes through its C encoder in one call."""
    parts: list[str] = []
    _write(doc, 0, indent, parts)
    return "".join(parts)


def _write(value: Any, level: int, indent: int, parts: list[str]) -> None:
    if not value or _flat(value):
        parts.append(json.dumps(value))
        return
    inner = "\n" + " " * (indent * (level + 1))
    if isinstance(value, dict):
        parts.append("{")
        for i, (key, v) in enumerate(value.items()):
            parts.append(("," if i else "") + inner + json.dumps(key) + ": ")
            _write(v, level + 1, indent, parts)
        parts.append("\n" + " " * (indent * level) + "}")
    else:
        parts.append("[")
        for i, v in enumerate(value):
            parts.append(("," if i else "") + inner)
            _write(v, level + 1, indent, parts)
        parts.append("\n" + " " * (indent * level) + "]")


def format_diagnostic(d: Diagnostic, color: bool = False) -> list[str]:
    from gradlint.report.term import code_text, severity_tag

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
    floor = min(min(lows, default=0.0), -1.0)
    head = (f"{m.target}  ({m.tracer}, {m.init} init, {len(m.layers)} layers, "
            f"{m.seconds:.2f} s)")
    name_w = min(max(5, *(len(le.module or "<root>") for le in rows)), 28)
    measured = m.verify is not None and m.verify.error is None
    extra = f" {'measured':>8}" if measured else ""
    lines = [head, f"  {'layer':<{name_w}}  {'type':<10} {'gradient (log10, relative)':<{BAR + 8}}"
             f"{extra} {'atten':>6} {'sat':>4}"]
    shown: list[LayerEstimate | None] = list(rows)
    if len(rows) > MAX_ROWS + 10:
        shown = [*rows[: MAX_ROWS // 2], None, *rows[-MAX_ROWS // 2:]]
    for le in shown:
        if le is None:
            lines.append(f"  … {len(rows) - MAX_ROWS} more layers")
            continue
        rel = le.log10_relative
        if rel is None:
            bar, val = "".ljust(BAR), "  zero"
        else:
            n = max(1, round(BAR * (1 - rel / floor))) if floor < 0 else BAR
            bar, val = ("█" * n).ljust(BAR), f"{round(rel, 1) + 0.0:6.1f}"
        sick = le.log10_attenuation is not None and le.log10_attenuation < math.log10(
            threshold) and le.largest_factor >= 0.5 * le.log10_attenuation  # as GL101
        mark = "!" if le.module in flagged or (sick and le.factors >= 3) else " "
        att = "" if le.log10_attenuation is None else f"{round(le.log10_attenuation, 1) + 0.0:6.1f}"
        name = (le.module or "<root>")[-name_w:]
        low = "?" if le.confidence == "low" else " "
        meas = ""
        if measured and m.verify is not None:
            mr = m.verify.measured_relative(le.module)
            meas = f" {'zero' if mr is None else f'{round(mr, 1) + 0.0:.1f}':>8}"
        lines.append(f"{mark} {name:<{name_w}}  {le.type[:10]:<10} |{bar}|{val}{low}{meas} "
                     f"{att:>6} {le.saturating:>4}")
    lines.append(f"  threshold for GL101: attenuation below {math.log10(threshold):.1f}; "
                 "! = vanishing, ? = low confidence")
    if m.verify is not None:
        lines.append("  " + verify_line(m.verify))
    return lines


def verify_line(v: Verification) -> str:
    if v.error is not None:
        return f"verify: not measured: {v.error}"
    if not v.layers:
        return "verify: no layer with both an estimate and a measured gradient"
    rho = "n/a" if v.spearman is None else f"{v.spearman:.2f}"
    grads = "per-example" if v.per_example else "batch"
    return (f"verify: estimate vs autograd over {v.layers} layers: Spearman {rho}, mean error "
            f"{v.mean_error:.2f}, max {v.max_error:.2f} decades ({len(v.seeds)} seeds, batch "
            f"{v.batch}, {grads} gradients)")


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
        out.append(summary_line(report, diagnostics))
    return "\n".join(out).strip("\n") + "\n" if out else ""


def summary_line(report: Report, diagnostics: Sequence[Diagnostic]) -> str:
    counts = {s: sum(1 for d in diagnostics if d.severity == s)
              for s in ("error", "warning", "info")}
    failed = sum(1 for m in report.models if m.status == "failed")
    checked = sum(1 for m in report.models if m.status == "ok")
    parts = [f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
    found = ", ".join(parts) if parts else "no problems"
    lost = [f"{n} {what}{'s' if n != 1 else ''}" for n, what in
            ((failed, "model"), (failed_files(report), "file")) if n]
    tail = f"; {' and '.join(lost)} could not be checked" if lost else ""
    return f"gradlint: {found} in {checked} checked model{'s' if checked != 1 else ''}{tail}."
