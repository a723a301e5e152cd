"""Runs the stages in order over the files of a run; the only place that knows their order.

The parent process never imports torch or the user's code: it walks the paths, applies the
static pre-filter, and hands every file that must be imported to a worker (gradlint/run/pool.py),
which runs load -> trace -> estimate -> rules (gradlint/run/check_file.py) and sends the reports
back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from gradlint.core.options import Config, FileJob, Options
from gradlint.core.values import (
    Diagnostic,
    Location,
    ModelReport,
    Report,
    RunCounts,
    diagnostic_order,
)
from gradlint.lint.registry import diagnostic, is_selected
from gradlint.load.prefilter import prefilter_file
from gradlint.load.walk import find_source_files, path_order

Result = tuple[list[ModelReport], list[Diagnostic]]  # a file's models and its own diagnostics


def split_target(arg: str) -> tuple[str, str | None]:
    """``model.py::Net`` -> ("model.py", "Net")."""
    path, sep, name = arg.partition("::")
    return path, (name or None) if sep else None


def check_paths(args: Sequence[str], options: Options) -> tuple[Report, list[str]]:
    """Lint files and directories; returns the report and the paths that do not exist.

    Files are reported in path order, whatever order the workers finish in."""
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
    order.sort(key=lambda item: path_order(item[0]))
    if order:  # the server imports torch (~2 s) while the pre-filter reads the files
        from gradlint.run.pool import prestart

        prestart(len(order), options)
    plans = [plan_file(path, names, options) for path, names in order]
    jobs = [r for r in plans if isinstance(r, FileJob)]
    done: Iterator[Result] = iter(())
    if jobs:
        from gradlint.run.pool import run_jobs

        done = iter(run_jobs(jobs, options))
    results = [(next(done), True) if isinstance(r, FileJob) else (r, False) for r in plans]
    models: list[ModelReport] = []
    diags: list[Diagnostic] = []
    for (found, file_diags), _ in results:
        models.extend(found)
        diags.extend(file_diags)
    return Report(tuple(models), tuple(diags), count_files(results)), missing


def count_files(results: Sequence[tuple[Result, bool]]) -> RunCounts:
    """Each examined file's outcome, from its result and whether it was sent to a worker:
    a GL9xx error means it failed (syntax, import, worker), a file the pre-filter kept back
    is skipped (GL907 when it does work at import, ``no-model`` when it has no nn.Module)."""
    imported = 0
    skipped: dict[str, int] = {}
    failed: dict[str, int] = {}
    for (_, file_diags), sent in results:
        error = next((d for d in file_diags if d.code.startswith("GL9")
                      and d.severity == "error"), None)
        if error is not None:
            failed[error.code] = failed.get(error.code, 0) + 1
        elif sent:
            imported += 1
        else:
            why = next((d.code for d in file_diags), "no-model")
            skipped[why] = skipped.get(why, 0) + 1
    return RunCounts(len(results), imported, skipped, failed)


def _configured_names(path: str, config: Config) -> tuple[str, ...]:
    here = os.path.abspath(path)
    base = os.path.dirname(config.path) if config.path else os.getcwd()
    return tuple(key.partition("::")[2] for key in config.targets
                 if os.path.abspath(os.path.join(base, key.partition("::")[0])) == here)


def plan_file(path: str, names: tuple[str, ...], options: Options) -> Result | FileJob:
    """What the static pre-filter decides without running the file: a result, or a job.

    Naming a target (``file.py::Name``) checks only that model; configuring one under
    ``[tool.gradlint.targets]`` imports the file whatever the pre-filter says, like naming it,
    but adds to what discovery finds instead of restricting it."""
    verdict = prefilter_file(path)
    if verdict.verdict == "syntax-error":
        return [], [diagnostic("GL900", f"syntax error: {verdict.reason}",
                               Location(path, verdict.line, verdict.col))]
    if not names and not _configured_names(path, options.config):
        if verdict.verdict == "no-model":
            return [], []
        if verdict.verdict == "does-work":
            return [], [diagnostic(
                "GL907", f"not imported: {verdict.reason}; put that code under "
                "`if __name__ == \"__main__\":` or name a target (file.py::Model)",
                Location(path, verdict.line, verdict.col))]
    return FileJob(path, names)


def selected(report: Report, options: Options) -> list[Diagnostic]:
    """Every diagnostic of the run that --select/--ignore and per-file-ignores keep and no
    ``# gradlint: ignore`` comment suppresses (plus GL100 for stale comments when selected),
    in file order."""
    from gradlint.lint.per_file_ignores import PerFileIgnores
    from gradlint.lint.suppressions import suppress

    per_file = PerFileIgnores(options.config.per_file_ignores, options.config.base)
    every = list(report.diagnostics) + [d for m in report.models for d in m.diagnostics]
    chosen = [d for d in every if is_selected(d.code, options.select, options.ignore)
              and not per_file.ignores(d.code, d.location.file)]
    return sorted(suppress(report, chosen, options.select, options.ignore, per_file),
                  key=diagnostic_order)
