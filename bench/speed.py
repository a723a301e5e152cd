"""Speed benchmark: is gradlint cheap enough for every commit, next to what it replaces?

For each model (MLPs of 10/100/1,000 layers, DenseNet-201, ResNet-50, a 24-block transformer and
the Llama-3 70B config on ``meta``, subclassed and held in a wrapper; bench/speed_models.py) it
measures, each model in its own subprocess so peak RSS is per model:

- the time of every stage, calling the stage functions directly: load (import, build), sources
  (construction sites, fx stack traces -> lines, libcst spans), trace (fx or torch.export, shape
  propagation, conversion to the LayerGraph), estimate, rules, report (suppressions, text, JSON);
- bare ``torch.fx.symbolic_trace`` of the same model (``torch.export`` where fx fails), a freshly
  built model each run as in gradlint's own runs (and, for reference, one model traced again and
  again), and one forward+backward pass at batch 8 (the dynamic alternative; "does not fit" where
  it cannot run);

then times the ``gradlint`` command itself (ResNet-50 and the 70B config from model files with
``example_inputs()``, bench/speed_resnet50.py, bench/speed_llama70b.py and
bench/speed_llama70b_wrapped.py; ``--version``)
against a bare ``python -c "import torch"``. Medians of ``--runs`` runs (default 5; a model whose
runs take milliseconds gets up to 25 within a second); the first run's total (cold imports and
caches) is also shown. gradlint's stages run on one torch thread, as its worker does; the
forward+backward baseline keeps all of them. The two ratio targets take
both sides in turn (MLP 100 / 1,000 layers; the command, a bare torch import, a training step),
so that both see the same load on a shared machine. Prints the table and the issue-7 targets
with PASS/FAIL and writes bench/results/speed.md.

Run:  python -m bench.speed [--runs N] [--only mlp100,resnet50] [--out FILE]
Not part of the test suite (tests/estimate/test_scaling.py checks the linear scaling by
counting visits).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODELS_FILE = ROOT / "bench" / "speed_models.py"
DEFAULT_OUT = ROOT / "bench" / "results" / "speed.md"
RESULT = "SPEED-RESULT "  # prefix of the one JSON line a child prints


@dataclass(frozen=True)
class Spec:
    key: str
    factory: str  # a no-argument factory in bench/speed_models.py
    label: str
    input: str  # gradlint's example input (--input syntax); batch 8 for the dynamic pass
    meta: bool = False  # too big to build: on the meta device, no forward/backward


SPECS = (
    Spec("mlp10", "MLP10", "MLP, 10 layers (Linear+Tanh, width 256)", "1x256"),
    Spec("mlp100", "MLP100", "MLP, 100 layers", "1x256"),
    Spec("mlp1000", "MLP1000", "MLP, 1,000 layers", "1x256"),
    Spec("densenet", "DenseNet201", "DenseNet-201 (201 layers), 224²", "1x3x224x224"),
    Spec("resnet50", "ResNet50", "ResNet-50, 224²", "1x3x224x224"),
    Spec("transformer", "Transformer24", "Transformer, 24 blocks (d 256, 64 tokens)",
         "1x64:int64"),
    Spec("llama70b", "Llama70B", "Llama-3 70B config on meta (16 tokens)", "1x16:int64",
         meta=True),
    Spec("llama70b_wrapped", "WrappedLlama70B", "the same, held in a wrapper module",
         "1x16:int64", meta=True),
)
BY_KEY = {s.key: s for s in SPECS}
STAGES = ("load", "sources", "trace", "estimate", "rules", "report")


# A model whose run takes milliseconds gets more runs than ``--runs``: as many as fit in this
# many seconds, up to MAX_RUNS. Its median then moves less with the machine's noise (the
# 10-layer MLP's bare trace, ~2 ms, moved by 20% between runs of five).
BUDGET = 1.0
MAX_RUNS = 25


def more(done: int, runs: int, spent: float) -> bool:
    """Another run? At least ``runs``; beyond that while cheap (``spent`` seconds so far)."""
    return done < runs or (done < MAX_RUNS and spent < BUDGET)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------------------------
# Child: gradlint's stages on one model
# --------------------------------------------------------------------------------------------


class SourceTimer:
    """Accumulates the time spent mapping layers and ops to source lines, by wrapping the
    functions that do it, so the source row can be subtracted from load and trace."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed

    def install(self) -> None:
        import gradlint.load.construction_sites as construction
        import gradlint.trace.ir_builder as ir_builder
        import gradlint.trace.shapes as shapes

        recorder = construction.SiteRecorder
        recorder.note = self.wrap(recorder.note)  # type: ignore[method-assign]
        recorder.sites_of = self.wrap(recorder.sites_of)  # type: ignore[method-assign]
        shapes.trace_site = self.wrap(shapes.trace_site)  # a failed shape pass's site
        ir_builder.trace_site = self.wrap(ir_builder.trace_site)  # both converters' calls


@contextmanager
def stage(times: dict[str, float], name: str, sources: SourceTimer) -> Iterator[None]:
    """Time one stage, moving the source-mapping time spent inside it to ``sources``."""
    before = sources.seconds
    start = time.perf_counter()
    yield
    spent = sources.seconds - before
    times[name] = time.perf_counter() - start - spent
    times["sources"] = times.get("sources", 0.0) + spent


def analyse_once(spec: Spec, sources: SourceTimer) -> tuple[dict[str, float], dict[str, Any]]:
    from gradlint.core.options import DEFAULT_THRESHOLD, Options
    from gradlint.core.values import ModelReport, Report, Target
    from gradlint.estimate.sweeps import estimate_gradients
    from gradlint.lint.registry import run_rules
    from gradlint.lint.rule_api import ModelAnalysis
    from gradlint.load.importing import user_code
    from gradlint.load.targets import LoadRequest, load_targets
    from gradlint.report.json import to_json
    from gradlint.report.text import to_text
    from gradlint.run.pipeline import selected
    from gradlint.trace.fx import trace_target

    times: dict[str, float] = {}
    with stage(times, "load", sources):
        loaded = load_targets(LoadRequest(str(MODELS_FILE), (spec.factory,),
                                          inputs=(spec.input,)))
    targets = [t for t in loaded if isinstance(t, Target)] if isinstance(loaded, list) else []
    if not targets:
        raise RuntimeError(f"gradlint could not load {spec.factory}: {loaded!r}")
    target = targets[0]
    with stage(times, "trace", sources), user_code():
        graph = trace_target(target)
    with stage(times, "estimate", sources):
        estimate = estimate_gradients(graph)
    with stage(times, "rules", sources):
        diags = run_rules(ModelAnalysis(target.name, estimate, DEFAULT_THRESHOLD))
    with stage(times, "report", sources):
        model = ModelReport(target=target.name, name=spec.factory, file=target.file,
                            line=target.line, status="ok", tracer=graph.tracer,
                            init=graph.init, layers=estimate.layers, diagnostics=tuple(diags))
        report = Report((model,), ())
        chosen = selected(report, Options(threshold=DEFAULT_THRESHOLD))
        text = to_text(report, chosen, DEFAULT_THRESHOLD)
        doc = to_json(report, chosen)
    info = {"nodes": len(graph.nodes), "layers": len(estimate.layers), "tracer": graph.tracer,
            "init": graph.init, "diagnostics": len(chosen), "bytes": len(text) + len(doc)}
    return times, info


def child_analyse(spec: Spec, runs: int) -> dict[str, Any]:
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)  # as gradlint's worker runs (gradlint/run/server.py)
    sources = SourceTimer()
    sources.install()
    samples: list[dict[str, float]] = []
    info: dict[str, Any] = {}
    spent = 0.0
    while more(len(samples), runs, spent):  # the first run also pays the imports: its total
        times, info = analyse_once(spec, sources)  # is shown alone
        samples.append(times)
        spent += sum(times.values())
        gc.collect()
    out = {name: median([s[name] for s in samples]) for name in STAGES}
    first = sum(samples[0][name] for name in STAGES)
    return {"stages": out, "first": first, "rss_mb": peak_rss_mb(), **info,
            "total_samples": [sum(s[n] for n in STAGES) for s in samples]}


def child_scaling(runs: int) -> dict[str, Any]:
    """MLP100 and MLP1000 analysed in turn, so both see the same load on a shared machine."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    sources = SourceTimer()
    sources.install()
    totals: dict[str, list[float]] = {"mlp100": [], "mlp1000": []}
    for key in totals:  # imports and caches warm, so the first model is not charged for them
        analyse_once(BY_KEY[key], sources)
    for _ in range(runs):
        for key, samples in totals.items():
            times, _ = analyse_once(BY_KEY[key], sources)
            samples.append(sum(times[n] for n in STAGES))
            gc.collect()
    return {key: median(samples) for key, samples in totals.items()}


# --------------------------------------------------------------------------------------------
# Child: what gradlint is compared with
# --------------------------------------------------------------------------------------------


def _build(spec: Spec) -> Any:
    import torch

    from bench import speed_models

    factory = getattr(speed_models, spec.factory)
    if spec.meta:
        with torch.device("meta"):
            return factory()
    return factory()


def _inputs(spec: Spec, batch: int, meta: bool) -> tuple[Any, ...]:
    from gradlint.load.given_inputs import parse_input

    shape, _, dtype = spec.input.partition(":")
    spec_text = "x".join([str(batch), *shape.split("x")[1:]]) + (f":{dtype}" if dtype else "")
    t = parse_input(spec_text)
    return (t.to("meta") if meta else t,)


def _primary(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    return next(o for o in out if isinstance(o, torch.Tensor))


def child_baseline(spec: Spec, runs: int) -> dict[str, Any]:
    import warnings

    import torch
    import torch.fx as fx

    warnings.filterwarnings("ignore")
    model = _build(spec)
    tracer = "fx"
    traces: list[float] = []
    hot: list[float] = []
    try:
        # as gradlint's stages are timed (child_analyse): each run a freshly built model, after
        # the previous run's garbage is collected; the first run also pays fx's imports
        while more(len(traces), runs, sum(traces)):
            gc.collect()
            fresh = _build(spec) if traces else model
            start = time.perf_counter()
            fx.symbolic_trace(fresh)
            traces.append(time.perf_counter() - start)
        for _ in range(runs):  # the same model again and again: every cache holds its trace
            start = time.perf_counter()
            fx.symbolic_trace(model)
            hot.append(time.perf_counter() - start)
    except Exception:  # noqa: BLE001 - fx cannot trace it: gradlint uses torch.export too
        tracer, traces, hot = "export", [], []
        model.train()
        inputs = _inputs(spec, 1, spec.meta)
        for _ in range(runs):
            start = time.perf_counter()
            with torch.no_grad():
                torch.export.export(model, inputs, strict=False)
            traces.append(time.perf_counter() - start)
    result: dict[str, Any] = {"bare_tracer": tracer, "bare_trace": median(traces),
                              "bare_trace_hot": median(hot) if hot else None,
                              "bare_runs": len(traces), "fwd_bwd": None,
                              "params": sum(p.numel() for p in model.parameters())}
    if spec.meta:
        return result  # 70B parameters: the dynamic pass needs ~1 TB for weights and grads
    model.train()
    inputs = _inputs(spec, 8, False)
    passes = []
    for _ in range(runs):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        _primary(model(*inputs)).float().square().mean().backward()
        passes.append(time.perf_counter() - start)
    result["fwd_bwd"] = median(passes)
    return result


def child_step(spec: Spec) -> dict[str, Any]:
    """One forward+backward pass at batch 8 after a warm-up one (interleaved with the command
    runs, so the two see the same load)."""
    import torch

    model = _build(spec)
    model.train()
    inputs = _inputs(spec, 8, False)
    seconds = 0.0
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        _primary(model(*inputs)).float().square().mean().backward()
        seconds = time.perf_counter() - start
    return {"fwd_bwd": seconds, "threads": torch.get_num_threads()}


def run_child(mode: str, spec: Spec, runs: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--only", spec.key,
           "--runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT):
            return dict(json.loads(line[len(RESULT):]))
    raise RuntimeError(f"{mode} {spec.key} failed (exit {proc.returncode}):\n"
                       f"{proc.stderr[-3000:]}")


# --------------------------------------------------------------------------------------------
# The gradlint command
# --------------------------------------------------------------------------------------------


def gradlint_command() -> str:
    """The console script installed beside this interpreter (no pyenv/conda shim in between)."""
    beside = Path(sys.executable).parent / "gradlint"
    if beside.exists():
        return str(beside)
    import shutil

    return shutil.which("gradlint") or "gradlint"


def timed_process(cmd: list[str], ok: Sequence[int] = (0,)) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the process and the children it waited for)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"})
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{err[-3000:].decode()}")
    return wall, usage.ru_maxrss / 1024.0


RESNET_COMMAND = ["bench/speed_resnet50.py::ResNet50", "--quiet"]
LLAMA_COMMAND = ["bench/speed_llama70b.py::Llama70B", "--quiet", "--format", "json"]
WRAPPED_COMMAND = ["bench/speed_llama70b_wrapped.py::WrappedLlama70B", "--quiet", "--format",
                   "json"]


def command_times(runs: int, keys: set[str]) -> dict[str, Any]:
    exe = gradlint_command()
    out: dict[str, Any] = {"gradlint": exe}

    def median_of(cmd: list[str], n: int, ok: Sequence[int] = (0,)) -> tuple[float, float]:
        samples = [timed_process(cmd, ok) for _ in range(n)]
        return median([s[0] for s in samples]), max(s[1] for s in samples)

    out["version"], _ = median_of([exe, "--version"], max(runs, 10))
    if "resnet50" in keys:
        # rounds of: the command, a bare torch import, one training step; the target compares
        # medians taken under the same load
        spec = BY_KEY["resnet50"]
        rounds: dict[str, list[float]] = {"cli": [], "torch": [], "step": [], "input": []}
        rss = 0.0
        for _ in range(runs):
            wall, peak = timed_process([exe, *RESNET_COMMAND], ok=(0, 1))
            rounds["cli"].append(wall)
            rss = max(rss, peak)
            rounds["torch"].append(timed_process([sys.executable, "-c", "import torch"])[0])
            rounds["step"].append(run_child("step", spec, 1)["fwd_bwd"])
            rounds["input"].append(timed_process(  # the same model, --input on the command line
                [exe, f"{MODELS_FILE.relative_to(ROOT)}::{spec.factory}", "--input",
                 spec.input, "--quiet"], ok=(0, 1))[0])
        out["resnet50_cli"], out["resnet50_cli_rss"] = median(rounds["cli"]), rss
        out["import_torch"] = median(rounds["torch"])
        out["resnet50_step"] = median(rounds["step"])
        out["resnet50_cli_input"] = median(rounds["input"])
    else:
        out["import_torch"], _ = median_of([sys.executable, "-c", "import torch"], runs)
    if "llama70b" in keys:
        with tempfile.TemporaryDirectory() as tmp:
            out["llama_cli"], out["llama_cli_rss"] = median_of(
                [exe, *LLAMA_COMMAND, "--output", os.path.join(tmp, "r.json")], runs,
                ok=(0, 1))
    if "llama70b_wrapped" in keys:
        with tempfile.TemporaryDirectory() as tmp:
            out["wrapped_cli"], out["wrapped_cli_rss"] = median_of(
                [exe, *WRAPPED_COMMAND, "--output", os.path.join(tmp, "r.json")], runs,
                ok=(0, 1))
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def ms(x: float | None) -> str:
    if x is None:
        return "does not fit"
    return f"{x * 1e3:,.0f}" if x >= 0.1 else f"{x * 1e3:.1f}"


def machine() -> dict[str, str]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        ram = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        ram = "?"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "ram": ram, "torch": torch.__version__,
            "python": platform.python_version(), "os": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def stage_table(specs: Sequence[Spec], rows: dict[str, dict[str, Any]]) -> list[list[str]]:
    head = ["model", "nodes", *STAGES, "total", "first run", "peak RSS MB",
            "bare trace", "(estimate+rules) / trace", "fwd+bwd b8", "total / fwd+bwd"]
    table = [head]
    for s in specs:
        r = rows[s.key]
        st = r["stages"]
        total = sum(st.values())
        ratio = (st["estimate"] + st["rules"]) / r["bare_trace"]
        fb = r["fwd_bwd"]
        table.append([s.label, f"{r['nodes']:,}", *(ms(st[n]) for n in STAGES), ms(total),
                      ms(r["first"]), f"{r['rss_mb']:,.0f}",
                      f"{ms(r['bare_trace'])} ({r['bare_tracer']}"
                      + (f"; {ms(r['bare_trace_hot'])} hot)" if r.get("bare_trace_hot") else ")"),
                      f"{ratio:.0%}",
                      ms(fb), "—" if fb is None else f"{total / fb:.2f}×"])
    return table


def targets(specs: Sequence[Spec], rows: dict[str, dict[str, Any]], cmd: dict[str, Any],
            scaling: dict[str, float]) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    ratios = {s.key: (rows[s.key]["stages"]["estimate"] + rows[s.key]["stages"]["rules"])
              / rows[s.key]["bare_trace"] for s in specs}
    if ratios:
        worst = max(ratios, key=lambda k: ratios[k])
        out.append(("estimate + rules ≤ 25% of bare tracing, every model",
                    f"worst {ratios[worst]:.0%} ({BY_KEY[worst].factory}); "
                    + ", ".join(f"{BY_KEY[k].factory} {v:.0%}" for k, v in ratios.items()),
                    ratios[worst] <= 0.25))
    if scaling:
        t100, t1000 = scaling["mlp100"], scaling["mlp1000"]
        out.append(("1,000-layer MLP total ≤ 12× the 100-layer one",
                    f"{t1000 / t100:.1f}× ({ms(t1000)} / {ms(t100)} ms, analysed in turn)",
                    t1000 / t100 <= 12))
    if "resnet50_cli" in cmd:
        net = cmd["resnet50_cli"] - cmd["import_torch"]
        fb = cmd["resnet50_step"]
        out.append(("`gradlint` on ResNet-50 − `import torch` ≤ 0.5× one fwd+bwd at batch 8",
                    f"{net / fb:.2f}× (({ms(cmd['resnet50_cli'])} − {ms(cmd['import_torch'])})"
                    f" / {ms(fb)} ms, in turn)", net / fb <= 0.5))
    if "llama_cli" in cmd:
        out.append(("70B Llama config end to end < 20 s and < 3 GB peak RSS",
                    f"{cmd['llama_cli']:.1f} s, {cmd['llama_cli_rss'] / 1024:.2f} GB",
                    cmd["llama_cli"] < 20 and cmd["llama_cli_rss"] < 3 * 1024))
    if "wrapped_cli" in cmd:
        out.append(("70B Llama config in a wrapper end to end < 20 s and < 3 GB peak RSS",
                    f"{cmd['wrapped_cli']:.1f} s, {cmd['wrapped_cli_rss'] / 1024:.2f} GB",
                    cmd["wrapped_cli"] < 20 and cmd["wrapped_cli_rss"] < 3 * 1024))
    if "version" in cmd:
        out.append(("`gradlint --version` < 0.3 s", f"{cmd['version']:.3f} s",
                    cmd["version"] < 0.3))
    return out


def render(table: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(table[0]) + " |",
                 "|" + "|".join("---" if i == 0 else "--:" for i in range(len(table[0]))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                     for row in table)


def write_markdown(path: Path, info: dict[str, str], table: list[list[str]],
                   goals: list[tuple[str, str, bool]], cmd: dict[str, Any], runs: int,
                   load: tuple[str, str], seconds: float, busy: float) -> None:
    """``busy``: the 5-minute load average at the end when above the core count, else 0."""
    lines = [
        "# Speed benchmark",
        "",
        f"`python -m bench.speed --runs {runs}` on {info['date']}: {info['cpu']}, "
        f"{info['cores']} cores, {info['ram']} RAM, torch {info['torch']}, Python "
        f"{info['python']} ({info['os']}). Load average {load[0]} at the start, {load[1]} at "
        f"the end (the machine is shared); the run took {seconds / 60:.1f} min.",
        *([] if not busy else [
            "",
            f"**Caution: the machine was busy** (load average {busy:.1f} on {info['cores']} "
            "cores). Timings then vary several-fold from run to run, and torch's multi-threaded "
            "training step suffers more from the load than gradlint's single-threaded worker, "
            "which favours gradlint in the comparison with it."]),
        "",
        "## Targets (issue 7)",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *(f"| {name} | {value} | **{'PASS' if ok else 'FAIL'}** |" for name, value, ok in goals),
        "",
        "## Stages (milliseconds, medians)",
        "",
        render(table, markdown=True),
        "",
        "- Stages are gradlint's own functions called in-process, each model in its own "
        "subprocess (peak RSS is that process's, torch included). *sources*: construction "
        "sites, fx stack traces to lines, call spans from the file's syntax tree (moved out of "
        "load and trace). "
        "*first run*: the first run's total, with imports and caches cold. One torch thread, "
        "as gradlint's worker runs.",
        "- *bare trace*: `torch.fx.symbolic_trace` of the same model (`torch.export` where fx "
        "fails, as gradlint does) in a separate process, timed as gradlint's stages are: each "
        "run traces a freshly built model after the previous run's garbage is collected, and "
        "a model whose runs take milliseconds gets up to 25 of them (the stages too). *hot*: "
        "one model traced again and again, every cache holding its last trace (how this "
        "column was measured before 2026-11-27; no user traces a model that way, and on the "
        "small MLPs it is 10-25% faster). fx's time includes the Python code it generates for "
        "the GraphModule, which gradlint's trace skips; gradlint's trace row also runs the "
        "model once for shapes and converts the graph. "
        "*(estimate+rules) / trace*: over the fresh-model trace. The estimate and the rules are "
        "timed where they run, right after gradlint's trace, with the CPU caches holding the "
        "trace's data (on the 10-layer MLP about a third of their time goes to reloading "
        "their own).",
        "- *fwd+bwd b8*: one forward and backward pass at batch 8 in train mode (the dynamic "
        "alternative), with torch's default threads; the 70B config does not fit in RAM "
        "(gradlint builds it on `meta`).",
        "",
        "## The `gradlint` command (wall time, medians)",
        "",
        f"- `gradlint --version`: {cmd.get('version', float('nan')):.3f} s",
        f"- `python -c \"import torch\"`: {cmd.get('import_torch', float('nan')):.2f} s",
        *command_lines(cmd),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def command_lines(cmd: dict[str, Any]) -> list[str]:
    """The measured commands' lines of the markdown report."""
    lines: list[str] = []
    if "resnet50_cli" in cmd:
        lines.append(f"- `gradlint {' '.join(RESNET_COMMAND)}` (input from `example_inputs()`): "
                     f"{cmd['resnet50_cli']:.2f} s, peak RSS {cmd['resnet50_cli_rss']:,.0f} MB")
        lines.append(f"- the same model with `--input 1x3x224x224` instead: "
                     f"{cmd['resnet50_cli_input']:.2f} s")
        lines.append(f"- one forward+backward pass of ResNet-50 at batch 8, in turn with the "
                     f"two above: {cmd['resnet50_step']:.2f} s")
    if "llama_cli" in cmd:
        lines.append(f"- `gradlint {' '.join(LLAMA_COMMAND)}`: {cmd['llama_cli']:.2f} s, peak "
                     f"RSS {cmd['llama_cli_rss']:,.0f} MB (the largest of gradlint's processes)")
    if "wrapped_cli" in cmd:
        lines.append(f"- `gradlint {' '.join(WRAPPED_COMMAND)}`: {cmd['wrapped_cli']:.2f} s, "
                     f"peak RSS {cmd['wrapped_cli_rss']:,.0f} MB")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--only", default="", help="comma-separated model keys: "
                        + ",".join(BY_KEY))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--no-command", action="store_true", help="skip the gradlint command")
    parser.add_argument("--child", choices=("analyse", "baseline", "scaling", "step"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.only.split(",") if k.strip()] or list(BY_KEY)
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        parser.error(f"unknown model {unknown}; choose from {', '.join(BY_KEY)}")
    if args.child:
        spec = BY_KEY[keys[0]]
        result = {"analyse": lambda: child_analyse(spec, args.runs),
                  "baseline": lambda: child_baseline(spec, args.runs),
                  "scaling": lambda: child_scaling(args.runs),
                  "step": lambda: child_step(spec)}[args.child]()
        print(RESULT + json.dumps(result), flush=True)
        return 0

    start = time.perf_counter()
    loads = [os.getloadavg()]
    load_start = " / ".join(f"{x:.1f}" for x in loads[0])
    specs = [BY_KEY[k] for k in keys]
    rows: dict[str, dict[str, Any]] = {}
    for s in specs:
        print(f"{s.label} ...", file=sys.stderr, flush=True)
        rows[s.key] = {**run_child("analyse", s, args.runs), **run_child("baseline", s, args.runs)}
    scaling: dict[str, float] = {}
    if {"mlp100", "mlp1000"} <= set(keys):
        print("MLP 100 vs 1,000 layers, in turn ...", file=sys.stderr, flush=True)
        scaling = run_child("scaling", BY_KEY["mlp100"], args.runs)
    cmd: dict[str, Any] = {}
    if not args.no_command:
        print("the gradlint command ...", file=sys.stderr, flush=True)
        cmd = command_times(args.runs, set(keys))
    seconds = time.perf_counter() - start
    loads.append(os.getloadavg())
    load_end = " / ".join(f"{x:.1f}" for x in loads[1])
    during = loads[1][1]  # the 5-minute average at the end: most of the run, this one included
    busy = during if during > (os.cpu_count() or 1) else 0.0
    info = machine()
    table = stage_table(specs, rows)
    goals = targets(specs, rows, cmd, scaling)
    print(render(table, markdown=False))
    print()
    for name, value, ok in goals:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")
    print(f"\n{info['cpu']}, {info['cores']} cores, {info['ram']}, torch {info['torch']}, "
          f"{info['date']}; load {load_start} -> {load_end}; {seconds / 60:.1f} min")
    if not args.no_write:
        write_markdown(args.out, info, table, goals, cmd, args.runs, (load_start, load_end),
                       seconds, busy)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
