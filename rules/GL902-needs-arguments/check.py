"""GL902 needs-arguments: emitted by a stage of the pipeline, not by checking an estimate."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class NeedsArguments(Rule):
    code = "GL902"
    name = "needs-arguments"
    severity = "info"
    summary = "A model class needs constructor arguments; it was skipped."
    stage = True
