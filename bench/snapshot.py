"""The JSON reports of every model the project ships, against a stored copy.

A restructure must not change a single number or message: this checks every model of the zoo
(``tests/models``), the examples, each rule's ``good.py``/``bad.py`` and ``tests/data`` with
one ``gradlint --format json`` command and compares the document with
``tests/data/snapshot.json``, except timing (``seconds``) and where installed libraries live.
A change that is meant to move numbers rewrites the snapshot with ``--write``, and says so in its
commit.

Run:  python -m bench.snapshot [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STORED = ROOT / "tests" / "data" / "snapshot.json"


def targets() -> list[str]:
    """Every file with models the project ships, relative to the project root, sorted."""
    found = ["tests/models", "examples"]
    found += sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("rules/*/*.py")
                    if p.name in ("good.py", "bad.py"))
    found += sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "data").glob("*.py"))
    return found


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, str):
        for name in ("purelib", "platlib"):
            value = value.replace(sysconfig.get_paths()[name], f"<{name}>")
    return value


def report() -> dict[str, Any]:
    """Today's report, normalised."""
    done = subprocess.run([sys.executable, "-m", "gradlint", *targets(), "--format", "json"],
                          cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))
    if done.returncode not in (0, 1, 2) or not done.stdout.startswith("{"):
        raise SystemExit(f"gradlint failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    normalised: dict[str, Any] = _normalised(json.loads(done.stdout))
    return normalised


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Where two documents differ, as JSON paths with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in old or key not in new:
                found.append(f"{where}/{key}: only in {'new' if key in new else 'stored'}")
            else:
                found += differences(old[key], new[key], f"{where}/{key}")
        return found
    if isinstance(old, list) and isinstance(new, list):
        found = [] if len(old) == len(new) else [f"{where}: {len(old)} -> {len(new)} items"]
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            found += differences(a, b, f"{where}/{i}")
        return found
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store today's report")
    args = parser.parse_args(argv)
    now = report()
    if args.write:
        STORED.write_text(json.dumps(now, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {STORED.relative_to(ROOT)}: {len(now['models'])} models, "
              f"{len(now['diagnostics'])} diagnostics")
        return 0
    stored = json.loads(STORED.read_text(encoding="utf-8"))
    found = differences(stored, now)
    for line in found[:40]:
        print(line)
    if len(found) > 40:
        print(f"... and {len(found) - 40} more")
    print(f"{len(now['models'])} models, {len(now['diagnostics'])} diagnostics: "
          + ("identical to the snapshot" if not found else f"{len(found)} differences"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
