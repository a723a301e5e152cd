"""The allow-list (gradlint/load/harmless.py): the library APIs import-time code may call, and
some that do work and must never be on it."""

from __future__ import annotations

import pytest

from gradlint.load import harmless


@pytest.mark.parametrize("name", [
    "torch.nn.Linear", "torch.nn.init.kaiming_normal_", "torch.nn.functional.gelu",
    "torch.randn", "torch.manual_seed", "dataclasses.field", "functools.partial",
    "builtins.print", "os.path.join", "os.environ.get", "logging.getLogger",
    "torchvision.models.resnet50", "torchvision.models.ResNet", "timm.create_model",
    "transformers.BertConfig", "transformers.AutoConfig.for_model",
    "transformers.AutoModel.from_config", "transformers.LlamaForCausalLM",
    "loguru.logger.warning",
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
    "torch.nn.Module.__call__.<any>", "torch.<any>", "loguru.logger.add",
])
def test_apis_that_do_work(name: str) -> None:
    assert harmless.lookup(name) is None
    assert not harmless.inert(name)


def test_timm_model_file_classes_are_harmless() -> None:
    """DiT's models.py builds ``timm.models.vision_transformer.PatchEmbed`` (and Attention,
    Mlp) in its constructor: layers without weights. It was skipped with GL907."""
    for name in ("timm.models.vision_transformer.PatchEmbed",
                 "timm.models.vision_transformer.Attention",
                 "timm.models.vision_transformer.VisionTransformer"):
        assert harmless.lookup(name) is not None, name
    assert harmless.lookup("timm.models.load_checkpoint") is None
    assert harmless.lookup("timm.models.vision_transformer.checkpoint_filter_fn") is None


def test_version_checks_are_harmless() -> None:
    """``if version.parse(torch.__version__) < version.parse("1.7")`` at import (DETR's and
    CLIP's utilities) skipped their whole packages with GL907."""
    for name in ("packaging.version.parse", "packaging.version.Version",
                 "packaging.specifiers.SpecifierSet"):
        assert harmless.lookup(name) is not None, name
    assert harmless.lookup("packaging.tags.sys_tags") is None


def test_installed_package_guards_are_harmless() -> None:
    """litgpt's ``_LITDATA_AVAILABLE = RequirementCache("litdata")`` reads package metadata."""
    for name in ("lightning_utilities.core.imports.RequirementCache",
                 "lightning_utilities.core.imports.module_available"):
        assert harmless.lookup(name) is not None, name
