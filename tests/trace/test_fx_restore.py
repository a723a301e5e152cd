"""Issue 17 (item 6): a failed torch.fx attempt never leaves the user's model changed, and a
trace failure is reported at the user's line, with the library line under it as related
information; ``--debug`` prints the user's traceback behind the GL903."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint.core.values import StageError, Target
from gradlint.load.sources import exception_sites
from gradlint.trace.fx import trace_target


class StoresMask(nn.Module):
    """``forward`` stores a value on the module (CLIP's ``self.mask = self.mask.to(x.dtype)``)
    and branches on a size: fx fails after the assignment, export traces it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 4)
        self.mask = torch.ones(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.mask = self.mask.to(x.dtype)
        h = torch.relu(self.fc1(x)) * self.mask
        if x.size(-1) == 16:  # fx: a Proxy cannot decide a branch
            h = h + 1
        return self.fc2(h)


def test_a_failed_fx_trace_leaves_the_model_as_it_was() -> None:
    model = StoresMask()
    mask = model.mask
    before = [dict(vars(m)) for m in model.modules()]
    report = gradlint.check(model, torch.randn(4, 16))
    assert report.status == "ok", report.diagnostics
    assert report.tracer == "export"
    assert {le.module for le in report.layers if le.log10_grad is not None} == {"fc1", "fc2"}
    assert model.mask is mask  # not an fx Proxy, nor a copy
    assert [dict(vars(m)) for m in model.modules()] == before


class SetsOnSuccess(nn.Module):
    """fx traces it, and tracing assigns an attribute: put back too."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.scale = torch.ones(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scale = self.scale.to(x.dtype)
        self.calls = 1
        return self.fc(x) * self.scale


def test_a_successful_fx_trace_leaves_the_model_as_it_was() -> None:
    model = SetsOnSuccess()
    scale = model.scale
    report = gradlint.check(model, torch.randn(2, 8))
    assert report.status == "ok" and report.tracer == "fx"
    assert model.scale is scale and not hasattr(model, "calls")


LIBRARY = '''
import torch.nn as nn


def positive(x):
    if x.sum() > 0:  # data-dependent: neither fx nor export can decide it
        return x
    return -x


class Gate(nn.Module):
    def forward(self, x):
        return positive(x)
'''

USER = '''
import torch.nn as nn
from fakelib.layers import positive


class UsesLibrary(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        return positive(h)
'''


def _fixture(tmp_path: Path) -> tuple[Any, Path, Path]:
    lib = tmp_path / "site-packages" / "fakelib"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "layers.py").write_text(textwrap.dedent(LIBRARY))
    user = tmp_path / "user_model.py"
    user.write_text(textwrap.dedent(USER))
    sys.path.insert(0, str(lib.parent))
    try:
        spec = importlib.util.spec_from_file_location("user_model", user)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(lib.parent))
        sys.modules.pop("fakelib.layers", None)
        sys.modules.pop("fakelib", None)
    return module.UsesLibrary(), user, lib / "layers.py"


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_failure_in_a_library_is_reported_at_the_users_line(tmp_path: Path) -> None:
    model, user, library = _fixture(tmp_path)
    target = Target("user_model.py::UsesLibrary", model, str(user), 5, (torch.randn(2, 8),))
    try:
        trace_target(target)
    except StageError as err:
        failure = err
    else:
        raise AssertionError("tracing a data-dependent branch must fail")
    assert failure.code == "GL903"
    assert failure.location is not None
    assert Path(failure.location.file).resolve() == user.resolve()
    assert failure.location.line == _line(user, "return positive(h)")
    (related,) = failure.related
    assert Path(related.file).resolve() == library.resolve()
    assert related.line == _line(library, "if x.sum() > 0")
    assert failure.__cause__ is not None  # what --debug prints


def test_exception_sites_prefers_the_users_files() -> None:
    def library_call() -> None:
        raise ValueError("inside")

    try:
        library_call()
    except ValueError as exc:
        where, related = exception_sites(exc)
    assert where is not None and where.file.endswith("test_fx_restore.py")
    assert related == ()  # no installed package on the way down


@pytest.mark.slow  # ~14 s: two gradlint runs; CI's slow step
def test_debug_prints_the_users_traceback(tmp_path: Path, run_gradlint: Any) -> None:
    path = tmp_path / "branchy.py"
    path.write_text(textwrap.dedent('''
        import torch
        import torch.nn as nn


        class Branchy(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 8)

            def forward(self, x):
                h = self.fc(x)
                if h.sum() > 0:
                    h = -h
                return h


        def example_inputs():
            return (torch.randn(2, 8),)
        '''))
    quiet = run_gradlint(path.name, cwd=tmp_path)
    debug = run_gradlint(path.name, "--debug", cwd=tmp_path)
    assert quiet.returncode == debug.returncode == 2
    assert f"branchy.py:{_line(path, 'if h.sum() > 0')}" in quiet.stdout
    assert "GL903" in quiet.stdout and "Traceback" not in quiet.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    assert 'branchy.py", line ' in debug.stderr


SHAPE_LIBRARY = '''
def patchify(x):
    return x.view(x.shape[0], 3, 7)  # needs 21 features
'''


def test_a_shape_failure_in_a_library_is_reported_at_the_users_line(tmp_path: Path) -> None:
    """fx traces through the library function; running the graph on the example input fails
    inside it: the user's call is the location, the library's line is related."""
    lib = tmp_path / "site-packages" / "fakelib"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "layers.py").write_text(textwrap.dedent(SHAPE_LIBRARY))
    user = tmp_path / "user_shapes.py"
    user.write_text(textwrap.dedent(USER).replace("positive", "patchify"))
    sys.path.insert(0, str(lib.parent))
    try:
        spec = importlib.util.spec_from_file_location("user_shapes", user)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        target = Target("user_shapes.py::UsesLibrary", module.UsesLibrary(), str(user), 5,
                        (torch.randn(2, 8),))
        try:
            trace_target(target)
        except StageError as err:
            failure = err
        else:
            raise AssertionError("a view that does not fit must fail")
    finally:
        sys.path.remove(str(lib.parent))
        sys.modules.pop("fakelib.layers", None)
        sys.modules.pop("fakelib", None)
    assert failure.code == "GL903" and failure.location is not None
    assert Path(failure.location.file).resolve() == user.resolve()
    assert failure.location.line == _line(user, "return patchify(h)")
    (related,) = failure.related
    assert Path(related.file).resolve() == (lib / "layers.py").resolve()
    assert related.line == _line(lib / "layers.py", "x.view(")


@pytest.mark.slow  # ~12 s: CI's slow step
def test_debug_prints_the_users_traceback_behind_gl906_and_gl901(tmp_path: Path,
                                                                  run_gradlint: Any) -> None:
    (tmp_path / "broken_ctor.py").write_text(textwrap.dedent('''
        import torch.nn as nn


        def width():
            raise ValueError("no width configured")


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(width(), 8)

            def forward(self, x):
                return self.fc(x)
        '''))
    (tmp_path / "broken_import.py").write_text(
        "import torch.nn as nn\n\nLAYER = nn.Linear(2, 2)\nraise RuntimeError('at import')\n")
    for name, code in (("broken_ctor.py", "GL906"), ("broken_import.py", "GL901")):
        quiet = run_gradlint(name, cwd=tmp_path)
        debug = run_gradlint(name, "--debug", cwd=tmp_path)
        assert quiet.returncode == debug.returncode == 2, debug.stdout
        assert code in quiet.stdout and "Traceback" not in quiet.stderr
        assert "Traceback (most recent call last)" in debug.stderr, debug.stderr
        assert f'{name}", line ' in debug.stderr
