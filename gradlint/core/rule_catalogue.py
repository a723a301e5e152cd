"""The catalogue of rule codes: the rule folders, the Rule class each one declares, and the
diagnostics a stage emits under a code (GL9xx, GL100) with the name and severity its folder gives.

Each code's name, severity and summary are declared once, in ``rules/<CODE>-<name>/check.py``
(installed as the package ``gradlint.rules``, which pyproject.toml maps onto the checkout's
top-level ``rules/``); nothing else in gradlint repeats them. It sits in the core, below every
stage, because every stage reports under these codes; selecting and running the rules is
lint's (gradlint/lint/registry.py). The rule folders are plugins: loaded from files, never
imported by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import gradlint.rules
from gradlint.core.values import SEVERITY_RANK, Diagnostic, Fix, Location, Severity

# the one place built-in rules are looked up (a wheel copies rules/, an editable install maps it)
BUILTIN_RULES = Path(next(iter(gradlint.rules.__path__))).resolve()


class Rule:
    """Base class of every rule: subclasses set the metadata and implement ``check``, which
    gets a ``gradlint.lint.rule_api.ModelAnalysis`` (the public path: ``gradlint.rule``)."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity] = "error"
    summary: ClassVar[str] = ""
    enabled_by_default: ClassVar[bool] = True
    # emitted by a stage (load/trace/run), not by checking an analysis
    stage: ClassVar[bool] = False

    def check(self, analysis: Any) -> Iterable[Diagnostic]:
        return ()

    def diagnostic(self, message: str, location: Location, target: str,
                   module: str | None = None, related: tuple[Location, ...] = (),
                   fix: Fix | None = None) -> Diagnostic:
        return Diagnostic(self.code, self.name, self.severity, message, location, target,
                          module, related, fix)


@dataclass(frozen=True)
class RuleInfo:
    """A loaded rule and the folder it came from (its README.md is ``gradlint explain``'s page)."""

    rule: Rule
    folder: Path

    @property
    def readme(self) -> str:
        path = self.folder / "README.md"
        return path.read_text(encoding="utf-8") if path.exists() else self.rule.summary


class RuleError(Exception):
    """An extra rule folder gradlint cannot use: a broken check.py or a code already taken."""


@contextlib.contextmanager
def _stdout_on_stderr() -> Iterator[None]:
    """What a user's rule prints while it loads goes to stderr: stdout carries the one report
    document (``--format json``, ``gradlint rules --format json``). Both Python's ``print`` and
    the process's descriptor 1 (``os.system``, C code) are redirected, for the while."""
    if sys.stdout is not None:
        sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no descriptor 1 or 2 (a daemon): Python's print is all there is
        saved = -1
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved >= 0:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _load_rule(folder: Path, custom: bool = False) -> Rule:
    """The one Rule subclass that ``folder/check.py`` defines. A user's rule (``custom``) gets
    a module name of its own, its output goes to stderr, and any failure becomes a RuleError
    that names the file."""
    if not custom:
        return _load_module_rule(folder, custom)
    with _stdout_on_stderr():
        return _load_module_rule(folder, custom)


def _load_module_rule(folder: Path, custom: bool) -> Rule:
    path = folder / "check.py"
    name = "gradlint_rule_" + re.sub(r"\W", "_", folder.name)
    if custom:
        name += "_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuleError(f"{path}: cannot load it as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a user's broken rule is a config error
        if not custom:
            raise
        sys.modules.pop(name, None)
        line = next((f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__))
                     if Path(f.filename) == path), getattr(exc, "lineno", None))
        raise RuleError(f"{path}{f':{line}' if line else ''}: importing it raised "
                        f"{type(exc).__name__}: {exc}") from None
    rules = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, Rule) and v is not Rule
             and v.__module__ == name and getattr(v, "code", None)]
    if len(rules) != 1:
        raise RuleError(f"{path} must define exactly one Rule subclass with a code "
                        f"(found {len(rules)})")
    rule = rules[0]
    if not isinstance(rule.code, str) or not re.fullmatch(r"[A-Z]+[0-9]+", rule.code):
        raise RuleError(f"{path}: {rule.__name__}.code must be a code such as GL500")
    if not isinstance(getattr(rule, "name", None), str) or rule.severity not in SEVERITY_RANK:
        raise RuleError(f"{path}: {rule.__name__} must set name (a string) and severity "
                        "(error, warning or info)")
    return rule()


def _rule_folders(root: Path, custom: bool) -> list[Path]:
    """The ``<CODE>-<name>/`` folders under ``root``; a user may also name one rule folder."""
    if custom and (root / "check.py").is_file():
        return [root]
    folders = sorted(p for p in root.iterdir() if (p / "check.py").is_file())
    if custom and not folders:
        raise RuleError(f"{root}: no rule folders in it (expected <CODE>-<name>/check.py)")
    return folders


_EXTRA: tuple[str, ...] = ()  # the run's extra rule folders (use_rule_folders)


def use_rule_folders(folders: Sequence[str]) -> tuple[RuleInfo, ...]:
    """Make every later discovery include ``folders`` (extend-rules); the parent calls it once
    per run and so does each worker, since rules run there. Raises RuleError."""
    global _EXTRA
    infos = discover_rules(tuple(folders))
    _EXTRA = tuple(folders)
    return infos


def discover_rules(extra: tuple[str, ...] | None = None) -> tuple[RuleInfo, ...]:
    """Every ``<CODE>-<name>/check.py`` under the built-in folder and the extra folders
    (default: those of ``use_rule_folders``)."""
    return _discover(_EXTRA if extra is None else tuple(extra))


@lru_cache(maxsize=8)
def _discover(extra: tuple[str, ...]) -> tuple[RuleInfo, ...]:
    found: dict[str, RuleInfo] = {}
    for folder in _rule_folders(BUILTIN_RULES, custom=False):
        rule = _load_rule(folder)
        found[rule.code] = RuleInfo(rule, folder)
    for root in extra:
        for folder in _rule_folders(Path(root), custom=True):
            rule = _load_rule(folder, custom=True)
            taken = found.get(rule.code)
            if taken is not None:
                kind = "a built-in rule" if taken.folder.parent == BUILTIN_RULES else "the rule"
                raise RuleError(f"{folder / 'check.py'}: code {rule.code} is already used by "
                                f"{kind} in {taken.folder}")
            found[rule.code] = RuleInfo(rule, folder)
    return tuple(sorted(found.values(), key=lambda r: r.rule.code))


def rule_by_code(code: str) -> RuleInfo | None:
    """The rule (built-in or extend-rules) with this exact code, any case."""
    for info in discover_rules():
        if info.rule.code == code.upper():
            return info
    return None


def diagnostic(code: str, message: str, location: Location, target: str = "") -> Diagnostic:
    """A diagnostic of ``code`` (GL9xx, GL100: what a stage reports rather than a rule's
    ``check``) with the name and severity its rule folder declares."""
    info = rule_by_code(code)
    if info is None:
        raise KeyError(f"{code} is not a rule code (no rules/{code}-<name>/check.py)")
    return info.rule.diagnostic(message, location, target)

