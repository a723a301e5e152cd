"""The load stage: import one file safely, discover its models, build them, find inputs.

The file is imported as pytest imports test files (gradlint/load/importing.py), with stdout sent
to stderr so a stray ``print`` cannot corrupt a JSON report. A model is an ``nn.Module`` with
parameters, defined (or instantiated at module level) in the file; only the outermost ones are
checked (README, "What gets checked"). Configured targets add to what discovery finds; naming
``file.py::Name`` checks that model only. Everything the user's code can get wrong becomes a
diagnostic (GL901 import, GL902 needs arguments, GL906 constructor), never a traceback.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

from gradlint.core.options import TargetConfig
from gradlint.core.values import Diagnostic, Location, ModelReport, Target
from gradlint.load.building import (
    Candidate,
    LoadRequest,
    build_by_convention,
    build_configured,
    build_named,
    class_line,
    failed,
    has_parameters,
    stage_diag,
)
from gradlint.load.construction_sites import Site, SiteRecorder
from gradlint.load.conventions import required_params
from gradlint.load.given_inputs import given_inputs
from gradlint.load.importing import describe_exception, import_file
from gradlint.load.part_users import part_users
from gradlint.load.sources import display_path

__all__ = ["LoadRequest", "load_targets"]


@dataclass
class _Found:
    """What discovery made of a file's namespace."""

    candidates: list[Candidate] = field(default_factory=list)
    reports: list[ModelReport] = field(default_factory=list)
    # GL902 of classes no convention builds, kept unless the class is inside a checked model
    needs: list[tuple[type, ModelReport]] = field(default_factory=list)
    # (name, line, why) of modules with parameters discovery left out: the file's one GL902
    # when nothing else was checked or reported
    dropped: list[tuple[str, int, str]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # every name dealt with
    # GL906 of classes built with their defaults, kept unless the class is a part of a model
    # that builds it with arguments (``DropPath(drop_prob=None)`` raising on its default)
    defaults_failed: list[tuple[type, ModelReport]] = field(default_factory=list)


def load_targets(req: LoadRequest) -> list[Target | ModelReport] | Diagnostic:
    """Import ``req.path`` and return its outermost models, built and ready to trace; a file
    that cannot be imported gives one GL901 diagnostic instead."""
    recorder = SiteRecorder(req.path)
    try:
        module = import_file(req.path, recorder, req.meta)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's import failed, whatever it raised
        loc = req.where(exc)
        return stage_diag("GL901", f"importing {req.path} raised {describe_exception(exc)}; "
                          "fix the error or guard side effects with "
                          "`if __name__ == \"__main__\":`", loc)
    found = _Found()
    if req.names:
        _build_names(req, module, recorder, req.names, found)
    else:
        _discover(req, module, recorder, found)
        _build_names(req, module, recorder,
                     tuple(n for n in req.configured() if n not in found.names), found)
    candidates = _outermost(found.candidates)
    inside = {type(m) for c in candidates for m in c.model.modules()}
    results: list[Target | ModelReport] = list(found.reports)
    parts = _components(found)
    needs = [(cls, report) for cls, report in found.needs
             if cls not in inside and cls not in parts]
    results += _not_parts_of_neighbours(req, needs, found)
    results += _failed_on_their_own(req, found, inside)
    if not results and not candidates and found.dropped:
        results.append(_nothing_checked(req, found.dropped))
    for c in candidates:
        results.append(_target(req, module, recorder, c))
    results.sort(key=lambda r: r.line)
    return results


def _target(req: LoadRequest, module: types.ModuleType, recorder: SiteRecorder,
            c: Candidate) -> Target | ModelReport:
    cfg = req.config_for(c.name)
    try:
        inputs = given_inputs(module, c.model, req.inputs or (cfg.inputs if cfg else ()), c.name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001
        loc = req.where(exc)
        return failed(req, c.name, c.line, stage_diag(
            "GL906", f"building example inputs for {c.name} raised {describe_exception(exc)}",
            loc, f"{req.path}::{c.name}"))
    return Target(f"{req.path}::{c.name}", c.model, req.path, c.line, inputs,
                  _sites(recorder, c, req.path), cfg.output if cfg else None, c.built_as,
                  recorder.image_size(c.model), recorder.frame_count(c.model))


def _build_names(req: LoadRequest, module: types.ModuleType, recorder: SiteRecorder,
                 names: tuple[str, ...], found: _Found) -> None:
    """Targets asked for by name (command line or configuration): built whatever they hold."""
    for name in names:
        found.names.add(name)
        obj = getattr(module, name, None)
        cfg = req.config_for(name)
        if obj is None and (cfg is None or cfg.build is None):
            found.reports.append(failed(req, name, 1, stage_diag(
                "GL906", f"{req.path} has no model named {name!r}",
                Location(req.path, 1), f"{req.path}::{name}")))
            continue
        built = build_named(req, module, name, obj, recorder)
        if isinstance(built, ModelReport):
            found.reports.append(built)
        else:
            found.candidates.append(built)


def _discover(req: LoadRequest, module: types.ModuleType, recorder: SiteRecorder,
              found: _Found) -> None:
    """The file's models: module-level instances built by this file, then its classes (with
    a convention when the constructor needs arguments); modules without parameters (an
    activation, a mixin, ``DropPath``) are left out silently."""
    here = os.path.abspath(req.path)
    configured = req.configured()
    instance_types: set[type] = set()
    # snapshots: building a class can add names (a warning's __warningregistry__, ``global``)
    for name, obj in list(vars(module).items()):
        if not isinstance(obj, nn.Module):
            continue
        site = recorder.sites.get(id(obj))
        anchor = site[1] if site else None
        if anchor is None or os.path.abspath(anchor.file) != here:
            continue  # imported from elsewhere, not built by this file
        if name.startswith("_") and name not in configured:
            if has_parameters(obj):
                found.dropped.append((name, anchor.line, f"`{name}` is private (its name "
                                      "starts with an underscore)"))
            continue
        instance_types.add(type(obj))
        found.names.add(name)
        if has_parameters(obj) or name in configured:
            found.candidates.append(Candidate(name, obj, anchor.line, None))
    needs: list[tuple[str, type]] = []
    for name, obj in list(vars(module).items()):
        if not _model_class(obj, module) or obj in instance_types:
            continue
        found.names.add(name)
        if name in configured:
            _keep(found, build_named(req, module, name, obj, recorder), forced=True)
        elif required_params(obj):
            needs.append((name, obj))
        else:
            built = build_configured(req, module, name, obj, TargetConfig(), recorder)
            if isinstance(built, ModelReport) and built.status == "failed":
                found.defaults_failed.append((obj, built))
            else:
                _keep(found, built)
    _by_convention(req, module, recorder, needs, found)


def _model_class(obj: Any, module: types.ModuleType) -> bool:
    """A concrete ``nn.Module`` class defined in ``module``, with a ``forward`` of its own."""
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        return False
    if obj.__module__ != module.__name__ or inspect.isabstract(obj):
        return False
    return getattr(obj, "forward", None) is not nn.Module.forward  # else a base class


def _keep(found: _Found, built: Candidate | ModelReport, forced: bool = False) -> None:
    if isinstance(built, ModelReport):
        found.reports.append(built)
    elif forced or has_parameters(built.model):
        found.candidates.append(built)


def _by_convention(req: LoadRequest, module: types.ModuleType, recorder: SiteRecorder,
                   needs: list[tuple[str, type]], found: _Found) -> None:
    """Classes whose constructor needs arguments, last defined first (a file defines its
    components before the model that holds them): one inside a model built already is
    analysed there and is not built on its own."""
    inside = {type(m) for c in found.candidates for m in c.model.modules()}
    for name, cls in sorted(needs, key=lambda item: -class_line(item[1])):
        if cls in inside:
            continue
        built = build_by_convention(req, module, name, cls, recorder)
        if isinstance(built, Candidate):
            if has_parameters(built.model):
                found.candidates.append(built)
                inside |= {type(m) for m in built.model.modules()}
        elif built is not None:
            found.needs.append((cls, built))


def _components(found: _Found) -> set[type]:
    """Classes that need arguments and that another model class of the file builds (a GPT's
    ``Block(config)``): the outer class's GL902 covers them, and once it is configured they are
    analysed inside it. Two classes that name each other both keep theirs, and so does a base
    class its subclass names (improved-diffusion's ``SuperResModel(UNetModel)``: the UNet is
    the main model, not a part of the variant)."""
    if not found.needs:  # nothing to share: no class source is read
        return set()
    classes = {cls for cls, _ in found.needs}
    classes |= {c.cls for c in found.candidates if c.cls is not None}
    named = {cls: _names_in(cls) for cls in classes}
    return {cls for cls, _ in found.needs
            if any(cls.__name__ in names and other.__name__ not in named[cls]
                   for other, names in named.items()
                   if other is not cls and cls not in other.__mro__)}


def _not_parts_of_neighbours(req: LoadRequest, needs: list[tuple[type, ModelReport]],
                             found: _Found) -> list[ModelReport]:
    """The GL902s of classes no model of a neighbouring file builds; the others are parts
    (UNet's ``Down`` in unet_parts.py, built by ``UNet`` in unet_model.py): analysed there,
    they only explain a file that yields nothing else."""
    return _unless_parts(req, needs, {}, found, lambda name, user: (
        f"`{name}` is a part of {user}"))


def _failed_on_their_own(req: LoadRequest, found: _Found, inside: set[type]
                         ) -> list[ModelReport]:
    """The GL906s of classes whose defaults fail to build them and that no model builds with
    arguments: a part (``DropPath(drop_prob=None)``, built as ``DropPath(0.1)`` by the model of
    this file or of a neighbouring one) is analysed there, and its defaults are not a bug."""
    here = {cls: next(c.name for c in found.candidates
                      if cls in {type(m) for m in c.model.modules()})
            for cls, _ in found.defaults_failed if cls in inside}
    return _unless_parts(req, found.defaults_failed, here, found, lambda name, user: (
        f"`{name}()` raised with its defaults, and it is a part of {user}"))


def _unless_parts(req: LoadRequest, reports: list[tuple[type, ModelReport]],
                  users: dict[type, str], found: _Found, why: Callable[[str, str], str]
                  ) -> list[ModelReport]:
    """The reports of classes that are no part of a model: of one of this file (``users``,
    by class) or of a neighbouring file (``part_users``). A part's report joins the file's
    dropped list (said once, when nothing else is checked)."""
    if not reports:
        return []
    neighbours = part_users(req.path, {cls.__name__ for cls, _ in reports})
    kept = []
    for cls, report in reports:
        user = users.get(cls)
        if user is None and cls.__name__ in neighbours:
            name, file = neighbours[cls.__name__]
            user = f"{name} ({display_path(file)})"
        if user is None:
            kept.append(report)
        else:
            found.dropped.append((cls.__name__, report.line, why(cls.__name__, user)))
    return kept


def _names_in(cls: type) -> set[str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _nothing_checked(req: LoadRequest, dropped: list[tuple[str, int, str]]) -> ModelReport:
    """The file has modules with parameters, yet nothing was checked and nothing said why."""
    name, line, why = dropped[0]
    others = f" (and {len(dropped) - 1} more)" if len(dropped) > 1 else ""
    return failed(req, name, line, stage_diag(
        "GL902", f"no model of {req.path} was checked: {why}{others}; to check it, add to "
        f"pyproject.toml: [tool.gradlint.targets.\"{req.config_key(name)}\"] "
        f"build = \"{name if name.startswith('_') else name + '(...)'}\"",
        Location(req.path, line), f"{req.path}::{name}"),
        status="skipped")


def _sites(recorder: SiteRecorder, c: Candidate, path: str) -> dict[str, Site]:
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


def _outermost(cands: list[Candidate]) -> list[Candidate]:
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
