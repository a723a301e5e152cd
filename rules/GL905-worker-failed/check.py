"""GL905 worker-failed: emitted by a stage of the pipeline, not by checking an estimate."""

from __future__ import annotations

from gradlint.rule import Rule


class WorkerFailed(Rule):
    code = "GL905"
    name = "worker-failed"
    severity = "error"
    summary = "gradlint itself failed while analysing the model (a bug, a crash or a timeout)."
    stage = True
