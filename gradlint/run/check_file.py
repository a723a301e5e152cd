"""One file's user-code stages: load -> trace -> estimate -> rules.

This is what runs inside a worker process (gradlint/run/child.py), and in-process for the Python
API; it imports torch, the parent process never does.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gradlint.core.input_specs import spec_text
from gradlint.core.options import DEFAULT_THRESHOLD, Options
from gradlint.core.values import (
    Diagnostic,
    Location,
    ModelReport,
    OpaqueBlock,
    StageError,
    Status,
    Target,
    diagnostic_order,
)
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.lint.registry import diagnostic, run_rules
from gradlint.lint.rule_api import ModelAnalysis
from gradlint.load.importing import user_code
from gradlint.load.sources import exception_site, remember_given_path, user_traceback
from gradlint.load.targets import LoadRequest, load_targets
from gradlint.trace.fx import trace_target

Progress = Callable[[str, Location], None]


def analyse_file(path: str, names: tuple[str, ...], options: Options,
                 progress: Progress | None = None, budget: int | None = None
                 ) -> tuple[list[ModelReport], list[Diagnostic]]:
    """Import ``path``, build its models and check each; a failing target never stops the
    others. ``progress`` hears what is about to run (a worker tells its parent, so a crash
    can be reported at the model it happened in); models with more than ``budget`` bytes of
    parameters are built on the meta device (gradlint/run/memory.py)."""
    remember_given_path(path)
    seed_everything()  # the same file gives the same report, run after run
    if progress:
        progress("importing and building the models", Location(path, 1))
    base = options.config.base if options.config.path else None  # config keys' folder
    loaded = load_targets(LoadRequest(path, names, options.config.targets, options.inputs,
                                      options.meta, budget, base, options.debug))
    if isinstance(loaded, Diagnostic):
        return [], [loaded]
    reports = []
    for t in loaded:
        if isinstance(t, Target) and progress:
            progress(f"tracing and analysing {t.name.rpartition('::')[2]}",
                     Location(t.file, t.line))
        reports.append(check_target(t, options) if isinstance(t, Target) else t)
    return reports, []


def seed_everything(seed: int = 0) -> None:
    """Fix the random init of models built from a file (python, torch; numpy if loaded)."""
    import random
    import sys

    import torch

    random.seed(seed)
    # the CPU generator only: gradlint builds and runs models on the CPU, and torch.manual_seed
    # also queues a seed for every uninitialized accelerator with the caller's stack formatted
    # (~0.5 ms a file, a quarter of checking a small MLP's imports and build)
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_initialized():  # a user's constructor that went to the GPU
        torch.cuda.manual_seed_all(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)


def check_target(target: Target, options: Options) -> ModelReport:
    """trace -> estimate -> rules for one built model."""
    start = time.perf_counter()
    name = target.name.rpartition("::")[2]
    base: dict[str, Any] = {"target": target.name, "name": name, "file": target.file,
                            "line": target.line, "built_as": target.built_as}
    try:
        with user_code():  # forward() may print: keep our stdout for the report
            graph = trace_target(target)
        estimate = estimate_gradients(graph)
        analysis = ModelAnalysis(target.name, estimate, options.threshold,
                                 inputs_inferred=target.inputs is None)
        diags = run_rules(analysis, options.select, options.ignore)
    except StageError as err:
        loc = err.location or Location(target.file, target.line)
        if options.debug and err.__cause__ is not None:  # stderr: a worker's goes to the parent
            print(user_traceback(err.__cause__), file=sys.stderr)
        diag = replace(diagnostic(err.code, err.message, loc, target.name), related=err.related)
        status: Status = "skipped" if diag.severity == "info" else "failed"  # GL902
        return ModelReport(**base, status=status, seconds=time.perf_counter() - start,
                           diagnostics=(diag,))
    except Exception as exc:  # noqa: BLE001 - a gradlint bug must not stop the other targets
        detail = traceback.format_exc() if options.debug else f"{type(exc).__name__}: {exc}"
        user = exception_site(exc, prefer=target.file)
        if user is not None:  # the user's code raised (a __getattr__, a property): not ours
            diag = diagnostic("GL903", f"tracing {name} raised {detail} in the model's own "
                              "code", user, target.name)
        else:
            diag = diagnostic("GL905", f"gradlint failed while analysing {name}: {detail};"
                              " please report this", Location(target.file, target.line),
                              target.name)
        return ModelReport(**base, status="failed", seconds=time.perf_counter() - start,
                           diagnostics=(diag,))
    seconds = time.perf_counter() - start  # the lint itself; verification is extra
    verification = None
    if options.verify:
        from gradlint.verify.compare import verify_model

        with user_code():
            verification = verify_model(target.model, graph.inputs,  # type: ignore[arg-type]
                                        estimate.layers)
    opaque = {n.module: OpaqueBlock.around(n.module, n.label, n.attrs["untraceable"],
                                           estimate.layers)
              for n in estimate.unknown_ops if n.module and n.attrs.get("untraceable")}
    return ModelReport(**base, status="ok", tracer=graph.tracer, init=graph.init,
                       inputs=tuple(spec_text(s) for s in graph.inputs),
                       seconds=seconds, layers=estimate.layers,
                       diagnostics=tuple(sorted(diags, key=diagnostic_order)),
                       verify=verification, opaque=tuple(opaque.values()))


def check_model(model: Any, inputs: Any = None, threshold: float = DEFAULT_THRESHOLD
                ) -> ModelReport:
    """The Python API: lint a model object you already built (no file loading)."""
    import torch

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    target = Target(f"<model>::{type(model).__name__}", model, "<model>", 1,
                    tuple(inputs) if inputs is not None else None)
    return check_target(target, Options(threshold=threshold))
