"""Whether a file defines or builds an ``nn.Module``, that is, whether it is worth importing."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gradlint.load import harmless, import_resolver
from gradlint.load.prefilter.scopes import ClassRef, Func, Lib
from gradlint.load.prefilter.syntax import dotted

if TYPE_CHECKING:
    from gradlint.load.prefilter.judge import Judge
    from gradlint.load.prefilter.scopes import LocalClass, ModuleScope, Scope

TORCH_PACKAGES = frozenset({"torch", "transformers", "torchvision", "timm", "lightning",
                            "pytorch_lightning"})
MODULE_BASES = frozenset({"Module", "Sequential", "ModuleList", "ModuleDict"})
MODEL_LIBRARIES = ("transformers.", "torchvision.models.", "timm.")
LAYER_FILES = ("timm.models.", "timm.layers.", "torchvision.models.", "torchvision.ops.")


def top_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for stmt in import_resolver.module_statements(tree.body):
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            yield stmt


def imports_torch(tree: ast.Module) -> bool:
    for stmt in top_imports(tree):
        names = [a.name for a in stmt.names] if isinstance(stmt, ast.Import) else (
            [stmt.module] if stmt.module and not stmt.level else [])
        if any(n.split(".")[0] in TORCH_PACKAGES for n in names):
            return True
    return False


def model_name(name: str) -> bool:
    """Spelled like a model base: ``nn.Module``, ``Sequential``, ``PreTrainedModel``."""
    last = name.rsplit(".", 1)[-1]
    return last in MODULE_BASES or last.endswith(("Model", "Module"))


def library_model(name: str) -> bool:
    """A module class of torch or a model library: ``nn.Linear``, ``BertModel``, and the
    classes of timm's and torchvision's model and layer files (``VisionTransformer``, which
    MAE's models_vit.py subclasses; ``PatchEmbed``), not their weight enums or configs."""
    last = name.rsplit(".", 1)[-1]
    return (name.startswith(("torch.nn.", "nn.")) and last[:1].isupper()) or (
        name.startswith(MODEL_LIBRARIES) and last[:1].isupper()
        and ("Model" in last or "For" in last)) or (
        name.startswith(LAYER_FILES) and last[:1].isupper()
        and not last.endswith(("Weights", "Enum", "Config", "Cfg")))


class ModelFinder:
    """Whether a file defines or builds an ``nn.Module`` (is worth importing at all)."""

    def __init__(self, judge: Judge, scope: ModuleScope) -> None:
        self.judge = judge
        self.scope = scope
        self.classes: dict[LocalClass, bool] = {}

    def is_model_class(self, cls: LocalClass) -> bool:
        if cls in self.classes:
            return self.classes[cls]
        self.classes[cls] = False
        found = False
        for base, vals in zip(cls.node.bases, self.judge.bases(cls), strict=True):
            text = dotted(base) or ""
            if model_name(text) or text.startswith(("nn.", "torch.nn.")):
                found = True
            for v in vals:
                if isinstance(v, Lib) and (library_model(v.name) or model_name(v.name)):
                    found = True
                elif isinstance(v, ClassRef) and self.is_model_class(v.cls):
                    found = True
        self.classes[cls] = found
        return found

    def builds(self, value: ast.expr | None, scope: Scope, depth: int = 0) -> bool:
        """``nn.Sequential(...)``, ``Net()``, ``resnet50()``, also behind ``.to(device)``, a
        class method of a model class (``BertModel.from_pretrained``), or a local function
        returning one."""
        while isinstance(value, ast.Call):
            receiver = value.func.value if isinstance(value.func, ast.Attribute) else None
            receivers = self.judge.value(receiver, scope) if receiver is not None else ()
            for v in [*self.judge.value(value.func, scope), *receivers]:
                if isinstance(v, ClassRef) and self.is_model_class(v.cls):
                    return True
                if isinstance(v, Lib) and (library_model(v.name)
                                            or harmless.builds_model(v.name)):
                    return True
                if isinstance(v, Func) and depth < 2 and not isinstance(v.node, ast.Lambda):
                    inner = self.judge.func_scope(v)
                    if any(isinstance(n, ast.Return) and self.builds(n.value, inner, depth + 1)
                           for n in ast.walk(v.node)):
                        return True
            value = value.func.value if isinstance(value.func, ast.Attribute) else None
        return False

    def found(self) -> bool:
        tree = self.scope.tree
        for stmt in import_resolver.module_statements(tree.body):
            if isinstance(stmt, ast.ClassDef):
                if self.is_model_class(self.judge.class_of(stmt, self.scope)):
                    return True
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and self.builds(stmt.value,
                                                                               self.scope):
                return True
        return False
