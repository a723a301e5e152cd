"""The wheel carries the built-in rules: build it, install it in a fresh venv, lint with it."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_in_the_wheel() -> None:
    """pyproject lists the packages (the rules folder is mapped in), so a new subpackage must be
    added there: the slow wheel test below is the only other place that would notice."""
    from gradlint.cli.config import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "gradlint").rglob("__init__.py")}
    assert folders <= listed, sorted(folders - listed)


@pytest.mark.slow
def test_wheel_carries_rules_and_lints_from_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(ROOT)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("gradlint-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for folder in (p.name for p in (ROOT / "rules").iterdir() if (p / "check.py").exists()):
        for part in ("check.py", "README.md", "bad.py", "good.py"):
            assert f"gradlint/rules/{folder}/{part}" in names

    env = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env)
    py = env / "bin" / "python"
    # pip from the outer interpreter installs into the venv (torch comes from system site)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                    "-q", str(wheel)], check=True)
    where = subprocess.run([str(py), "-c", "import gradlint.lint.registry as e; "
                            "print(e.discover_rules()[0].folder)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert str(env) in where.stdout, where.stdout
    run = subprocess.run([str(env / "bin" / "gradlint"), str(ROOT / "examples" / "deep_sigmoid.py"),
                          "--quiet"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "GL101" in run.stdout
