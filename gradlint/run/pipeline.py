"""Runs the stages in order over the files of a run; the only place that knows their order.

The parent process never imports torch or the user's code: it walks the paths, applies the
static pre-filter, and hands every file that must be imported to a worker (gradlint/run/pool.py),
which runs load -> trace -> estimate -> rules (gradlint/run/check_file.py) and sends the reports
back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from gradlint.core.options import Config, FileJob, Options
from gradlint.core.values import Diagnostic, Location, ModelReport, Report, diagnostic_order
from gradlint.lint.registry import diagnostic, is_selected
from gradlint.load.prefilter import prefilter_file
from gradlint.load.walk import find_source_files, path_order


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
    results: list[tuple[list[ModelReport], list[Diagnostic]] | FileJob] = [
        plan_file(path, names, options) for path, names in order]
    jobs = [r for r in results if isinstance(r, FileJob)]
    if jobs:
        from gradlint.run.pool import run_jobs

        done = iter(run_jobs(jobs, options))
        results = [next(done) if isinstance(r, FileJob) else r for r in results]
    models: list[ModelReport] = []
    diags: list[Diagnostic] = []
    for result in results:
        assert not isinstance(result, FileJob)
        models.extend(result[0])
        diags.extend(result[1])
    return Report(tuple(models), tuple(diags)), missing


def _configured_names(path: str, config: Config) -> tuple[str, ...]:
    here = os.path.abspath(path)
    base = os.path.dirname(config.path) if config.path else os.getcwd()
    return tuple(key.partition("::")[2] for key in config.targets
                 if os.path.abspath(os.path.join(base, key.partition("::")[0])) == here)


def plan_file(path: str, names: tuple[str, ...], options: Options
              ) -> tuple[list[ModelReport], list[Diagnostic]] | FileJob:
    """What the static pre-filter decides without running the file: a result, or a job."""
    names = names or _configured_names(path, options.config)
    verdict = prefilter_file(path)
    if verdict.verdict == "syntax-error":
        return [], [diagnostic("GL900", f"syntax error: {verdict.reason}",
                               Location(path, verdict.line, verdict.col))]
    if not names:
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
