"""The ``--format`` table: each output format's name, how to load its emitter, and what the
command line must know about it. The CLI's choices come from here, and the format modules are
imported only when used (the parent's ``--version`` stays light).

Adding a format: a module in ``gradlint/report/`` with an ``emit`` (``report.emitter.Emitter``)
and a row below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gradlint.core.surrogates import escape_surrogates
from gradlint.core.values import Diagnostic, Report
from gradlint.report.emitter import Emitter, Settings


def _text() -> Emitter:
    from gradlint.report.text import emit
    return emit


def _json() -> Emitter:
    from gradlint.report.json import emit
    return emit


def _sarif() -> Emitter:
    from gradlint.report.sarif import emit
    return emit


def _github() -> Emitter:
    from gradlint.report.github import emit
    return emit


def _html() -> Emitter:
    from gradlint.report.html import emit
    return emit


@dataclass(frozen=True)
class Format:
    load: Callable[[], Emitter]
    # JSON and SARIF escape lone surrogates inside their strings; the others are escaped
    # afterwards (a file name that is not UTF-8 shows as caf\xe9.py)
    escapes_itself: bool = False
    color: bool = False  # may colour its output on a terminal


FORMATS: dict[str, Format] = {
    "text": Format(_text, color=True),
    "json": Format(_json, escapes_itself=True),
    "sarif": Format(_sarif, escapes_itself=True),
    "github": Format(_github),
    "html": Format(_html),
}


def emit(name: str, report: Report, diagnostics: Sequence[Diagnostic],
         settings: Settings) -> str:
    """The report in format ``name``, ready to write as UTF-8."""
    fmt = FORMATS[name]
    text = fmt.load()(report, diagnostics, settings)
    return text if fmt.escapes_itself else escape_surrogates(text)
