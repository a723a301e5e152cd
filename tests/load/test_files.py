"""Finding files and the static pre-filter: nothing here may import or run the files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from gradlint.load.prefilter import Prefilter, prefilter_file, prefilter_source
from gradlint.load.walk import SourceFile, find_source_files


def _write(root: Path, rel: str, text: str = "") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _rel(files: list[SourceFile], root: Path) -> list[str]:
    return [Path(f.path).relative_to(root).as_posix() for f in files]


def _check(source: str) -> Prefilter:
    return prefilter_source(textwrap.dedent(source))


# ---------------------------------------------------------------------------- walking


def test_walk_skips_hidden_venv_site_packages_build_dist(tmp_path: Path) -> None:
    for rel in ["model.py", "pkg/net.py", "pkg/notes.txt", "pkg/stub.pyi",
                ".hidden/a.py", ".git/hooks/b.py", "venv/lib/c.py", "env/d.py", "myenv/e.py",
                "lib/site-packages/f.py", "build/lib/g.py", "dist/h.py", "node_modules/i.py",
                "pkg/__pycache__/j.py"]:
        _write(tmp_path, rel)
    _write(tmp_path, "venv/bin/python")
    _write(tmp_path, "env/Scripts/python.exe")
    _write(tmp_path, "myenv/pyvenv.cfg")
    files, missing = find_source_files([str(tmp_path)])
    assert missing == []
    assert _rel(files, tmp_path) == ["model.py", "pkg/net.py"]
    assert all(not f.explicit for f in files)


def test_directory_named_env_without_python_is_walked(tmp_path: Path) -> None:
    _write(tmp_path, "env/model.py")
    files, _ = find_source_files([str(tmp_path)])
    assert _rel(files, tmp_path) == ["env/model.py"]


def test_exclude_patterns(tmp_path: Path) -> None:
    for rel in ["model.py", "model_old.py", "tests/test_a.py", "src/legacy/b.py",
                "src/keep.py"]:
        _write(tmp_path, rel)
    files, _ = find_source_files([str(tmp_path)], exclude=["tests/*", "legacy", "*_old.py"])
    assert _rel(files, tmp_path) == ["model.py", "src/keep.py"]


def test_exclude_does_not_apply_to_named_files(tmp_path: Path) -> None:
    path = _write(tmp_path, "model_old.py")
    files, _ = find_source_files([str(path)], exclude=["*_old.py"])
    assert files == [SourceFile(str(path), True)]


def test_missing_paths_are_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "model.py")
    nowhere = str(tmp_path / "nowhere.py")
    files, missing = find_source_files([nowhere, str(path), nowhere])
    assert [f.path for f in files] == [str(path)]
    assert missing == [nowhere]


def test_order_is_sorted_deduplicated_and_explicit_wins(tmp_path: Path) -> None:
    for rel in ["b.py", "a/z.py", "a.py", "a_b.py", "c/d.py"]:
        _write(tmp_path, rel)
    first, _ = find_source_files([str(tmp_path / "c"), str(tmp_path), str(tmp_path / "b.py")])
    second, _ = find_source_files([str(tmp_path / "b.py"), str(tmp_path), str(tmp_path)])
    assert _rel(first, tmp_path) == ["a/z.py", "a.py", "a_b.py", "b.py", "c/d.py"]
    assert [f.path for f in first] == [f.path for f in second]
    assert [f.explicit for f in first] == [False, False, False, True, False]


def test_relative_paths_stay_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "pkg/net.py")
    _write(tmp_path, "top.py")
    monkeypatch.chdir(tmp_path)
    files, _ = find_source_files(["pkg", "top.py"])
    assert files == [SourceFile(os.path.join("pkg", "net.py"), False), SourceFile("top.py", True)]


def test_named_non_python_files_are_left_out(tmp_path: Path) -> None:
    paths = [str(_write(tmp_path, name)) for name in ["README.md", "stub.pyi"]]
    assert find_source_files(paths) == ([], [])


# ---------------------------------------------------------------------------- verdicts

MODEL = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""

TRAINING = MODEL + """

def main():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(10):
        opt.step()
"""


def test_plain_module_file_is_a_model() -> None:
    assert prefilter_source(MODEL) == Prefilter("model")


def test_module_level_sequential_is_a_model() -> None:
    verdict = _check("""
        import torch.nn as nn

        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        nn.init.xavier_uniform_(model[0].weight)
    """)
    assert verdict.verdict == "model"


def test_no_torch_is_no_model() -> None:
    assert _check("""
        import numpy as np

        class Module:
            pass

        x = np.zeros(3)
    """).verdict == "no-model"


def test_torch_but_only_functions_is_no_model() -> None:
    verdict = _check("""
        import torch

        def scale(x):
            return torch.relu(x) * 2
    """)
    assert verdict.verdict == "no-model"


def test_training_loop_does_work_with_its_line() -> None:
    source = MODEL + "\nmodel = Net()\nfor epoch in range(10):\n    model(torch.randn(2, 4))\n"
    line = source.splitlines().index("for epoch in range(10):") + 1
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line, verdict.col) == ("does-work", line, 1)
    assert "`for` loop" in verdict.reason and f"line {line}" in verdict.reason


def test_main_call_does_work() -> None:
    source = TRAINING + "\n\nmain()\n"
    verdict = prefilter_source(source)
    assert verdict.verdict == "does-work"
    assert verdict.line == len(source.splitlines())
    assert "`main(...)`" in verdict.reason


def test_main_call_under_guard_is_a_model() -> None:
    for guard in ['__name__ == "__main__"', "'__main__' == __name__"]:
        source = TRAINING + f"\n\nif {guard}:\n    main()\n    for i in range(3):\n        pass\n"
        assert prefilter_source(source).verdict == "model"


def test_module_level_with_block_does_work() -> None:
    source = MODEL + "\nwith torch.no_grad():\n    y = Net()(torch.randn(1, 4))\n"
    verdict = prefilter_source(source)
    assert verdict.verdict == "does-work"
    assert "`with` block" in verdict.reason


def test_assignment_from_a_function_call_does_work() -> None:
    verdict = prefilter_source(MODEL + "\nx = load_data()\n")
    assert verdict.verdict == "does-work"
    assert "`load_data(...)`" in verdict.reason


def test_nested_calls_are_judged_individually() -> None:
    assert prefilter_source(MODEL + "\nmodel = Net()\nx = torch.randn(2, 3)\n").verdict == "model"
    assert prefilter_source(MODEL + "\nmodel = Net(load_config())\n").verdict == "does-work"
    line = len(MODEL.splitlines()) + 2
    # the receiver is judged first: an unknown capitalised class is not assumed harmless
    assert prefilter_source(MODEL + "\nTrainer(max_epochs=3).fit(Net())\n").reason == (
        f"module-level call `Trainer(...)` at line {line} runs at import "
        "(`Trainer` cannot be resolved statically)")
    assert prefilter_source(MODEL + "\nNet().fit(torch.randn(2, 4))\n").reason == (
        f"module-level call `Net(...).fit(...)` at line {line} runs at import "
        "(`.fit(...)` does work on any object)")


def test_building_configs_and_setup_is_not_work() -> None:
    verdict = prefilter_source(MODEL + textwrap.dedent("""
        import logging
        import os
        from dataclasses import dataclass, field
        from pathlib import Path

        torch.manual_seed(0)
        logger = logging.getLogger(__name__)
        ROOT = Path(__file__).resolve().parent
        DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = Net().to(device).eval()
        __all__ = ["Net"]
        print("loaded")
        del ROOT
        handler = lambda: train()  # noqa: E731 - a lambda body does not run

        @dataclass
        class Config:
            hidden: list = field(default_factory=list)
    """))
    assert verdict == Prefilter("model")


def test_try_except_import_error_is_a_model() -> None:
    verdict = _check("""
        try:
            import torch
            from torch import nn
        except ImportError:  # pragma: no cover
            torch = None

        class Net(nn.Module):
            pass
    """)
    assert verdict.verdict == "model"


def test_work_inside_try_or_if_is_found() -> None:
    source = MODEL + "\ntry:\n    import apex\nexcept ImportError:\n    download()\n"
    assert prefilter_source(source).verdict == "does-work"
    verdict = prefilter_source(MODEL + "\nif True:\n    while True:\n        pass\n")
    assert (verdict.verdict, verdict.col) == ("does-work", 5)


def test_type_checking_block_is_never_work() -> None:
    source = "from typing import TYPE_CHECKING\n" + MODEL + "\nif TYPE_CHECKING:\n    run()\n"
    assert prefilter_source(source).verdict == "model"


def test_hugging_face_model_is_a_model() -> None:
    verdict = _check("""
        from transformers import PreTrainedModel

        class Foo(PreTrainedModel):
            def forward(self, x):
                return x
    """)
    assert verdict.verdict == "model"


def test_class_inheriting_from_a_local_module_is_a_model() -> None:
    verdict = _check("""
        import torch
        from torch.nn import Module as Base

        class Block(Base):
            pass

        class Net(Block):
            pass

        net = Net()
    """)
    assert verdict.verdict == "model"


def test_syntax_error_has_its_line_and_col() -> None:
    verdict = prefilter_source("import torch\n\nclass Net(nn.Module:\n    pass\n")
    assert (verdict.verdict, verdict.line) == ("syntax-error", 3)
    assert verdict.col >= 1 and verdict.reason


def test_null_bytes_are_a_syntax_error() -> None:
    verdict = prefilter_source("import torch\nx = 1\x00\n")
    assert (verdict.verdict, verdict.line) == ("syntax-error", 2)


def test_prefilter_file_reads_and_handles_bad_bytes(tmp_path: Path) -> None:
    good = tmp_path / "model.py"
    good.write_text(MODEL, encoding="utf-8")
    assert prefilter_file(str(good)) == Prefilter("model")
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"import torch\nname = '\xff'\n")
    verdict = prefilter_file(str(bad))
    assert (verdict.verdict, verdict.line) == ("syntax-error", 2)
    assert "utf-8" in verdict.reason
    missing = prefilter_file(str(tmp_path / "nowhere.py"))
    assert missing.verdict == "syntax-error" and "cannot read" in missing.reason


def test_prefilter_never_runs_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "script.py"
    path.write_text(MODEL + f"\nopen({str(marker)!r}, 'w').close()\n")
    assert prefilter_file(str(path)).verdict == "does-work"
    assert not marker.exists()
