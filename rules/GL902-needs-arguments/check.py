"""GL902 needs-arguments: a model class needs constructor arguments (gradlint/load/targets.py).

A stage code: this folder is the one place its name, severity and summary are declared; the
load stage makes the diagnostic with ``rule_catalogue.diagnostic("GL902", ...)``."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class NeedsArguments(Rule):
    code = "GL902"
    name = "needs-arguments"
    severity = "info"
    summary = "A model class needs constructor arguments; it was skipped."
    stage = True
