"""Attention masks in an ATen program, evaluated on real values. The program was traced on fake
tensors, so its masks (a causal ``tril``, a padding mask, Hugging Face's ``create_causal_mask``)
have shapes and no values; each is computed here from the model's real inputs, buffers and
constants, running only the few ops it is built from, and read by ``attention_keys``.

An attention op is read where its mask's ancestors are at most ``_BUDGET`` ATen calls: a
softmax's logits (``scores + mask``) reach the whole model through the scores, so for a softmax
the additive operand (or the ``masked_fill`` mask) is what is evaluated."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx as fx
from torch.utils import _pytree as pytree

from gradlint.trace import attention_keys
from gradlint.trace.attention_keys import KeyCounts
from gradlint.trace.op_lookup import aten_packet

_BUDGET = 300  # ATen calls evaluated for one mask, at most

_SOFTMAX = ("aten.softmax", "aten._softmax", "aten._safe_softmax")


def program_keys(graph: fx.Graph, state: dict[str, Any], placeholders: dict[str, str],
                 user_values: list[Any]) -> dict[fx.Node, KeyCounts]:
    """Keys per query of every attention op in ``graph`` whose mask can be evaluated:
    ``placeholders`` maps a parameter/buffer/constant placeholder's name to its key in
    ``state``; ``user_values`` are the flattened user inputs in the program's order."""
    holders = [n for n in graph.nodes if n.op == "placeholder"]
    user = [n for n in holders if n.name not in placeholders]
    values: dict[fx.Node, Any] = {}
    for n in holders:
        if n.name in placeholders:
            t = state.get(placeholders[n.name])
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                values[n] = t.detach()
    tensors = [v for v in user_values if isinstance(v, torch.Tensor)]
    tensor_holders = [n for n in user if isinstance(n.meta.get("val"), torch.Tensor)]
    if len(tensors) == len(tensor_holders):
        values.update(zip(tensor_holders, (t.detach() for t in tensors), strict=True))
    order = {n: i for i, n in enumerate(graph.nodes)}
    evaluator = _Evaluator(values, order)
    found: dict[fx.Node, KeyCounts] = {}
    grad = torch.is_grad_enabled()
    try:
        with torch.no_grad():
            for n in graph.nodes:
                if n.op != "call_function":
                    continue
                packet = aten_packet(n.target)
                keys = None
                if packet == "aten.scaled_dot_product_attention":
                    keys = _sdpa(n, evaluator)
                elif packet in _SOFTMAX:
                    keys = _softmax(n, evaluator)
                if keys is not None:
                    found[n] = keys
    finally:
        torch._C._set_grad_enabled(grad)
    return found


def _shape(a: Any) -> tuple[int, ...] | None:
    val = a.meta.get("val") if isinstance(a, fx.Node) else None
    return tuple(int(s) for s in val.shape) if isinstance(val, torch.Tensor) else None


def _arg(n: fx.Node, pos: int, name: str, default: Any = None) -> Any:
    if name in n.kwargs:
        return n.kwargs[name]
    return n.args[pos] if pos < len(n.args) else default


def _sdpa(n: fx.Node, ev: _Evaluator) -> KeyCounts | None:
    q, k = _shape(_arg(n, 0, "query")), _shape(_arg(n, 1, "key"))
    if not q or not k or len(q) < 2:
        return None
    mask = _arg(n, 3, "attn_mask")
    if isinstance(mask, fx.Node):
        return attention_keys.from_mask(ev.value(mask), k[-2])
    return attention_keys.causal(q[-2], k[-2]) if _arg(n, 5, "is_causal") is True else None


def _softmax(n: fx.Node, ev: _Evaluator) -> KeyCounts | None:
    """A softmax over ``scores + mask`` or ``scores.masked_fill(mask, -inf)``."""
    x = _arg(n, 0, "self")
    dim = _arg(n, 1, "dim", -1)
    shape = _shape(x)
    if not isinstance(x, fx.Node) or not shape or not isinstance(dim, int):
        return None
    packet = aten_packet(x.target) if x.op == "call_function" else ""
    mask: torch.Tensor | None = None
    if packet == "aten.add":
        for a in x.args[:2]:
            if isinstance(a, fx.Node) and (v := ev.value(a)) is not None and (
                    v.is_floating_point()):
                mask = v
                break
    elif packet == "aten.masked_fill" and attention_keys.masked_fill_hides(_arg(x, 2, "value")):
        hidden = ev.value(_arg(x, 1, "mask"))
        if hidden is not None and hidden.dtype == torch.bool:
            mask = ~hidden
    if mask is None:
        return None
    try:
        mask = mask.expand(shape).movedim(dim, -1)
    except RuntimeError:
        return None
    return attention_keys.from_mask(mask, mask.shape[-1])


class _Evaluator:
    """Values of graph nodes computed on real tensors, each node at most once, within a
    budget of ATen calls per requested value; None where a value is out of reach."""

    def __init__(self, values: dict[fx.Node, Any], order: dict[fx.Node, int]) -> None:
        self.values = values
        self.order = order
        self.failed: set[fx.Node] = set()

    def value(self, node: Any) -> Any:
        if not isinstance(node, fx.Node):
            return None
        if node in self.values:
            return self.values[node]
        needed = self._ancestors(node)
        if needed is None:
            return None
        for n in sorted(needed, key=self.order.__getitem__):
            if not self._run(n):
                self.failed.add(node)
                return None
        return self.values.get(node)

    def _ancestors(self, node: fx.Node) -> set[fx.Node] | None:
        """The nodes to run for ``node``; None beyond the budget or through an unknown value."""
        needed: set[fx.Node] = set()
        stack = [node]
        while stack:
            n = stack.pop()
            if n in self.values or n in needed:
                continue
            if n in self.failed or n.op != "call_function" or not _runnable(n):
                return None
            needed.add(n)
            if len(needed) > _BUDGET:
                return None
            stack.extend(n.all_input_nodes)
        return needed

    def _run(self, n: fx.Node) -> bool:
        args, kwargs = pytree.tree_map_only(fx.Node, self.values.__getitem__, (n.args, n.kwargs))
        try:
            self.values[n] = n.target(*args, **kwargs)  # type: ignore[operator]
        except Exception:  # noqa: BLE001 - any failure: this mask is not read
            self.failed.add(n)
            return False
        return True


def _runnable(n: fx.Node) -> bool:
    """ATen operators and tuple indexing: nothing that sets global state (grad mode,
    autocast) or calls back into user code."""
    return isinstance(n.target, torch._ops.OpOverload) or n.target is operator.getitem
