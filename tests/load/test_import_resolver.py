"""The import resolver (gradlint/load/import_resolver.py): which local files an import runs,
found the way Python's import finds them from a checked file, without importing anything."""

from __future__ import annotations

import ast
import os
import textwrap
from pathlib import Path

import pytest

from gradlint.load import import_resolver


def _write(root: Path, rel: str, text: str = "") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _names(chain: list[import_resolver.LocalModule] | None) -> list[str] | None:
    return None if chain is None else [m.name for m in chain]


def _stmt(source: str) -> ast.Import | ast.ImportFrom:
    node = ast.parse(source).body[0]
    assert isinstance(node, (ast.Import, ast.ImportFrom))
    return node


@pytest.fixture(autouse=True)
def _no_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)


def test_roots_of_a_plain_folder_and_of_a_package(tmp_path: Path) -> None:
    model = _write(tmp_path, "model.py")
    deep = _write(tmp_path, "proj/pkg/sub/deep.py")
    _write(tmp_path, "proj/pkg/__init__.py")
    _write(tmp_path, "proj/pkg/sub/__init__.py")
    assert import_resolver.search_roots(str(model)) == (str(tmp_path),)
    assert import_resolver.package_root(str(deep)) == str(tmp_path / "proj" / "pkg")
    assert import_resolver.search_roots(str(deep)) == (str(tmp_path / "proj"),
                                              str(tmp_path / "proj" / "pkg" / "sub"))


def test_pythonpath_is_a_root_but_installed_folders_are_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _write(tmp_path, "a/model.py")
    (tmp_path / "src").mkdir()
    (tmp_path / "venv/lib/site-packages").mkdir(parents=True)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(tmp_path / "src"), str(tmp_path / "venv/lib/site-packages")]))
    assert import_resolver.search_roots(str(model)) == (str(tmp_path / "a"), str(tmp_path / "src"))


def test_sibling_module_and_package_chain(tmp_path: Path) -> None:
    model = _write(tmp_path, "model.py")
    train = _write(tmp_path, "train.py")
    _write(tmp_path, "pkg/__init__.py")
    _write(tmp_path, "pkg/sub/__init__.py")
    leaf = _write(tmp_path, "pkg/sub/leaf.py")
    assert import_resolver.module_file(str(model), "train") == str(train)
    chain = import_resolver.resolve_module(str(model), "pkg.sub.leaf")
    assert _names(chain) == ["pkg", "pkg.sub", "pkg.sub.leaf"]
    assert chain is not None and chain[-1].path == str(leaf)
    assert chain[0].path == str(tmp_path / "pkg" / "__init__.py") and chain[0].package


def test_installed_and_missing_modules_are_not_local(tmp_path: Path) -> None:
    model = _write(tmp_path, "model.py")
    for name in ("torch", "torch.nn", "os.path", "no_such_module_xyz"):
        assert import_resolver.resolve_module(str(model), name) is None
        assert import_resolver.module_file(str(model), name) is None


def test_a_package_beats_a_module_and_namespace_folders_run_nothing(tmp_path: Path) -> None:
    model = _write(tmp_path, "model.py")
    _write(tmp_path, "both.py")
    init = _write(tmp_path, "both/__init__.py")
    part = _write(tmp_path, "ns/part.py")
    assert import_resolver.module_file(str(model), "both") == str(init)
    chain = import_resolver.resolve_module(str(model), "ns.part")
    assert chain is not None and [m.path for m in chain] == ["", str(part)]
    assert import_resolver.module_file(str(model), "ns") is None  # a namespace package runs nothing


def test_relative_imports_resolve_in_the_package(tmp_path: Path) -> None:
    _write(tmp_path, "proj/pkg/__init__.py")
    _write(tmp_path, "proj/pkg/sub/__init__.py")
    parts = _write(tmp_path, "proj/pkg/parts.py")
    deep = _write(tmp_path, "proj/pkg/sub/deep.py")
    model = _write(tmp_path, "proj/pkg/model.py")
    assert import_resolver.module_file(str(model), "parts", level=1) == str(parts)
    assert import_resolver.module_file(str(deep), "parts", level=2) == str(parts)
    chain = import_resolver.resolve_module(str(deep), "parts", level=2)
    assert _names(chain) == ["pkg", "pkg.parts"]  # the package's __init__ runs first
    assert import_resolver.resolve_module(str(deep), None, level=2) is not None
    assert import_resolver.module_file(str(model), "missing", level=1) is None


def test_absolute_import_from_the_folder_above_the_top_package(tmp_path: Path) -> None:
    _write(tmp_path, "proj/pkg/__init__.py")
    parts = _write(tmp_path, "proj/pkg/parts.py")
    _write(tmp_path, "proj/pkg/sub/__init__.py")
    deep = _write(tmp_path, "proj/pkg/sub/deep.py")
    assert import_resolver.module_file(str(deep), "pkg.parts") == str(parts)
    chain = import_resolver.resolve_module(str(deep), "pkg.parts")
    assert _names(chain) == ["pkg", "pkg.parts"]


def test_from_package_import_submodule_and_star(tmp_path: Path) -> None:
    model = _write(tmp_path, "model.py")
    _write(tmp_path, "pkg/__init__.py", '__all__ = ["blocks"]\n')
    blocks = _write(tmp_path, "pkg/blocks.py")
    heads = _write(tmp_path, "pkg/heads.py")
    found = import_resolver.resolve_import(str(model), _stmt("from pkg import heads, VALUE"))
    assert [m.path for m in found] == [str(tmp_path / "pkg" / "__init__.py"), str(heads)]
    star = import_resolver.resolve_import(str(model), _stmt("from pkg import *"))
    assert [m.name for m in star] == ["pkg", "pkg.blocks"]
    assert star[-1].path == str(blocks)
    both = import_resolver.resolve_import(str(model), _stmt("import pkg.blocks, pkg.heads"))
    assert [m.name for m in both] == ["pkg", "pkg.blocks", "pkg.heads"]  # __init__ once


def test_star_names(tmp_path: Path) -> None:
    declared = _write(tmp_path, "declared.py", """
        __all__ = ["Block"]
        __all__ += ["Head"]
        __all__.append("make")
        Block = Head = make = _hidden = 1
        """)
    plain = _write(tmp_path, "plain.py", """
        import torch.nn as nn
        from declared import *
        from os import path as _p

        class Block(nn.Module):
            pass

        def _private():
            pass

        WIDTH = 8
        if WIDTH:
            DEPTH = 2
        """)
    assert import_resolver.star_names(str(declared)) == ("Block", "Head", "make")
    assert import_resolver.star_names(str(plain)) == ("nn", "Block", "WIDTH", "DEPTH", "Head",
                                                      "make")


def test_parsed_modules_are_cached_until_they_change(tmp_path: Path) -> None:
    path = _write(tmp_path, "helpers.py", "A = 1\n")
    first = import_resolver.parse(str(path))
    assert first is not None and import_resolver.parse(str(path)) is first
    path.write_text("A = 1\nB = 2\n")
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    second = import_resolver.parse(str(path))
    assert second is not None and second is not first and len(second.body) == 2
    broken = _write(tmp_path, "broken.py", "def f(:\n")
    assert import_resolver.parse(str(broken)) is None
    assert import_resolver.parse(str(tmp_path / "missing.py")) is None


def test_a_loaded_standard_module_is_not_shadowed(tmp_path: Path) -> None:
    model = _write(tmp_path, "model.py")
    _write(tmp_path, "typing.py")  # typing is loaded: Python takes it from sys.modules
    _write(tmp_path, "sys.py")  # built in
    assert import_resolver.resolve_module(str(model), "typing") is None
    assert import_resolver.resolve_module(str(model), "sys") is None
    assert "this" not in __import__("sys").modules  # printing the Zen is not something to load
    zen = _write(tmp_path, "this.py")  # a standard module not loaded yet: the local file wins
    assert import_resolver.module_file(str(model), "this") == str(zen)
