"""GL901 import-failed: emitted by a stage of the pipeline, not by checking an estimate."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class ImportFailed(Rule):
    code = "GL901"
    name = "import-failed"
    severity = "error"
    summary = "Importing the file raised an exception."
    stage = True
