"""How to build a model whose constructor needs arguments, without any configuration.

Models are often built from one config object (``GPT(config)``). When a constructor has
required parameters, these conventions are tried in this order, and the one that builds the
model is shown in the report (``built as GPT(GPTConfig())``):

1. every required parameter is annotated with a class constructible without arguments
   (``def __init__(self, config: GPTConfig)``);
2. every required parameter matches, by name, a ``*Config`` class of the module (defined or
   imported there) constructible without arguments: ``gpt_config`` the class ``GPTConfig``;
   ``config``/``cfg``/``model_config`` the one named after the model (``GPTConfig`` for
   ``GPT``), else the module's only one;
3. ``cls.get_default_config()`` (minGPT), for a single required parameter;
4. a Hugging Face ``config_class`` (``cls(cls.config_class())``), for a single one.

A ``build`` expression from ``[tool.gradlint.targets]`` is a recipe too, evaluated in the
module's namespace (it is the user's own code, run like any constructor).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_GENERIC = frozenset({"conf", "configuration", "params", "hparams"})  # besides "*config"


@dataclass(frozen=True)
class Recipe:
    """One way to build a model: a call that makes it, and how the report shows that call."""

    make: Callable[[], Any]
    text: str  # "GPT(GPTConfig())"


def required_params(cls: Any) -> list[inspect.Parameter]:
    """The constructor's parameters that have no default (``*args``/``**kwargs`` excluded).
    A constructor that takes only ``*args, **kwargs`` and hands them all to
    ``super().__init__`` (a mixin's ``DistillableViT(DistillMixin, ViT)``) needs what the
    next ``__init__`` in the MRO needs: else it was built with no arguments and reported as
    a constructor error (GL906), not as needing arguments (GL902)."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    params = _required(sig)
    if params or not isinstance(cls, type):
        return params
    return _forwarded(cls, sig)


def _required(sig: inspect.Signature) -> list[inspect.Parameter]:
    return [p for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _forwarded(cls: type, sig: inspect.Signature) -> list[inspect.Parameter]:
    """The required parameters of the ``__init__`` a pure ``*args, **kwargs`` constructor
    hands everything on to through ``super().__init__``, followed down the MRO."""
    owners = [k for k in cls.__mro__ if "__init__" in vars(k) and k is not object]
    for owner, nxt in zip(owners, owners[1:], strict=False):
        kinds = {p.kind for p in sig.parameters.values()}
        if not kinds or not kinds <= {inspect.Parameter.VAR_POSITIONAL,
                                      inspect.Parameter.VAR_KEYWORD} or not _hands_on(
                                          vars(owner)["__init__"]):
            return []
        try:
            sig = inspect.signature(vars(nxt)["__init__"])
        except (TypeError, ValueError):
            return []
        sig = sig.replace(parameters=list(sig.parameters.values())[1:])  # self
        params = _required(sig)
        if params:
            return params
    return []


def _hands_on(init: Any) -> bool:
    """``init`` calls ``super().__init__`` (or ``super(C, self).__init__``) with its own
    ``*args`` and ``**kwargs``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    func = tree.body[0] if tree.body else None
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    star = func.args.vararg.arg if func.args.vararg else None
    double = func.args.kwarg.arg if func.args.kwarg else None
    for node in ast.walk(func):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "__init__" and isinstance(node.func.value, ast.Call)
                and isinstance(node.func.value.func, ast.Name)
                and node.func.value.func.id == "super"):
            continue
        starred = {a.value.id for a in node.args
                   if isinstance(a, ast.Starred) and isinstance(a.value, ast.Name)}
        spread = {k.value.id for k in node.keywords
                  if k.arg is None and isinstance(k.value, ast.Name)}
        if (star is None or star in starred) and (double is None or double in spread):
            return True
    return False


def build_recipe(expression: str, module: types.ModuleType) -> Recipe:
    """``build = "GPT(GPTConfig(n_layer=4))"`` of a configured target."""
    code = compile(expression, f"<build = {expression!r}>", "eval")
    namespace = vars(module)
    return Recipe(lambda: eval(code, namespace), expression)  # noqa: S307 - the user's code


def conventions(cls: type, module: types.ModuleType) -> list[Recipe]:
    """The recipes that apply to ``cls``, in the order they are tried (each call text once)."""
    params = required_params(cls)
    if not params:
        return []
    found: dict[str, Recipe] = {}
    for supply in (_by_annotation(params, module), _by_config_class(cls, params, module)):
        if supply is not None:
            recipe = _call(cls, params, supply)
            found.setdefault(recipe.text, recipe)
    if len(params) == 1:
        for extra in (_default_config(cls), _config_class(cls)):
            if extra is not None:
                found.setdefault(extra.text, extra)
    return list(found.values())


def _no_argument_class(obj: Any) -> bool:
    """A user's or a library's class worth calling with no arguments: not a builtin (``int()``
    is 0, not a configuration), not a typing construct, not a module."""
    if not inspect.isclass(obj) or obj.__module__ in ("builtins", "typing", "abc"):
        return False
    if getattr(builtins, obj.__name__, None) is obj or obj.__module__.startswith("torch"):
        return False
    return not required_params(obj)


def _annotation(param: inspect.Parameter, module: types.ModuleType) -> Any:
    """The annotation's value; a string (``from __future__ import annotations``) is looked up
    in the module's namespace, else it counts as absent."""
    note = param.annotation
    if note is inspect.Parameter.empty:
        return None
    if isinstance(note, str):
        note = vars(module).get(note.strip().strip("'\""))
    return note


def _by_annotation(params: list[inspect.Parameter], module: types.ModuleType
                   ) -> list[type] | None:
    notes = [_annotation(p, module) for p in params]
    return notes if all(_no_argument_class(n) for n in notes) else None


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace("cfg", "config")


def _by_config_class(cls: type, params: list[inspect.Parameter], module: types.ModuleType
                     ) -> list[type] | None:
    """Per parameter, the ``*Config`` class its name points at: the one spelled like it, or
    for a generic name the one named after the model (``GPTConfig`` for ``GPT``), else the
    module's only one."""
    pool = [v for k, v in vars(module).items()
            if not k.startswith("_") and inspect.isclass(v) and k.endswith(("Config", "Cfg"))
            and _no_argument_class(v)]
    pool = list(dict.fromkeys(pool))
    chosen = []
    for p in params:
        name = _squash(p.name)
        exact = [c for c in pool if _squash(c.__name__) == name]
        if not exact and (name.endswith("config") or name in _GENERIC):
            exact = [c for c in pool if _squash(c.__name__) == _squash(cls.__name__ + "Config")]
            exact = exact or (pool if len(pool) == 1 else [])
        if len(exact) != 1:
            return None
        chosen.append(exact[0])
    return chosen


def _call(cls: type, params: list[inspect.Parameter], supply: list[type]) -> Recipe:
    """``cls(A(), b=B())``: a fresh argument object per build (a constructor may change it)."""
    def make() -> Any:
        args = [s() for p, s in zip(params, supply, strict=True) if p.kind == p.POSITIONAL_ONLY]
        kwargs = {p.name: s() for p, s in zip(params, supply, strict=True)
                  if p.kind != p.POSITIONAL_ONLY}
        return cls(*args, **kwargs)
    if len(params) == 1:
        text = f"{cls.__name__}({supply[0].__name__}())"
    else:
        text = f"{cls.__name__}(" + ", ".join(
            f"{p.name}={s.__name__}()" for p, s in zip(params, supply, strict=True)) + ")"
    return Recipe(make, text)


def _default_config(cls: type) -> Recipe | None:
    getter = getattr(cls, "get_default_config", None)
    if not callable(getter):
        return None
    return Recipe(lambda: cls(getter()), f"{cls.__name__}({cls.__name__}.get_default_config())")


def _config_class(cls: type) -> Recipe | None:
    config = getattr(cls, "config_class", None)
    if not _no_argument_class(config):
        return None
    assert config is not None
    return Recipe(lambda: cls(config()), f"{cls.__name__}({config.__name__}())")
