"""The load stage: import one file safely, discover its models, build them, find inputs.

The file is imported under a unique module name with its folder on ``sys.path`` (as pytest
does), with stdout sent to stderr so a stray ``print`` cannot corrupt a JSON report. Everything
the user's code can get wrong becomes a diagnostic (GL901 import, GL902 needs arguments, GL906
constructor), never a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import os
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from gradlint.core.input_specs import parse_spec
from gradlint.core.options import TargetConfig
from gradlint.core.rule_catalogue import diagnostic
from gradlint.core.values import Diagnostic, Location, ModelReport, Target
from gradlint.load.construction_sites import Site, SiteRecorder
from gradlint.load.meta_probe import (
    MetaDrawsNothing,
    OutsideEffect,
    dynamo_left_out,
    outside_refused,
)
from gradlint.load.sources import display_path, exception_site


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


def user_location(exc: BaseException, path: str) -> Location:
    """Where in the user's code an exception came from: their file first, else any user frame."""
    site = exception_site(exc, prefer=path)
    if site is not None:
        return site
    if isinstance(exc, SyntaxError) and exc.lineno:
        return Location(display_path(exc.filename or path), exc.lineno, exc.offset or 1)
    return Location(path, 1)


def describe_exception(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r})"
    if isinstance(exc, OutsideEffect):
        return f"OutsideEffect: {exc}"
    if isinstance(exc, MemoryError):
        return "MemoryError (out of memory: --max-memory sets the limit; --meta builds models " \
            "without memory)"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


@contextlib.contextmanager
def user_code() -> Iterator[None]:
    """Run user code with its stdout on our stderr (reports own stdout)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def import_file(path: str, recorder: SiteRecorder, meta: bool = False) -> types.ModuleType:
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    digest = hashlib.sha1(os.fsencode(os.path.abspath(path))).hexdigest()[:10]
    stem = os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    name = f"gradlint_target_{digest}_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with recorder, user_code(), (torch.device("meta") if meta else contextlib.nullcontext()):
        spec.loader.exec_module(module)
    return module


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


def parse_input(spec: str) -> torch.Tensor:
    """``8x3x224x224`` or ``2x128:int64`` -> a random tensor of that shape and dtype."""
    shape, dtype_name = parse_spec(spec)
    dtype = getattr(torch, dtype_name)
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(*shape, dtype=dtype)
    return torch.randint(0, 2, shape, dtype=dtype)


def _example_inputs(module: types.ModuleType, model: nn.Module, req: LoadRequest,
                    cfg: TargetConfig | None) -> tuple[Any, ...] | None:
    specs = req.inputs or (cfg.inputs if cfg else ())
    if specs:
        return tuple(parse_input(s) for s in specs)
    fn = getattr(module, "example_inputs", None)
    value: Any = None
    if callable(fn):
        with user_code():
            value = fn()
    elif isinstance(getattr(type(model), "dummy_inputs", None), property):
        value = model.dummy_inputs
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return (value,)
    if isinstance(value, dict):  # keyword inputs: by position in forward(), gaps at defaults
        return _by_position(model, value)
    return tuple(value)


def _by_position(model: nn.Module, value: dict[str, Any]) -> tuple[Any, ...]:
    """``{"input_ids": .., "decoder_input_ids": ..}`` -> forward()'s positional arguments up to
    the last one given; a parameter in between keeps its default (T5's ``attention_mask``), so
    no tensor lands in another parameter's place."""
    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    last = max((i for i, p in enumerate(params) if p.name in value), default=-1)
    return tuple(value[p.name] if p.name in value
                 else None if p.default is inspect.Parameter.empty else p.default
                 for p in params[:last + 1])


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
            inputs = _example_inputs(module, c.model, req, cfg)
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
