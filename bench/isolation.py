"""Per-file overhead of a fresh process per file, against an earlier commit's gradlint.

Writes a tree of small model files (Linear and Conv stacks that fx traces), unpacks the
baseline commit with ``git archive`` into a temporary folder, and times the whole command on
the tree with ``--jobs 1`` and ``--jobs 2``, the two checkouts in turn (so both see the same
load on a shared machine), ``--runs`` times each. Prints the medians and the ratio this
checkout / baseline; the isolation issue's target is at most 1.15.

Run:  python -m bench.isolation [--baseline REV] [--files 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LINEAR = """import torch
import torch.nn as nn


class Mlp{i}(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Sequential(nn.Linear({w}, {w}), nn.ReLU())
                                      for _ in range({depth})])
        self.head = nn.Linear({w}, 2)

    def forward(self, x):
        return self.head(self.layers(x))
"""

CONV = """import torch
import torch.nn as nn


class Cnn{i}(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, {w}, 3, padding=1), nn.ReLU(),
                                  *[nn.Sequential(nn.Conv2d({w}, {w}, 3, padding=1),
                                                  nn.BatchNorm2d({w}), nn.ReLU())
                                    for _ in range({depth})])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear({w}, 10)

    def forward(self, x):
        return self.head(self.pool(self.body(x)).flatten(1))
"""


def write_tree(folder: Path, count: int) -> None:
    for i in range(count):
        text = (LINEAR if i % 2 else CONV).format(i=i, w=8 + 8 * (i % 4), depth=2 + i % 5)
        (folder / f"model_{i:03d}.py").write_text(text)


def time_command(checkout: Path, tree: Path, jobs: int) -> float:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if checkout != ROOT:  # this checkout runs installed: its rules/ maps to gradlint.rules
        env["PYTHONPATH"] = str(checkout)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from gradlint.cli import main; main()",
                           str(tree), "--jobs", str(jobs), "--quiet", "--format", "json"],
                          env=env, cwd=tree, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode not in (0, 1) or '"status": "ok"' not in proc.stdout:
        raise SystemExit(f"{checkout}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="ddb0ae9",
                        help="commit with the reused worker (default: the one before the "
                        "fork server)")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import gradlint
    if Path(gradlint.__file__).resolve().parent.parent != ROOT:
        raise SystemExit(f"gradlint is imported from {gradlint.__file__}: install this checkout "
                         "(pip install -e .) to time it")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        tree = Path(tmp) / "tree"
        base.mkdir()
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        if not (base / "gradlint" / "rules").exists():
            # else an editable install of this checkout lends the baseline its rules/
            (base / "gradlint" / "rules").symlink_to(base / "rules")
        write_tree(tree, args.files)
        sides = {"baseline": base, "this checkout": ROOT}
        print(f"{args.files} files; baseline {args.baseline}; {args.runs} runs each, "
              "alternated; seconds for the whole command")
        for jobs in (1, 2):
            times: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(args.runs):
                for name, checkout in sides.items():
                    times[name].append(time_command(checkout, tree, jobs))
            old = statistics.median(times["baseline"])
            new = statistics.median(times["this checkout"])
            print(f"--jobs {jobs}: baseline {old:.2f} s {fmt(times['baseline'])}, this checkout "
                  f"{new:.2f} s {fmt(times['this checkout'])}: ratio {new / old:.3f} "
                  f"({'PASS' if new / old <= 1.15 else 'FAIL'}: <= 1.15)")


def fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


if __name__ == "__main__":
    main()
