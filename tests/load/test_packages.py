"""Files inside packages are imported as pytest imports them (gradlint/load/importing.py): by
their dotted name with the folder above the top package on ``sys.path`` (``src/`` layouts and
the project's root too), so relative and absolute package imports work; files outside packages
keep a unique module name. In-process through ``load_targets``; each test restores
``sys.modules`` and ``sys.path``, since the packages it imports are named alike."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gradlint.core.values import Diagnostic, ModelReport, Target
from gradlint.load import import_resolver
from gradlint.load.importing import package_name
from gradlint.load.prefilter import prefilter_file
from gradlint.load.targets import LoadRequest, load_targets

BLOCK = """
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x).relu()
"""

NET = """
import torch.nn as nn
{import_line}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Block(), Block())

    def forward(self, x):
        return self.blocks(x)
"""


def write(root: Path, rel: str, text: str = "") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def fresh_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test imports packages named alike (``pkg``): forget them afterwards."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    modules = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


def loaded(path: Path | str, *names: str) -> dict[str, Target | ModelReport]:
    found = load_targets(LoadRequest(str(path), names))
    assert not isinstance(found, Diagnostic), found.message
    return {t.name.rpartition("::")[2]: t for t in found}


def checked(path: Path | str, *names: str) -> list[str]:
    return [n for n, t in loaded(path, *names).items() if isinstance(t, Target)]


@pytest.mark.parametrize("import_line", ["from .parts import Block",
                                         "from pkg.parts import Block",
                                         "from . import parts\nBlock = parts.Block"])
def test_a_file_in_a_package_imports_its_siblings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, import_line: str) -> None:
    write(tmp_path, "repo/pkg/__init__.py")
    write(tmp_path, "repo/pkg/parts.py", BLOCK)
    model = write(tmp_path, "repo/pkg/model.py", NET.format(import_line=import_line))
    monkeypatch.chdir(tmp_path)  # not the package's parent: the import finds it anyway
    assert prefilter_file(str(model)).verdict == "model"
    target = loaded(model)["Net"]
    assert isinstance(target, Target) and type(target.model).__module__ == "pkg.model"


def test_a_package_file_run_from_the_package_parent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "pkg/__init__.py", "from .model import Net\n")
    write(tmp_path, "pkg/parts.py", BLOCK)
    write(tmp_path, "pkg/model.py", NET.format(import_line="from pkg.parts import Block"))
    monkeypatch.chdir(tmp_path)
    assert checked("pkg/model.py") == ["Net"]
    assert checked("pkg/__init__.py") == []  # Net is the submodule's, not the package's


def test_src_layout_and_a_script_beside_the_package(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[project]\nname = 'mylib'\n")
    write(tmp_path, "src/mylib/__init__.py")
    write(tmp_path, "src/mylib/parts.py", BLOCK)
    model = write(tmp_path, "src/mylib/model.py",
                  NET.format(import_line="from mylib.parts import Block"))
    script = write(tmp_path, "examples/wrap.py", """
        from mylib.model import Net

        net = Net()
    """)
    assert checked(model) == ["Net"]
    assert prefilter_file(str(script)).verdict == "model"  # resolved from the project's root
    assert checked(script) == ["net"]


def test_a_folder_without_init_imported_relatively_is_a_namespace_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``nets/net.py`` doing ``from .utils import Block`` in a folder without ``__init__.py``
    (ConvNeXt-V2's ``models/``): ``import nets.net`` from the folder above runs it, so gradlint
    does too. Before, GL901 "attempted relative import with no known parent package"."""
    write(tmp_path, "repo/nets/utils.py", BLOCK)
    net = write(tmp_path, "repo/nets/net.py", NET.format(import_line="from .utils import Block"))
    deep = write(tmp_path, "repo/a/b/net.py", NET.format(import_line="from ..parts import Block"))
    write(tmp_path, "repo/a/parts.py", BLOCK)
    plain = write(tmp_path, "repo/loose/net.py", NET.format(import_line="from utils import Block"))
    write(tmp_path, "repo/loose/utils.py", BLOCK)
    bad = write(tmp_path, "repo/my-models/net.py", NET.format(import_line="from .u import Block"))
    assert package_name(str(net)) == "nets.net"
    assert package_name(str(deep)) == "a.b.net"
    assert package_name(str(plain)) is None and package_name(str(bad)) is None
    assert import_resolver.import_roots(str(net))[0] == str(tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    assert prefilter_file(str(net)).verdict == "model"
    for path, module in ((net, "nets.net"), (deep, "a.b.net")):
        target = loaded(path)["Net"]
        assert isinstance(target, Target) and type(target.model).__module__ == module


def test_files_outside_packages_keep_unique_names(tmp_path: Path) -> None:
    """Two ``model.py`` in different folders, each with its own ``parts.py``."""
    for width, folder in ((8, "a"), (16, "b")):
        write(tmp_path, f"{folder}/parts.py", BLOCK.replace("width=8", f"width={width}"))
        write(tmp_path, f"{folder}/model.py", NET.format(import_line="from parts import Block"))
    first = loaded(tmp_path / "a" / "model.py")["Net"]
    assert isinstance(first, Target)
    assert type(first.model).__module__.startswith("gradlint_target_")
    sys.modules.pop("parts")  # a fresh worker per file in a real run
    second = loaded(tmp_path / "b" / "model.py")["Net"]
    assert isinstance(second, Target) and type(second.model) is not type(first.model)
    assert second.model.blocks[0].fc.in_features == 16  # type: ignore[attr-defined]


def test_a_file_whose_name_no_import_can_spell_still_imports_relatively(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py")
    write(tmp_path, "pkg/parts.py", BLOCK)
    model = write(tmp_path, "pkg/my-model.py", NET.format(import_line="from .parts import Block"))
    assert checked(model) == ["Net"]


def test_a_package_named_like_a_loaded_module_is_imported_by_path(tmp_path: Path) -> None:
    """``json`` is loaded already: importing ``json.model`` by name would look in the standard
    library's package, so the file gets a unique name (its sibling imports still work)."""
    write(tmp_path, "json/__init__.py")
    write(tmp_path, "json/parts.py", BLOCK)
    model = write(tmp_path, "json/model.py", NET.format(import_line="from parts import Block"))
    assert checked(model) == ["Net"]


def test_a_script_named_like_its_package_does_not_shadow_it(tmp_path: Path) -> None:
    """``style/style.py`` (a script run as ``python style.py``, importing its siblings by
    plain name) beside ``style/net.py`` in the package ``style``: net.py is imported as
    ``style.net``, and ``style`` must be the package, not the script beside it (GL901 "'style'
    is not a package" when the file's own folder came first on sys.path)."""
    write(tmp_path, "app/style/__init__.py")
    write(tmp_path, "app/style/parts.py", BLOCK)
    write(tmp_path, "app/style/style.py", "import parts\n\nBlock = parts.Block\n")
    net = write(tmp_path, "app/style/net.py", NET.format(import_line="from parts import Block"))
    assert package_name(str(net)) == "style.net"
    assert checked(net) == ["Net"]


def test_package_names_and_roots(tmp_path: Path) -> None:
    write(tmp_path, "repo/setup.cfg")
    write(tmp_path, "repo/src/top/__init__.py")
    write(tmp_path, "repo/src/top/sub/__init__.py")
    deep = write(tmp_path, "repo/src/top/sub/deep.py")
    loose = write(tmp_path, "repo/scripts/run.py")
    assert package_name(str(deep)) == "top.sub.deep"
    assert package_name(str(tmp_path / "repo/src/top/sub/__init__.py")) == "top.sub"
    assert package_name(str(loose)) is None
    repo = str(tmp_path / "repo")
    assert import_resolver.import_roots(str(deep)) == (
        os.path.join(repo, "src"), os.path.join(repo, "src", "top", "sub"), repo)
    assert import_resolver.import_roots(str(loose)) == (
        os.path.join(repo, "scripts"), repo, os.path.join(repo, "src"))


def test_the_pre_filter_judges_the_package_inits_the_import_runs(tmp_path: Path) -> None:
    """Importing ``pkg.sub.model`` runs ``pkg/__init__.py`` and ``pkg/sub/__init__.py`` first,
    even when the file imports nothing from them: work there keeps the file from being
    imported (GL907), harmless code does not."""
    write(tmp_path, "pkg/__init__.py", "import os\n\nos.remove('victim')\n")
    write(tmp_path, "pkg/sub/__init__.py", "import torch.nn as nn\n\nACT = nn.ReLU()\n")
    model = write(tmp_path, "pkg/sub/model.py", BLOCK)
    verdict = prefilter_file(str(model))
    assert (verdict.verdict, verdict.line, verdict.work_line) == ("does-work", 1, 3)
    assert verdict.work_file == str(tmp_path / "pkg" / "__init__.py")
    assert "pkg/__init__.py runs its module-level call `os.remove(...)`" in verdict.reason
    write(tmp_path, "pkg/__init__.py", "from .sub.model import Block\n")
    assert prefilter_file(str(model)).verdict == "model"
