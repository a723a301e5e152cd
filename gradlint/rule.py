"""What a custom rule subclasses and reads: the public path of gradlint.lint.rule_api, kept for
``extend-rules`` folders written against it (README)."""

from gradlint.lint.rule_api import ModelAnalysis, Rule, anchor, anchor_of, power10

__all__ = ["ModelAnalysis", "Rule", "anchor", "anchor_of", "power10"]
