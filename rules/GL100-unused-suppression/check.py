"""GL100 unused-suppression: emitted after the rules ran, by comparing the suppression comments
of each checked file with what they suppressed (``gradlint/suppressions.py``)."""

from __future__ import annotations

from gradlint.rule import Rule


class UnusedSuppression(Rule):
    code = "GL100"
    name = "unused-suppression"
    severity = "warning"
    summary = "A `# gradlint: ignore` comment that suppresses nothing."
    enabled_by_default = False
    stage = True
