"""Everything a user's file can get wrong becomes a GL9xx diagnostic at the right line, never a
traceback, and never stops the other files of the run (README, "What gradlint runs").

One run of the installed command over a directory of broken files and one good file.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

FILES = {
    "a_syntax.py": """
        import torch.nn as nn


        class Net(nn.Module):
            def forward(self, x)  # MARK
                return x
        """,
    "b_import.py": """
        import torch.nn as nn

        import not_a_real_module_xyz  # MARK


        class Net(nn.Module):
            def forward(self, x):
                return x
        """,
    "c_constructor.py": """
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                raise RuntimeError("boom in constructor")  # MARK

            def forward(self, x):
                return self.fc(x)
        """,
    "d_untraceable.py": """
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                x = self.fc(x)
                if x.sum() > 0:  # MARK
                    return x
                return -x
        """,
    "e_system_exit.py": """
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x)


        raise SystemExit(3)  # MARK
        """,
    "f_training_script.py": """
        import pathlib

        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x)


        for epoch in range(1):  # MARK
            pathlib.Path(__file__).with_name("TRAINING_RAN").write_text("ran")
        """,
    "g_good.py": """
        import torch
        import torch.nn as nn


        class Good(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(8, 8)
                self.fc2 = nn.Linear(8, 2)

            def forward(self, x):
                return self.fc2(torch.relu(self.fc1(x)))
        """,
}


def mark_line(folder: Path, name: str) -> int:
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, start=1) if "# MARK" in text)


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory, run_gradlint: Any
            ) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    folder = tmp_path_factory.mktemp("bad_input")
    for name, source in FILES.items():
        (folder / name).write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    proc = run_gradlint(folder.name, "--format", "json", cwd=folder.parent)
    return folder, proc, json.loads(proc.stdout)


def diags_for(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [d for d in doc["diagnostics"] if Path(d["file"]).name == name]


def only(doc: dict[str, Any], name: str, code: str, severity: str = "error") -> dict[str, Any]:
    found = diags_for(doc, name)
    assert [(d["code"], d["severity"]) for d in found] == [(code, severity)], found
    return found[0]


def models_for(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [m for m in doc["models"] if Path(m["file"]).name == name]


def test_exit_code_and_no_traceback(bad_run: Any) -> None:
    _, proc, doc = bad_run
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout
    assert "Traceback" not in proc.stderr
    assert doc["summary"]["failed"] == 2  # the constructor and the untraceable model


def test_syntax_error(bad_run: Any) -> None:
    folder, _, doc = bad_run
    diag = only(doc, "a_syntax.py", "GL900")
    assert diag["line"] == mark_line(folder, "a_syntax.py")
    assert not models_for(doc, "a_syntax.py")


def test_import_error(bad_run: Any) -> None:
    folder, _, doc = bad_run
    diag = only(doc, "b_import.py", "GL901")
    assert diag["line"] == mark_line(folder, "b_import.py")
    assert "not_a_real_module_xyz" in diag["message"]


def test_constructor_raises(bad_run: Any) -> None:
    folder, _, doc = bad_run
    diag = only(doc, "c_constructor.py", "GL906")
    assert diag["line"] == mark_line(folder, "c_constructor.py")
    assert "boom in constructor" in diag["message"]
    (model,) = models_for(doc, "c_constructor.py")
    assert model["status"] == "failed"
    assert "layers" not in model


def test_untraceable_forward(bad_run: Any) -> None:
    folder, _, doc = bad_run
    diag = only(doc, "d_untraceable.py", "GL903")
    assert diag["line"] == mark_line(folder, "d_untraceable.py")
    (model,) = models_for(doc, "d_untraceable.py")
    assert model["status"] == "failed"


def test_system_exit_at_import(bad_run: Any) -> None:
    folder, _, doc = bad_run
    diag = only(doc, "e_system_exit.py", "GL901")
    assert diag["line"] == mark_line(folder, "e_system_exit.py")
    assert "SystemExit" in diag["message"]


def test_training_script_is_not_imported(bad_run: Any) -> None:
    folder, _, doc = bad_run
    diag = only(doc, "f_training_script.py", "GL907", severity="info")
    assert diag["line"] == mark_line(folder, "f_training_script.py")
    assert not (folder / "TRAINING_RAN").exists()
    assert not models_for(doc, "f_training_script.py")


def test_good_file_still_checked(bad_run: Any) -> None:
    _, _, doc = bad_run
    (model,) = models_for(doc, "g_good.py")
    assert model["status"] == "ok"
    assert model["name"] == "Good"
    assert {layer["module"] for layer in model["layers"]} == {"fc1", "fc2"}
    assert not diags_for(doc, "g_good.py")


SHAPE_MISMATCH = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(4, 4)

    def forward(self, x):
        h = self.a(x)
        return self.b(h)  # MARK
"""


@pytest.fixture(scope="module")
def forward_raises(tmp_path_factory: pytest.TempPathFactory, run_gradlint: Any
                   ) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    """A forward() that raises on the example input (a shape mismatch between two layers)."""
    folder = tmp_path_factory.mktemp("forward_raises")
    (folder / "mismatch.py").write_text(SHAPE_MISMATCH.lstrip("\n"), encoding="utf-8")
    proc = run_gradlint("mismatch.py", "--format", "json", cwd=folder)
    return folder, proc, json.loads(proc.stdout)


def test_forward_raising_is_gl903(forward_raises: Any) -> None:
    folder, proc, doc = forward_raises
    assert proc.returncode == 2
    (diag,) = doc["diagnostics"]
    assert diag["code"] == "GL903"
    assert [m["status"] for m in doc["models"]] == ["failed"]
    assert diag["line"] == mark_line(folder, "mismatch.py")  # where it broke, in forward()


def test_forward_raising_prints_no_traceback(forward_raises: Any) -> None:
    _, proc, _ = forward_raises
    assert "Traceback" not in proc.stdout
    assert "Traceback" not in proc.stderr
