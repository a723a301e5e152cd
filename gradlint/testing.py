"""For users' own test suites: fail a test when a model would not learn.

    from gradlint.testing import assert_no_vanishing_gradients

    def test_model_trains():
        assert_no_vanishing_gradients(MyModel(), torch.randn(8, 3, 32, 32))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradlint.core.options import DEFAULT_THRESHOLD
from gradlint.lint.registry import is_selected
from gradlint.report.text import format_diagnostic

FAILING = ("GL101", "GL102", "GL103", "GL104", "GL9")


def assert_no_vanishing_gradients(model: Any, inputs: Any = None,
                                  threshold: float = DEFAULT_THRESHOLD,
                                  codes: Sequence[str] = FAILING) -> None:
    """Raise AssertionError listing every finding of ``codes`` (prefixes) at warning or above,
    with gradlint's own lines and fixes, and the model's gradient-flow chart."""
    from gradlint import check
    from gradlint.report.text import chart

    report = check(model, inputs, threshold)
    found = [d for d in report.diagnostics
             if d.severity != "info" and is_selected(d.code, tuple(codes), ())]
    if not found and report.status == "ok":
        return
    lines = [f"gradlint found {len(found)} problem(s) in {type(model).__name__}:"]
    for d in found:
        lines.extend(format_diagnostic(d))
    if report.status == "ok":
        lines.append("")
        lines.extend(chart(report, {d.module for d in found if d.module}, threshold))
    raise AssertionError("\n".join(lines))
