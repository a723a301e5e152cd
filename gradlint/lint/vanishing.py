"""When GL101 calls a layer's gradient vanishing: the one copy of its firing condition.

The rule (rules/GL101-vanishing-gradient/check.py) fires on it, and the reports that mark
vanishing layers (the text chart's ``!``, the HTML report's layer states) ask it, so a report
never disagrees with the rule about which layers count.
"""

from __future__ import annotations

from gradlint.core.values import LayerEstimate

MIN_FACTORS = 3  # one small factor (a softmax, one small projection) never fires alone
# nor one that carries more than this share of the attenuation (a squeeze-excitation gate behind
# its global pool, amid a few mild factors): that is one structural drop, not compounding
DOMINANT = 0.5
# where the estimate is known to be weak (confidence: low, errors up to ~0.8 decades), GL101
# asks for this much more attenuation before it calls a layer vanishing
LOW_CONFIDENCE_MARGIN = 3.0


def vanishes(le: LayerEstimate, limit: float) -> bool:
    """Whether GL101 fires on ``le``; ``limit`` is log10 of the attenuation threshold."""
    att = le.log10_attenuation
    if le.frozen or le.zero or att is None or le.factors < MIN_FACTORS:
        return False
    margin = LOW_CONFIDENCE_MARGIN if le.confidence == "low" else 0.0
    return le.largest_factor >= DOMINANT * att and att < limit - margin
