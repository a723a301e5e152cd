"""GL900 syntax-error: emitted by a stage of the pipeline, not by checking an estimate."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class SyntaxError(Rule):
    code = "GL900"
    name = "syntax-error"
    severity = "error"
    summary = "The file does not parse, so none of its models can be checked."
    stage = True
