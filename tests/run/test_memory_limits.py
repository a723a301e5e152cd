"""The worker's address-space limit fits the torch build it runs on (gradlint/run/memory.py): the
CUDA build reserves ~3.2 GiB of address space at import, the CPU wheel ~0.7 GiB, so the default
limit and the smallest accepted ``--max-memory`` are measured, not constants."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from gradlint.run import memory

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

MODEL = """
import torch.nn as nn


class Small{n}(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())
"""


def _files(tmp_path: Path, count: int) -> list[str]:
    names = []
    for n in range(count):
        (tmp_path / f"small{n}.py").write_text("import torch\n" + MODEL.format(n=n))
        names.append(f"small{n}.py")
    return names


@pytest.mark.parametrize("jobs", [8, 16])
def test_many_jobs_with_default_limits_check_models(tmp_path: Path, run_gradlint: Any,
                                                     jobs: int) -> None:
    # the old default (80% of RAM / jobs, at least 2 GiB) was below the CUDA build's import
    proc = run_gradlint(*_files(tmp_path, 2), "--jobs", jobs, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [m["status"] for m in doc["models"]] == ["ok", "ok"]
    assert doc["diagnostics"] == []


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_a_limit_below_the_import_is_a_usage_error_naming_the_floor(
        tmp_path: Path, run_gradlint: Any) -> None:
    proc = run_gradlint(*_files(tmp_path, 2), "--max-memory", "1G", "--format", "json",
                        cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    found = re.search(r"reserves (\d+\.\d) GiB .* smallest limit that can check a model is "
                      r"(\d+\.\d) GiB", proc.stderr)
    assert found, proc.stderr
    footprint, floor = map(float, found.groups())
    assert 0.3 < footprint < floor < 64
    # the floor it names works
    proc = run_gradlint(*_files(tmp_path, 1), "--max-memory", f"{floor + 0.1:.1f}G",
                        "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["models"][0]["status"] == "ok"


@pytest.mark.parametrize("args, expect", [
    (("--max-memory", "-5G"), "--max-memory: cannot read '-5G'"),
    (("--max-memory", "inf"), "--max-memory: cannot read 'inf'"),
    (("--max-memory", "nan"), "--max-memory: cannot read 'nan'"),
    (("--max-memory", "lots"), "--max-memory: cannot read 'lots'"),
    (("--timeout", "nan"), "--timeout must be a number of seconds"),
    (("--timeout", "inf"), "--timeout"),
    (("--timeout", "1e9"), "--timeout"),
])
def test_bad_limits_are_usage_errors(tmp_path: Path, run_gradlint: Any, args: tuple[str, ...],
                                     expect: str) -> None:
    proc = run_gradlint(*_files(tmp_path, 1), *args, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert expect in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("jobs", [1, 2, 8, 16, 64])
def test_the_default_limit_leaves_room_above_the_import(jobs: int) -> None:
    footprint = memory.address_space()
    assert footprint > 0  # /proc tells on Linux
    limit = memory.worker_limit(None, jobs, footprint)
    assert limit >= memory.floor(footprint)
    assert memory.parameter_budget(limit, footprint) == (limit - footprint) // 4
    assert memory.worker_limit(0, jobs, footprint) == 0  # 0: no limit
    assert memory.parameter_budget(0, footprint) is None


def test_the_budget_scales_with_ram_share() -> None:
    ram = memory.physical_memory()
    assert ram > 0
    one = memory.worker_limit(None, 1, 1 << 30)
    assert one == (1 << 30) + int(ram * memory.RAM_SHARE) and os.cpu_count()
