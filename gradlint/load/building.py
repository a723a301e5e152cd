"""Building one model: from a class with its configured arguments, a ``build`` expression or
a convention (gradlint/load/conventions.py), sized on the meta device first so a model too
big for memory is never built for real.

Whatever the user's constructor gets wrong becomes a ``ModelReport`` with a diagnostic (GL902
needs arguments, GL906 construction failed), never a traceback.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import linecache
import os
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from gradlint.core.options import TargetConfig
from gradlint.core.rule_catalogue import diagnostic
from gradlint.core.values import Diagnostic, Location, ModelReport
from gradlint.load.construction_sites import SiteRecorder
from gradlint.load.conventions import Recipe, build_recipe, conventions, required_params
from gradlint.load.importing import describe_exception, user_code, user_location
from gradlint.load.meta_probe import (
    MetaDrawsNothing,
    OutsideEffect,
    dynamo_left_out,
    outside_refused,
)
from gradlint.load.size_guard import REAL_FIRST_BYTES, at_most, tensor_bytes
from gradlint.load.sources import user_traceback
from gradlint.load.usages import usage_recipes


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
    # the folder of the pyproject.toml the configuration came from: ``configs`` keys and the
    # keys GL902 suggests are relative to it (None: relative to the working directory)
    base: str | None = None
    debug: bool = False  # --debug: print the user's traceback behind GL901/GL906 on stderr

    def where(self, exc: BaseException) -> Location:
        """Where the user's code raised ``exc`` (their file first); under --debug, also its
        traceback on stderr (a worker's stderr reaches the parent)."""
        if self.debug:
            print(user_traceback(exc), file=sys.stderr)
        return user_location(exc, self.path)

    def config_key(self, name: str) -> str:
        """``[tool.gradlint.targets."<this>"]`` for the model ``name`` of this file."""
        path = os.path.normpath(self.path)  # "./model.py" -> "model.py"
        if self.base is not None:
            path = os.path.relpath(os.path.abspath(path), self.base)
        return f"{path.replace(os.sep, '/')}::{name}"

    def config_for(self, name: str) -> TargetConfig | None:
        return self.configured().get(name)

    def configured(self) -> dict[str, TargetConfig]:
        """This file's targets in the configuration, by model name."""
        here = os.path.abspath(self.path)
        found = {}
        for key, cfg in (self.configs or {}).items():
            file, _, target = key.partition("::")
            if self.base is not None:
                same = os.path.abspath(os.path.join(self.base, file)) == here
            else:
                same = os.path.abspath(file) == here or here.endswith(os.sep + file)
            if same:
                found[target] = cfg
        return found


@dataclass
class Candidate:
    """A built model that may be checked."""

    name: str
    model: nn.Module
    line: int
    cls: type | None  # set when built from a class (not a module-level instance)
    built_as: str | None = None  # the convention that built it


@dataclass
class NeedsArguments:
    """A class no convention could build: why, for its GL902."""

    cls: type
    params: list[str]
    tried: list[str] = field(default_factory=list)  # "GPT(GPTConfig()) raised ..."


def memory_budget(limit: int | None = None) -> int:
    """Bytes of parameters above which a model is built on the meta device: a quarter of RAM,
    or ``limit`` (from the worker's memory cap) when that is lower."""
    if limit:
        return min(limit, memory_budget())
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 4
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def param_bytes(model: nn.Module) -> int:
    """Bytes of parameters; a lazy module's (``nn.LazyLinear``) are not sized until its first
    forward and count 0 here."""
    return tensor_bytes(model.parameters())


def has_parameters(model: nn.Module) -> bool:
    """A model to check has something to learn: parameters of its own or of its submodules,
    lazy ones included. An activation or a ``DropPath`` has none and is not a model."""
    return next(iter(model.parameters()), None) is not None


def stage_diag(code: str, message: str, loc: Location, target: str = "") -> Diagnostic:
    return diagnostic(code, message, loc, target)  # name and severity: the rule folder's


def class_line(obj: Any) -> int:
    """The line a class (its first decorator) or function starts at; 1 if unknown. Classes
    come from one parse of their file's source (inspect parses the whole file for each class
    and then tokenizes its body: ~1 ms per class)."""
    if inspect.isclass(obj):
        module = sys.modules.get(obj.__module__)
        file = getattr(module, "__file__", None)
        if file:
            line = _class_lines("".join(linecache.getlines(file, vars(module)))).get(
                obj.__qualname__)
            if line:
                return line
    try:
        return max(inspect.getsourcelines(obj)[1], 1)  # a module's "line" is 0
    except (OSError, TypeError):
        return 1


@functools.lru_cache(maxsize=8)
def _class_lines(source: str) -> dict[str, int]:
    """Qualified name -> first line (of the first decorator, as inspect says) of each class in
    ``source``; the first definition of a name wins, as in inspect."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                name = prefix + child.name
                line = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                found.setdefault(name, line)
                visit(child, name + ".")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{prefix}{child.name}.<locals>.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def failed(req: LoadRequest, name: str, line: int, diag: Diagnostic,
           status: str = "failed") -> ModelReport:
    return ModelReport(target=f"{req.path}::{name}", name=name, file=req.path, line=line,
                       status=status, diagnostics=(diag,))  # type: ignore[arg-type]


def needs_arguments(req: LoadRequest, name: str, line: int, need: NeedsArguments
                    ) -> ModelReport:
    """GL902 (info): the class is skipped; the message gives the config line to add."""
    tried = (f"; tried {'; '.join(need.tried)}" if need.tried
             else "; no convention supplies them")
    message = (f"{name} needs constructor arguments ({', '.join(need.params)}){tried}; to "
               f"check it, add to pyproject.toml: [tool.gradlint.targets."
               f"\"{req.config_key(name)}\"] build = \"{name}(...)\"")
    return failed(req, name, line, stage_diag("GL902", message, Location(req.path, line),
                                              f"{req.path}::{name}"), status="skipped")


def build_named(req: LoadRequest, module: types.ModuleType, name: str, obj: Any,
                recorder: SiteRecorder) -> Candidate | ModelReport:
    """A model the user asked for by name (``file.py::Name``, or a configured target): an
    instance as it is, else a class or factory with its configuration or a convention."""
    if isinstance(obj, nn.Module):
        site = recorder.sites.get(id(obj))
        return Candidate(name, obj, site[1].line if site and site[1] else 1, None)
    cfg = req.config_for(name) or TargetConfig()
    line = class_line(obj) if obj is not None else 1
    if cfg.build is None and not callable(obj):
        return failed(req, name, line, stage_diag(
            "GL906", f"{name} is not an nn.Module, a module class or a factory",
            Location(req.path, line), f"{req.path}::{name}"))
    if cfg.build is None and inspect.isclass(obj) and not cfg.args and not cfg.kwargs:
        built = build_by_convention(req, module, name, obj, recorder)
        if built is not None:
            return built
    return build_configured(req, module, name, obj, cfg, recorder)


def build_configured(req: LoadRequest, module: types.ModuleType, name: str, obj: Any,
                     cfg: TargetConfig, recorder: SiteRecorder) -> Candidate | ModelReport:
    """``obj(*args, **kwargs)`` from the configuration, or its ``build`` expression."""
    line = class_line(obj) if obj is not None else 1
    if cfg.build is not None:
        recipe = build_recipe(cfg.build, module)
    else:
        recipe = Recipe(lambda: obj(*cfg.args, **cfg.kwargs), f"{name}()")
    try:
        model = construct(recipe.make, recorder, req.meta, req.budget)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's constructor failed
        loc = req.where(exc)
        what = f"build = {cfg.build!r}" if cfg.build is not None else f"constructing {name}()"
        return failed(req, name, line, stage_diag(
            "GL906", f"{what} raised {describe_exception(exc)}", loc, f"{req.path}::{name}"))
    if not isinstance(model, nn.Module):
        what = f"build = {cfg.build!r}" if cfg.build is not None else f"{name}()"
        return failed(req, name, line, stage_diag(
            "GL906", f"{what} returned {type(model).__name__}, not an nn.Module",
            Location(req.path, line), f"{req.path}::{name}"))
    cls = obj if inspect.isclass(obj) else None
    if obj is None and type(model).__module__ == module.__name__:
        cls = type(model)  # a build under a label: placed at the model's class
        line = class_line(cls)
    return Candidate(name, model, line, cls)


def build_by_convention(req: LoadRequest, module: types.ModuleType, name: str, cls: type,
                        recorder: SiteRecorder) -> Candidate | ModelReport | None:
    """A class whose constructor needs arguments, built by the first convention that works;
    GL902 naming what was tried when none does. None: it needs no arguments."""
    params = required_params(cls)
    if not params:
        return None
    need = NeedsArguments(cls, [p.name for p in params])
    recipes = itertools.chain(conventions(cls, module),  # the repository's own calls next,
                              _later(lambda: usage_recipes(cls, module, req.path)))  # if need be
    for recipe in recipes:
        try:
            model = construct(recipe.make, recorder, req.meta, req.budget)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the next convention, else GL902
            need.tried.append(f"{recipe.text}, which raised {describe_exception(exc)}")
            continue
        if isinstance(model, nn.Module):
            return Candidate(name, model, class_line(cls), cls, recipe.text)
    return needs_arguments(req, name, class_line(cls), need)


def _later(find: Callable[[], list[Recipe]]) -> Iterator[Recipe]:
    yield from find()


def construct(make: Callable[[], Any], recorder: SiteRecorder, meta: bool,
              budget: int | None = None) -> Any:
    """Build the model for real while it stays small (its constructor then runs once);
    past that, size it on the meta device first and build it for real only if it fits the
    budget (a 70B-parameter config never touches RAM)."""
    if not meta:
        count = None
        try:
            with recorder, user_code(), at_most(min(REAL_FIRST_BYTES,
                                                    memory_budget(budget))) as count:
                model = make()
            if not count.passed:
                return model
        except BaseException as exc:  # noqa: BLE001 - SystemExit etc. are re-raised
            # the stop (as it is, or caught and wrapped by the user's code: the count says
            # the build passed the limit) or out of memory: size it; else it is the user's
            # error, as a real build raises it: not run again
            if not (count is not None and count.passed) and not _out_of_memory(exc):
                raise
    return _sized_first(make, recorder, meta, budget)


def _out_of_memory(exc: BaseException) -> bool:
    """A real build that ran into the address-space limit (torch's CPU allocator raises a
    RuntimeError) before it passed the size it may reach: size it on meta instead."""
    return isinstance(exc, MemoryError) or "can't allocate memory" in str(exc) \
        or "not enough memory" in str(exc)


def _sized_first(make: Callable[[], Any], recorder: SiteRecorder, meta: bool,
                 budget: int | None) -> Any:
    """Size the model on the meta device first; build it for real only if it fits the budget.
    The probe refuses whatever reaches outside (a checkpoint of meta tensors, a process)."""
    probe = None
    for stand_in in (True, False):  # a constructor that needs more of dynamo: try without
        try:
            # below the device mode: it hands each call on, then the draw reaches this one
            with recorder, user_code(), dynamo_left_out(stand_in), MetaDrawsNothing(), \
                    torch.device("meta"), outside_refused() as tried:
                probe = make()
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
    if isinstance(probe, nn.Module) and (meta or param_bytes(probe) > memory_budget(budget)):
        return probe
    with recorder, user_code():
        return make()
