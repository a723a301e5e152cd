"""GL906 construction-failed: emitted by a stage of the pipeline, not by checking an estimate."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class ConstructionFailed(Rule):
    code = "GL906"
    name = "construction-failed"
    severity = "error"
    summary = "A model's constructor raised an exception."
    stage = True
