"""GL905 worker-failed: the file's process crashed or timed out, or gradlint itself failed
(gradlint/run/pool.py, gradlint/run/check_file.py).

A stage code: this folder is the one place its name, severity and summary are declared; the
runner makes the diagnostic with ``rule_catalogue.diagnostic("GL905", ...)``."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class WorkerFailed(Rule):
    code = "GL905"
    name = "worker-failed"
    severity = "error"
    summary = "The file's worker crashed, timed out, ran out of memory or was ended by user code."
    stage = True
