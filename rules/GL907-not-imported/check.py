"""GL907 not-imported: the pre-filter found work at import (gradlint/run/pipeline.py).

A stage code: this folder is the one place its name, severity and summary are declared; the
pipeline makes the diagnostic with ``rule_catalogue.diagnostic("GL907", ...)``."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class NotImported(Rule):
    code = "GL907"
    name = "not-imported"
    severity = "info"
    summary = "The file would do work at import (a training script), so it was not imported."
    stage = True
