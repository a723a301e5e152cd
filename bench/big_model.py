"""Lint a 70B-parameter Llama-architecture config end to end on the meta device.

Prints wall time and the peak RSS of the gradlint process (the largest of gradlint's
processes: it runs in one). Target (issue 3): < 20 s and < 3 GB on a 2-core, 24 GB machine.
Run: python bench/big_model.py
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time

MODEL = '''
from transformers import LlamaConfig, LlamaForCausalLM


class Llama70B(LlamaForCausalLM):
    def __init__(self):
        super().__init__(LlamaConfig(
            hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
            num_attention_heads=64, num_key_value_heads=8, vocab_size=128256, use_cache=False))
'''


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "llama70b.py")
        with open(path, "w") as f:
            f.write(MODEL)
        cmd = ["/usr/bin/time", "-v", "gradlint", path, "--input", "1x16:int64", "--quiet",
               "--format", "json", "--output", os.path.join(tmp, "report.json")]
        start = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - start
        peak_kb = next((int(line.split(":")[1]) for line in run.stderr.splitlines()
                        if "Maximum resident set size" in line), 0)
        import json

        with open(os.path.join(tmp, "report.json")) as f:
            report = json.load(f)
    model = report["models"][0]
    params = sum(layer["numel"] for layer in model["layers"])
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"Llama 70B config: {params / 1e9:.1f}B parameters, {len(model['layers'])} layers, "
          f"status {model['status']}, tracer {model['tracer']}, init {model['init']}")
    print(f"wall time {wall:.1f} s (target < 20 s); peak RSS {peak_kb / 1e6:.2f} GB "
          f"(target < 3 GB); exit code {run.returncode}")
    return 0 if model["status"] == "ok" and wall < 20 and peak_kb < 3e6 else 1


if __name__ == "__main__":
    sys.exit(main())
