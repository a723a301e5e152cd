"""Rule selection and running: which rules a run's --select/--ignore and configuration turn
on, and running them on a model analysis.

The rules themselves, their metadata and the diagnostics stages emit under their codes are the
catalogue's (gradlint/core/rule_catalogue.py); its lookups are re-exported here for callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gradlint.core.gc_pause import collector_paused
from gradlint.core.options import Config, ConfigError
from gradlint.core.rule_catalogue import (
    BUILTIN_RULES,
    RuleError,
    RuleInfo,
    diagnostic,
    discover_rules,
    rule_by_code,
    use_rule_folders,
)
from gradlint.core.values import Diagnostic
from gradlint.lint.rule_api import ModelAnalysis

__all__ = ["BUILTIN_RULES", "RuleError", "RuleInfo", "check_config_codes", "diagnostic",
           "discover_rules", "is_selected", "rule_by_code", "run_rules", "unknown_code",
           "use_config_rules", "use_rule_folders"]


def use_config_rules(config: Config) -> None:
    """``use_rule_folders`` for a configuration, with its errors as ConfigError."""
    try:
        use_rule_folders(config.extend_rules)
    except (RuleError, OSError) as exc:
        raise ConfigError(f"{config.path}: [tool.gradlint] extend-rules: {exc}") from None


def unknown_code(codes: Iterable[str]) -> str | None:
    """What is wrong with the first code or prefix that starts no known rule's code (built-in
    or extend-rules), with the closest known one; None when all match. ``GL1O1`` (a letter O)
    would otherwise deselect every rule without a word."""
    known = [info.rule.code for info in discover_rules()]
    for raw in codes:
        code = raw.strip().upper()
        if code and not any(k.startswith(code) for k in known):
            import difflib

            # a prefix is compared with prefixes of its length, a full code with the codes
            candidates = sorted({k[:len(code)] for k in known} | set(known))
            close = difflib.get_close_matches(code, candidates, n=1, cutoff=0.0)
            hint = f"did you mean {close[0]}? " if close else ""
            return f"{raw.strip()!r} matches no rule; {hint}(`gradlint rules` lists them)"
    return None


def check_config_codes(config: Config) -> None:
    """The configuration's ``select``, ``ignore`` and ``per-file-ignores`` codes each match a
    rule (ConfigError otherwise). Runs after ``use_config_rules``: extend-rules add codes."""
    tables = [("select", config.select), ("ignore", config.ignore),
              *((f"per-file-ignores {glob!r}", codes) for glob, codes in config.per_file_ignores)]
    for key, codes in tables:
        problem = unknown_code(codes)
        if problem:
            raise ConfigError(f"{config.path}: [tool.gradlint] {key}: {problem}")


def _matches(code: str, prefixes: Iterable[str]) -> bool:
    return any(code.startswith(p.strip().upper()) for p in prefixes if p.strip())


def is_selected(code: str, select: Sequence[str], ignore: Sequence[str]) -> bool:
    """ruff-style prefix selection: ``GL1`` selects GL1xx; default-off rules need a select."""
    info = rule_by_code(code)
    return _chosen(code, info.rule.enabled_by_default if info else True, select, ignore)


def _chosen(code: str, default_on: bool, select: Sequence[str], ignore: Sequence[str]) -> bool:
    if select:  # a rule that is off by default needs its exact code
        chosen = _matches(code, select) and (
            default_on or any(s.strip().upper() == code for s in select))
    else:
        chosen = default_on
    return chosen and not _matches(code, ignore)


@collector_paused
def run_rules(analysis: ModelAnalysis, select: Sequence[str] = (),
              ignore: Sequence[str] = ()) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for info in discover_rules():
        rule = info.rule
        if rule.stage or not (_chosen(rule.code, rule.enabled_by_default, select, ignore)
                              if select or ignore else rule.enabled_by_default):
            continue
        out.extend(rule.check(analysis))
    return out


