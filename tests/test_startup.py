"""`gradlint --version`, `rules` and `explain` answer without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from gradlint.cli import main
sys.argv = ["gradlint", *{args!r}]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print("torch imported:", "torch" in sys.modules)
"""


@pytest.mark.parametrize("args", [["--version"], ["rules"], ["explain", "GL101"],
                                  ["rules", "--format", "json"]])
def test_no_torch_at_startup(args: list[str]) -> None:
    run = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True,
                         text=True, check=True)
    assert run.stdout.strip().endswith("torch imported: False"), run.stdout[-300:]
