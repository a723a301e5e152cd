"""Which models a file yields and how they are built (gradlint/load/targets.py, building.py,
conventions.py): modules without parameters are not models, constructors that take a config
object are built by conventions, configured targets add to discovery and may give a ``build``
expression, and a file with modules never yields nothing without saying why. In-process
through ``load_targets``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch.nn as nn

from gradlint.core.options import TargetConfig
from gradlint.core.values import Diagnostic, ModelReport, Target
from gradlint.load.targets import LoadRequest, load_targets


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


def load(path: Path, names: tuple[str, ...] = (), configs: dict[str, TargetConfig] | None = None,
         base: Path | None = None) -> dict[str, Target | ModelReport]:
    found = load_targets(LoadRequest(str(path), names, configs,
                                     base=str(base) if base else None))
    assert not isinstance(found, Diagnostic), found.message
    return {t.name.rpartition("::")[2]: t for t in found}


def checked(found: dict[str, Target | ModelReport]) -> dict[str, str | None]:
    """Checked model -> how it was built (a convention's call, else None)."""
    return {n: t.built_as for n, t in found.items() if isinstance(t, Target)}


def codes(found: dict[str, Target | ModelReport]) -> dict[str, list[tuple[str, str]]]:
    return {n: [(d.code, d.severity) for d in t.diagnostics]
            for n, t in found.items() if isinstance(t, ModelReport)}


def message(found: dict[str, Target | ModelReport], name: str) -> str:
    report = found[name]
    assert isinstance(report, ModelReport), report
    (diag,) = report.diagnostics
    return diag.message


HELPERS = """
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


class Scaled(nn.Module):  # a lazy layer's parameters count
    def __init__(self):
        super().__init__()
        self.fc = nn.LazyLinear(4)

    def forward(self, x):
        return self.fc(x)


act = NewGELU()


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.proj = nn.Linear(16, 16)

    def forward(self, x):
        return self.proj(torch.relu(self.fc(x)))
"""


def test_modules_without_parameters_are_not_models(tmp_path: Path) -> None:
    found = load(write(tmp_path, "helpers.py", HELPERS))
    assert checked(found) == {"Scaled": None, "MLP": None}
    assert codes(found) == {}


def test_a_named_helper_is_still_checked(tmp_path: Path) -> None:
    """``file.py::Name`` is what the user asked for, parameters or not."""
    found = load(write(tmp_path, "helpers.py", HELPERS), ("NewGELU",))
    assert checked(found) == {"NewGELU": None}


CONFIG_MODELS = """
from dataclasses import dataclass

import torch.nn as nn


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x):
        return self.fc(x).relu()


@dataclass
class GPTConfig:
    n_embd: int = 16
    n_layer: int = 2


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.n_layer)])

    def forward(self, x):
        return self.blocks(x)


class CN:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class MinGPT(nn.Module):
    @staticmethod
    def get_default_config():
        return CN(width=8)

    def __init__(self, settings):
        super().__init__()
        self.fc = nn.Linear(settings.width, settings.width)

    def forward(self, x):
        return self.fc(x)


class TinyConfig:
    def __init__(self, hidden_size=8):
        self.hidden_size = hidden_size


class TinyModel(nn.Module):
    config_class = TinyConfig

    def __init__(self, hf):
        super().__init__()
        self.fc = nn.Linear(hf.hidden_size, hf.hidden_size)

    def forward(self, x):
        return self.fc(x)


class Annotated(nn.Module):
    def __init__(self, settings: TinyConfig, other: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(settings.hidden_size, other.n_embd)

    def forward(self, x):
        return self.fc(x)
"""


def test_conventions_build_models_that_take_a_config(tmp_path: Path) -> None:
    found = load(write(tmp_path, "models.py", CONFIG_MODELS))
    assert checked(found) == {
        "GPT": "GPT(GPTConfig())",  # Block is inside it: not built on its own
        "MinGPT": "MinGPT(MinGPT.get_default_config())",
        "TinyModel": "TinyModel(TinyConfig())",
        "Annotated": "Annotated(settings=TinyConfig(), other=GPTConfig())"}
    assert codes(found) == {}


def test_a_parameter_named_like_one_of_several_configs(tmp_path: Path) -> None:
    source = CONFIG_MODELS.replace("def __init__(self, config):\n        super().__init__()\n"
                                   "        self.blocks", "def __init__(self, gpt_config):\n"
                                   "        config = gpt_config\n        super().__init__()\n"
                                   "        self.blocks")
    source += "\n\n@dataclass\nclass OtherConfig:\n    n: int = 1\n"
    found = load(write(tmp_path, "models.py", source), ("GPT", "Block"))
    assert checked(found)["GPT"] == "GPT(GPTConfig())"
    # ``config`` with two *Config classes in the module: no convention applies
    assert codes(found)["Block"] == [("GL902", "info")]
    assert "no convention supplies them" in message(found, "Block")


NEEDS = """
from dataclasses import dataclass

import torch.nn as nn


@dataclass
class NetConfig:
    width: int = 0


class Net(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.width <= 0:
            raise ValueError("width must be positive")
        self.fc = nn.Linear(config.width, 2)

    def forward(self, x):
        return self.fc(x)


class Wide(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.fc = nn.Linear(width, depth)

    def forward(self, x):
        return self.fc(x)
"""


def test_gl902_names_what_was_tried_and_the_config_line(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    model = write(tmp_path / "pkg", "net.py", NEEDS)
    found = load(model, base=tmp_path)
    assert codes(found) == {"Net": [("GL902", "info")], "Wide": [("GL902", "info")]}
    assert message(found, "Net") == (
        "Net needs constructor arguments (config); tried Net(NetConfig()), which raised "
        "ValueError: width must be positive; to check it, add to pyproject.toml: "
        '[tool.gradlint.targets."pkg/net.py::Net"] build = "Net(...)"')
    assert "(width, depth); no convention supplies them" in message(found, "Wide")
    assert all(t.status == "skipped" for t in found.values() if isinstance(t, ModelReport))


FORWARDS = """
import torch.nn as nn


class Base(nn.Module):
    def __init__(self, *, width, depth=2):
        super().__init__()
        self.fc = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x):
        return self.fc(x)


class Mixin:
    def extra(self):
        return 1


class Distillable(Mixin, Base):  # hands everything on, as vit-pytorch's DistillableViT
    def __init__(self, *args, **kwargs):
        super(Distillable, self).__init__(*args, **kwargs)
        self.kwargs = kwargs


class Wrapped(nn.Module):  # takes *args, **kwargs for its own use: builds without them
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.fc = nn.Linear(4, 4, *args, **kwargs)

    def forward(self, x):
        return self.fc(x)


class Plain(nn.Module):  # hands them on to nn.Module, which needs nothing
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
"""


def test_a_constructor_that_hands_everything_to_its_base_needs_what_the_base_needs(
        tmp_path: Path) -> None:
    """Built with no arguments, ``Distillable()`` raised the base's TypeError: GL906, an
    error (exit 2), for a model that only needs configuration (GL902, with the line to add)."""
    found = load(write(tmp_path, "forwards.py", FORWARDS))
    assert checked(found) == {"Wrapped": None, "Plain": None}
    assert codes(found)["Distillable"] == [("GL902", "info")]
    assert "Distillable needs constructor arguments (width)" in message(found, "Distillable")


def test_a_build_expression_and_kwargs_from_the_configuration(tmp_path: Path) -> None:
    model = write(tmp_path, "net.py", NEEDS)
    configs = {"net.py::Net": TargetConfig(build="Net(NetConfig(width=4))"),
               "net.py::Wide": TargetConfig(kwargs={"width": 3, "depth": 5}),
               "net.py::small": TargetConfig(build="Wide(2, 2)", inputs=("1x2",))}
    found = load(model, configs=configs, base=tmp_path)
    assert checked(found) == {"Net": None, "Wide": None, "small": None}
    small = found["small"]
    assert isinstance(small, Target) and small.line == 22  # at Wide's class
    assert small.model.fc.in_features == 2  # type: ignore[attr-defined]


def test_a_build_expression_that_raises_is_gl906(tmp_path: Path) -> None:
    model = write(tmp_path, "net.py", NEEDS)
    found = load(model, configs={"net.py::Net": TargetConfig(build="Net(NetConfig())")},
                 base=tmp_path)
    assert codes(found)["Net"] == [("GL906", "error")]
    assert message(found, "Net").startswith("build = 'Net(NetConfig())' raised ValueError")


TWO = """
import torch
import torch.nn as nn


class Norm(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(width))

    def forward(self, x):
        return x * self.scale


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Sigmoid())
                                      for _ in range(12)])

    def forward(self, x):
        return self.layers(x)
"""


def test_a_configured_target_adds_to_discovery(tmp_path: Path) -> None:
    model = write(tmp_path, "two.py", TWO)
    found = load(model, configs={"two.py::Norm": TargetConfig(kwargs={"width": 8})},
                 base=tmp_path)
    assert checked(found) == {"Norm": None, "Deep": None}
    # named on the command line: that model only
    assert checked(load(model, ("Norm",), {"two.py::Norm": TargetConfig(kwargs={"width": 8})},
                        base=tmp_path)) == {"Norm": None}


def test_a_configured_key_relative_to_another_folder_does_not_match(tmp_path: Path) -> None:
    model = write(tmp_path, "two.py", TWO)
    found = load(model, configs={"other/two.py::Norm": TargetConfig(kwargs={"width": 8})},
                 base=tmp_path)
    assert checked(found) == {"Deep": None}
    assert codes(found) == {"Norm": [("GL902", "info")]}


def test_a_configured_name_the_file_lacks(tmp_path: Path) -> None:
    model = write(tmp_path, "two.py", TWO)
    found = load(model, configs={"two.py::Gone": TargetConfig(inputs=("2x8",))}, base=tmp_path)
    assert codes(found)["Gone"] == [("GL906", "error")]
    assert checked(found) == {"Deep": None}


def test_a_file_whose_models_discovery_leaves_out_says_why(tmp_path: Path) -> None:
    """A private module-level instance of an imported model: nothing else explains why the
    file yields no model, so one GL902 says so, with the line that makes it checkable."""
    write(tmp_path, "two.py", TWO)
    wrapper = write(tmp_path, "wrapper.py", "from two import Deep\n\n_deep = Deep()\n")
    found = load(wrapper, base=tmp_path)
    assert codes(found) == {"_deep": [("GL902", "info")]}
    assert message(found, "_deep") == (
        f"no model of {wrapper} was checked: `_deep` is private (its name starts with an "
        "underscore); to check it, add to pyproject.toml: "
        '[tool.gradlint.targets."wrapper.py::_deep"] build = "_deep"')
    configured = load(wrapper, configs={"wrapper.py::_deep": TargetConfig()}, base=tmp_path)
    assert checked(configured) == {"_deep": None}
    public = write(tmp_path, "public.py", "from two import Deep\n\ndeep = Deep()\n")
    assert checked(load(public)) == {"deep": None}


@pytest.mark.parametrize("source", [
    "import torch.nn as nn\n\nACT = nn.ReLU()\n",
    "import torch.nn as nn\n\n\nclass Base(nn.Module):\n    def __init__(self):\n"
    "        super().__init__()\n        self.fc = nn.Linear(2, 2)\n",
    "X = 1\n"])
def test_files_without_models_stay_silent(tmp_path: Path, source: str) -> None:
    assert load(write(tmp_path, "quiet.py", source)) == {}


def test_the_suggested_key_is_a_clean_relative_path(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "net.py", NEEDS)
    monkeypatch.chdir(tmp_path)
    found = load_targets(LoadRequest("./net.py"))
    assert not isinstance(found, Diagnostic)
    (wide,) = [t for t in found if t.name.rpartition("::")[2] == "Wide"]
    assert isinstance(wide, ModelReport)
    assert '[tool.gradlint.targets."net.py::Wide"]' in wide.diagnostics[0].message


COMPONENTS = """
import torch.nn as nn


class Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.proj = nn.Linear(config.width, config.width)

    def forward(self, x):
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn = Attention(config)

    def forward(self, x):
        return x + self.attn(x)


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.depth)])

    def forward(self, x):
        return self.blocks(x)


class Ping(nn.Module):  # two classes that build each other keep their own GL902
    def __init__(self, width, pong=None):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.other = pong or Pong(width, self)

    def forward(self, x):
        return self.fc(x)


class Pong(nn.Module):
    def __init__(self, width, ping=None):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.other = ping or Ping(width, self)

    def forward(self, x):
        return self.fc(x)
"""


def test_components_of_a_model_that_needs_arguments_share_its_gl902(tmp_path: Path) -> None:
    """Only the outermost class says what to configure: a GPT's Block(config) and its
    Attention(config) are analysed inside the GPT once it is built."""
    found = load(write(tmp_path, "gpt.py", COMPONENTS))
    assert codes(found) == {"GPT": [("GL902", "info")], "Ping": [("GL902", "info")],
                            "Pong": [("GL902", "info")]}


VARIANT = """
import torch.nn as nn


class UNet(nn.Module):
    def __init__(self, in_channels, width):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class SuperRes(UNet):
    def __init__(self, in_channels, *args, **kwargs):
        super().__init__(in_channels * 2, *args, **kwargs)
"""


def test_a_base_class_its_subclass_names_keeps_its_gl902(tmp_path: Path) -> None:
    """``SuperRes(UNet)`` names UNet as its base: UNet is the main model, not a component the
    variant builds (improved-diffusion's UNetModel was not reported at all)."""
    found = load(write(tmp_path, "unet.py", VARIANT))
    assert codes(found) == {"UNet": [("GL902", "info")], "SuperRes": [("GL902", "info")]}


PARTS = """
import torch.nn as nn


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class Unused(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x)
"""

UNET = """
import torch.nn as nn

from .parts import *


class UNet(nn.Module):
    def __init__(self, n_channels):
        super().__init__()
        self.down = Down(n_channels, 8)
        self.up = Up(8, n_channels)

    def forward(self, x):
        return self.up(self.down(x))
"""


def test_parts_a_neighbouring_model_builds_share_its_gl902(tmp_path: Path) -> None:
    """UNet's Down and Up live in parts.py and are built by UNet in model.py: checking
    parts.py says they are parts (no GL902 each); a class nobody builds keeps its own."""
    for package, parts in (("unet_a", PARTS), ("unet_b", PARTS.split("\n\nclass Unused")[0])):
        pkg = tmp_path / package  # one package per case: the file is imported by its name
        pkg.mkdir()
        write(pkg, "__init__.py", "")
        write(pkg, "model.py", UNET)
        write(pkg, "parts.py", parts + "\n")
    assert codes(load(tmp_path / "unet_a" / "parts.py")) == {"Unused": [("GL902", "info")]}
    found = load(tmp_path / "unet_b" / "parts.py")  # nothing else: one GL902 says why
    (name,) = found
    assert "is a part of UNet" in message(found, name), message(found, name)
    assert codes(load(tmp_path / "unet_b" / "model.py")) == {"UNet": [("GL902", "info")]}


def test_class_lines_agree_with_inspect(tmp_path: Path) -> None:
    """class_line reads every class of a file from one parse; it says what inspect says:
    the first decorator's line, nested and local classes by qualified name, the first of two
    definitions, and falls back to inspect for functions."""
    import importlib.util
    import inspect

    from gradlint.load.building import class_line

    path = write(tmp_path, "lines_model.py", """
        import torch.nn as nn


        def deco(cls):
            return cls


        @deco
        @deco
        class Decorated(nn.Module):
            class Inner(nn.Module):
                pass


        if True:
            class Conditional(nn.Module):
                pass


        def factory():
            class Local(nn.Module):
                pass
            return Local


        class Twice(nn.Module):
            pass


        class Twice(nn.Module):  # noqa: F811
            pass
        """)
    spec = importlib.util.spec_from_file_location("lines_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    import sys
    sys.modules["lines_model"] = module
    try:
        spec.loader.exec_module(module)
        objs = [module.Decorated, module.Decorated.Inner, module.Conditional, module.factory(),
                module.Twice, module.deco]
        assert [class_line(o) for o in objs] == [inspect.getsourcelines(o)[1] for o in objs]
        assert [class_line(o) for o in objs[:4]] == [8, 11, 16, 21]
    finally:
        del sys.modules["lines_model"]


DROP_PATH = """
import torch
import torch.nn as nn


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = float(drop_prob)  # its default raises: always built with a value
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.scale


class Broken(nn.Module):
    def __init__(self, width=None):
        super().__init__()
        self.fc = nn.Linear(int(width), 4)

    def forward(self, x):
        return self.fc(x)
"""

NET_WITH_PARTS = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.drop = DropPath(0.1)

    def forward(self, x):
        return self.drop(self.fc(x))
"""


def test_a_part_whose_defaults_fail_is_not_an_error(tmp_path: Path) -> None:
    """``DropPath()`` raises with its defaults but the model of the file builds it with a
    value: its GL906 is noise (a vit-pytorch file got two). A class no model builds keeps its
    GL906, and so does the part when it is the file's only model."""
    found = load(write(tmp_path, "model.py", DROP_PATH + NET_WITH_PARTS))
    assert checked(found) == {"Net": None}
    assert codes(found) == {"Broken": [("GL906", "error")]}
    alone = load(write(tmp_path, "parts.py", DROP_PATH))
    assert codes(alone) == {"Broken": [("GL906", "error")], "DropPath": [("GL906", "error")]}


def test_a_part_a_neighbour_builds_whose_defaults_fail_is_not_an_error(tmp_path: Path) -> None:
    pkg = tmp_path / "droppkg"
    pkg.mkdir()
    write(pkg, "__init__.py", "")
    write(pkg, "layers.py", DROP_PATH.split("\n\nclass Broken")[0] + "\n")
    write(pkg, "model.py", "import torch.nn as nn\n\nfrom .layers import DropPath\n\n"
          + textwrap.dedent(NET_WITH_PARTS))
    found = load(pkg / "layers.py")
    (name,) = found
    assert "DropPath()` raised with its defaults, and it is a part of Net" in message(
        found, name), message(found, name)
    assert codes(found)[name] == [("GL902", "info")]


WRAPPER = """
import torch.nn as nn


class Decoder(nn.Module):
    def __init__(self, dim, depth, act=None):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Sequential(nn.Linear(dim, dim), act or nn.ReLU())
                                      for _ in range(depth)])

    def forward(self, x):
        return self.layers(x)


class Wrapper(nn.Module):
    def __init__(self, num_classes, attn_layers):
        super().__init__()
        self.body = attn_layers
        self.head = nn.Linear(self.body.layers[0][0].in_features, num_classes)

    def forward(self, x):
        return self.head(self.body(x))
"""


def _repository(root: Path, package: str, readme: str = "",
                scripts: dict[str, str] | None = None) -> Path:
    """A project: pyproject.toml, a package (``wrap`` in the sources, renamed: each test
    imports its own in this process) whose model.py holds WRAPPER, a README and scripts."""
    write(root, "pyproject.toml", f"[project]\nname = '{package}'\n")
    (root / package).mkdir()
    write(root / package, "__init__.py", "from .model import Decoder, Wrapper\n")
    model = write(root / package, "model.py", WRAPPER)
    if readme:
        write(root, "README.md", readme.replace("wrap", package))
    for rel, text in (scripts or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write(root, rel, text.replace("wrap", package))
    return model


README_USAGE = '''
# wrap

```bash
pip install wrap
```

```python
from wrap import Wrapper, Decoder
```

A model:

```python
import torch.nn as nn

model = Wrapper(num_classes=10, attn_layers=Decoder(dim=16, depth=4, act=nn.GELU()))
```
'''


def test_a_call_in_the_readme_builds_a_model_that_needs_arguments(tmp_path: Path) -> None:
    """The README's example is the recipe: its imports (in an earlier block) resolve its
    names to the very classes, its arguments are literals and calls of the package's
    classes and of nn modules. A bash block in front is no Python."""
    model = _repository(tmp_path, "wrap_readme", README_USAGE)
    found = load(model)
    assert set(checked(found)) == {"Wrapper"}, codes(found)
    built = checked(found)["Wrapper"]
    assert built is not None and built.startswith(
        "Wrapper(num_classes=10, attn_layers=Decoder(dim=16, depth=4, act=nn.GELU()))")
    line = README_USAGE.lstrip("\n").splitlines().index(
        "model = Wrapper(num_classes=10, attn_layers=Decoder(dim=16, depth=4, act=nn.GELU()))")
    assert built.endswith(f"README.md:{line + 1} builds it"), built
    target = found["Wrapper"]
    assert isinstance(target, Target) and target.model is not None
    assert len(target.model.body.layers) == 4
    assert isinstance(target.model.body.layers[0][1], nn.GELU)


SCRIPTS = {
    "tests/test_model.py": """
        from wrap import Wrapper, Decoder


        def test_tiny():
            Wrapper(num_classes=2, attn_layers=Decoder(dim=4, depth=1))
        """,
    "train.py": """
        import os
        import pathlib

        from wrap.model import Decoder, Wrapper

        width = int(os.environ.get("WIDTH", "64"))
        pathlib.Path(__file__).with_name("TRAINED").touch()
        skipped = Wrapper(num_classes=10, attn_layers=Decoder(dim=width, depth=6))
        model = Wrapper(num_classes=10, attn_layers=Decoder(dim=32, depth=6))
        """,
}


def test_scripts_come_before_tests_and_are_never_run(tmp_path: Path) -> None:
    """A script's call with literal arguments is taken before a test's (its configuration is
    the real one); a call with an argument computed when the script runs is not; the script
    is parsed, not run."""
    model = _repository(tmp_path, "wrap_scripts", scripts=SCRIPTS)
    found = load(model)
    built = checked(found)["Wrapper"]
    assert built is not None and built.startswith(
        "Wrapper(num_classes=10, attn_layers=Decoder(dim=32, depth=6))"), built
    assert "train.py:" in built
    assert not (tmp_path / "TRAINED").exists()


def test_a_call_of_another_class_of_the_same_name_is_not_taken(tmp_path: Path) -> None:
    """Names resolve through the source's imports to the very class: the package's other
    ``Wrapper`` (in ``alt.py``, imported too) does not build this one."""
    model = _repository(tmp_path, "wrap_other", scripts={
        "use.py": "from wrap_other.alt import Wrapper\n\n"
                  "w = Wrapper(num_classes=3, attn_layers=None)\n"})
    write(model.parent, "alt.py", "class Wrapper:\n"
          "    def __init__(self, num_classes, attn_layers):\n        pass\n")
    write(model.parent, "__init__.py", "from . import alt\nfrom .model import Decoder, Wrapper\n")
    found = load(model)
    assert codes(found)["Wrapper"] == [("GL902", "info")]
    assert "no convention supplies them" in message(found, "Wrapper")
    # the same call through this class's own name builds it (and fails: attn_layers=None)
    write(tmp_path, "use.py", "from wrap_other.model import Wrapper\n\n"
          "w = Wrapper(num_classes=3, attn_layers=None)\n")
    found = load(model)
    assert "tried Wrapper(num_classes=3, attn_layers=None) as " in message(found, "Wrapper")


CONFIGURED = """
import torch.nn as nn


class Settings:
    def __init__(self):
        self.width = None
        self.depth = 2
        self.extra = {"act": "relu"}


class Net(nn.Module):
    @staticmethod
    def default_settings():
        return Settings()

    def __init__(self, settings):
        super().__init__()
        assert settings.width is not None
        act = nn.GELU if settings.extra["act"] == "gelu" else nn.ReLU
        self.layers = nn.Sequential(*[nn.Sequential(nn.Linear(settings.width, settings.width),
                                                    act()) for _ in range(settings.depth)])

    def forward(self, x):
        return self.layers(x)
"""

README_STEPS = '''
```python
from steps.model import Net

settings = Net.default_settings()
settings.width = 24
settings.depth = 5
settings.extra["act"] = "gelu"
model = Net(settings)
```

Trained on your data:

```python
settings = Net.default_settings()
settings.width = dataset.features()
model = Net(settings)
```
'''


def test_a_configuration_built_in_steps_in_the_readme(tmp_path: Path) -> None:
    """``settings = Net.default_settings()``, then literals set on it (attributes, keys), then
    ``Net(settings)``, as minGPT's README builds its GPT: the recipe makes the object and
    replays the settings. A setting computed at run time (the second example) is no recipe."""
    write(tmp_path, "pyproject.toml", "[project]\nname = 'steps'\n")
    (tmp_path / "steps").mkdir()
    write(tmp_path / "steps", "__init__.py", "")
    model = write(tmp_path / "steps", "model.py", CONFIGURED)
    write(tmp_path, "README.md", README_STEPS)
    found = load(model)
    built = checked(found)["Net"]
    assert built is not None and built.startswith("Net(settings) as "), (built, codes(found))
    assert built.endswith("README.md:8 builds it"), built
    target = found["Net"]
    assert isinstance(target, Target) and target.model is not None
    assert len(target.model.layers) == 5 and target.model.layers[0][0].in_features == 24
    assert isinstance(target.model.layers[0][1], nn.GELU)
    write(tmp_path, "README.md", README_STEPS.split("Trained")[1])
    found = load(model)
    assert codes(found)["Net"] == [("GL902", "info")]
