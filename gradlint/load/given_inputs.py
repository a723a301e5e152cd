"""Example inputs the user gave: ``--input``/config shape specs, a file's ``example_inputs()``,
a Hugging Face model's ``dummy_inputs``. Inputs nobody gave are inferred in the trace stage
(gradlint/trace/example_inputs.py)."""

from __future__ import annotations

import inspect
import types
from typing import Any

import torch
import torch.nn as nn

from gradlint.core.input_specs import parse_spec
from gradlint.load.importing import user_code


def parse_input(spec: str) -> torch.Tensor:
    """``8x3x224x224`` or ``2x128:int64`` -> a random tensor of that shape and dtype."""
    shape, dtype_name = parse_spec(spec)
    dtype = getattr(torch, dtype_name)
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(*shape, dtype=dtype)
    return torch.randint(0, 2, shape, dtype=dtype)


def given_inputs(module: types.ModuleType, model: nn.Module, specs: tuple[str, ...]
                 ) -> tuple[Any, ...] | None:
    """The inputs the user gave for ``model``: shape specs (``--input`` or the target's
    ``inputs``), else the module's ``example_inputs()``, else a Hugging Face model's
    ``dummy_inputs``; None when there are none (the trace stage infers them)."""
    if specs:
        return tuple(parse_input(s) for s in specs)
    fn = getattr(module, "example_inputs", None)
    value: Any = None
    if callable(fn):
        with user_code():
            value = fn()
    elif isinstance(getattr(type(model), "dummy_inputs", None), property):
        value = model.dummy_inputs
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return (value,)
    if isinstance(value, dict):  # keyword inputs: by position in forward(), gaps at defaults
        return _by_position(model, value)
    return tuple(value)


def _by_position(model: nn.Module, value: dict[str, Any]) -> tuple[Any, ...]:
    """``{"input_ids": .., "decoder_input_ids": ..}`` -> forward()'s positional arguments up to
    the last one given; a parameter in between keeps its default (T5's ``attention_mask``), so
    no tensor lands in another parameter's place."""
    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    last = max((i for i, p in enumerate(params) if p.name in value), default=-1)
    return tuple(value[p.name] if p.name in value
                 else None if p.default is inspect.Parameter.empty else p.default
                 for p in params[:last + 1])
