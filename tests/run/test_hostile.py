"""Hostile and odd inputs (issue 6): each case runs through the installed command beside a good
file and must give a clear diagnostic or a correct result, the right exit code, and still
check the good file. Worker failures (hang, segfault, os._exit, memory) become GL905."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

GOOD = """
import torch
import torch.nn as nn


class Good(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))
"""

HEADER = "import torch\nimport torch.nn as nn\n\n\n"


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def mark(path: Path) -> int:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return next(i for i, text in enumerate(lines, start=1) if "# MARK" in text)


def run(tmp_path: Path, run_gradlint: Any, files: dict[str, str | bytes], *args: str,
        targets: tuple[str, ...] = ("case",)) -> tuple[subprocess.CompletedProcess[str],
                                                       dict[str, Any]]:
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    (folder / "zz_good.py").write_text(source(GOOD), encoding="utf-8")
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(source(text), encoding="utf-8")
    proc = run_gradlint(*targets, "--format", "json", *args, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, json.loads(proc.stdout)


def codes(doc: dict[str, Any], name: str) -> list[str]:
    return [d["code"] for d in doc["diagnostics"] if Path(d["file"]).name == name]


def model(doc: dict[str, Any], target_end: str) -> dict[str, Any]:
    (found,) = [m for m in doc["models"] if m["target"].endswith(target_end)]
    return found


def good_checked(doc: dict[str, Any]) -> None:
    m = model(doc, "zz_good.py::Good")
    assert m["status"] == "ok" and len(m["layers"]) == 2


# ------------------------------------------------------------------ files that are not models


def test_empty_file(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {"empty.py": ""},
                    targets=("case/empty.py", "case/zz_good.py"))
    assert proc.returncode == 0 and codes(doc, "empty.py") == []
    good_checked(doc)


def test_file_with_no_models(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {"helpers.py": HEADER + "WIDTH = 8\n"})
    assert proc.returncode == 0 and codes(doc, "helpers.py") == []
    assert not [m for m in doc["models"] if "helpers" in m["target"]]
    good_checked(doc)


def test_binary_file(tmp_path: Path, run_gradlint: Any) -> None:
    blob = bytes(range(256)) * 4
    proc, doc = run(tmp_path, run_gradlint, {"blob.py": blob})
    assert proc.returncode == 2 and codes(doc, "blob.py") == ["GL900"]
    good_checked(doc)


def test_non_utf8_file(tmp_path: Path, run_gradlint: Any) -> None:
    text = (HEADER + "# caf\xe9\nclass Net(nn.Module):\n    pass\n").encode("latin-1")
    proc, doc = run(tmp_path, run_gradlint, {"latin.py": text})
    assert proc.returncode == 2 and codes(doc, "latin.py") == ["GL900"]
    (diag,) = [d for d in doc["diagnostics"] if d["code"] == "GL900"]
    assert diag["line"] == 5 and "utf-8" in diag["message"]
    good_checked(doc)


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_directory_tree_of_200_files(tmp_path: Path, run_gradlint: Any) -> None:
    files: dict[str, str] = {}
    for i in range(200):
        where = f"pkg{i % 5}/sub{i % 3}/m{i:03d}.py"
        files[where] = (HEADER + f"class Net{i}(nn.Module):\n    def __init__(self):\n"
                        f"        super().__init__()\n        self.fc = nn.Linear(4, {i % 7 + 1})"
                        "\n\n    def forward(self, x):\n        return self.fc(x)\n"
                        if i % 10 == 0 else f"VALUE = {i}\n")
    proc, doc = run(tmp_path, run_gradlint, files, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    targets = [m["target"] for m in doc["models"]]
    assert len(targets) == 21 and all(m["status"] == "ok" for m in doc["models"])
    assert targets == sorted(targets, key=lambda t: Path(t.partition("::")[0]).parts)
    good_checked(doc)


def test_missing_path(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {}, targets=("case/nope.py", "case"))
    assert proc.returncode == 2
    assert "case/nope.py: no such file or directory" in proc.stderr
    good_checked(doc)


# ------------------------------------------------------------------ user mistakes


def test_syntax_error(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {"bad.py": HEADER + "def f(:  # MARK\n"})
    assert proc.returncode == 2 and codes(doc, "bad.py") == ["GL900"]
    good_checked(doc)


def test_import_of_a_missing_package(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {
        "bad.py": HEADER + "import no_such_package_xyz  # MARK\n\n\nclass N(nn.Module):\n"
                  "    pass\n"})
    assert proc.returncode == 2 and codes(doc, "bad.py") == ["GL901"]
    (diag,) = [d for d in doc["diagnostics"] if d["code"] == "GL901"]
    assert diag["line"] == mark(tmp_path / "case" / "bad.py")
    good_checked(doc)


def test_exception_at_import(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {
        "bad.py": HEADER + "class N(nn.Module):\n    pass\n\n\n"
                  "raise ValueError('broken at import')  # MARK\n"})
    assert proc.returncode == 2 and codes(doc, "bad.py") == ["GL901"]
    good_checked(doc)


def test_constructor_needs_arguments(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {
        "args.py": HEADER + "class Net(nn.Module):\n    def __init__(self, width):\n"
                   "        super().__init__()\n        self.fc = nn.Linear(width, width)\n\n"
                   "    def forward(self, x):\n        return self.fc(x)\n"})
    assert proc.returncode == 0 and codes(doc, "args.py") == ["GL902"]
    assert model(doc, "args.py::Net")["status"] == "skipped"
    good_checked(doc)


def test_constructor_raises(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {
        "boom.py": HEADER + "class Net(nn.Module):\n    def __init__(self):\n"
                   "        super().__init__()\n        raise RuntimeError('boom')  # MARK\n\n"
                   "    def forward(self, x):\n        return x\n"})
    assert proc.returncode == 2 and codes(doc, "boom.py") == ["GL906"]
    good_checked(doc)


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_data_dependent_control_flow(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {
        "flow.py": HEADER + "class Net(nn.Module):\n    def __init__(self):\n"
                   "        super().__init__()\n        self.fc = nn.Linear(4, 4)\n\n"
                   "    def forward(self, x):\n        x = self.fc(x)\n"
                   "        if x.sum() > 0:  # MARK\n            return x\n        return -x\n"})
    assert proc.returncode == 2 and codes(doc, "flow.py") == ["GL903"]
    (diag,) = [d for d in doc["diagnostics"] if d["code"] == "GL903"]
    assert diag["line"] == mark(tmp_path / "case" / "flow.py")
    good_checked(doc)


OUTPUTS = HEADER.replace("import torch\n", "import dataclasses\n\nimport torch\n") + """
@dataclasses.dataclass
class Out:
    logits: torch.Tensor
    aux: torch.Tensor


class Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)

    def body(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class ReturnsDict(Base):
    def forward(self, x):
        y = self.body(x)
        return {"aux": y.mean(), "logits": y}


class ReturnsTuple(Base):
    def forward(self, x):
        return self.body(x), x.mean()


class ReturnsDataclass(Base):
    def forward(self, x):
        y = self.body(x)
        return Out(logits=y, aux=y.sum())
"""


@pytest.mark.parametrize("name", ["ReturnsDict", "ReturnsTuple", "ReturnsDataclass"])
def test_structured_outputs(tmp_path: Path, run_gradlint: Any, name: str) -> None:
    proc, doc = run(tmp_path, run_gradlint, {"outs.py": OUTPUTS},
                    targets=(f"case/outs.py::{name}", "case/zz_good.py"))
    assert proc.returncode == 0, proc.stdout
    m = model(doc, f"outs.py::{name}")
    assert m["status"] == "ok" and [layer["module"] for layer in m["layers"]] == ["fc1", "fc2"]
    good_checked(doc)


FREE = HEADER + """class Net(nn.Module):
    def forward(self, x):
        return torch.sigmoid(x)


def example_inputs():
    return (torch.randn(4, 8),)
"""


def test_model_with_no_parameters(tmp_path: Path, run_gradlint: Any) -> None:
    """A module without parameters is a helper, not a model: skipped silently when found,
    checked (with nothing to report) when named."""
    proc, doc = run(tmp_path, run_gradlint, {"free.py": FREE})
    assert proc.returncode == 0 and codes(doc, "free.py") == []
    assert not [m for m in doc["models"] if m["target"].endswith("free.py::Net")]
    good_checked(doc)
    proc, doc = run(tmp_path, run_gradlint, {"free.py": FREE},
                    targets=("case", "case/free.py::Net"))
    assert proc.returncode == 0 and codes(doc, "free.py") == []
    m = model(doc, "free.py::Net")
    assert m["status"] == "ok" and m["layers"] == []
    good_checked(doc)


FROZEN = HEADER + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*[m for _ in range(12)
                                    for m in (nn.Linear(16, 16), nn.Sigmoid())])
        self.body.requires_grad_(False)  # a frozen backbone needs no gradient
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.body(x))
"""


def test_frozen_parameters_are_not_vanishing(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {"frozen.py": FROZEN}, "--select", "GL101")
    assert proc.returncode == 0 and codes(doc, "frozen.py") == [], doc["diagnostics"]
    layers = model(doc, "frozen.py::Net")["layers"]
    assert len(layers) == 13 and sum(layer["frozen"] for layer in layers) == 12
    # the same stack trainable is sick: the frozen flag, not a weak estimate, keeps it quiet
    trainable = tmp_path / "case" / "frozen.py"
    trainable.write_text(trainable.read_text().replace(
        "        self.body.requires_grad_(False)", "        pass"), encoding="utf-8")
    proc, doc = run(tmp_path, run_gradlint, {}, "--select", "GL101")
    assert proc.returncode == 1 and codes(doc, "frozen.py") == ["GL101"]
    good_checked(doc)


def test_tied_parameters_reported_once(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {
        "tied.py": HEADER + "class Net(nn.Module):\n    def __init__(self):\n"
                   "        super().__init__()\n        self.embed = nn.Embedding(50, 16)\n"
                   "        self.mid = nn.Linear(16, 16)\n        self.out = nn.Linear(16, 50, "
                   "bias=False)\n        self.out.weight = self.embed.weight\n\n"
                   "    def forward(self, ids):\n        return self.out(torch.relu("
                   "self.mid(self.embed(ids))))\n\n\ndef example_inputs():\n"
                   "    return (torch.randint(0, 50, (4, 7)),)\n"})
    assert proc.returncode == 0, doc["diagnostics"]
    layers = {layer["module"]: layer for layer in model(doc, "tied.py::Net")["layers"]}
    assert sorted(layers) == ["embed", "mid"]
    assert layers["embed"]["aliases"] == ["out"]
    good_checked(doc)


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_5000_layer_sequential(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {
        "deep.py": HEADER + "model = nn.Sequential(*[nn.Linear(8, 8) if i % 2 == 0 else "
                   "nn.Tanh() for i in range(5000)])  # MARK\n"})
    m = model(doc, "deep.py::model")
    assert m["status"] == "ok" and len(m["layers"]) == 2500
    assert proc.returncode == 1 and "GL101" in codes(doc, "deep.py")  # it does vanish
    good_checked(doc)


LOOPS = HEADER + """
class PlainList(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(8, 8) for _ in range(4)]
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))  # MARK
        return self.head(x)


class Registered(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(4)])
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.head(x)
"""


def test_forward_loops_over_a_python_list(tmp_path: Path, run_gradlint: Any) -> None:
    proc, doc = run(tmp_path, run_gradlint, {"loops.py": LOOPS})
    # (the registered form is a default-init ReLU stack of 5 layers: GL105 may report its init)
    assert proc.returncode == 2
    assert [c for c in codes(doc, "loops.py") if c != "GL105"] == ["GL903"]
    (diag,) = [d for d in doc["diagnostics"] if d["code"] == "GL903"]
    assert "nn.ModuleList" in diag["message"] and "self.layers" in diag["message"]
    assert diag["line"] == mark(tmp_path / "case" / "loops.py")
    assert len(model(doc, "loops.py::Registered")["layers"]) == 5  # the fixed form works
    good_checked(doc)


def test_symlinks_in_a_walk(tmp_path: Path, run_gradlint: Any) -> None:
    folder = tmp_path / "case"
    (folder / "sub").mkdir(parents=True)
    (folder / "zz_good.py").write_text(source(GOOD), encoding="utf-8")
    os.symlink(folder / "zz_good.py", folder / "sub" / "alias.py")  # the same file twice
    os.symlink(folder, folder / "sub" / "loop")  # a cycle
    os.symlink(folder / "gone.py", folder / "dangling.py")
    proc = run_gradlint("case", "--format", "json", cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert [m["target"] for m in doc["models"]] == ["case/zz_good.py::Good"]


# ------------------------------------------------------------------ the worker dies or hangs


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_hang_and_segfault_become_gl905(tmp_path: Path, run_gradlint: Any) -> None:
    files = {
        "hang.py": HEADER + "import time\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
                   "        super().__init__()\n        time.sleep(600)  # MARK\n\n"
                   "    def forward(self, x):\n        return x\n",
        "segv.py": HEADER + "import ctypes\n\n\nclass Net(nn.Module):\n"
                   "    def __init__(self):\n        super().__init__()\n"
                   "        ctypes.string_at(0)  # MARK\n\n"
                   "    def forward(self, x):\n        return x\n",
    }
    start = time.monotonic()
    proc, doc = run(tmp_path, run_gradlint, files, "--timeout", "10", "--jobs", "2")
    took = time.monotonic() - start
    assert proc.returncode == 2
    assert codes(doc, "hang.py") == ["GL905"] and codes(doc, "segv.py") == ["GL905"]
    by_file = {Path(d["file"]).name: d for d in doc["diagnostics"]}
    assert "timed out after 10 s" in by_file["hang.py"]["message"]
    assert "SIGSEGV" in by_file["segv.py"]["message"]
    for name in ("hang.py", "segv.py"):
        assert by_file[name]["line"] == mark(tmp_path / "case" / name)
    good_checked(doc)
    assert took < 10 + 10, took


@pytest.mark.parametrize("body, expect", [
    ("import os\n\nos._exit(3)  # MARK\n", "exited with status 3"),
    ("import sys\n\nsys.exit(4)  # MARK\n", "SystemExit(4)"),
    ("raise KeyboardInterrupt  # MARK\n", "KeyboardInterrupt"),
    ("def f(n):\n    return f(n + 1)  # MARK\n\n\nf(0)\n", "RecursionError"),
    # 8 GiB would fit in this machine's RAM: only the worker's 6G limit makes it fail
    ("blob = bytearray(8 * 2**30)  # MARK\n", "MemoryError"),
])
def test_the_user_ends_the_process(tmp_path: Path, run_gradlint: Any, body: str,
                                   expect: str) -> None:
    text = (HEADER + "class Net(nn.Module):\n    def forward(self, x):\n        return x\n\n\n"
            + body)
    # module-level work: the pre-filter would skip the file (GL907), so name the target;
    # 6G is above the floor of both builds (CUDA torch reserves ~3.2 GiB at import)
    proc, doc = run(tmp_path, run_gradlint, {"ender.py": text}, "--max-memory", "6G",
                    targets=("case/ender.py::Net", "case/zz_good.py"))
    assert proc.returncode == 2
    (diag,) = [d for d in doc["diagnostics"] if Path(d["file"]).name == "ender.py"]
    assert diag["code"] in ("GL901", "GL905") and expect in diag["message"], diag
    if "_exit" not in body:
        assert diag["line"] == mark(tmp_path / "case" / "ender.py")
    good_checked(doc)


def test_user_prints_never_reach_stdout(tmp_path: Path, run_gradlint: Any) -> None:
    noisy = HEADER + source("""
        import os
        import sys

        print("hello from import")
        os.write(1, b"raw bytes on fd 1\\n")


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                print("building", file=sys.stderr)
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                print("forward ran")
                return self.fc(x)
        """)
    for fmt in ("json", "sarif"):
        folder = tmp_path / fmt
        folder.mkdir()
        (folder / "noisy.py").write_text(source(noisy), encoding="utf-8")
        proc = run_gradlint(f"{fmt}/noisy.py::Net", "--format", fmt, cwd=tmp_path)
        doc = json.loads(proc.stdout)  # exactly one document
        assert proc.returncode == 0, proc.stderr
        assert "hello from import" in proc.stderr and "hello" not in proc.stdout
        if fmt == "json":
            assert model(doc, "noisy.py::Net")["status"] == "ok"


TRAIN = HEADER + """
import pathlib


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


model = Model()
for step in range(3):  # MARK
    pathlib.Path(__file__).with_name("TRAINED").write_text(str(step))
"""


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_a_training_script_is_never_started(tmp_path: Path, run_gradlint: Any) -> None:
    trace = tmp_path / "case" / "TRAINED"
    for targets in (("case",), ("case/train.py", "case/zz_good.py")):  # walked; named plainly
        proc, doc = run(tmp_path, run_gradlint, {"train.py": TRAIN}, targets=targets)
        assert proc.returncode == 0 and codes(doc, "train.py") == ["GL907"]
        (diag,) = [d for d in doc["diagnostics"] if d["code"] == "GL907"]
        assert diag["line"] == mark(tmp_path / "case" / "train.py")
        assert not trace.exists(), "the training loop ran"
        good_checked(doc)
    proc, doc = run(tmp_path, run_gradlint, {}, targets=("case/train.py::Model",))
    assert proc.returncode == 0 and model(doc, "train.py::Model")["status"] == "ok"
    assert trace.exists()  # a named target imports the file, as documented
