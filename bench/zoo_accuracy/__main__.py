"""Zoo accuracy benchmark: gradlint's per-layer estimate against measured ground truth on real
model zoos (torchvision, timm, Hugging Face) and the classic failures.

Run:  python -m bench.zoo_accuracy [--quick] [--family F] [--models PATTERN] [--out PATH]
      [--cache DIR] [--seed N] [--list]
Writes ``--out`` (Markdown, default bench/results/zoo_accuracy.md) and the per-layer records as
JSON beside it. The ground truth is cached outside the repository (``--cache``, else
``$GRADLINT_BENCH_CACHE``, else ``~/.cache/gradlint-bench/zoo``): only the first run pays for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.zoo_accuracy.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
