"""The load stage: import one file safely, discover its models, build them, find inputs.

The file is imported under a unique module name with its folder on ``sys.path`` (as pytest
does), with stdout sent to stderr so a stray ``print`` cannot corrupt a JSON report. Everything
the user's code can get wrong becomes a diagnostic (GL901 import, GL902 needs arguments, GL906
constructor), never a traceback.
"""

from __future__ import annotations

import inspect
import os
import types
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from gradlint.core.options import TargetConfig
from gradlint.core.rule_catalogue import diagnostic
from gradlint.core.values import Diagnostic, Location, ModelReport, Target
from gradlint.load.construction_sites import Site, SiteRecorder
from gradlint.load.given_inputs import given_inputs
from gradlint.load.importing import describe_exception, import_file, user_code, user_location
from gradlint.load.meta_probe import (
    MetaDrawsNothing,
    OutsideEffect,
    dynamo_left_out,
    outside_refused,
)
from gradlint.load.sources import display_path


@dataclass(frozen=True)
class LoadRequest:
    """What to load from one file: explicit target names (``file.py::Name``), per-target
    configuration, and input shapes from the command line."""

    path: str
    names: tuple[str, ...] = ()
    configs: dict[str, TargetConfig] | None = None
    inputs: tuple[str, ...] = ()
    meta: bool = False  # build every model on the meta device (--meta)
    budget: int | None = None  # parameter bytes above which a model is built on meta


def memory_budget(limit: int | None = None) -> int:
    """Bytes of parameters above which a model is built on the meta device: a quarter of RAM,
    or ``limit`` (from the worker's memory cap) when that is lower."""
    if limit:
        return min(limit, memory_budget())
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 4
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def _param_bytes(model: nn.Module) -> int:
    """Bytes of parameters; a lazy module's (``nn.LazyLinear``) are not sized until its first
    forward and count 0 here."""
    return sum(p.numel() * p.element_size() for p in model.parameters()
               if not isinstance(p, nn.parameter.UninitializedParameter))


def _diag(code: str, message: str, loc: Location, target: str = "") -> Diagnostic:
    return diagnostic(code, message, loc, target)  # name and severity: the rule folder's


def _required_params(cls: type) -> list[str]:
    try:
        sig = inspect.signature(cls)
        return [n for n, p in sig.parameters.items()
                if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        return []


def _class_line(obj: Any) -> int:
    try:
        return max(inspect.getsourcelines(obj)[1], 1)  # a module's "line" is 0
    except (OSError, TypeError):
        return 1


def _config_for(req: LoadRequest, name: str) -> TargetConfig | None:
    if not req.configs:
        return None
    here = os.path.abspath(req.path)
    for key, cfg in req.configs.items():
        file, _, target = key.partition("::")
        if target == name and (os.path.abspath(file) == here or here.endswith(os.sep + file)):
            return cfg
    return None


@dataclass
class _Candidate:
    name: str
    model: nn.Module
    line: int
    cls: type | None  # set when built from a class (not a module-level instance)


def _failed(req: LoadRequest, name: str, line: int, diag: Diagnostic,
            status: str = "failed") -> ModelReport:
    return ModelReport(target=f"{req.path}::{name}", name=name, file=req.path, line=line,
                       status=status, diagnostics=(diag,))  # type: ignore[arg-type]


def load_targets(req: LoadRequest) -> list[Target | ModelReport] | Diagnostic:
    """Import ``req.path`` and return its outermost models, built and ready to trace; a file
    that cannot be imported gives one GL901 diagnostic instead."""
    recorder = SiteRecorder(req.path)
    try:
        module = import_file(req.path, recorder, req.meta)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's import failed, whatever it raised
        loc = user_location(exc, req.path)
        return _diag("GL901", f"importing {req.path} raised {describe_exception(exc)}; fix the "
                     "error or guard side effects with `if __name__ == \"__main__\":`", loc)

    results: list[Target | ModelReport] = []
    candidates: list[_Candidate] = []
    needs_args: list[tuple[type, list[str]]] = []
    if req.names:
        for name in req.names:
            obj = getattr(module, name, None)
            if obj is None:
                results.append(_failed(req, name, 1, _diag(
                    "GL906", f"{req.path} has no model named {name!r}",
                    Location(req.path, 1), f"{req.path}::{name}")))
                continue
            built = _build(req, module, name, obj, recorder, force=True)
            if isinstance(built, ModelReport):
                results.append(built)
            else:
                candidates.append(built)
    else:
        candidates, more, needs_args = _discover(req, module, recorder)
        results.extend(more)

    candidates = _outermost(candidates)
    types_inside = {type(m) for c in candidates for m in c.model.modules() if m is not c.model}
    for cls, params in needs_args:
        if cls in types_inside or any(type(c.model) is cls for c in candidates):
            continue  # a component of a model we check: its instance is analysed there
        line = _class_line(cls)
        results.append(_failed(req, cls.__name__, line, _diag(
            "GL902", f"{cls.__name__} needs constructor arguments ({', '.join(params)}); "
            f"create a module-level instance, or set them in pyproject.toml under "
            f"[tool.gradlint.targets.\"{req.path}::{cls.__name__}\"] kwargs = {{...}}",
            Location(req.path, line), f"{req.path}::{cls.__name__}"),
            status="skipped"))

    for c in candidates:
        cfg = _config_for(req, c.name)
        try:
            inputs = given_inputs(module, c.model, req.inputs or (cfg.inputs if cfg else ()))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001
            loc = user_location(exc, req.path)
            results.append(_failed(req, c.name, c.line, _diag(
                "GL906", f"building example inputs for {c.name} raised {describe_exception(exc)}",
                loc, f"{req.path}::{c.name}")))
            continue
        results.append(Target(f"{req.path}::{c.name}", c.model, req.path, c.line, inputs,
                              _sites(recorder, c, req.path), cfg.output if cfg else None))
    results.sort(key=lambda r: r.line)
    return results


def _sites(recorder: SiteRecorder, c: _Candidate, path: str) -> dict[str, Site]:
    """Construction sites by module name; a model gradlint built from its class has no user
    line on the stack, so its own parameters (a ViT's class token) are placed at the class."""
    sites = recorder.sites_of(c.model)
    if c.cls is not None and sites.get("", (None, None)) == (None, None):
        try:
            source = inspect.getsourcefile(c.cls) or path
        except TypeError:
            source = path
        here = os.path.abspath(source) == os.path.abspath(path)
        where = Location(path if here else display_path(source), c.line)
        sites[""] = (where, where if here else None)
    return sites


def _discover(req: LoadRequest, module: types.ModuleType, recorder: SiteRecorder
              ) -> tuple[list[_Candidate], list[ModelReport], list[tuple[type, list[str]]]]:
    candidates: list[_Candidate] = []
    failures: list[ModelReport] = []
    needs_args: list[tuple[type, list[str]]] = []
    here = os.path.abspath(req.path)
    instance_types: set[type] = set()
    # snapshots: building a class can add names (a warning's __warningregistry__, ``global``)
    for name, obj in list(vars(module).items()):
        if name.startswith("_") or not isinstance(obj, nn.Module):
            continue
        site = recorder.sites.get(id(obj))
        anchor = site[1] if site else None
        if anchor is None or os.path.abspath(anchor.file) != here:
            continue  # imported from elsewhere, not built by this file
        candidates.append(_Candidate(name, obj, anchor.line, None))
        instance_types.add(type(obj))
    for name, obj in list(vars(module).items()):
        if not (inspect.isclass(obj) and issubclass(obj, nn.Module)) or obj in instance_types:
            continue
        if obj.__module__ != module.__name__ or inspect.isabstract(obj):
            continue
        if getattr(obj, "forward", None) is nn.Module.forward:
            continue  # a base class with no forward of its own
        cfg = _config_for(req, name)
        params = _required_params(obj)
        if params and cfg is None:
            needs_args.append((obj, params))
            continue
        built = _build(req, module, name, obj, recorder, force=False)
        if isinstance(built, ModelReport):
            failures.append(built)
        else:
            candidates.append(built)
    return candidates, failures, needs_args


def _build(req: LoadRequest, module: types.ModuleType, name: str, obj: Any,
           recorder: SiteRecorder, force: bool) -> _Candidate | ModelReport:
    """Instantiate a class (or call a factory) with its configured arguments."""
    if isinstance(obj, nn.Module):
        site = recorder.sites.get(id(obj))
        return _Candidate(name, obj, site[1].line if site and site[1] else 1, None)
    line = _class_line(obj)
    cfg = _config_for(req, name) or TargetConfig()
    if not callable(obj):
        return _failed(req, name, line, _diag(
            "GL906", f"{name} is not an nn.Module, a module class or a factory",
            Location(req.path, line), f"{req.path}::{name}"))
    if inspect.isclass(obj) and not cfg.args and not cfg.kwargs and _required_params(obj):
        params = _required_params(obj)
        return _failed(req, name, line, _diag(
            "GL902", f"{name} needs constructor arguments ({', '.join(params)}); set them in "
            f"pyproject.toml under [tool.gradlint.targets.\"{req.path}::{name}\"]",
            Location(req.path, line), f"{req.path}::{name}"), status="skipped")
    try:
        model = _construct(obj, cfg, recorder, req.meta, req.budget)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's constructor failed
        loc = user_location(exc, req.path)
        return _failed(req, name, line, _diag(
            "GL906", f"constructing {name}() raised {describe_exception(exc)}", loc,
            f"{req.path}::{name}"))
    if not isinstance(model, nn.Module):
        return _failed(req, name, line, _diag(
            "GL906", f"{name}() returned {type(model).__name__}, not an nn.Module",
            Location(req.path, line), f"{req.path}::{name}"))
    return _Candidate(name, model, line, obj if inspect.isclass(obj) else None)


def _construct(obj: Any, cfg: TargetConfig, recorder: SiteRecorder, meta: bool,
               budget: int | None = None) -> Any:
    """Size the model on the meta device first; build it for real only if it fits the budget
    (a 70B-parameter config never touches RAM)."""
    probe = None
    for stand_in in (True, False):  # a constructor that needs more of dynamo: try without
        try:
            # below the device mode: it hands each call on, then the draw reaches this one
            with recorder, user_code(), dynamo_left_out(stand_in), MetaDrawsNothing(), \
                    torch.device("meta"), outside_refused() as tried:
                probe = obj(*cfg.args, **cfg.kwargs)
            if tried:  # the user's code caught the refusal and went on
                raise tried[0]
            break
        except OutsideEffect as exc:  # stopped before it touched anything: build for real
            if meta:
                raise OutsideEffect(
                    f"tried to {exc} on the meta device (--meta), which gradlint refuses (a "
                    "checkpoint written now would hold meta tensors); drop --meta to build it "
                    "for real").with_traceback(exc.__traceback__) from None
            probe = None
            break
        except Exception:  # noqa: BLE001 - some constructors need real tensors: build for real
            if meta and not stand_in:
                raise
    if isinstance(probe, nn.Module) and (meta or _param_bytes(probe) > memory_budget(budget)):
        return probe
    with recorder, user_code():
        return obj(*cfg.args, **cfg.kwargs)


def _outermost(cands: list[_Candidate]) -> list[_Candidate]:
    """Drop models that are submodules of another discovered model (README, "What gets checked")."""
    inner_ids: set[int] = set()
    inner_types: set[type] = set()
    for c in cands:
        for _, m in c.model.named_modules():
            if m is not c.model:
                inner_ids.add(id(m))
                inner_types.add(type(m))
    keep = []
    for c in cands:
        if id(c.model) in inner_ids:
            continue
        if c.cls is not None and c.cls in inner_types:
            continue
        keep.append(c)
    return keep
