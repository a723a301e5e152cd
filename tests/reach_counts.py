"""The run's summary counts agree with the models and files a JSON report lists: the end-to-end
reach tests check them on every run they make (issue 17: never silently check nothing)."""

from __future__ import annotations

from typing import Any


def assert_counts(doc: dict[str, Any], examined: int | None = None) -> None:
    """``summary.models`` counts each listed model once, by status; ``summary.files`` adds up;
    ``examined``: the files the run was given, when the caller knows."""
    summary = doc["summary"]
    statuses = [m["status"] for m in doc["models"]]
    models = summary["models"]
    assert models["checked"] == statuses.count("ok"), (models, statuses)
    assert sum(models["skipped"].values()) == statuses.count("skipped"), (models, statuses)
    assert sum(models["failed"].values()) == statuses.count("failed"), (models, statuses)
    files = summary["files"]
    assert files["examined"] == (files["imported"] + sum(files["skipped"].values())
                                 + sum(files["failed"].values())), files
    if doc["models"]:
        assert files["imported"] >= 1, files
    if examined is not None:
        assert files["examined"] == examined, files
