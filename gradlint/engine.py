"""The rule engine: discovers rule folders, selects rules, runs them on a model analysis."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gradlint.ftypes import Diagnostic
from gradlint.rule import ModelAnalysis, Rule

BUILTIN_RULES = Path(__file__).resolve().parent / "rules"
SOURCE_RULES = Path(__file__).resolve().parent.parent / "rules"


@dataclass(frozen=True)
class RuleInfo:
    rule: Rule
    folder: Path

    @property
    def readme(self) -> str:
        path = self.folder / "README.md"
        return path.read_text(encoding="utf-8") if path.exists() else self.rule.summary


def _builtin_folder() -> Path:
    """The installed ``gradlint/rules`` (wheel), else the checkout's top-level ``rules/``."""
    if BUILTIN_RULES.is_dir():
        return BUILTIN_RULES
    try:
        import gradlint.rules as pkg  # editable installs map the package onto rules/
    except ImportError:
        return SOURCE_RULES
    return Path(next(iter(pkg.__path__)))


def _load_rule(folder: Path) -> Rule:
    path = folder / "check.py"
    name = "gradlint_rule_" + folder.name.replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load rule from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    rules = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, Rule) and v is not Rule
             and getattr(v, "code", None)]
    if len(rules) != 1:
        raise ImportError(f"{path} must define exactly one Rule subclass")
    return rules[0]()


@lru_cache(maxsize=8)
def discover_rules(extra: tuple[str, ...] = ()) -> tuple[RuleInfo, ...]:
    """Every ``<CODE>-<name>/check.py`` under the built-in folder and any extra folders."""
    roots = [_builtin_folder(), *(Path(p) for p in extra)]
    found: dict[str, RuleInfo] = {}
    for root in roots:
        for folder in sorted(p for p in root.iterdir() if (p / "check.py").is_file()):
            rule = _load_rule(folder)
            found[rule.code] = RuleInfo(rule, folder)
    return tuple(sorted(found.values(), key=lambda r: r.rule.code))


def _matches(code: str, prefixes: Iterable[str]) -> bool:
    return any(code.startswith(p.strip().upper()) for p in prefixes if p.strip())


def is_selected(code: str, select: Sequence[str], ignore: Sequence[str]) -> bool:
    """ruff-style prefix selection: ``GL1`` selects GL1xx; default-off rules need a select."""
    info = {i.rule.code: i.rule for i in discover_rules()}.get(code)
    default_on = info.enabled_by_default if info else True
    if select:  # a rule that is off by default needs its exact code
        chosen = _matches(code, select) and (
            default_on or any(s.strip().upper() == code for s in select))
    else:
        chosen = default_on
    return chosen and not _matches(code, ignore)


def run_rules(analysis: ModelAnalysis, select: Sequence[str] = (),
              ignore: Sequence[str] = ()) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for info in discover_rules():
        rule = info.rule
        if rule.stage or not is_selected(rule.code, select, ignore):
            continue
        out.extend(rule.check(analysis))
    return out


def rule_by_code(code: str) -> RuleInfo | None:
    for info in discover_rules():
        if info.rule.code == code.upper():
            return info
    return None

