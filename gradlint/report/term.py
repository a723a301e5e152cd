"""Terminal color for the text format: https://no-color.org and the FORCE_COLOR convention.

Color only when the output is a terminal; never when ``NO_COLOR`` is set (to any value); always
when ``FORCE_COLOR`` is set to a non-empty value, unless ``NO_COLOR`` is also set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any

import click

SEVERITY_STYLE: dict[str, dict[str, Any]] = {
    "error": {"fg": "red", "bold": True},
    "warning": {"fg": "yellow", "bold": True},
    "info": {"fg": "cyan"},
}


def use_color(stream: IO[str] | None, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if "NO_COLOR" in env:
        return False
    if env.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def severity_tag(severity: str, color: bool) -> str:
    tag = f"[{severity}]"
    return click.style(tag, **SEVERITY_STYLE.get(severity, {})) if color else tag


def code_text(code: str, color: bool) -> str:
    return click.style(code, bold=True) if color else code
