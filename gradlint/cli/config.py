"""``[tool.gradlint]`` in the nearest pyproject.toml; command-line flags win over it."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from gradlint.core.input_specs import parse_spec
from gradlint.core.options import DEFAULT_THRESHOLD, Config, ConfigError, TargetConfig
from gradlint.lint.per_file_ignores import glob_regex

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


_KEYS = {"select", "ignore", "threshold", "exclude", "targets", "per-file-ignores",
         "extend-rules"}
_TARGET_KEYS = {"args", "kwargs", "build", "inputs", "output"}
_CODE = re.compile(r"[A-Z]+[0-9]*")


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


def _kind(v: Any) -> str:
    """A TOML value's kind in TOML's words, for "must be a table, not an integer"."""
    kinds = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    return next((name for t, name in kinds.items() if isinstance(v, t)), "a date or time")


def _strings(v: Any, key: str, path: str) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{path}: [tool.gradlint] {key} must be a list of strings")
    return tuple(v)


def _per_file_ignores(v: Any, path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{"tests/*" = ["GL101"]}``: a table of glob -> rule codes or prefixes."""
    key = "[tool.gradlint] per-file-ignores"
    if not isinstance(v, dict):
        raise ConfigError(f'{path}: {key} must be a table of glob = [codes], e.g. '
                          '{"tests/*" = ["GL101"]}')
    out = []
    for pattern, codes in v.items():
        if not pattern.strip() or pattern.strip() == "!":
            raise ConfigError(f"{path}: {key} has an empty glob")
        try:  # compiled here so that a bad one stops the run now, not when a file is matched
            glob_regex(pattern.strip().removeprefix("!").removeprefix("./"))
        except re.error as exc:
            raise ConfigError(f"{path}: {key} {pattern!r} is not a valid glob ({exc})") from None
        found = _strings(codes, f"per-file-ignores {pattern!r}", path)
        bad = [c for c in found if not _CODE.fullmatch(c.strip().upper())]
        if bad or not found:
            raise ConfigError(f"{path}: {key} {pattern!r}: {bad[0] if bad else '[]'!r} is not "
                              "a rule code or prefix (e.g. GL101 or GL1)")
        out.append((pattern.strip(), tuple(c.strip().upper() for c in found)))
    return tuple(out)


def _extend_rules(v: Any, path: str) -> tuple[str, ...]:
    """Extra rule folders, relative to the pyproject's folder; each must exist."""
    base = os.path.dirname(path)
    out = []
    for folder in _strings(v, "extend-rules", path):
        full = os.path.normpath(os.path.join(base, os.path.expanduser(folder)))
        if not os.path.isdir(full):
            raise ConfigError(f"{path}: [tool.gradlint] extend-rules: {folder!r} is not a "
                              f"folder ({full})")
        out.append(full)
    return tuple(out)


def _target(name: str, spec: Any, path: str) -> TargetConfig:
    where = f"[tool.gradlint.targets] {name!r}"
    file, sep, model = name.partition("::")
    if not (sep and file.strip() and model.strip()):  # such a key could never match a model
        raise ConfigError(f'{path}: {where} must be named "file.py::Model"')
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: {where} must be a table, not {_kind(spec)}")
    bad = sorted(set(spec) - _TARGET_KEYS)
    if bad:
        raise ConfigError(f"{path}: unknown key {bad[0]!r} in {where}; "
                          f"known keys: {', '.join(sorted(_TARGET_KEYS))}")
    if not isinstance(spec.get("args", []), list):
        raise ConfigError(f"{path}: {where} args must be a list")
    if not isinstance(spec.get("kwargs", {}), dict):
        raise ConfigError(f"{path}: {where} kwargs must be a table")
    if not isinstance(spec.get("output", ""), str):
        raise ConfigError(f"{path}: {where} output must be a string")
    build = _build_expression(spec, where, path)
    inputs = _strings(spec.get("inputs", []), f"targets {name!r} inputs", path)
    for text in inputs:  # the same check as --input's, before any worker starts
        try:
            parse_spec(text)
        except ValueError as exc:
            detail = str(exc).partition(": ")[2]
            raise ConfigError(f"{path}: {where} inputs: {text!r}: {detail}") from None
    return TargetConfig(tuple(spec.get("args", ())), dict(spec.get("kwargs", {})), inputs,
                        spec.get("output"), build)


def _build_expression(spec: dict[str, Any], where: str, path: str) -> str | None:
    """``build = "GPT(GPTConfig(n_layer=4))"``: one Python expression (checked for syntax
    here, evaluated in the model's module by the worker), instead of ``args``/``kwargs``."""
    if "build" not in spec:
        return None
    build = spec["build"]
    if not isinstance(build, str) or not build.strip():
        raise ConfigError(f'{path}: {where} build must be a Python expression in a string, '
                          'e.g. build = "GPT(GPTConfig())"')
    both = [key for key in ("args", "kwargs") if key in spec]
    if both:
        raise ConfigError(f"{path}: {where} has both build and {both[0]}: the build "
                          f"expression makes the model, put the arguments in it")
    try:
        compile(build.strip(), f"{where} build", "eval")
    except SyntaxError as exc:
        raise ConfigError(f"{path}: {where} build {build!r} is not a Python expression "
                          f"({exc.msg})") from None
    return build.strip()


def _read_toml(path: str) -> dict[str, Any]:
    """The parsed file; anything tomllib or the file system raises becomes a ConfigError
    naming the file (a non-UTF-8 file raises UnicodeDecodeError, deep nesting RecursionError,
    neither a TOMLDecodeError)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: not valid UTF-8 (byte "
                          f"0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except RecursionError:
        raise ConfigError(f"{path}: cannot read: values nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def load_config(start: str = ".") -> Config:
    path = find_pyproject(start)
    if path is None:
        return Config()
    data = _read_toml(path)
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: key 'tool' must be a table (it holds [tool.gradlint]), "
                          f"not {_kind(tool)}")
    section = tool.get("gradlint")
    if section is None:
        return Config(path=path)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.gradlint] must be a table, not {_kind(section)}")
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key [tool.gradlint] {unknown[0]!r}; "
                          f"known keys: {', '.join(sorted(_KEYS))}")
    threshold = section.get("threshold", DEFAULT_THRESHOLD)
    if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ConfigError(f"{path}: [tool.gradlint] threshold must be a number in (0, 1)")
    table = section.get("targets", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.gradlint] targets must be a table of "
                          '"file.py::Model" = {kwargs = ..., inputs = [...]}')
    targets = {name: _target(name, spec, path) for name, spec in table.items()}
    return Config(_strings(section.get("select", []), "select", path),
                  _strings(section.get("ignore", []), "ignore", path), float(threshold),
                  _strings(section.get("exclude", []), "exclude", path), targets, path,
                  _per_file_ignores(section.get("per-file-ignores", {}), path),
                  _extend_rules(section.get("extend-rules", []), path))
