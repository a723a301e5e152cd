"""Issue 17's load side through the installed command, on fixture repositories with the shapes
real ones have: files in packages (relative and absolute imports, ``src/`` layouts), star
imports, imported base classes, wrapper instances, models built from a config object by a
convention, parameterless helpers, and ``[tool.gradlint.targets]`` entries that add a model (a
``build`` expression) without hiding the file's others. No configuration, or the one documented
config line; each asserts the models checked and the exit code. Plain torch only."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from reach_counts import assert_counts

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # also on torch 2.13; CI's slow step (.ci/run)

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
{imports}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Block(), Block())

    def forward(self, x):
        return self.blocks(x)
"""

DEEP = """
import torch.nn as nn


class Deep(nn.Module):  # vanishes: GL101, exit 1
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Sigmoid())
                                      for _ in range(12)])

    def forward(self, x):
        return self.layers(x)
"""

GPT = """
from dataclasses import dataclass

import torch.nn as nn


@dataclass
class GPTConfig:
    n_embd: int = 16
    n_layer: int = 2


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x):
        return self.fc(x).relu()


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.n_layer)])

    def forward(self, x):
        return self.blocks(x)
"""


def write(root: Path, rel: str, text: str = "") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def check(run_gradlint: Any, cwd: Path, *args: object) -> tuple[int, dict[str, str], list[str]]:
    """Exit code, checked or skipped model -> status, and every diagnostic's code."""
    proc = run_gradlint(*args, "--format", "json", cwd=cwd)
    assert proc.stdout, proc.stderr
    doc = json.loads(proc.stdout)
    assert_counts(doc)
    models = {m["name"]: m["status"] for m in doc["models"]}
    found = [d["code"] for d in doc["diagnostics"]]
    found += [d["code"] for m in doc["models"] for d in m.get("diagnostics", [])]
    return proc.returncode, models, sorted(found)


@pytest.mark.parametrize("imports", ["from .parts import Block", "from pkg.parts import Block"])
def test_package_with_relative_and_absolute_imports(
        run_gradlint: Any, tmp_path: Path, imports: str) -> None:
    write(tmp_path, "repo/pkg/__init__.py", "from .model import Net\n")
    write(tmp_path, "repo/pkg/parts.py", BLOCK)
    write(tmp_path, "repo/pkg/model.py", NET.format(imports=imports))
    for cwd, arg in ((tmp_path / "repo", "pkg/model.py"), (tmp_path, "repo/pkg/model.py"),
                     (tmp_path / "repo" / "pkg", "model.py")):
        assert check(run_gradlint, cwd, arg) == (0, {"Net": "ok"}, []), cwd
    # the whole package: Net once (its module's, not again as the package's), Block in parts
    assert check(run_gradlint, tmp_path, "repo") == (0, {"Net": "ok", "Block": "ok"}, [])


def test_a_namespace_folder_imported_relatively(run_gradlint: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``models/`` folder without ``__init__.py`` whose files import each other relatively:
    checked from the repository's root, from inside the folder, and the folder as a whole."""
    write(tmp_path, "repo/models/parts.py", BLOCK)
    write(tmp_path, "repo/models/model.py", NET.format(imports="from .parts import Block"))
    for cwd, arg in ((tmp_path / "repo", "models/model.py"),
                     (tmp_path / "repo" / "models", "model.py")):
        assert check(run_gradlint, cwd, arg) == (0, {"Net": "ok"}, []), cwd
    assert check(run_gradlint, tmp_path / "repo", "models") == (
        0, {"Net": "ok", "Block": "ok"}, [])
    # a regular package named alike later on the path (an installed ``models``) does not win
    write(tmp_path, "site/models/__init__.py", "raise ImportError('the other models')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    assert check(run_gradlint, tmp_path / "repo", "models/model.py") == (
        0, {"Net": "ok"}, [])


def test_src_layout_and_a_wrapper_instance_in_examples(run_gradlint: Any, tmp_path: Path
                                                       ) -> None:
    write(tmp_path, "pyproject.toml", "[project]\nname = 'mylib'\n")
    write(tmp_path, "src/mylib/__init__.py")
    write(tmp_path, "src/mylib/gpt.py", GPT)
    write(tmp_path, "examples/wrapper.py", """
        from mylib.gpt import GPT, GPTConfig

        gpt = GPT(GPTConfig())
    """)
    assert check(run_gradlint, tmp_path, "src/mylib/gpt.py") == (0, {"GPT": "ok"}, [])
    assert check(run_gradlint, tmp_path, "examples/wrapper.py") == (0, {"gpt": "ok"}, [])


def test_star_import_model_file(run_gradlint: Any, tmp_path: Path) -> None:
    """No literal ``import torch``: ``nn`` and the parts come from a star import."""
    parts = "import torch\n" + BLOCK
    write(tmp_path, "unet/__init__.py", "from .unet_model import UNet\n")
    write(tmp_path, "unet/unet_parts.py", parts)
    model = """
        {imports}


        class UNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.inc = Block()
                self.out = Block()

            def forward(self, x):
                return self.out(self.inc(x))
    """
    write(tmp_path, "unet/unet_model.py", model.format(imports="from .unet_parts import *"))
    write(tmp_path, "flat/parts.py", parts)
    write(tmp_path, "flat/model.py", model.format(imports="from parts import *"))
    assert check(run_gradlint, tmp_path, "unet/unet_model.py") == (0, {"UNet": "ok"}, [])
    assert check(run_gradlint, tmp_path, "flat/model.py") == (0, {"UNet": "ok"}, [])


def test_imported_base_class(run_gradlint: Any, tmp_path: Path) -> None:
    write(tmp_path, "seq/__init__.py", "from .encoder import EncoderRNN\n")
    write(tmp_path, "seq/base_rnn.py", """
        import torch.nn as nn


        class BaseRNN(nn.Module):
            def __init__(self, hidden):
                super().__init__()
                self.hidden = hidden

            def forward(self, *args):
                raise NotImplementedError
    """)
    write(tmp_path, "seq/encoder.py", """
        import torch.nn as nn

        from .base_rnn import BaseRNN


        class EncoderRNN(BaseRNN):
            def __init__(self):
                super().__init__(16)
                self.embed = nn.Linear(8, 16)
                self.out = nn.Linear(16, 16)

            def forward(self, x):
                return self.out(self.embed(x).tanh())
    """)
    assert check(run_gradlint, tmp_path, "seq/encoder.py") == (0, {"EncoderRNN": "ok"}, [])
    # the base needs arguments but has no parameters of its own: GL902 info, exit 0
    assert check(run_gradlint, tmp_path, "seq/base_rnn.py") == (
        0, {"BaseRNN": "skipped"}, ["GL902"])


def test_models_built_from_a_config_object(run_gradlint: Any, tmp_path: Path) -> None:
    write(tmp_path, "gpt.py", GPT)
    write(tmp_path, "mingpt.py", """
        import torch.nn as nn


        class CN:
            def __init__(self, **kw):
                self.__dict__.update(kw)


        class MinGPT(nn.Module):
            @staticmethod
            def get_default_config():
                return CN(n_embd=16)

            def __init__(self, config):
                super().__init__()
                self.fc = nn.Linear(config.n_embd, config.n_embd)

            def forward(self, x):
                return self.fc(x)
    """)
    write(tmp_path, "hf.py", """
        import torch.nn as nn


        class TinyConfig:
            def __init__(self, hidden_size=16):
                self.hidden_size = hidden_size


        class TinyModel(nn.Module):
            config_class = TinyConfig

            def __init__(self, config):
                super().__init__()
                self.fc = nn.Linear(config.hidden_size, config.hidden_size)

            def forward(self, x):
                return self.fc(x)
    """)
    assert check(run_gradlint, tmp_path, "gpt.py", "mingpt.py", "hf.py") == (
        0, {"GPT": "ok", "MinGPT": "ok", "TinyModel": "ok"}, [])


def test_a_parameterless_helper_beside_a_real_model(run_gradlint: Any, tmp_path: Path) -> None:
    write(tmp_path, "model.py", """
        import math

        import torch
        import torch.nn as nn


        class NewGELU(nn.Module):
            def forward(self, x):
                return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * x))


        class DropPath(nn.Module):
            def __init__(self, p=0.1):
                super().__init__()
                self.p = p

            def forward(self, x):
                return x


        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(16, 16)
                self.proj = nn.Linear(16, 16)

            def forward(self, x):
                return self.proj(torch.relu(self.fc(x)))
    """)
    assert check(run_gradlint, tmp_path, "model.py") == (0, {"MLP": "ok"}, [])


NORM = """
import torch
import torch.nn as nn


class Norm(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(width))

    def forward(self, x):
        return x * self.scale
"""


def test_a_config_target_for_one_class_leaves_the_others_checked(
        run_gradlint: Any, tmp_path: Path) -> None:
    write(tmp_path, "models/f.py", DEEP + NORM)
    assert check(run_gradlint, tmp_path, "models/f.py") == (
        1, {"Deep": "ok", "Norm": "skipped"}, ["GL101", "GL102", "GL902"])
    write(tmp_path, "pyproject.toml", """
        [tool.gradlint.targets."models/f.py::Norm"]
        kwargs = { width = 8 }
        inputs = ["2x8"]
    """)
    assert check(run_gradlint, tmp_path, "models/f.py") == (
        1, {"Deep": "ok", "Norm": "ok"}, ["GL101", "GL102"])
    assert check(run_gradlint, tmp_path, "models/f.py::Norm") == (0, {"Norm": "ok"}, [])


def test_a_build_expression_in_pyproject(run_gradlint: Any, tmp_path: Path) -> None:
    write(tmp_path, "gpt/model.py", GPT.replace("n_embd: int = 16", "n_embd: int"))
    assert check(run_gradlint, tmp_path, "gpt/model.py") == (
        0, {"GPT": "skipped"}, ["GL902"])  # GPTConfig() needs n_embd; Block is GPT's part
    proc = run_gradlint("gpt/model.py", cwd=tmp_path)
    assert '[tool.gradlint.targets."gpt/model.py::GPT"] build = "GPT(...)"' in proc.stdout
    write(tmp_path, "pyproject.toml", """
        [tool.gradlint.targets."gpt/model.py::GPT"]
        build = "GPT(GPTConfig(n_embd=8, n_layer=3))"
    """)
    assert check(run_gradlint, tmp_path, "gpt/model.py") == (0, {"GPT": "ok"}, [])


def test_build_and_kwargs_together_are_a_config_error(run_gradlint: Any, tmp_path: Path
                                                      ) -> None:
    write(tmp_path, "gpt/model.py", GPT)
    write(tmp_path, "pyproject.toml", """
        [tool.gradlint.targets."gpt/model.py::GPT"]
        build = "GPT(GPTConfig())"
        kwargs = { n_layer = 2 }
    """)
    proc = run_gradlint("gpt/model.py", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "gpt/model.py::GPT" in proc.stderr and "build" in proc.stderr
    assert "kwargs" in proc.stderr and "Traceback" not in proc.stderr


def test_config_keys_are_relative_to_the_pyproject_folder(run_gradlint: Any, tmp_path: Path
                                                         ) -> None:
    """Run from a subfolder: GL902 suggests the key as pyproject.toml must spell it (relative to
    its own folder), and that key configures the model from there too."""
    write(tmp_path, "pyproject.toml", "[tool.gradlint]\n")
    write(tmp_path, "gpt/model.py", GPT.replace("n_embd: int = 16", "n_embd: int"))
    proc = run_gradlint("model.py", cwd=tmp_path / "gpt")
    assert '[tool.gradlint.targets."gpt/model.py::GPT"] build = "GPT(...)"' in proc.stdout
    write(tmp_path, "pyproject.toml", """
        [tool.gradlint.targets."gpt/model.py::GPT"]
        build = "GPT(GPTConfig(n_embd=8, n_layer=3))"
    """)
    assert check(run_gradlint, tmp_path / "gpt", "model.py") == (0, {"GPT": "ok"}, [])


LIBRARY = """
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, dim, depth):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
                                      for _ in range(depth)])

    def forward(self, x):
        return self.layers(x)


class Classifier(nn.Module):
    def __init__(self, num_classes, encoder):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.layers[0][0].in_features, num_classes)

    def forward(self, x):
        return self.head(self.encoder(x))
"""

LIBRARY_README = """
# lib

```bash
pip install lib
```

```python
from lib import Classifier, Encoder

model = Classifier(num_classes=10, encoder=Encoder(dim=32, depth=2))
```
"""


def test_a_library_model_is_built_as_its_readme_builds_it(run_gradlint: Any, tmp_path: Path
                                                          ) -> None:
    """A library whose models all need arguments: the README's example builds the outer one
    (the inner one is analysed inside it), said in the report; a training script beside it
    is parsed for calls, never run."""
    write(tmp_path, "pyproject.toml", "[project]\nname = 'lib'\n")
    write(tmp_path, "lib/__init__.py", "from .models import Classifier, Encoder\n")
    write(tmp_path, "lib/models.py", LIBRARY)
    write(tmp_path, "README.md", LIBRARY_README)
    write(tmp_path, "train.py", """
        import pathlib

        from lib import Classifier, Encoder

        pathlib.Path(__file__).with_name("TRAINED").touch()
        model = Classifier(num_classes=10, encoder=Encoder(dim=64, depth=12))
    """)
    proc = run_gradlint("lib", "--format", "json", "--jobs", "2", cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert_counts(doc)
    (model,) = [m for m in doc["models"] if m["status"] == "ok"]
    assert model["name"] == "Classifier", model
    line = textwrap.dedent(LIBRARY_README).lstrip("\n").splitlines().index(
        "model = Classifier(num_classes=10, encoder=Encoder(dim=32, depth=2))") + 1
    assert model["built_as"] == ("Classifier(num_classes=10, encoder=Encoder(dim=32, depth=2)) "
                                 f"as README.md:{line} builds it"), model["built_as"]
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "TRAINED").exists()
