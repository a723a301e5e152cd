"""GL904 unknown-op: an op the catalogue does not know was treated as gain 1."""

from __future__ import annotations

from collections.abc import Iterator

from gradlint.core.values import Diagnostic
from gradlint.lint.rule_api import ModelAnalysis, Rule, anchor_of


class UnknownOp(Rule):
    code = "GL904"
    name = "unknown-op"
    severity = "info"
    summary = ("An op the catalogue does not know was treated as gain 1; the layers behind it "
               "are marked confidence: low.")

    def check(self, analysis: ModelAnalysis) -> Iterator[Diagnostic]:
        fallback = analysis.fallback
        seen: set[tuple[str, str, int]] = set()
        for node in analysis.estimate.unknown_ops:
            anchor, related = anchor_of(node, fallback)
            key = (node.label, anchor.file, anchor.line)
            if key in seen:
                continue
            seen.add(key)
            why = node.attrs.get("untraceable")
            message = (
                f"block {node.module} ({node.label}) could be traced neither by torch.fx nor "
                f"by torch.export ({why}); it was treated as gain 1 and its own layers have "
                "no estimate, the layers before it are less certain (confidence: low)"
                if why else f"unknown op {node.label} was treated as gain 1; the estimate for "
                "the layers before it is less certain (confidence: low)")
            yield self.diagnostic(message, anchor, analysis.target, node.module, related)
