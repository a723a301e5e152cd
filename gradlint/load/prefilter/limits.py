"""How far the pre-filter follows code before it stops assuming the code harmless."""

from __future__ import annotations

MAX_DEPTH = 40  # nested calls followed; deeper chains are not assumed harmless
MAX_BODIES = 5000  # function bodies judged for one file; beyond that it is not assumed harmless
MAX_MODULES = 400  # local modules judged for one file; beyond that it is not assumed harmless


class TooDeep(Exception):
    """Calls nested deeper than MAX_DEPTH."""


class TooMuch(Exception):
    """More than MAX_BODIES function bodies for one file."""
