"""GL906 construction-failed: building a model raised (the load stage, gradlint/load/targets.py).

A stage code: this folder is the one place its name, severity and summary are declared; the
load stage makes the diagnostic with ``rule_catalogue.diagnostic("GL906", ...)``."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class ConstructionFailed(Rule):
    code = "GL906"
    name = "construction-failed"
    severity = "error"
    summary = "A model's constructor raised an exception."
    stage = True
