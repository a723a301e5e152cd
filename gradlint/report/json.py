"""``--format json``: the machine-readable report (docs/output.md), one flat row per layer."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from gradlint.core.surrogates import escape_json_surrogates
from gradlint.core.values import (
    Diagnostic,
    Edit,
    LayerEstimate,
    Location,
    ModelReport,
    Report,
    Verification,
)
from gradlint.core.version import __version__
from gradlint.report.counts import model_counts, unestimated
from gradlint.report.emitter import Settings
from gradlint.report.text import failed_files

SCHEMA_VERSION = 1


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
        "low_reason": le.low_reason,
        "side_branch": le.side_branch, "log10_update": _r(le.log10_update),
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
            "batch": v.batch, "gradients": "per-example" if v.per_example else "batch",
            "loss": VERIFY_LOSS}


# the loss --verify measures under, and the estimate models (docs/design.md, "Ground truth")
VERIFY_LOSS = "random-projection: sum of <g, y>, g ~ N(0, I), on the primary output"


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
                           "seconds": round(m.seconds, 3), "built_as": m.built_as,
                           "inputs": list(m.inputs)}
    if m.status == "ok":
        out["unestimated"] = m.unestimated
        out["opaque"] = [{"module": b.module, "type": b.type, "layers": b.layers,
                          "reason": b.reason} for b in m.opaque]
        out["layers"] = [layer_json(le, m.verify) for le in m.layers]
    if m.verify is not None:
        out["verify"] = verify_json(m.verify)
    return out


def summary_json(report: Report, diagnostics: Sequence[Diagnostic]) -> dict[str, Any]:
    """The run's counts (docs/output.md): models, files by outcome and reason, and the weight
    layers that have no estimate."""
    models = model_counts(report.models)
    counts = report.counts
    missing, total, blocks = unestimated(report.models)
    return {
        "targets": len(report.models), "checked": models.checked,
        "failed": sum(models.failed.values()), "files_failed": failed_files(report),
        "diagnostics": len(diagnostics),
        "files": None if counts is None else {
            "examined": counts.examined, "imported": counts.imported,
            "skipped": counts.skipped, "failed": counts.failed},
        "models": {"checked": models.checked, "skipped": models.skipped,
                   "failed": models.failed},
        "unestimated": {"layers": missing, "weight_layers": total, "blocks": blocks},
    }


def to_json(report: Report, diagnostics: Sequence[Diagnostic]) -> str:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "gradlint": __version__,
        "summary": summary_json(report, diagnostics),
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


def emit(report: Report, diagnostics: Sequence[Diagnostic], settings: Settings) -> str:
    """The JSON document and a final newline."""
    return to_json(report, diagnostics) + "\n"
