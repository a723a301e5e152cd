"""GL902 needs-configuration: a model needs constructor arguments or example inputs that nothing
supplies (gradlint/load/targets.py, gradlint/trace/input_search.py).

A stage code: this folder is the one place its name, severity and summary are declared; the
load stage makes the diagnostic with ``rule_catalogue.diagnostic("GL902", ...)``."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class NeedsConfiguration(Rule):
    code = "GL902"
    name = "needs-configuration"
    severity = "info"
    summary = ("A model needs constructor arguments or example inputs that nothing supplies; it "
               "was skipped.")
    stage = True
