"""GL903 trace-failed: the trace stage raised ``StageError("GL903", ...)`` (gradlint/trace/).

A stage code: this folder is the one place its name, severity and summary are declared; the
per-file runner (gradlint/run/check_file.py) makes the diagnostic through
``rule_catalogue.diagnostic``."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class TraceFailed(Rule):
    code = "GL903"
    name = "trace-failed"
    severity = "error"
    summary = "The model could not be traced into a layer graph."
    stage = True
