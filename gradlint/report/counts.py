"""What a run examined and checked, for every format's summary: files by outcome, models by
status, and the weight layers left without an estimate, each with the reason. A run that
checked nothing, or a model most of whose layers were never estimated, must say so rather
than read as "no problems"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gradlint.core.rule_catalogue import rule_by_code
from gradlint.core.values import ModelReport, Report, RunCounts

NO_MODEL = "no-model"  # the pre-filter's reason: the file defines or builds no nn.Module


@dataclass(frozen=True)
class ModelCounts:
    """Models by status; ``skipped`` and ``failed`` by the code of the diagnostic saying why
    (GL902 needs configuration; GL903 trace failed, GL905 worker failed, GL906 construction)."""

    checked: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)


def model_counts(models: Sequence[ModelReport]) -> ModelCounts:
    skipped: dict[str, int] = {}
    failed: dict[str, int] = {}
    for m in models:
        if m.status != "ok":
            tally = skipped if m.status == "skipped" else failed
            code = m.diagnostics[0].code if m.diagnostics else "unknown"
            tally[code] = tally.get(code, 0) + 1
    return ModelCounts(sum(1 for m in models if m.status == "ok"), skipped, failed)


def unestimated(models: Sequence[ModelReport]) -> tuple[int, int, int]:
    """Over the checked models: weight layers without an estimate, all weight layers, and the
    opaque blocks (GL904) the former are in."""
    checked = [m for m in models if m.status == "ok"]
    return (sum(m.unestimated for m in checked), sum(m.weight_layers for m in checked),
            sum(1 for m in checked for b in m.opaque if b.layers))


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def reason(code: str) -> str:
    """``GL907`` -> ``not imported: GL907`` (the rule's name, from its folder)."""
    if code == NO_MODEL:
        return "without a model"
    info = rule_by_code(code)
    return f"{info.rule.name.replace('-', ' ')}: {code}" if info else code


def _by_reason(word: str, tally: dict[str, int]) -> str:
    """``9 skipped (8 without a model, 1 not imported: GL907)``; one reason: no count."""
    total = sum(tally.values())
    if len(tally) == 1:
        return f"{total} {word} ({reason(next(iter(tally)))})"
    return f"{total} {word} ({', '.join(f'{n} {reason(c)}' for c, n in tally.items())})"


def files_part(counts: RunCounts) -> str:
    """``12 files examined: 3 imported, 9 skipped (…)``."""
    parts = [f"{counts.imported} imported"]
    parts += [_by_reason(word, tally) for word, tally in
              (("skipped", counts.skipped), ("failed", counts.failed)) if tally]
    return f"{plural(counts.examined, 'file')} examined: {', '.join(parts)}"


def models_part(models: Sequence[ModelReport]) -> str:
    """``4 models checked, 1 skipped (needs configuration: GL902)``."""
    counts = model_counts(models)
    parts = [f"{plural(counts.checked, 'model')} checked"]
    parts += [_by_reason(word, tally) for word, tally in
              (("skipped", counts.skipped), ("failed", counts.failed)) if tally]
    return ", ".join(parts)


def counts_line(report: Report) -> str | None:
    """What the run examined, or None for a report that was not a run over files."""
    if report.counts is None:
        return None
    return f"{files_part(report.counts)}; {models_part(report.models)}."


def estimate_part(models: Sequence[ModelReport]) -> str | None:
    """``10 of 11 weight layers have no estimate (…); Wrapper is mostly unchecked``, or None
    when every weight layer of the checked models has one."""
    missing, total, blocks = unestimated(models)
    if not missing:
        return None
    text = (f"{missing} of {total} weight layers have no estimate ({plural(blocks, 'block')} "
            "neither torch.fx nor torch.export could trace: GL904)")
    mostly = [m.name for m in models if m.status == "ok" and m.mostly_unestimated]
    if mostly:
        names = ", ".join(mostly[:-1]) + " and " + mostly[-1] if len(mostly) > 1 else mostly[0]
        text += f"; {names} {'is' if len(mostly) == 1 else 'are'} mostly unchecked"
    return text


def model_estimate_line(m: ModelReport) -> str | None:
    """Under a model's chart: how many of its layers have no estimate and why."""
    if not m.unestimated:
        return None
    most = " (most of this model)" if m.mostly_unestimated else ""
    why = "; ".join(f"block {b.module} ({b.type}): {b.reason}" for b in m.opaque if b.layers)
    return (f"{m.unestimated} of {m.weight_layers} weight layers{most} have no estimate, "
            f"inside blocks neither torch.fx nor torch.export could trace (GL904): {why}")
