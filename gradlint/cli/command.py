"""``gradlint PATH...``: the command line. Imports torch only when it has a model to check."""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import click

from gradlint.core.options import DEFAULT_THRESHOLD, DEFAULT_TIMEOUT
from gradlint.core.version import __version__
from gradlint.report.formats import FORMATS

EXIT_OK, EXIT_FINDINGS, EXIT_FAILED = 0, 1, 2
MAX_TIMEOUT = 7 * 24 * 3600.0  # a week: anything longer is a typo, and overflows the clock


class _DefaultCheck(click.Group):
    """``gradlint model.py`` runs the check; ``gradlint rules`` / ``explain`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h",
                                                                     "--version"):
            args = ["check", *args]
        elif not args:
            args = ["check"]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gradlint")
def main() -> None:
    """Find vanishing-gradient risk in PyTorch model code before training."""


@main.command("check")
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt",
              type=click.Choice(list(FORMATS)),
              default="text", show_default=True, help="Output format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report here.")
@click.option("--select", default="", help="Comma-separated rule codes or prefixes (GL1).")
@click.option("--ignore", default="", help="Comma-separated rule codes or prefixes to skip.")
@click.option("--threshold", type=float, default=None,
              help=f"GL101's attenuation threshold (default {DEFAULT_THRESHOLD:g}).")
@click.option("--input", "inputs", multiple=True, metavar="SHAPE[:DTYPE]",
              help="Example input, e.g. 8x3x224x224 or 2x128:int64 (repeatable).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when rules find problems.")
@click.option("--quiet", "-q", is_flag=True, help="Only the diagnostics, no charts.")
@click.option("--meta", is_flag=True,
              help="Build models on the meta device (no memory; default-init statistics).")
@click.option("--verify", is_flag=True,
              help="Also measure each layer's gradient with autograd and compare.")
@click.option("--fix", is_flag=True,
              help="Apply the fixes (all unsafe: needs --unsafe-fixes), then re-check.")
@click.option("--diff", is_flag=True,
              help="Print the fixes as a unified diff instead of writing them.")
@click.option("--unsafe-fixes", "unsafe_fixes", is_flag=True,
              help="Allow fixes that change the model (replacing activations).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Check this many files in parallel (output order stays by path).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True, max=MAX_TIMEOUT),
              default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds allowed per file before it becomes GL905.")
@click.option("--max-memory", "max_memory", metavar="SIZE", default=None,
              help="Address-space limit per worker, e.g. 8G or 512M; 0 for none (default: what "
              "importing torch reserves plus 80%% of RAM split over --jobs).")
@click.option("--baseline", metavar="FILE", type=click.Path(dir_okay=False),
              help="Report only findings not in FILE; writes FILE first if it does not exist.")
@click.option("--update-baseline", "update_baseline", is_flag=True,
              help="Rewrite the --baseline FILE with the current findings.")
@click.option("--debug", is_flag=True, help="Show gradlint's own tracebacks.")
def check(paths: tuple[str, ...], fmt: str, output: str | None, select: str, ignore: str,
          threshold: float | None, inputs: tuple[str, ...], exit_zero: bool, quiet: bool,
          meta: bool, verify: bool, jobs: int, timeout: float, max_memory: str | None,
          debug: bool, fix: bool = False, diff: bool = False,
          unsafe_fixes: bool = False, baseline: str | None = None,
          update_baseline: bool = False) -> None:
    """Check model files and directories (PATH or PATH::Model)."""
    config = _validate(paths, output, baseline, update_baseline, timeout, select, ignore,
                       threshold, inputs)
    from gradlint.core.options import Options

    options = Options(
        select=_codes(select) or config.select, ignore=_codes(ignore) or config.ignore,
        threshold=threshold if threshold is not None else config.threshold,
        inputs=inputs, exclude=config.exclude, debug=debug, verify=verify, meta=meta,
        config=config, jobs=jobs, timeout=timeout, max_memory=_size(max_memory))
    report, missing = _check_paths(paths, options)
    for path in missing:
        click.echo(f"gradlint: error: {path}: no such file or directory", err=True)
    from gradlint.run.pipeline import selected

    diags = selected(report, options)
    if fix or diff:
        to_fix = diags
        if baseline and not update_baseline and os.path.isfile(baseline):
            from gradlint.lint.baseline import BaselineError, apply_baseline

            try:  # what the baseline hides is accepted as it is: leave it unfixed
                to_fix = apply_baseline(baseline, report, diags).shown
            except BaselineError as exc:
                _usage(str(exc))
        from gradlint.lint.autofix import fix_or_diff

        if fix_or_diff(paths, to_fix, diff, unsafe_fixes):  # files changed: show what remains
            report, missing = _check_paths(paths, options)
            diags = selected(report, options)
    if baseline:
        diags = _apply_baseline(baseline, report, diags, update_baseline)
    if not diff:
        _write_report(fmt, report, diags, options.threshold, quiet, output)
    sys.exit(exit_code(report, diags, exit_zero, bool(missing)))


def _validate(paths: tuple[str, ...], output: str | None, baseline: str | None,
              update_baseline: bool, timeout: float, select: str, ignore: str,
              threshold: float | None, inputs: tuple[str, ...]) -> Any:
    """Usage errors before anything runs; the project's configuration."""
    if not paths:
        _usage("no paths given; try `gradlint model.py`")
    if not math.isfinite(timeout):
        _usage(f"--timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}], not {timeout}")
    if update_baseline and not baseline:
        _usage("--update-baseline needs --baseline FILE")
    _refuse_overwrite(paths, output, baseline)
    config = _project_config()
    _check_codes("--select", select)
    _check_codes("--ignore", ignore)
    if threshold is not None and not 0 < threshold < 1:
        _usage("--threshold must be in (0, 1)")
    from gradlint.core.input_specs import parse_spec

    for spec in inputs:
        try:
            parse_spec(spec)
        except ValueError as exc:
            _usage(str(exc))
    return config


def _check_paths(paths: tuple[str, ...], options: Any) -> tuple[Any, list[str]]:
    """The run (gradlint/run/pipeline.py); a bad --input or a too small --max-memory is a
    usage error, an interrupt exits 128 + the signal."""
    from gradlint.run.memory import LimitTooSmall
    from gradlint.run.pipeline import check_paths

    try:
        return check_paths(paths, options)
    except (ValueError, LimitTooSmall) as exc:  # a malformed --input, a limit below the floor
        _usage(str(exc))
        raise
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (pool.Terminated)
        click.echo("gradlint: interrupted", err=True)
        sys.exit(128 + getattr(exc, "signum", 2))


def _write_report(fmt: str, report: Any, diags: list[Any], threshold: float, quiet: bool,
                  output: str | None) -> None:
    """The report in ``fmt`` (report/formats.py) to ``output`` or stdout."""
    from gradlint.report.emitter import Settings
    from gradlint.report.formats import emit
    from gradlint.report.term import use_color

    color = FORMATS[fmt].color and not output and use_color(sys.stdout)
    text = emit(fmt, report, diags, Settings(threshold, quiet, color))
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            _usage(f"cannot write --output {output}: {exc.strerror or exc}")
    else:
        click.echo(text, nl=False, color=color or None)


def exit_code(report: Any, diags: list[Any], exit_zero: bool, usage_error: bool) -> int:
    """2: something could not be checked (or bad usage); 1: a warning/error finding; else 0."""
    failed = any(m.status == "failed" for m in report.models) or any(
        d.code.startswith("GL9") and d.severity == "error" for d in report.diagnostics)
    if failed or usage_error:
        return EXIT_FAILED
    if not exit_zero and any(d.severity in ("error", "warning") for d in diags):
        return EXIT_FINDINGS
    return EXIT_OK


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str | None) -> int | None:
    """``8G``, ``512M``, ``1.5G``, ``0`` (no limit) -> bytes. The smallest limit that works is
    measured by the worker (gradlint/run/memory.py): importing torch reserves 0.7-3.2 GiB of
    address space, by build."""
    if text is None:
        return None
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    try:
        number = float(raw[: len(raw) - len(unit)])
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and 0 <= number * _UNITS[unit] < 1 << 62):
        _usage(f"--max-memory: cannot read {text!r}; use a size such as 8G or 512M "
               "(0 for no limit)")
    return int(number * _UNITS[unit])


def _project_config() -> Any:
    """``[tool.gradlint]`` of the nearest pyproject.toml, its extend-rules loaded (usage error
    when either is broken)."""
    from gradlint.cli.config import ConfigError, load_config
    from gradlint.lint.registry import check_config_codes, use_config_rules

    try:
        config = load_config(".")
        use_config_rules(config)
        check_config_codes(config)
    except ConfigError as exc:
        _usage(str(exc))
    return config


def _same_file(a: str, b: str) -> bool:
    """One file under two names: the same real path, or (hard links) the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # either does not exist (yet), or a name with a NUL
        return False


def _refuse_overwrite(paths: tuple[str, ...], output: str | None, baseline: str | None) -> None:
    """``--output`` and ``--baseline`` are written after the check: one that names a file
    being checked (a PATH, or a ``.py`` under a PATH folder) would replace the user's code
    with a report, and one file cannot be both."""
    for option, target in (("--output", output), ("--baseline", baseline)):
        if not target:
            continue
        real = os.path.realpath(target)
        for arg in paths:
            path = arg.partition("::")[0]  # as pipeline.split_target
            if os.path.isdir(path):
                folder = os.path.join(os.path.realpath(path), "")
                if real.endswith(".py") and real.startswith(folder):
                    _usage(f"{option} {target} is a .py file in {path}, which is being "
                           "checked; write it elsewhere")
            elif _same_file(target, path):
                _usage(f"{option} {target} is {arg}, which is being checked; write it "
                       "elsewhere")
    if output and baseline and _same_file(output, baseline):
        _usage(f"--output {output} and --baseline {baseline} are the same file")


def _apply_baseline(path: str, report: Any, diags: list[Any], update: bool) -> list[Any]:
    """The findings not in the baseline (gradlint/lint/baseline.py); the tally goes to stderr."""
    from gradlint.lint.baseline import BaselineError, apply_baseline

    try:
        outcome = apply_baseline(path, report, diags, update)
    except BaselineError as exc:
        _usage(str(exc))
        raise
    click.echo(outcome.summary(path), err=True)
    return outcome.shown


def _codes(text: str) -> tuple[str, ...]:
    return tuple(c.strip().upper() for c in text.split(",") if c.strip())


def _check_codes(option: str, text: str) -> None:
    """A usage error for a code that matches no rule (extend-rules loaded by then)."""
    from gradlint.lint.registry import unknown_code

    problem = unknown_code(text.split(","))
    if problem:
        _usage(f"{option}: {problem}")


def _usage(message: str) -> None:
    click.echo(f"gradlint: error: {message}", err=True)
    sys.exit(EXIT_FAILED)


@main.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def rules_cmd(fmt: str) -> None:
    """List the rules: code, name, default severity, summary."""
    from gradlint.lint.registry import discover_rules

    _project_config()  # extend-rules

    if fmt == "json":
        import json

        click.echo(json.dumps([{"code": i.rule.code, "name": i.rule.name,
                                "severity": i.rule.severity,
                                "enabled_by_default": bool(i.rule.enabled_by_default),
                                "summary": i.rule.summary} for i in discover_rules()], indent=2))
        return
    for info in discover_rules():
        r = info.rule
        state = "" if r.enabled_by_default else " (off by default)"
        click.echo(f"{r.code}  {r.name:<22} {r.severity:<8} {r.summary}{state}")


@main.command("explain")
@click.argument("code")
def explain_cmd(code: str) -> None:
    """Print a rule's documentation page."""
    from gradlint.lint.registry import rule_by_code

    _project_config()  # extend-rules

    info = rule_by_code(code)
    if info is None:
        _usage(f"unknown rule {code!r}; `gradlint rules` lists them")
        return
    click.echo(info.readme)
