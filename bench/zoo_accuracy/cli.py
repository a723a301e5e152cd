"""The command line of the zoo accuracy benchmark (``python -m bench.zoo_accuracy``)."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

import gradlint
from bench.zoo_accuracy import records, report, specs, truth

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "bench" / "results" / "zoo_accuracy.md"
TIMEOUT_S = 900.0


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.zoo_accuracy",
                                description="gradlint's per-layer estimate against measured "
                                "ground truth on real model zoos")
    p.add_argument("--quick", action="store_true",
                   help="the CI subset: ~10 small models across families")
    p.add_argument("--family", action="append", default=[],
                   help="only this family (repeatable; case-insensitive): "
                        + ", ".join(specs.FAMILIES))
    p.add_argument("--models", default=None,
                   help="only models whose name contains one of these comma-separated "
                        "substrings (case-insensitive), e.g. 'resnet,hf/'")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="Markdown report; the JSON records go beside it (.json)")
    p.add_argument("--cache", type=Path, default=None,
                   help=f"ground-truth cache folder (default ${truth.ENV}, else "
                        "~/.cache/gradlint-bench/zoo)")
    p.add_argument("--seed", type=int, default=0, help="model, input and loss seed (0)")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S,
                   help="seconds per model before it is recorded as failed")
    p.add_argument("--max-params", type=float, default=specs.MAX_PARAMS,
                   help="torchvision models above this many parameters are left out")
    p.add_argument("--list", action="store_true", help="print the selected models and exit")
    return p.parse_args(list(argv))


def select(args: argparse.Namespace) -> tuple[list[specs.ZooModel], list[str]]:
    if args.quick:
        # the quick subset never needs the torchvision size scan
        tv, left = specs.torchvision_models(None)
        zoo = [m for m in [*specs.classic_models(), *specs.hf_models(), *specs.timm_models(),
                           *tv] if m.quick]
        left = []
    else:
        zoo, left = specs.all_models(int(args.max_params))
    if args.family:
        wanted = {f.lower() for f in args.family}
        unknown = wanted - {f.lower() for f in specs.FAMILIES}
        if unknown:
            raise SystemExit(f"unknown family {sorted(unknown)}; one of {specs.FAMILIES}")
        zoo = [m for m in zoo if m.family.lower() in wanted]
    if args.models:
        pats = [p.strip().lower() for p in args.models.split(",") if p.strip()]
        zoo = [m for m in zoo if any(p in m.name.lower() for p in pats)]
        left = [n for n in left if any(p in n.lower() for p in pats)]
    return zoo, left


def machine() -> str:
    import timm
    import torchvision
    import transformers

    return (f"{platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, torch {torch.__version__}, torchvision "
            f"{torchvision.__version__}, timm {timm.__version__}, transformers "
            f"{transformers.__version__}, gradlint {gradlint.__version__}")


def revision() -> str:
    """The commit gradlint ran from, and whether gradlint's own files differed from it (a
    shared checkout: the estimate is the working tree's). ``$GRADLINT_BENCH_REVISION`` says it
    instead for a run from an exported tree (``git archive``), which has no git metadata."""
    import subprocess

    if os.environ.get("GRADLINT_BENCH_REVISION"):
        return os.environ["GRADLINT_BENCH_REVISION"]

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "gradlint", "rules")
    n = len(dirty.splitlines())
    return head + (f" with {n} uncommitted file(s) in gradlint/ or rules/" if n else "")


def _load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "—"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    zoo, left = select(args)
    if args.list:
        for m in zoo:
            print(f"{m.name:50s} {m.family:20s} {m.input_desc}")
        print(f"{len(zoo)} models; left out: {len(left)}")
        return 0
    cache = truth.cache_dir(args.cache)
    started = datetime.datetime.now()
    load0 = _load()
    t0 = time.perf_counter()
    recs: list[records.ModelRecord] = []
    for i, m in enumerate(zoo):
        r = records.run_model(m, args.seed, cache, args.timeout)
        recs.append(r)
        s = report.compute([r])
        status = (f"FAILED at {r.stage}: {r.error}" if r.error else
                  f"{s.layers} layers, Spearman {report.fmt(s.spearman, 3)}, mean err "
                  f"{report.fmt(s.mean_err)}" + (" (cached)" if r.cached else ""))
        print(f"[{i + 1}/{len(zoo)}] {m.name}: {status} ({r.seconds:.1f} s)", flush=True)
    seconds = time.perf_counter() - t0

    measured = [r for r in recs if r.measure_seconds is not None]
    fresh = [r for r in measured if not r.cached]
    cold = sum(r.measure_seconds or 0.0 for r in measured)
    est = sum(r.estimate_seconds or 0.0 for r in recs)
    cmd = "python -m bench.zoo_accuracy" + ("" if not argv else " " + " ".join(argv))
    rev = revision()
    header = [
        f"- date: {started:%Y-%m-%d %H:%M} (local)",
        f"- machine: {machine()}",
        f"- command: `{cmd}`; gradlint at {rev}",
        f"- load average (1/5/15 min) at the start {load0}, at the end {_load()} (the machine "
        "is shared: times are wall times under that load)",
        f"- this run: {seconds:.0f} s ({seconds / 60:.1f} min) for {len(recs)} models; "
        f"{len(fresh)} measured now, {len(measured) - len(fresh)} from the cache; gradlint "
        f"itself {est:.0f} s",
        f"- ground truth: {cold:.0f} s ({cold / 60:.1f} min) of measurement in all, as "
        "recorded when each was measured (what a cold cache costs, besides building models)",
        "- protocol: `bench/zoo_accuracy/truth.py`, docs/design.md's *Ground truth*: float64, "
        "train mode, dropout (and drop-path, stochastic depth, layer drop) 0, loss "
        "Σ_b ⟨g_b, y_b⟩ with g_b ~ N(0, I) on the primary output; per-example gradients "
        "(torch.func, in chunks) where the model does not mix examples and has ≤ "
        f"{truth.PER_EXAMPLE_MAX_PARAMS / 1e6:.0f} M parameters, else the batch gradient × √B; "
        f"one seed ({args.seed}) for the model, the input and g; default init of each library.",
        "- estimate: `gradlint.check(model, inputs=...)` in-process on the same model and "
        "input (float32).",
    ]
    md = report.markdown(recs, header, left)
    js = report.to_json(recs, {"command": cmd, "date": started.isoformat(timespec="seconds"),
                               "machine": machine(), "gradlint_revision": rev,
                               "seed": args.seed,
                               "seconds": round(seconds, 1), "left_out": left})
    jpath = report.write(args.out, md, js)
    pooled = report.compute(recs)
    print(f"pooled: {pooled.layers} layers, Spearman {report.fmt(pooled.spearman, 3)}, mean "
          f"err {report.fmt(pooled.mean_err)}, max {report.fmt(pooled.max_err)}; "
          f"{pooled.failed} failed; {seconds:.0f} s")
    for fam in report.families(recs):
        s = report.compute([r for r in recs if r.family == fam])
        print(f"  {fam:20s} {s.models:3d} models {s.layers:5d} layers  Spearman "
              f"{report.fmt(s.spearman, 3):>6s}  mean err {report.fmt(s.mean_err)}")
    print(f"wrote {args.out} and {jpath}")
    return 0
