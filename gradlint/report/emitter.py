"""The one signature every output format implements, so that adding a format is one module and
one row in ``gradlint.report.formats.FORMATS``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gradlint.core.values import Diagnostic, Report


@dataclass(frozen=True)
class Settings:
    """What the command line tells a format beyond the findings."""

    threshold: float  # GL101's, for the charts' marks and threshold line
    quiet: bool = False  # the diagnostics only, no charts (text)
    color: bool = False  # ANSI colour (text on a terminal)


class Emitter(Protocol):
    """``emit(report, diagnostics, settings)``: the whole output as it is written, final newline
    included; ``diagnostics`` are the selected, unsuppressed ones, in output order."""

    def __call__(self, report: Report, diagnostics: Sequence[Diagnostic],
                 settings: Settings) -> str: ...
