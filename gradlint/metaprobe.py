"""Building a model on the meta device cheaply: the size probe gradlint runs before it builds a
model for real (load._construct), so that a 70B-parameter config never touches RAM.

A meta tensor has no data, yet torch sends many ops on it (elementwise arithmetic, ``cat``,
``stack``, ``triu``, random fills) through Python reference kernels (torch._refs) wrapped by
``torch._compile._disable_dynamo``, whose first call imports torch._dynamo, and sympy and
parts of inductor with it: ~0.55 s per worker, for a positional table or a causal mask in a
constructor, only to mark a kernel as not traceable by a compiler that nothing runs here.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode


class MetaDrawsNothing(TorchFunctionMode):
    """On the meta device a random init has nothing to fill, yet torch's meta ``normal_``
    (nn.Embedding's init, xavier_normal_, HF's ``weight.data.normal_``) goes through
    torch._refs, and ``uniform_`` (every Linear's and Conv's default init) through a Python
    decomposition (~35 us a call: a third of sizing a 1,000-layer MLP). These calls return the
    tensor as they would, without that detour."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _DRAWS:
            tensor = args[0] if args else kwargs.get("tensor")  # nn.init passes it by name
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


_DRAWS = frozenset({
    torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.log_normal_,
    torch.Tensor.exponential_, torch.Tensor.cauchy_, torch.Tensor.geometric_,
    torch.Tensor.random_, torch.Tensor.bernoulli_, torch.Tensor.erfinv_,
    # nn.init's own torch-function entry points: the device mode hands these on whole
    nn.init.normal_, nn.init.uniform_, nn.init.xavier_normal_, nn.init.kaiming_normal_,
    nn.init.kaiming_uniform_, nn.init.trunc_normal_,
})

_DYNAMO = "torch._dynamo"


class _DynamoStandIn(types.ModuleType):
    """What ``import torch._dynamo`` finds while the probe runs: ``disable`` hands the kernel
    back as it is (nothing is compiled on meta) and remembers it. Any other name, or a
    submodule (``__path__``), imports the real module where torch's own import would have
    happened, and it takes the stand-in's place; other dunders are missing, as on a module
    without them (``inspect.getmodule`` asks every module in sys.modules for ``__file__``:
    importing dynamo there, in the middle of someone else's import, can be circular)."""

    def __init__(self) -> None:
        super().__init__(_DYNAMO)
        self.disabled: list[Callable[..., Any]] = []

    def disable(self, fn: Callable[..., Any] | None = None, recursive: bool = True,
                **kwargs: Any) -> Any:
        if fn is None:  # used as @disable(recursive=...)
            return lambda f: self.disable(f, recursive, **kwargs)
        self.disabled.append(fn)
        return fn

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__path__":
            raise AttributeError(name)
        if sys.modules.get(_DYNAMO) is self:
            del sys.modules[_DYNAMO]
        return getattr(importlib.import_module(_DYNAMO), name)


@contextlib.contextmanager
def dynamo_left_out(enabled: bool = True) -> Iterator[None]:
    """While the probe runs, torch's lazy ``import torch._dynamo`` finds a stand-in; after it,
    the kernels forget what the stand-in gave them, so that a later real import wraps them as
    torch intends. Nothing changes where torch._dynamo is already imported."""
    if not enabled or _DYNAMO in sys.modules:
        yield
        return
    stand_in = _DynamoStandIn()
    sys.modules[_DYNAMO] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(_DYNAMO) is stand_in:
            del sys.modules[_DYNAMO]
        if vars(torch).get("_dynamo") is stand_in:
            delattr(torch, "_dynamo")
        for fn in stand_in.disabled:  # torch caches the disabled kernel on the function
            if getattr(fn, "__dict__", {}).get("__dynamo_disable") is fn:
                delattr(fn, "__dynamo_disable")
