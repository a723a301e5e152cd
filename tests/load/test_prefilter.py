"""The pre-filter (gradlint/load/prefilter/) judges all the code that runs at import, and only
that: module level, class bodies, decorators, default arguments, annotations, the local modules
a file imports, and the local functions and constructors that code calls. Nothing here imports
torch or runs the files; a file the judged code would write must never appear. (Files importing
local modules: test_prefilter_local_modules.py; the allow-list: test_harmless.py.)"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from prefilter_sources import (
    EVAL_DECORATOR,
    GPT_PARTS,
    NET,
    TRAIN,
    mark_line,
    snippet,
    write_file,
)

from gradlint.core.options import Options
from gradlint.core.values import Diagnostic
from gradlint.load.prefilter import MAX_DEPTH, Prefilter, prefilter_file, prefilter_source
from gradlint.run.pipeline import plan_file

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
    line = mark_line(source)
    assert (verdict.verdict, verdict.line) == ("does-work", line), verdict
    assert call in verdict.reason and f"at line {line} runs at import" in verdict.reason


def test_an_unknown_capitalised_call_is_not_assumed_harmless() -> None:
    verdict = prefilter_source(NET + "model = Wrapper(Net())  # MARK\n")
    assert verdict.verdict == "does-work"
    assert verdict.reason.endswith("(`Wrapper` cannot be resolved statically)")


def test_importing_an_unguarded_training_script_is_work(tmp_path: Path) -> None:
    write_file(tmp_path, "parts.py", GPT_PARTS)
    train = write_file(tmp_path, "train.py", TRAIN)
    model = write_file(tmp_path, "model.py", NET + "from train import HIDDEN  # MARK\n")
    verdict = prefilter_file(str(model))
    loop = mark_line(TRAIN)
    assert (verdict.verdict, verdict.line) == ("does-work", mark_line(model.read_text()))
    assert verdict.reason == f"importing {tmp_path / 'train.py'} runs its module-level `for` " \
        f"loop at line {loop}"
    assert (verdict.work_file, verdict.work_line) == (str(train), loop)
    assert prefilter_file(str(train)).line == loop  # and train.py itself is skipped too


def test_gl907_names_the_imported_file_and_its_line(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write_file(tmp_path, "case/parts.py", GPT_PARTS)
    write_file(tmp_path, "case/train.py", TRAIN)
    write_file(tmp_path, "case/model.py", NET + "from train import HIDDEN  # MARK\n")
    monkeypatch.chdir(tmp_path)
    result = plan_file("case/model.py", (), Options())
    assert isinstance(result, tuple)
    (diag,) = result[1]
    assert isinstance(diag, Diagnostic) and diag.code == "GL907"
    assert (diag.location.file, diag.location.line) == ("case/model.py", mark_line(NET + "# MARK"))
    assert f"importing case/train.py runs its module-level `for` loop at line {mark_line(TRAIN)}" \
        in diag.message


# ---------------------------------------------------------------------------- must pass


CACHED_METHOD = """
from functools import wraps

import torch.nn as nn


def singleton(cache_key):
    def inner_fn(fn):
        @wraps(fn)
        def wrapper(self, *args, **kwargs):
            instance = getattr(self, cache_key)  # runs when the method is called, not at import
            if instance is None:
                instance = fn(self, *args, **kwargs)
                setattr(self, cache_key, instance)
            return instance
        return wrapper
    return inner_fn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.projector = None
        self.fc = nn.Linear(4, 4)

    @singleton("projector")
    def _get_projector(self, hidden):
        return nn.Linear(hidden.shape[-1], 4)

    def forward(self, x):
        return self.fc(x)
"""


def test_a_decorator_factory_runs_its_factory_and_decorator_but_not_the_wrapper() -> None:
    """``@singleton("projector")`` runs ``singleton`` and ``inner_fn`` at import; ``wrapper``
    (returned by the decorator, bound to the class) runs only when the method is called. The
    whole of lucidrains/vit-pytorch was skipped (GL907) for this shape in one module its
    package's ``__init__.py`` imports."""
    assert prefilter_source(CACHED_METHOD) == Prefilter("model")


WRAPPED_METHOD = """
import shutil

from somewhere_unknown import pad_at_dim


""" + EVAL_DECORATOR + """

class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    @eval_decorator
    def generate(self, x):
        return pad_at_dim(x, (0, 1))

    def forward(self, x):
        return self.fc(x)
"""


def test_a_decorator_that_only_wraps_runs_none_of_the_method_at_import() -> None:
    """``eval_decorator`` calls ``fn`` only inside the closure it returns: decorating runs
    neither, so the method's unknown call is not work at import. lucidrains/x-transformers was
    skipped whole (27 GL907) for this shape."""
    assert prefilter_source(NET + WRAPPED_METHOD) == Prefilter("model")


# decorators that run or hand on their subject while decorating, or whose closure does work
# where the decorated name is called: the work is found either way
DECORATED = {
    "closure_called": ("def deco(fn):\n    def inner(*a):\n        shutil.rmtree('cache')\n"
                       "        return fn(*a)\n    return inner\n\n\n@deco\ndef f():\n"
                       "    return 1\n\n\nf()  # MARK\n"),
    "subject_called_through_closure": (
        "def deco(fn):\n    def inner(*a):\n        return fn(*a)\n    return inner\n\n\n"
        "@deco\ndef f():\n    shutil.rmtree('cache')\n\n\nf()  # MARK\n"),
    "subject_called_while_decorating": (
        "def deco(fn):\n    fn()\n    return fn\n\n\n@deco  # MARK\ndef f():\n"
        "    shutil.rmtree('cache')\n"),
    "closure_called_while_decorating": (
        "def deco(fn):\n    def inner():\n        fn()\n    inner()\n    return inner\n\n\n"
        "@deco  # MARK\ndef f():\n    shutil.rmtree('cache')\n"),
    "subject_stored": (
        "HOOKS = []\n\n\ndef deco(fn):\n    def inner():\n        fn()\n"
        "    HOOKS.append(fn)\n    return inner\n\n\n@deco  # MARK\ndef f():\n"
        "    shutil.rmtree('cache')\n"),
    "closure_decorated_while_decorating": (
        "def run_now(g):\n    g()\n    return g\n\n\ndef deco(fn):\n    @run_now\n"
        "    def inner():\n"
        "        fn()\n    return inner\n\n\n@deco  # MARK\ndef f():\n"
        "    shutil.rmtree('cache')\n"),
    "method_closure": (
        "def deco(fn):\n    def inner(self):\n        shutil.rmtree('cache')\n"
        "        return fn(self)\n    return inner\n\n\nclass Box:\n    @deco\n"
        "    def run(self):\n        return 1\n\n\nBox().run()  # MARK\n"),
    "decorated_class": (
        "def deco(cls):\n    def make(*a):\n        shutil.rmtree('cache')\n"
        "        return cls(*a)\n    return make\n\n\n@deco\nclass Box:\n    pass\n\n\n"
        "Box()  # MARK\n"),
}


@pytest.mark.parametrize("decorator", [
    "from torch.amp import autocast\n\n@autocast('cuda', enabled=False)",
    "import torch\n\n@torch.autocast(device_type='cuda')",
    "from torch.cuda.amp import custom_fwd\n\n@custom_fwd",
    "from torch.amp import custom_fwd\n\n@custom_fwd(device_type='cuda')"])
def test_mixed_precision_decorators_only_wrap(decorator: str) -> None:
    """A method under ``@autocast(...)`` or ``@custom_fwd`` runs when it is called, not at
    import: its unknown call is not work then. lucidrains/denoising-diffusion-pytorch was
    skipped whole (16 GL907) for ``@autocast('cuda', enabled=False)`` on a method calling
    scipy."""
    imports, _, line = decorator.rpartition("\n\n")
    method = textwrap.indent(f"{line}\ndef assign(self, x):\n    return linear_sum_assignment(x)\n",
                             "    ")
    source = (f"{imports}\nfrom scipy.optimize import linear_sum_assignment\n" + NET + method
              + "\n\nnet = Net()\n")
    assert prefilter_source(source) == Prefilter("model"), prefilter_source(source)


@pytest.mark.parametrize("name", sorted(DECORATED))
def test_what_a_decorated_name_runs_is_judged(name: str) -> None:
    source = NET + "import shutil\n\n\n" + DECORATED[name]
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line) == ("does-work", mark_line(source)), verdict
    assert "shutil.rmtree" in verdict.reason


@pytest.mark.parametrize("use", ["step = make()\nstep()  # MARK\n", "make()()  # MARK\n"])
def test_a_closure_a_factory_returns_is_judged_where_it_is_called(use: str) -> None:
    source = NET + ("import shutil\n\n\ndef make():\n    def step():\n"
                    "        shutil.rmtree('cache')\n    return step\n\n\n") + use
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line) == ("does-work", mark_line(source)), verdict
    assert "shutil.rmtree" in verdict.reason


def test_a_closure_handed_to_unknown_code_is_judged_as_called() -> None:
    """A function given to code gradlint cannot see may be called there, and so may what it
    returns."""
    source = NET + ("import shutil\n\n\ndef make(n):\n"
                    "    def step():\n        shutil.rmtree('cache')\n    return step\n\n\n"
                    "steps = list(map(make, [1, 2]))  # MARK\n")
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line) == ("does-work", mark_line(source)), verdict
    assert "shutil.rmtree" in verdict.reason


def test_gpt_from_a_local_module_is_a_model(tmp_path: Path) -> None:
    write_file(tmp_path, "parts.py", GPT_PARTS)
    model = write_file(tmp_path, "model.py", "from parts import GPT, GPTConfig\n\n"
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
    verdict = prefilter_source(snippet("""
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
    verdict = prefilter_source(snippet("""
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
    source = NET + snippet("""
        class Cached(nn.Module):
            def __init__(self):
                super().__init__()
                self.stats = open("stats.txt").read()  # MARK

        model = Cached()
        """)
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line) == ("does-work", len(source.splitlines()))
    assert verdict.reason == (f"module-level call `Cached(...)` at line {verdict.line} runs at "
                              f"import and calls `open(...)` at line {mark_line(source)}")
    assert verdict.work_line == mark_line(source)


def test_constructor_that_saves_a_checkpoint_is_work() -> None:
    source = NET + snippet("""
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
    assert verdict.reason.endswith(f"which calls `torch.save(...)` at line {mark_line(source)}")


def test_helper_called_at_module_level_that_writes_is_work() -> None:
    source = NET + snippet("""
        from pathlib import Path


        def log_shapes(model):
            Path("shapes.txt").write_text(str(model))  # MARK


        model = Net()
        log_shapes(model)
        """)
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line) == ("does-work", len(source.splitlines()))
    assert "call `log_shapes(...)`" in verdict.reason
    assert f"calls `Path(...).write_text(...)` at line {mark_line(source)}" in verdict.reason


def test_functions_nobody_calls_at_import_are_not_judged() -> None:
    verdict = prefilter_source(NET + snippet("""
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
    source = NET + snippet("""
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
    assert verdict.verdict == "does-work" and verdict.work_line == mark_line(source)
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
    assert verdict.verdict == "does-work" and verdict.work_line == mark_line(source), verdict


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
    verdict = prefilter_source(NET + snippet("""
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
    recursive = NET + snippet("""
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


@pytest.mark.parametrize("base", ["timm.models.vision_transformer.VisionTransformer",
                                  "torchvision.models.resnet.ResNet", "timm.layers.Mlp"])
def test_a_subclass_of_a_library_model_class_is_a_model(base: str) -> None:
    """MAE's models_vit.py subclasses timm's VisionTransformer: the file was skipped as
    having no model."""
    module, _, name = base.rpartition(".")
    source = (f"import torch\nfrom {module} import {name}\n\n\nclass Mine({name}):\n"
              "    def forward_features(self, x):\n        return x\n")
    assert prefilter_source(source) == Prefilter("model"), prefilter_source(source)
    weights = "from torchvision.models.resnet import ResNet50_Weights\n\n\n" \
        "class Mine(ResNet50_Weights):\n    pass\n"
    assert prefilter_source(weights).verdict != "model"


CONFIG_TABLE = NET + """
base = [dict(name="tiny", n_layer=2), dict(name="small", n_layer=4)]
configs = list(base)
for c in base:
    for kind in ("", "-chat"):
        copy = dict(c)
        copy["name"] = c["name"] + kind
        configs.append(copy)
for i, c in enumerate(configs):
    c["index"] = i
for name, value in {"a": 1}.items():
    pass
"""


def test_module_level_loops_over_literal_configurations_are_not_work() -> None:
    """litgpt's config.py builds its table with module-level loops over lists of dict
    literals: every file of the package was GL907 for it. The body is judged all the same."""
    assert prefilter_source(CONFIG_TABLE) == Prefilter("model"), prefilter_source(CONFIG_TABLE)
    writes = CONFIG_TABLE + "for c in configs:\n    open(c['name'], 'w')  # MARK\n"
    verdict = prefilter_source(writes)
    assert (verdict.verdict, verdict.line) == ("does-work", mark_line(writes)), verdict


@pytest.mark.parametrize("loop", [
    "for step in range(3):  # MARK\n    pass\n",  # a training script's loop, at the loop
    "items = make()\nfor x in items:  # MARK\n    pass\n",  # __iter__ of something unknown
    "from os import environ as table\nfor x in table:  # MARK\n    pass\n",
    "table = [1]\ntable = make()\nfor x in table:  # MARK\n    pass\n",  # rebound
    "table = [1]\nfor x in sorted(table, key=make):  # MARK\n    pass\n",
    "table = [1]\nwhile table:  # MARK\n    table.pop()\n",
    "class Holder:\n    for x in (1, 2):  # MARK\n        pass\n",  # class bodies: as before
])
def test_other_module_level_loops_are_work(loop: str) -> None:
    source = NET + "\n\ndef make():\n    return []\n\n\n" + loop
    verdict = prefilter_source(source)
    assert (verdict.verdict, verdict.line) == ("does-work", mark_line(source)), verdict
    assert "loop" in verdict.reason, verdict.reason
