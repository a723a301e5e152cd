"""The values a custom rule uses (``Location``, ``Diagnostic``, ``Fix``…): the public path of
gradlint.core.values, kept for ``extend-rules`` folders written against it (README)."""

from gradlint.core.values import (
    Diagnostic,
    Edit,
    Fix,
    LayerEstimate,
    Location,
    ModelReport,
    Report,
    StageError,
    Target,
    Verification,
)

__all__ = ["Diagnostic", "Edit", "Fix", "LayerEstimate", "Location", "ModelReport", "Report",
           "StageError", "Target", "Verification"]
