"""The shape pass: run the traced fx graph once on example inputs and record each tensor's shape
beside its node, which the estimate needs (positions per example, pooling windows, softmax
widths). Like fx's ShapeProp, but a failure names the node whose user code broke."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import TensorMetadata

from gradlint.trace.splice import record_leaf_inputs


class NodeFailed(Exception):
    """The user's code behind ``node`` raised ``cause`` during the shape pass."""

    def __init__(self, node: fx.Node, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.node = node
        self.cause = cause


class ShapeRecorder(fx.Interpreter):
    """Runs the graph once and writes each tensor's shape beside its node; the inputs of
    spliced leaves are kept too (``splice`` exports those blocks on them)."""

    def __init__(self, model: nn.Module, graph: fx.Graph, spliced: set[str] | None = None
                 ) -> None:
        super().__init__(model, graph=graph)
        self.spliced = spliced or set()

    def run_node(self, n: fx.Node) -> Any:
        if n.op == "call_module" and str(n.target) in self.spliced:
            record_leaf_inputs(n, *self.fetch_args_kwargs_from_env(n))
        try:
            result = super().run_node(n)
        except Exception as exc:  # noqa: BLE001 - the user's forward raised
            raise NodeFailed(n, exc) from None
        found = False

        def meta(obj: Any) -> Any:
            nonlocal found
            if isinstance(obj, torch.Tensor):
                found = True
                return _tensor_meta(obj)
            return obj

        value = map_aggregate(result, meta)
        if found:
            n.meta["tensor_meta"] = value
        return result


def _tensor_meta(t: torch.Tensor) -> TensorMetadata:
    """Shape and dtype only (the estimate reads shapes): fx's ``_extract_tensor_metadata`` also
    works out memory formats, whose first use imports sympy (~1 s)."""
    return TensorMetadata(t.shape, t.dtype, t.requires_grad, (), None, False, {})


@contextlib.contextmanager
def restored(model: nn.Module) -> Iterator[None]:
    """Running the model in train mode updates BatchNorm's running statistics (and any other
    buffer a forward writes) and sets every submodule's mode: put both back, so linting never
    changes the user's model (its outputs, or a test run after ``gradlint.check``)."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers() if b.device.type != "meta"]
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


def record_shapes(model: nn.Module, graph: fx.Graph, spliced: set[str],
                  inputs: tuple[Any, ...]) -> None:
    """Run ``graph`` once in train mode on ``inputs``, leaving the model as it was; raises
    NodeFailed naming the node that broke."""
    with torch.no_grad(), restored(model):
        model.train()
        ShapeRecorder(model, graph, spliced).run(*inputs)
