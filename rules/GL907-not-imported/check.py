"""GL907 not-imported: emitted by a stage of the pipeline, not by checking an estimate."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class NotImported(Rule):
    code = "GL907"
    name = "not-imported"
    severity = "info"
    summary = "The file would do work at import (a training script), so it was not imported."
    stage = True
