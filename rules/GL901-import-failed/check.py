"""GL901 import-failed: importing the file raised (the load stage, gradlint/load/targets.py).

A stage code: this folder is the one place its name, severity and summary are declared; the
load stage makes the diagnostic with ``rule_catalogue.diagnostic("GL901", ...)``."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class ImportFailed(Rule):
    code = "GL901"
    name = "import-failed"
    severity = "error"
    summary = "Importing the file raised an exception."
    stage = True
