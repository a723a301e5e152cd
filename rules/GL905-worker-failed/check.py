"""GL905 worker-failed: emitted by the worker pool (gradlint/run/pool.py), not by an estimate."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class WorkerFailed(Rule):
    code = "GL905"
    name = "worker-failed"
    severity = "error"
    summary = "The file's worker crashed, timed out, ran out of memory or was ended by user code."
    stage = True
