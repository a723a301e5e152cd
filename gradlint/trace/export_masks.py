"""What attention needs from real values in an ATen program: its masks, and how alike its
values and keys are over the tokens. The program was traced on fake tensors, so its masks (a
causal ``tril``, a padding mask, Hugging Face's ``create_causal_mask``) and activations have
shapes and no values; each is computed here from the model's real inputs, buffers and
constants, running only the few ops it is built from, and read by ``attention_keys`` and
``token_coherence``.

A value is read where its ancestors not yet computed are at most ``_BUDGET`` ATen calls: a
softmax's logits (``scores + mask``) reach the whole model through the scores, so for a softmax
the additive operand (or the ``masked_fill`` mask) is what is evaluated; the operands of the
attention products are evaluated in program order, each reusing what the ones before it
computed (a spliced block's attention is a few calls from its inputs)."""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import torch
import torch.fx as fx
from torch.utils import _pytree as pytree

from gradlint.trace import attention_keys, token_coherence
from gradlint.trace.attention_keys import KeyCounts
from gradlint.trace.op_lookup import aten_packet

_BUDGET = 300  # ATen calls evaluated for one mask, at most

_SOFTMAX = ("aten.softmax", "aten._softmax", "aten._safe_softmax")
_DROPOUT = ("aten.dropout", "aten.native_dropout", "aten.feature_dropout", "aten.alpha_dropout",
            "aten.feature_alpha_dropout")


_PRODUCTS = {"aten.bmm": "matmul", "aten.matmul": "matmul", "aten.mm": "matmul",
             "aten.scaled_dot_product_attention": "sdpa", "aten.einsum": "einsum"}


class Readings(NamedTuple):
    """What the program's attention ops read from real values, per ATen node."""

    keys: dict[fx.Node, KeyCounts]  # keys per query (attention_keys)
    alike: dict[fx.Node, token_coherence.Coherence]  # products' operands (token_coherence)
    rows: dict[fx.Node, float]  # softmax inputs' share alike along the row


def program_keys(graph: fx.Graph, state: dict[str, Any], placeholders: dict[str, str],
                 user_values: list[Any]) -> Readings:
    """Keys per query of every attention op in ``graph`` whose mask can be evaluated, and the
    token coherence of every product's operands and softmax's input that can
    (``token_coherence``): ``placeholders`` maps a parameter/buffer/constant placeholder's
    name to its key in ``state``; ``user_values`` are the flattened user inputs in the
    program's order."""
    evaluator = _evaluator(graph, state, placeholders, user_values)
    found: dict[fx.Node, KeyCounts] = {}
    alike: dict[fx.Node, token_coherence.Coherence] = {}
    rows: dict[fx.Node, float] = {}
    grad = torch.is_grad_enabled()
    try:  # dropout in train mode draws: the same readings whichever path led here
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            for n in graph.nodes:
                if n.op != "call_function":
                    continue
                packet = aten_packet(n.target)
                keys = None
                if packet == "aten.scaled_dot_product_attention":
                    keys = _sdpa(n, evaluator)
                elif packet in _SOFTMAX:
                    keys = _softmax(n, evaluator)
                    if (row := _row(n, evaluator)) is not None:
                        rows[n] = row
                if keys is not None:
                    found[n] = keys
                if packet in _PRODUCTS and (shared := _coherence(
                        n, _PRODUCTS[packet], evaluator, placeholders)) is not None:
                    alike[n] = shared
    finally:
        torch._C._set_grad_enabled(grad)
    return Readings(found, alike, rows)


def _row(n: fx.Node, ev: _Evaluator) -> float | None:
    """A softmax input's share alike along its dim, evaluated."""
    x, dim = _arg(n, 0, "self"), _arg(n, 1, "dim", -1)
    value = ev.value(x) if isinstance(dim, int) else None
    return None if value is None else token_coherence.of_softmax((value, dim), {})


def _coherence(n: fx.Node, op: str, ev: _Evaluator, placeholders: dict[str, str]
               ) -> token_coherence.Coherence | None:
    """The product's operands evaluated (the ones it reads: keys and values, or the right
    factor), then measured."""
    if op == "einsum":  # aten.einsum(equation, [operands])
        nodes = list(n.args[1]) if len(n.args) > 1 and isinstance(n.args[1], (list, tuple)) \
            else []
        values = [ev.value(a) for a in nodes]
        if not nodes or any(v is None for v in values):
            return None
        return token_coherence.of_einsum(n.args[0], values, [
            not (isinstance(a, fx.Node) and a.op == "placeholder" and a.name in placeholders)
            for a in nodes])
    wanted = (1, 2) if op == "sdpa" else (1,)
    args = list(n.args)
    for i in wanted:
        if i >= len(args) or (value := ev.value(args[i])) is None:
            return None
        args[i] = value
    return token_coherence.of_call(op, tuple(args), {})


def _evaluator(graph: fx.Graph, state: dict[str, Any], placeholders: dict[str, str],
               user_values: list[Any]) -> _Evaluator:
    """An evaluator holding the placeholders' real values."""
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
    return _Evaluator(values, order)


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
        packet = aten_packet(n.target)
        if packet in _DROPOUT and args and isinstance(args[0], torch.Tensor):
            x = args[0]  # kept whole: a draw would make the readings differ from run to run
            self.values[n] = (x, torch.ones_like(x, dtype=torch.bool)) if (
                packet == "aten.native_dropout") else x
            return True
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
