"""The pre-filter on files that import local modules: packages, relative and absolute imports,
``sys.path.insert``, cycles, and the verdicts on local modules kept for the run while their
files are unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prefilter_sources import GPT_PARTS, NET, TRAIN, mark_line, snippet, write_file

from gradlint.load.prefilter import Prefilter, prefilter_file

# ---------------------------------------------------------------------------- local modules


def test_relative_import_in_a_package_is_judged(tmp_path: Path) -> None:
    write_file(tmp_path, "pkg/__init__.py", "")
    parts = write_file(tmp_path, "pkg/parts.py", NET + "open('parts.log', 'w')  # MARK\n")
    model = write_file(tmp_path, "pkg/model.py",
                   "import torch.nn as nn\n\nfrom .parts import Net  # MARK\n\nnet = Net()\n")
    verdict = prefilter_file(str(model))
    assert (verdict.verdict, verdict.line) == ("does-work", 3)
    line = mark_line(NET + "# MARK")
    assert verdict.reason.startswith(f"importing {tmp_path / 'pkg' / 'parts.py'} runs its "
                                     f"module-level call `open(...)` at line {line}")
    assert verdict.work_file == str(parts)
    parts.write_text(NET)
    assert prefilter_file(str(model)) == Prefilter("model")


def test_package_init_is_judged(tmp_path: Path) -> None:
    init = write_file(tmp_path, "pkg/__init__.py", "import os\n\nos.makedirs('cache')\n")
    write_file(tmp_path, "pkg/parts.py", NET)
    model = write_file(tmp_path, "pkg/model.py", "from .parts import Net\n\nnet = Net()\n")
    verdict = prefilter_file(str(model))
    assert (verdict.verdict, verdict.work_file, verdict.work_line) == ("does-work", str(init), 3)


def test_absolute_import_of_the_package_from_the_folder_above(tmp_path: Path) -> None:
    write_file(tmp_path, "proj/pkg/__init__.py", "")
    write_file(tmp_path, "proj/pkg/parts.py", NET)
    write_file(tmp_path, "proj/pkg/sub/__init__.py", "")
    deep = write_file(tmp_path, "proj/pkg/sub/deep.py",
                  "from pkg.parts import Net\nfrom pkg import setup  # MARK\n\nnet = Net()\n")
    setup = write_file(tmp_path, "proj/pkg/setup.py", "import subprocess\n\n"
                   "subprocess.run(['pip', 'install', 'x'])\n")
    verdict = prefilter_file(str(deep))
    assert (verdict.verdict, verdict.line, verdict.work_file) == ("does-work", 2, str(setup))
    setup.write_text("WIDTH = 4\n")
    assert prefilter_file(str(deep)) == Prefilter("model")


def test_functions_of_local_modules_are_judged_where_they_are(tmp_path: Path) -> None:
    helpers = write_file(tmp_path, "helpers.py", snippet("""
        import json


        def load_config(path="config.json"):
            return json.load(open(path))  # MARK


        def width():
            return 8
        """))
    model = write_file(tmp_path, "model.py", NET + "import helpers\n\nWIDTH = helpers.width()\n"
                   "CONFIG = helpers.load_config()\n")
    verdict = prefilter_file(str(model))
    assert verdict.verdict == "does-work" and verdict.line == len(model.read_text().splitlines())
    assert (verdict.work_file, verdict.work_line) == (str(helpers), mark_line(helpers.read_text()))
    assert f"of {tmp_path / 'helpers.py'}" in verdict.reason


def test_sys_path_insert_is_followed_when_it_can_be_worked_out(tmp_path: Path) -> None:
    write_file(tmp_path, "lib/parts.py", GPT_PARTS)
    write_file(tmp_path, "lib/train.py", TRAIN)
    model = write_file(tmp_path, "app/model.py", snippet("""
        import os
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
        from parts import GPT, GPTConfig

        gpt = GPT(GPTConfig())
        """))
    assert prefilter_file(str(model)) == Prefilter("model")
    model.write_text(model.read_text() + "from train import HIDDEN\n")
    assert prefilter_file(str(model)).work_file == str(tmp_path / "lib" / "train.py")
    unknown = write_file(tmp_path, "app/other.py", NET + "import os\nimport sys\n\n"
                     "sys.path.append(os.environ['EXTRA'])\n")
    verdict = prefilter_file(str(unknown))
    assert verdict.verdict == "does-work" and "cannot work out" in verdict.reason


def test_circular_local_imports_terminate(tmp_path: Path) -> None:
    write_file(tmp_path, "a.py", "import b\n\nA = 1\n")
    write_file(tmp_path, "b.py", "import a\n\nB = a.A\n")
    model = write_file(tmp_path, "model.py", NET + "import a\n\nnet = Net()\n")
    assert prefilter_file(str(model)) == Prefilter("model")



def test_classes_of_modules_imported_by_judged_functions_are_considered(tmp_path: Path) -> None:
    """A value of unknown type may be an instance of a class whose module a judged function
    imported; what was judged before that import is judged again."""
    write_file(tmp_path, "writers.py", "class Writer:\n    def flush_all(self):\n"
           "        open('out.txt', 'w')  # MARK\n")
    model = write_file(tmp_path, "model.py", NET + snippet("""
        def run(obj):
            obj.flush_all()


        def build():
            from writers import Writer
            return Writer()


        run(Net())
        run(build())
        """))
    verdict = prefilter_file(str(model))
    assert verdict.verdict == "does-work", verdict
    assert (verdict.work_file, verdict.work_line) == (str(tmp_path / "writers.py"), 3)


def test_verdicts_on_local_modules_follow_their_files(tmp_path: Path) -> None:
    """A module's verdict is kept for the run, as long as its files (and what its imports
    find) stay the same."""
    helpers = write_file(tmp_path, "helpers.py", "WIDTH = 8\n")
    model = write_file(tmp_path, "model.py", NET + "import helpers\nimport extra\n\nnet = Net()\n")
    assert prefilter_file(str(model)) == Prefilter("model")  # extra: not local, not judged
    helpers.write_text("import shutil\n\nshutil.rmtree('cache')\n")
    os.utime(helpers, ns=(1, 1))
    assert prefilter_file(str(model)).work_file == str(helpers)
    helpers.write_text("WIDTH = 8\n")
    os.utime(helpers, ns=(2, 2))
    assert prefilter_file(str(model)) == Prefilter("model")
    extra = write_file(tmp_path, "extra.py", "import os\n\nos.system('true')\n")  # now it is local
    assert prefilter_file(str(model)).work_file == str(extra)


@pytest.mark.parametrize("first", ["a.py", "b.py"])
def test_a_cycle_of_imports_gives_the_same_verdicts_in_any_order(tmp_path: Path,
                                                                  first: str) -> None:
    write_file(tmp_path, "a.py", NET + "import b\n\nnet = Net()\n")
    write_file(tmp_path, "b.py", NET + "import a\n\nopen('b.log', 'w')  # MARK\n")
    write_file(tmp_path, "c.py", NET + "import a\n\nnet = Net()\n")
    order = [first, *sorted({"a.py", "b.py", "c.py"} - {first})]
    verdicts = {name: prefilter_file(str(tmp_path / name)) for name in order}
    line = mark_line((tmp_path / "b.py").read_text())
    assert {name: (v.verdict, v.work_line) for name, v in verdicts.items()} == {
        "a.py": ("does-work", line), "b.py": ("does-work", line), "c.py": ("does-work", line)}
    clean = tmp_path / "b.py"
    clean.write_text(NET + "import a\n\nnet = Net()\n")
    os.utime(clean, ns=(1, 1))
    assert [prefilter_file(str(tmp_path / name)) for name in order] == [Prefilter("model")] * 3
