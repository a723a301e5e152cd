"""``--format github``: GitHub Actions workflow commands (``::error file=…::message``).

GitHub shows at most 10 annotations of each level per step, so the most important come first
(errors, then warnings, then notices; file order within a level) and at most ``CAP`` per level
become annotations. Every diagnostic beyond the cap is still printed as a plain text line, and a
line says how many were not annotated, so nothing is lost from the job log. The last two lines
are the text format's summary: what the run examined, and the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

from gradlint.core.repo_paths import display_path
from gradlint.core.values import Diagnostic, Report
from gradlint.report.emitter import Settings
from gradlint.report.text import format_diagnostic, summary_lines

CAP = 10
COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}
ORDER = ("error", "warning", "info")
NOUNS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    """A workflow command's message, as the Actions toolkit escapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command property value: the message escapes plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(d: Diagnostic, root: str | None = None) -> str:
    loc = d.location
    line = max(1, loc.line or 1)
    end_line = max(line, loc.end_line or line)
    props = [("file", display_path(loc.file, root)), ("line", str(line)),
             ("endLine", str(end_line))]
    if end_line == line:  # GitHub takes columns only for a span on one line
        if loc.col and loc.col >= 1:
            props.append(("col", str(loc.col)))
        if loc.end_col is not None and loc.end_col >= 1:
            props.append(("endColumn", str(max(loc.end_col, (loc.col or 1) + 1))))
    props.append(("title", f"gradlint ({d.code})"))
    message = d.message if d.fix is None else f"{d.message}\nhelp: {d.fix.message}"
    head = ",".join(f"{k}={escape_property(v)}" for k, v in props)
    return f"::{COMMANDS.get(d.severity, 'warning')} {head}::{escape_data(message)}"


def _plural(n: int, noun: str) -> str:
    return f"{n} more {noun}{'s' if n != 1 else ''}"


def to_github(report: Report, diagnostics: Sequence[Diagnostic], cap: int = CAP) -> str:
    by_level: dict[str, list[Diagnostic]] = {s: [] for s in ORDER}
    for d in diagnostics:
        by_level.setdefault(d.severity if d.severity in by_level else "warning", []).append(d)
    out: list[str] = []
    overflow: list[Diagnostic] = []
    hidden: dict[str, int] = {}
    for level in ORDER:
        items = by_level[level]
        out.extend(annotation(d) for d in items[:cap])
        if len(items) > cap:
            overflow.extend(items[cap:])
            hidden[level] = len(items) - cap
    if overflow:
        for d in overflow:
            out.extend(format_diagnostic(d))
        counts = [_plural(n, NOUNS[level]) for level, n in hidden.items()]
        listed = counts[0] if len(counts) == 1 else (
            ", ".join(counts[:-1]) + " and " + counts[-1])
        out.append(f"gradlint: {listed} not shown as annotations; see the job log")
    if report.counts is not None:  # a run over files: what it examined, and the verdict
        out.extend(summary_lines(report, diagnostics))
    return "\n".join(out) + "\n" if out else ""


def emit(report: Report, diagnostics: Sequence[Diagnostic], settings: Settings) -> str:
    return to_github(report, diagnostics)
