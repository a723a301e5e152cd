"""GL903 trace-failed: emitted by a stage of the pipeline, not by checking an estimate."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class TraceFailed(Rule):
    code = "GL903"
    name = "trace-failed"
    severity = "error"
    summary = "The model could not be traced into a layer graph."
    stage = True
