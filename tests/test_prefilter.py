"""The pre-filter (gradlint/load/prefilter/) judges all the code that runs at import, and only
that:
module level, class bodies, decorators, default arguments, annotations, the local modules a file
imports, and the local functions and constructors that code calls. Nothing here imports torch
or runs the files; a file the judged code would write must never appear."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from gradlint.core.options import Options
from gradlint.core.values import Diagnostic
from gradlint.load import harmless
from gradlint.load.prefilter import MAX_DEPTH, Prefilter, prefilter_file, prefilter_source
from gradlint.run.pipeline import plan_file

NET = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)

"""

# a GPT in the style of nanoGPT: a dataclass config and a constructor that builds its blocks in
# comprehensions and loops, ties weights, initialises through self.apply and prints its size
GPT_PARTS = """\
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 16
    vocab_size: int = 64
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 16
    bias: bool = True
    extra: list = field(default_factory=list)


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x):
        q, k, v = self.attn(self.ln(x)).split(x.shape[-1], dim=2)
        return x + self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                torch.nn.init.normal_(p, std=0.02 / math.sqrt(2 * config.n_layer))
        print("parameters: %.2fM" % (self.get_num_params() / 1e6,))

    def get_num_params(self):
        return sum(p.numel() for p in self.parameters())

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))

    @classmethod
    def from_pretrained(cls, name):
        from transformers import GPT2LMHeadModel
        return GPT2LMHeadModel.from_pretrained(name)  # not called at import: not judged

    @torch.no_grad()
    def generate(self, idx, steps):
        for _ in range(steps):
            idx = torch.cat((idx, self(idx)[:, -1:].argmax(-1)), dim=1)
        return idx
"""

TRAIN = """\
import torch
from parts import GPT, GPTConfig

HIDDEN = 16
model = GPT(GPTConfig())
for step in range(3):  # MARK
    torch.save(model.state_dict(), f"step{step}.pt")
"""


def _source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _mark(source: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if "# MARK" in line)


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_source(text) if text.startswith("\n") else text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- passed before

# each ran at import and passed the old pre-filter (a capitalised callee counted as harmless,
# and class bodies, decorators, defaults, annotations, assert and raise were not looked at)
RAN_BEFORE = {
    "popen": ("import subprocess\n\nsubprocess.Popen(['true'])  # MARK\n",
              "call `subprocess.Popen(...)`"),
    "trainer": ("from lightning import Trainer\n\ntrainer = Trainer(epochs=2)  # MARK\n",
                "call `Trainer(...)`"),
    "dataset_download": ("from torchvision import datasets\n\n"
                         "data = datasets.MNIST('data', download=True)  # MARK\n",
                         "call `datasets.MNIST(...)`"),
    "summary_writer": ("from torch.utils.tensorboard import SummaryWriter\n\n"
                       "writer = SummaryWriter('runs')  # MARK\n", "call `SummaryWriter(...)`"),
    "file_handler": ("import logging\n\nhandler = logging.FileHandler('train.log')  # MARK\n",
                     "call `logging.FileHandler(...)`"),
    "basic_config_file": ("import logging\n\nlogging.basicConfig(filename='train.log')  # MARK\n",
                          "call `logging.basicConfig(...)`"),
    "class_body": ("class Data:\n    rows = open('data.csv').readlines()  # MARK\n",
                   "class-level call `open(...)`"),
    "decorator": ("def register(fn):\n    open('registry.txt', 'a').write(fn.__name__)\n"
                  "    return fn\n\n\n@register  # MARK\ndef build():\n    return Net()\n",
                  "decorator call `register(...)`"),
    "default_argument": ("def build(state=torch.load('ckpt.pt')):  # MARK\n    return Net()\n",
                         "default-argument call `torch.load(...)`"),
    "annotation": ("import subprocess\n\n\ndef build() -> subprocess.run(['true']):  # MARK\n"
                   "    return Net()\n", "annotation call `subprocess.run(...)`"),
    "assert": ("import os\n\nassert os.system('true') == 0  # MARK\n", "call `os.system(...)`"),
    "raise": ("import shutil\n\nif not torch.cuda.is_available():\n"
              "    raise RuntimeError(shutil.rmtree('cache'))  # MARK\n",
              "call `shutil.rmtree(...)`"),
}


@pytest.mark.parametrize("name", sorted(RAN_BEFORE))
def test_code_that_ran_before_is_now_judged(name: str) -> None:
    body, call = RAN_BEFORE[name]
    source = NET + body
    verdict = prefilter_source(source)
    line = _mark(source)
    assert (verdict.verdict, verdict.line) == ("does-work", line), verdict
    assert call in verdict.reason and f"at line {line} runs at import" in verdict.reason


def test_an_unknown_capitalised_call_is_not_assumed_harmless() -> None:
    verdict = prefilter_source(NET + "model = Wrapper(Net())  # MARK\n")
    assert verdict.verdict == "does-work"
    assert verdict.reason.endswith("(`Wrapper` cannot be resolved statically)")


def test_importing_an_unguarded_training_script_is_work(tmp_path: Path) -> None:
    _write(tmp_path, "parts.py", GPT_PARTS)
    train = _write(tmp_path, "train.py", TRAIN)
    model = _write(tmp_path, "model.py", NET + "from train import HIDDEN  # MARK\n")
    verdict = prefilter_file(str(model))
    loop = _mark(TRAIN)
    assert (verdict.verdict, verdict.line) == ("does-work", _mark(model.read_text()))
    assert verdict.reason == f"importing {tmp_path / 'train.py'} runs its module-level `for` " \
        f"loop at line {loop}"
    assert (verdict.work_file, verdict.work_line) == (str(train), loop)
    assert prefilter_file(str(train)).line == loop  # and train.py itself is skipped too


def test_gl907_names_the_imported_file_and_its_line(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "case/parts.py", GPT_PARTS)
    _write(tmp_path, "case/train.py", TRAIN)
    _write(tmp_path, "case/model.py", NET + "from train import HIDDEN  # MARK\n")
    monkeypatch.chdir(tmp_path)
    result = plan_file("case/model.py", (), Options())
    assert isinstance(result, tuple)
    (diag,) = result[1]
    assert isinstance(diag, Diagnostic) and diag.code == "GL907"
    assert (diag.location.file, diag.location.line) == ("case/model.py", _mark(NET + "# MARK"))
    assert f"importing case/train.py runs its module-level `for` loop at line {_mark(TRAIN)}" \
        in diag.message


# ---------------------------------------------------------------------------- must pass


def test_gpt_from_a_local_module_is_a_model(tmp_path: Path) -> None:
    _write(tmp_path, "parts.py", GPT_PARTS)
    model = _write(tmp_path, "model.py", "from parts import GPT, GPTConfig\n\n"
                   "gpt = GPT(GPTConfig())\n")
    assert prefilter_file(str(model)) == Prefilter("model")
    assert prefilter_file(str(tmp_path / "parts.py")) == Prefilter("model")


@pytest.mark.parametrize("source", [
    "import torchvision\n\nm = torchvision.models.resnet50()\n",
    "from torchvision.models import resnet50\n\nm = resnet50(weights=None).eval()\n",
    "import timm\n\nm = timm.create_model('resnet18')\n",
    "from transformers import AutoConfig, AutoModel\n\n"
    "cfg = AutoConfig.for_model('bert', hidden_size=64, num_hidden_layers=2,\n"
    "                           num_attention_heads=2, intermediate_size=128)\n"
    "m = AutoModel.from_config(cfg)\n",
    "from transformers import AutoModel, BertConfig\n\n"
    "m = AutoModel.from_config(BertConfig(hidden_size=64, num_hidden_layers=2))\n",
    "import transformers\n\nm = transformers.BertModel(transformers.BertConfig())\n",
])
def test_model_zoo_constructors_are_models(source: str) -> None:
    assert prefilter_source(source) == Prefilter("model")


@pytest.mark.parametrize("source, call", [
    ("import torchvision\n\nm = torchvision.models.resnet50(weights='DEFAULT')\n",
     "`torchvision.models.resnet50(...)`"),
    ("import timm\n\nm = timm.create_model('resnet18', pretrained=True)\n",
     "`timm.create_model(...)`"),
    ("import timm\n\nm = timm.create_model('resnet18', True)\n", "`timm.create_model(...)`"),
    ("from torchvision.models import detection\n\n"
     "m = detection.fasterrcnn_resnet50_fpn()\n", "`detection.fasterrcnn_resnet50_fpn(...)`"),
    ("from transformers import AutoModel\n\nm = AutoModel.from_pretrained('bert-base-cased')\n",
     "`AutoModel.from_pretrained(...)`"),
])
def test_model_zoo_downloads_are_work(source: str, call: str) -> None:
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line) == ("does-work", 3)
    assert call in verdict.reason


def test_constructor_with_loops_and_init_weights_is_a_model() -> None:
    verdict = prefilter_source(_source("""
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, depth=4, width=16):
                super().__init__()
                layers = []
                for i in range(depth):
                    layers += [nn.Linear(width, width), nn.ReLU()]
                self.body = nn.Sequential(*layers)
                self.heads = nn.ModuleList(nn.Linear(width, 2) for _ in range(3))
                with torch.no_grad():
                    self.scale = nn.Parameter(torch.ones(width))
                self.apply(self._init_weights)

            def _init_weights(self, module):
                if isinstance(module, nn.Linear):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                    nn.init.zeros_(module.bias)

            def forward(self, x):
                return self.body(x)


        import torch

        torch.manual_seed(0)
        model = Net()
        """))
    assert verdict == Prefilter("model")


def test_timm_style_layers_handed_on_are_a_model() -> None:
    verdict = prefilter_source(_source("""
        from functools import partial

        import torch.nn as nn


        class Mlp(nn.Module):
            def __init__(self, dim, act_layer=nn.GELU, norm_layer=None):
                super().__init__()
                norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
                self.norm = norm_layer(dim)
                self.act = act_layer()
                self.fc = nn.Linear(dim, dim)
                self.drop = getattr(nn, "Dropout")(0.1)

            def forward(self, x):
                return self.fc(self.act(self.norm(x)))


        ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}
        model = nn.Sequential(*[Mlp(8, ACTIVATIONS["gelu"]) for _ in range(2)])
        """))
    assert verdict == Prefilter("model")


# ---------------------------------------------------------------------------- transitive


def test_constructor_that_opens_a_file_is_work() -> None:
    source = NET + _source("""
        class Cached(nn.Module):
            def __init__(self):
                super().__init__()
                self.stats = open("stats.txt").read()  # MARK

        model = Cached()
        """)
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line) == ("does-work", len(source.splitlines()))
    assert verdict.reason == (f"module-level call `Cached(...)` at line {verdict.line} runs at "
                              f"import and calls `open(...)` at line {_mark(source)}")
    assert verdict.work_line == _mark(source)


def test_constructor_that_saves_a_checkpoint_is_work() -> None:
    source = NET + _source("""
        def build():
            return Saving()


        class Saving(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 2)
                torch.save(self.state_dict(), "init.pt")  # MARK

        model = build()
        """)
    verdict = prefilter_source(source)
    assert verdict.verdict == "does-work"
    assert "calls `Saving(...)`" in verdict.reason
    assert verdict.reason.endswith(f"which calls `torch.save(...)` at line {_mark(source)}")


def test_helper_called_at_module_level_that_writes_is_work() -> None:
    source = NET + _source("""
        from pathlib import Path


        def log_shapes(model):
            Path("shapes.txt").write_text(str(model))  # MARK


        model = Net()
        log_shapes(model)
        """)
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line) == ("does-work", len(source.splitlines()))
    assert "call `log_shapes(...)`" in verdict.reason
    assert f"calls `Path(...).write_text(...)` at line {_mark(source)}" in verdict.reason


def test_functions_nobody_calls_at_import_are_not_judged() -> None:
    verdict = prefilter_source(NET + _source("""
        import subprocess


        def train(model):
            torch.save(model.state_dict(), "model.pt")
            subprocess.run(["nvidia-smi"])
            with open("log.txt", "w") as log:
                for step in range(10):
                    log.write(str(step))


        model = Net()
        handler = lambda: train(model)  # noqa: E731 - not called
        """))
    assert verdict == Prefilter("model")


def test_methods_are_found_on_self_and_on_subclasses() -> None:
    source = NET + _source("""
        class Base(nn.Module):
            def __init__(self):
                super().__init__()
                self.build()

            def build(self):
                self.fc = nn.Linear(2, 2)


        class Logged(Base):
            def build(self):
                super().build()
                print("built", file=open("built.txt", "w"))  # MARK


        model = Logged()
        """)
    verdict = prefilter_source(source)
    assert verdict.verdict == "does-work" and verdict.work_line == _mark(source)
    assert "calls `self.build(...)`" in verdict.reason


@pytest.mark.parametrize("body", [
    "class Net2(nn.Module):\n    @property\n    def data(self):\n"
    "        return open('data.txt').read()  # MARK\n\n\nmodel = Net2()\n",
    "class Net2(nn.Module):\n    def __del__(self):\n"
    "        open('closed.txt', 'w')  # MARK\n\n\nmodel = Net2()\n",
    "def hook(module, inputs, output):\n    open('hook.txt', 'a')  # MARK\n\n\n"
    "model = Net()\nmodel.register_forward_hook(hook)\n",
    "class Net2(Net):\n    def __init__(self):\n        super().__init__()\n"
    "        self.apply(self._init)\n\n    def _init(self, m):\n"
    "        torch.save(m.state_dict(), 'm.pt')  # MARK\n\n\nmodel = Net2()\n",
])
def test_code_that_runs_without_an_explicit_call_is_judged(body: str) -> None:
    """Properties and dunders run on an instance; a function handed to a library may be
    called by it (a hook, ``self.apply``)."""
    source = NET + body
    verdict = prefilter_source(source)
    assert verdict.verdict == "does-work" and verdict.work_line == _mark(source), verdict


@pytest.mark.parametrize("body, shown", [
    ("import os\n\n\nclass Net2(Net):\n    def __init__(self):\n        super().__init__()\n"
     "        self.cleanup = os.remove\n\n\nmodel = Net2()\n", "`os.remove`"),
    ("import shutil\n\nACTIONS = {'clean': shutil.rmtree}\n", "`shutil.rmtree`"),
    ("import os\n\nmodel = Net()\nmodel.register_forward_hook(os.system)\n", "`os.system`"),
])
def test_library_functions_handed_on_must_be_harmless(body: str, shown: str) -> None:
    verdict = prefilter_source(NET + body)
    assert verdict.verdict == "does-work"
    assert f"hands on {shown}" in verdict.reason or f"{shown} handed on" in verdict.reason


@pytest.mark.parametrize("body, effect", [
    ("model = Net()\nmodel.save_pretrained('out')\n", "save_pretrained"),
    ("from pathlib import Path\n\nPath('out').mkdir()\n", "mkdir"),
    ("model = Net()\nloss = model(torch.randn(1, 4)).sum()\nloss.backward()\n", "backward"),
])
def test_effect_methods_are_work_on_any_value(body: str, effect: str) -> None:
    verdict = prefilter_source(NET + body)
    assert verdict.verdict == "does-work"
    assert verdict.reason.endswith(f"(`.{effect}(...)` does work on any object)")


@pytest.mark.parametrize("body", [
    "import sys\n\nsys.modules['os'].system('true')\n",
    "import os\n\ngetattr(os, 'system')('true')\n",
    "import os\n\nname = 'system'\ngetattr(os, name)('true')\n",
    "exec('import os')\n",
    "__import__('os').system('true')\n",
    "import importlib\n\nimportlib.import_module('os')\n",
    "model = Net()\ny = model(torch.randn(1, 4))\nwith open('y.txt', 'w') as f:\n    pass\n",
])
def test_back_doors_are_work(body: str) -> None:
    assert prefilter_source(NET + body).verdict == "does-work"


def test_guarded_and_type_checking_code_is_not_judged() -> None:
    verdict = prefilter_source(NET + _source("""
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            import subprocess
            subprocess.run(["true"])

        if __name__ == "__main__":
            for epoch in range(10):
                torch.save(Net().state_dict(), "net.pt")
        else:
            model = Net()
        """))
    assert verdict == Prefilter("model")


def test_postponed_annotations_are_not_judged() -> None:
    source = "def build(path: open('x')) -> subprocess.run(['true']):\n    return Net()\n"
    assert prefilter_source(NET + source).verdict == "does-work"
    postponed = "from __future__ import annotations\n" + NET + source
    assert prefilter_source(postponed) == Prefilter("model")


def test_recursion_terminates() -> None:
    recursive = NET + _source("""
        def even(n):
            return n == 0 or odd(n - 1)


        def odd(n):
            return n != 0 and even(n - 1)


        class Tree(nn.Module):
            def __init__(self, depth=3):
                super().__init__()
                self.children_ = nn.ModuleList([Tree(depth - 1) for _ in range(2)] if depth
                                               else [])

        DEPTH = even(4)
        model = Tree()
        """)
    assert prefilter_source(recursive) == Prefilter("model")
    writes = recursive.replace("return n != 0 and even(n - 1)",
                               "return n != 0 and even(n - 1) or open('odd.txt', 'w')")
    verdict = prefilter_source(writes)
    assert verdict.verdict == "does-work" and "calls `odd(...)`" in verdict.reason


def test_a_chain_too_deep_to_follow_is_not_assumed_harmless() -> None:
    chain = "".join(f"def f{i}():\n    return f{i + 1}()\n\n\n" for i in range(MAX_DEPTH + 5))
    chain += f"def f{MAX_DEPTH + 5}():\n    return 1\n\n\nVALUE = f0()\n"
    verdict = prefilter_source(NET + chain)
    assert verdict.verdict == "does-work" and "too deep" in verdict.reason
    short = "def f0():\n    return f1()\n\n\ndef f1():\n    return 1\n\n\nVALUE = f0()\n"
    assert prefilter_source(NET + short) == Prefilter("model")


# ---------------------------------------------------------------------------- local modules


def test_relative_import_in_a_package_is_judged(tmp_path: Path) -> None:
    _write(tmp_path, "pkg/__init__.py", "")
    parts = _write(tmp_path, "pkg/parts.py", NET + "open('parts.log', 'w')  # MARK\n")
    model = _write(tmp_path, "pkg/model.py",
                   "import torch.nn as nn\n\nfrom .parts import Net  # MARK\n\nnet = Net()\n")
    verdict = prefilter_file(str(model))
    assert (verdict.verdict, verdict.line) == ("does-work", 3)
    line = _mark(NET + "# MARK")
    assert verdict.reason.startswith(f"importing {tmp_path / 'pkg' / 'parts.py'} runs its "
                                     f"module-level call `open(...)` at line {line}")
    assert verdict.work_file == str(parts)
    parts.write_text(NET)
    assert prefilter_file(str(model)) == Prefilter("model")


def test_package_init_is_judged(tmp_path: Path) -> None:
    init = _write(tmp_path, "pkg/__init__.py", "import os\n\nos.makedirs('cache')\n")
    _write(tmp_path, "pkg/parts.py", NET)
    model = _write(tmp_path, "pkg/model.py", "from .parts import Net\n\nnet = Net()\n")
    verdict = prefilter_file(str(model))
    assert (verdict.verdict, verdict.work_file, verdict.work_line) == ("does-work", str(init), 3)


def test_absolute_import_of_the_package_from_the_folder_above(tmp_path: Path) -> None:
    _write(tmp_path, "proj/pkg/__init__.py", "")
    _write(tmp_path, "proj/pkg/parts.py", NET)
    _write(tmp_path, "proj/pkg/sub/__init__.py", "")
    deep = _write(tmp_path, "proj/pkg/sub/deep.py",
                  "from pkg.parts import Net\nfrom pkg import setup  # MARK\n\nnet = Net()\n")
    setup = _write(tmp_path, "proj/pkg/setup.py", "import subprocess\n\n"
                   "subprocess.run(['pip', 'install', 'x'])\n")
    verdict = prefilter_file(str(deep))
    assert (verdict.verdict, verdict.line, verdict.work_file) == ("does-work", 2, str(setup))
    setup.write_text("WIDTH = 4\n")
    assert prefilter_file(str(deep)) == Prefilter("model")


def test_functions_of_local_modules_are_judged_where_they_are(tmp_path: Path) -> None:
    helpers = _write(tmp_path, "helpers.py", _source("""
        import json


        def load_config(path="config.json"):
            return json.load(open(path))  # MARK


        def width():
            return 8
        """))
    model = _write(tmp_path, "model.py", NET + "import helpers\n\nWIDTH = helpers.width()\n"
                   "CONFIG = helpers.load_config()\n")
    verdict = prefilter_file(str(model))
    assert verdict.verdict == "does-work" and verdict.line == len(model.read_text().splitlines())
    assert (verdict.work_file, verdict.work_line) == (str(helpers), _mark(helpers.read_text()))
    assert f"of {tmp_path / 'helpers.py'}" in verdict.reason


def test_sys_path_insert_is_followed_when_it_can_be_worked_out(tmp_path: Path) -> None:
    _write(tmp_path, "lib/parts.py", GPT_PARTS)
    _write(tmp_path, "lib/train.py", TRAIN)
    model = _write(tmp_path, "app/model.py", _source("""
        import os
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
        from parts import GPT, GPTConfig

        gpt = GPT(GPTConfig())
        """))
    assert prefilter_file(str(model)) == Prefilter("model")
    model.write_text(model.read_text() + "from train import HIDDEN\n")
    assert prefilter_file(str(model)).work_file == str(tmp_path / "lib" / "train.py")
    unknown = _write(tmp_path, "app/other.py", NET + "import os\nimport sys\n\n"
                     "sys.path.append(os.environ['EXTRA'])\n")
    verdict = prefilter_file(str(unknown))
    assert verdict.verdict == "does-work" and "cannot work out" in verdict.reason


def test_circular_local_imports_terminate(tmp_path: Path) -> None:
    _write(tmp_path, "a.py", "import b\n\nA = 1\n")
    _write(tmp_path, "b.py", "import a\n\nB = a.A\n")
    model = _write(tmp_path, "model.py", NET + "import a\n\nnet = Net()\n")
    assert prefilter_file(str(model)) == Prefilter("model")


# ---------------------------------------------------------------------------- the allow-list


@pytest.mark.parametrize("name", [
    "torch.nn.Linear", "torch.nn.init.kaiming_normal_", "torch.nn.functional.gelu",
    "torch.randn", "torch.manual_seed", "dataclasses.field", "functools.partial",
    "builtins.print", "os.path.join", "os.environ.get", "logging.getLogger",
    "torchvision.models.resnet50", "torchvision.models.ResNet", "timm.create_model",
    "transformers.BertConfig", "transformers.AutoConfig.for_model",
    "transformers.AutoModel.from_config", "transformers.LlamaForCausalLM",
])
def test_harmless_apis(name: str) -> None:
    assert harmless.lookup(name) is not None


@pytest.mark.parametrize("name", [
    "torch.save", "torch.load", "torch.hub.load", "torch.from_file", "numpy.save",
    "numpy.load", "transformers.AutoModel.from_pretrained", "transformers.Trainer",
    "transformers.pipeline", "transformers.BertModel.from_pretrained",
    "torchvision.datasets.MNIST", "torchvision.models.ResNet50_Weights",
    "builtins.open", "builtins.exec", "builtins.eval", "builtins.compile", "builtins.input",
    "builtins.__import__", "builtins.globals", "builtins.vars", "os.system", "os.remove",
    "os.makedirs", "subprocess.run", "shutil.rmtree", "logging.FileHandler",
    "logging.handlers.RotatingFileHandler", "torch.utils.data.DataLoader", "torch.optim.SGD",
    "pickle.load", "requests.get", "urllib.request.urlopen", "wandb.init",
    "torch.utils.tensorboard.SummaryWriter", "torch.distributed.init_process_group",
    "torch.multiprocessing.spawn", "torch.onnx.export", "torch.jit.save",
    "operator.methodcaller", "lightning.Trainer", "atexit.register", "threading.Thread",
    "torch.nn.Module.__call__.<any>", "torch.<any>",
])
def test_apis_that_do_work(name: str) -> None:
    assert harmless.lookup(name) is None
    assert not harmless.inert(name)


def test_classes_of_modules_imported_by_judged_functions_are_considered(tmp_path: Path) -> None:
    """A value of unknown type may be an instance of a class whose module a judged function
    imported; what was judged before that import is judged again."""
    _write(tmp_path, "writers.py", "class Writer:\n    def flush_all(self):\n"
           "        open('out.txt', 'w')  # MARK\n")
    model = _write(tmp_path, "model.py", NET + _source("""
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
    helpers = _write(tmp_path, "helpers.py", "WIDTH = 8\n")
    model = _write(tmp_path, "model.py", NET + "import helpers\nimport extra\n\nnet = Net()\n")
    assert prefilter_file(str(model)) == Prefilter("model")  # extra: not local, not judged
    helpers.write_text("import shutil\n\nshutil.rmtree('cache')\n")
    os.utime(helpers, ns=(1, 1))
    assert prefilter_file(str(model)).work_file == str(helpers)
    helpers.write_text("WIDTH = 8\n")
    os.utime(helpers, ns=(2, 2))
    assert prefilter_file(str(model)) == Prefilter("model")
    extra = _write(tmp_path, "extra.py", "import os\n\nos.system('true')\n")  # now it is local
    assert prefilter_file(str(model)).work_file == str(extra)


@pytest.mark.parametrize("first", ["a.py", "b.py"])
def test_a_cycle_of_imports_gives_the_same_verdicts_in_any_order(tmp_path: Path,
                                                                  first: str) -> None:
    _write(tmp_path, "a.py", NET + "import b\n\nnet = Net()\n")
    _write(tmp_path, "b.py", NET + "import a\n\nopen('b.log', 'w')  # MARK\n")
    _write(tmp_path, "c.py", NET + "import a\n\nnet = Net()\n")
    order = [first, *sorted({"a.py", "b.py", "c.py"} - {first})]
    verdicts = {name: prefilter_file(str(tmp_path / name)) for name in order}
    line = _mark((tmp_path / "b.py").read_text())
    assert {name: (v.verdict, v.work_line) for name, v in verdicts.items()} == {
        "a.py": ("does-work", line), "b.py": ("does-work", line), "c.py": ("does-work", line)}
    clean = tmp_path / "b.py"
    clean.write_text(NET + "import a\n\nnet = Net()\n")
    os.utime(clean, ns=(1, 1))
    assert [prefilter_file(str(tmp_path / name)) for name in order] == [Prefilter("model")] * 3
