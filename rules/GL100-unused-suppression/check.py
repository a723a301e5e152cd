"""GL100 unused-suppression: emitted after the rules ran, by comparing the suppression comments
of each checked file with what they suppressed (``gradlint/lint/suppressions.py``).

This folder is the one place its name, severity and summary are declared; suppressions.py makes
the diagnostic with ``rule_catalogue.diagnostic("GL100", ...)``."""

from __future__ import annotations

from gradlint.lint.rule_api import Rule


class UnusedSuppression(Rule):
    code = "GL100"
    name = "unused-suppression"
    severity = "warning"
    summary = "A `# gradlint: ignore` comment that suppresses nothing."
    enabled_by_default = False
    stage = True
