"""Tracing around a block that torch.fx cannot trace, instead of giving up on the model.

When fx fails inside a submodule's ``forward`` (data-dependent control flow, an unsupported
call), the model is retraced with that submodule as a leaf; the shape pass records the leaf's
real inputs, torch.export traces the leaf alone on them, and its ATen graph is spliced into the
parent graph in place of the call — with qualified names prefixed, so its layers are reported
like any other. A leaf that export cannot trace either stays one opaque node (GL904), and
the rest of the model is still analysed. Failures in the root's own ``forward`` go to the
whole-model export fallback instead (``fx.trace_target``).
"""

from __future__ import annotations

import dataclasses
import traceback
from typing import Any

import torch
import torch.nn as nn

from gradlint.core.graph import GraphNode, ParamStats
from gradlint.core.values import Target
from gradlint.load.sources import exception_site, is_library_file
from gradlint.trace.export import AtenConverter, attributes_kept, primary_leaf, quiet_logs

MAX_LEAVES = 32  # retraces before the whole model goes to the export fallback


def failing_submodule(model: nn.Module, exc: BaseException, leaves: set[str]) -> str | None:
    """The innermost user-written submodule whose ``forward`` was running when tracing raised
    (None when it is the root's own forward, or no module of ours is on the stack)."""
    names = {id(m): name for name, m in model.named_modules()}
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        me = frame.f_locals.get("self")
        if (isinstance(me, nn.Module) and frame.f_code.co_name == "forward"
                and not is_library_file(frame.f_code.co_filename)):
            name = names.get(id(me))
            if name is not None:
                found = name  # keep the innermost
    if not found or found in leaves:
        return None
    return found


def record_leaf_inputs(n: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Keep the tensors a spliced leaf was called with (the shape pass runs it for real)."""
    def keep(v: Any) -> Any:
        return v.detach() if isinstance(v, torch.Tensor) else v

    n.meta["leaf_inputs"] = (tuple(keep(a) for a in args),
                             {k: keep(v) for k, v in kwargs.items()})


def splice_leaf(nodes: list[GraphNode], operands: tuple[int, ...], name: str, mod: nn.Module,
                inputs: tuple[tuple[Any, ...], dict[str, Any]], target: Target,
                stats: dict[str, ParamStats]) -> int | str:
    """Export ``mod`` on its recorded inputs and append its graph to ``nodes``, its inputs
    wired to ``operands``; returns the index of its primary output, or why it cannot."""
    args, kwargs = inputs
    try:
        with torch.no_grad(), quiet_logs(), attributes_kept(mod):
            ep = torch.export.export(mod, args, kwargs=kwargs, strict=False)
        prefix = name + "."
        sub = Target(f"{target.name}.{name}", mod, target.file, target.line, None,
                     {k[len(prefix):]: v for k, v in target.sites.items()
                      if k.startswith(prefix)})
        conv = AtenConverter(sub, ep, {k[len(prefix):]: v for k, v in stats.items()
                                        if k.startswith(prefix)})
        out = conv.run(primary_leaf(ep.call_spec.out_spec))
    except Exception as exc:  # noqa: BLE001 - export failed too: the leaf stays opaque
        where = exception_site(exc)
        text = str(exc).strip().splitlines()
        return (f"{type(exc).__name__}: {text[0][:160] if text else ''}"
                + (f" at {where.file}:{where.line}" if where else ""))
    wires = iter(operands)
    mapping: dict[int, int] = {}
    added: list[GraphNode] = []
    for node in conv.nodes:
        if node.op == "input":
            src = next(wires, None)
            if src is None:
                return "its inputs do not match the call"
            mapping[node.index] = src
            continue
        mapping[node.index] = len(nodes) + len(added)
        added.append(dataclasses.replace(
            node, index=mapping[node.index], inputs=tuple(mapping[i] for i in node.inputs),
            module=f"{name}.{node.module}" if node.module else (name if node.params else None),
            params=tuple(dataclasses.replace(p, name=f"{prefix}{p.name}")
                         for p in node.params)))
    nodes.extend(added)
    return mapping.get(out, "it returns no tensor")
