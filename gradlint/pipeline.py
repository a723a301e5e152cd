"""Runs the stages in order for each file and target; the only place that knows their order."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gradlint.config import Config
from gradlint.engine import is_selected, run_rules
from gradlint.estimate import estimate_gradients
from gradlint.files import find_source_files, prefilter_file
from gradlint.ftypes import Diagnostic, Location, ModelReport, Report, StageError, Target
from gradlint.load import LoadRequest, load_targets, user_code
from gradlint.rule import ModelAnalysis
from gradlint.sources import remember_given_path
from gradlint.trace import trace_target

STAGE_NAMES = {"GL900": "syntax-error", "GL903": "trace-failed", "GL905": "worker-failed",
               "GL907": "not-imported"}


@dataclass(frozen=True)
class Options:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    threshold: float = 1e-2
    inputs: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    debug: bool = False
    verify: bool = False
    meta: bool = False
    config: Config = field(default_factory=Config)


def _stage_diag(code: str, message: str, loc: Location, target: str = "",
                severity: str = "error") -> Diagnostic:
    return Diagnostic(code, STAGE_NAMES[code], severity, message, loc, target)  # type: ignore[arg-type]


def split_target(arg: str) -> tuple[str, str | None]:
    """``model.py::Net`` -> ("model.py", "Net")."""
    path, sep, name = arg.partition("::")
    return path, (name or None) if sep else None


def check_paths(args: Sequence[str], options: Options) -> tuple[Report, list[str]]:
    """Lint files and directories; returns the report and the paths that do not exist."""
    named: dict[str, list[str]] = {}
    plain: list[str] = []
    for arg in args:
        path, name = split_target(arg)
        if name:
            named.setdefault(path, []).append(name)
        else:
            plain.append(path)
    files, missing = find_source_files(plain, options.exclude)
    order: list[tuple[str, tuple[str, ...]]] = [(f.path, ()) for f in files
                                                if f.path not in named]
    for path, names in named.items():
        if os.path.isfile(path):
            order.append((path, tuple(names)))
        else:
            missing.append(path)
    models: list[ModelReport] = []
    diags: list[Diagnostic] = []
    for path, wanted in order:
        file_models, file_diags = check_file(path, wanted, options)
        models.extend(file_models)
        diags.extend(file_diags)
    return Report(tuple(models), tuple(diags)), missing


def _configured_names(path: str, config: Config) -> tuple[str, ...]:
    here = os.path.abspath(path)
    base = os.path.dirname(config.path) if config.path else os.getcwd()
    return tuple(key.partition("::")[2] for key in config.targets
                 if os.path.abspath(os.path.join(base, key.partition("::")[0])) == here)


def check_file(path: str, names: tuple[str, ...], options: Options
               ) -> tuple[list[ModelReport], list[Diagnostic]]:
    """All targets of one file; a failure here never stops the other files."""
    remember_given_path(path)
    names = names or _configured_names(path, options.config)
    verdict = prefilter_file(path)
    if verdict.verdict == "syntax-error":
        return [], [_stage_diag("GL900", f"syntax error: {verdict.reason}",
                                Location(path, verdict.line, verdict.col))]
    if not names:
        if verdict.verdict == "no-model":
            return [], []
        if verdict.verdict == "does-work":
            return [], [_stage_diag(
                "GL907", f"not imported: {verdict.reason}; put that code under "
                "`if __name__ == \"__main__\":` or name a target (file.py::Model)",
                Location(path, verdict.line, verdict.col), severity="info")]
    loaded = load_targets(LoadRequest(path, names, options.config.targets, options.inputs,
                                      options.meta))
    if isinstance(loaded, Diagnostic):
        return [], [loaded]
    reports = [check_target(t, options) if isinstance(t, Target) else t for t in loaded]
    return reports, []


def check_target(target: Target, options: Options) -> ModelReport:
    """trace -> estimate -> rules for one built model."""
    start = time.perf_counter()
    name = target.name.rpartition("::")[2]
    base: dict[str, Any] = {"target": target.name, "name": name, "file": target.file,
                            "line": target.line}
    try:
        with user_code():  # forward() may print: keep our stdout for the report
            graph = trace_target(target)
        estimate = estimate_gradients(graph)
        analysis = ModelAnalysis(target.name, estimate, options.threshold)
        diags = run_rules(analysis, options.select, options.ignore)
    except StageError as err:
        loc = err.location or Location(target.file, target.line)
        return ModelReport(**base, status="failed", seconds=time.perf_counter() - start,
                           diagnostics=(_stage_diag(err.code, err.message, loc, target.name),))
    except Exception as exc:  # noqa: BLE001 - a gradlint bug must not stop the other targets
        detail = traceback.format_exc() if options.debug else f"{type(exc).__name__}: {exc}"
        return ModelReport(**base, status="failed", seconds=time.perf_counter() - start,
                           diagnostics=(_stage_diag(
                               "GL905", f"gradlint failed while analysing {name}: {detail}; "
                               "please report this", Location(target.file, target.line),
                               target.name),))
    seconds = time.perf_counter() - start  # the lint itself; verification is extra
    verification = None
    if options.verify:
        from gradlint.verify import verify_model

        with user_code():
            verification = verify_model(target.model, graph.inputs,  # type: ignore[arg-type]
                                        estimate.layers)
    return ModelReport(**base, status="ok", tracer=graph.tracer, init=graph.init,
                       seconds=seconds, layers=estimate.layers,
                       diagnostics=tuple(sorted(diags, key=_diag_order)), verify=verification)


def _diag_order(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.location.file, d.location.line, d.location.col, d.code)


def selected(report: Report, options: Options) -> list[Diagnostic]:
    """Every diagnostic of the run that --select/--ignore keep and no ``# gradlint: ignore``
    comment suppresses (plus GL100 for stale comments when selected), in file order."""
    from gradlint.suppressions import suppress

    every = list(report.diagnostics) + [d for m in report.models for d in m.diagnostics]
    chosen = [d for d in every if is_selected(d.code, options.select, options.ignore)]
    return sorted(suppress(report, chosen, options.select, options.ignore), key=_diag_order)


def check_model(model: Any, inputs: Any = None, threshold: float = 1e-2) -> ModelReport:
    """The Python API: lint a model object you already built (no file loading)."""
    import torch

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    target = Target(f"<model>::{type(model).__name__}", model, "<model>", 1,
                    tuple(inputs) if inputs is not None else None)
    return check_target(target, Options(threshold=threshold))
