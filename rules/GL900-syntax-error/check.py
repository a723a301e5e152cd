"""GL900 syntax-error: the static pre-filter could not parse the file (gradlint/run/pipeline.py).

A stage code: this folder is the one place its name, severity and summary are declared; the
pipeline makes the diagnostic with ``rule_catalogue.diagnostic("GL900", ...)``."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class SyntaxError(Rule):
    code = "GL900"
    name = "syntax-error"
    severity = "error"
    summary = "The file does not parse, so none of its models can be checked."
    stage = True
