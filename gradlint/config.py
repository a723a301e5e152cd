"""``[tool.gradlint]`` in the nearest pyproject.toml; command-line flags win over it."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(Exception):
    """A bad configuration: names the file and the key."""


@dataclass(frozen=True)
class TargetConfig:
    """How to build and feed one model: constructor arguments and example input shapes."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # "8x3x224x224" or "2x128:int64", as --input
    output: str | None = None  # which output the loss is taken on (dict key)


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    threshold: float = 1e-2
    exclude: tuple[str, ...] = ()
    targets: dict[str, TargetConfig] = field(default_factory=dict)
    path: str | None = None


_KEYS = {"select", "ignore", "threshold", "exclude", "targets"}
_TARGET_KEYS = {"args", "kwargs", "inputs", "output"}


def find_pyproject(start: str) -> str | None:
    d = os.path.abspath(start)
    while True:
        candidate = os.path.join(d, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _strings(v: Any, key: str, path: str) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{path}: [tool.gradlint] {key} must be a list of strings")
    return tuple(v)


def load_config(start: str = ".") -> Config:
    path = find_pyproject(start)
    if path is None:
        return Config()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    section = data.get("tool", {}).get("gradlint")
    if section is None:
        return Config(path=path)
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key [tool.gradlint] {unknown[0]!r}; "
                          f"known keys: {', '.join(sorted(_KEYS))}")
    threshold = section.get("threshold", 1e-2)
    if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ConfigError(f"{path}: [tool.gradlint] threshold must be a number in (0, 1)")
    targets: dict[str, TargetConfig] = {}
    for name, spec in section.get("targets", {}).items():
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}: [tool.gradlint.targets] {name!r} must be a table")
        bad = sorted(set(spec) - _TARGET_KEYS)
        if bad:
            raise ConfigError(f"{path}: unknown key {bad[0]!r} in [tool.gradlint.targets] "
                              f"{name!r}; known keys: {', '.join(sorted(_TARGET_KEYS))}")
        targets[name] = TargetConfig(tuple(spec.get("args", ())), dict(spec.get("kwargs", {})),
                                     _strings(spec.get("inputs", []), "inputs", path),
                                     spec.get("output"))
    return Config(_strings(section.get("select", []), "select", path),
                  _strings(section.get("ignore", []), "ignore", path), float(threshold),
                  _strings(section.get("exclude", []), "exclude", path), targets, path)
