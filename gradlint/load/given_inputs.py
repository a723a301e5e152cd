"""Example inputs the user gave: ``--input``/config shape specs, a file's ``example_inputs()``,
a Hugging Face model's ``dummy_inputs``. Inputs nobody gave are inferred in the trace stage
(gradlint/trace/example_inputs.py).

``example_inputs()`` is one function for a whole file, which may define several models (a GAN's
generator and discriminator): it applies to the models whose ``forward`` it fits (in a file
with one model, to that model), or it returns a dict keyed by model name. Whether inputs fit
is found by running ``forward`` on them (``fit_error``: for real when the model is small, on
the meta device when it is large); the trace stage's input search uses the same check.
"""

from __future__ import annotations

import contextlib
import inspect
import types
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn

from gradlint.core.input_specs import parse_spec
from gradlint.load.importing import user_code
from gradlint.load.model_state import restored


def parse_input(spec: str) -> torch.Tensor:
    """``8x3x224x224`` or ``2x128:int64`` -> a random tensor of that shape and dtype."""
    shape, dtype_name = parse_spec(spec)
    dtype = getattr(torch, dtype_name)
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(*shape, dtype=dtype)
    return torch.randint(0, 2, shape, dtype=dtype)


def given_inputs(module: types.ModuleType, model: nn.Module, specs: tuple[str, ...],
                 name: str = "") -> tuple[Any, ...] | None:
    """The inputs the user gave for ``model`` (called ``name`` in the file): shape specs
    (``--input`` or the target's ``inputs``), else the module's ``example_inputs()``, else a
    Hugging Face model's ``dummy_inputs``; None when there are none or they are for another
    model of the file (the trace stage infers them)."""
    if specs:
        return tuple(parse_input(s) for s in specs)
    fn = getattr(module, "example_inputs", None)
    value: Any = None
    if callable(fn):
        with user_code():
            value = fn()
        if isinstance(value, dict) and _keyed_by_model(module, value):
            value = value.get(name, value.get(type(model).__name__))
        elif value is not None and _other_models(module, model):
            value = _if_fits(model, value)
    elif isinstance(getattr(type(model), "dummy_inputs", None), property):
        value = model.dummy_inputs
    return None if value is None else as_arguments(model, value)


def as_arguments(model: nn.Module, value: Any) -> tuple[Any, ...]:
    """What ``example_inputs()`` returned -> ``forward``'s positional arguments: a tensor is
    the only one, a dict gives keyword inputs, a tuple or list is the arguments."""
    if isinstance(value, torch.Tensor):
        return (value,)
    if isinstance(value, dict):  # keyword inputs: by position in forward(), gaps at defaults
        return _by_position(model, value)
    return tuple(value)


def _keyed_by_model(module: types.ModuleType, value: dict[Any, Any]) -> bool:
    """``{"Generator": z, "Discriminator": img}``: every key names a model of the file (a class
    or a module-level instance), not a ``forward`` parameter."""
    def is_model(key: Any) -> bool:
        obj = getattr(module, key, None) if isinstance(key, str) else None
        return isinstance(obj, nn.Module) or (
            inspect.isclass(obj) and issubclass(obj, nn.Module))
    return bool(value) and all(is_model(k) for k in value)


def _other_models(module: types.ModuleType, model: nn.Module) -> bool:
    """The file defines or holds a module other than ``model`` and its parts: another model
    ``example_inputs()`` may have been written for (a GAN's other half)."""
    parts = {type(m) for m in model.modules()}
    for obj in vars(module).values():
        cls = obj if inspect.isclass(obj) else type(obj) if isinstance(obj, nn.Module) else None
        if (cls is not None and issubclass(cls, nn.Module) and cls not in parts
                and cls.__module__ == module.__name__
                and getattr(cls, "forward", None) is not nn.Module.forward):
            return True
    return False


def _if_fits(model: nn.Module, value: Any) -> Any:
    """``value`` if ``model`` runs on it, else None (it is another model's; this one's inputs
    are inferred). A file's only model keeps its inputs unchecked: a mistake in them is the
    user's to see, as an error on them."""
    return value if fit_error(model, as_arguments(model, value)) is None else None


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


REAL_PARAMS = 20_000_000  # up to this many parameters a fit check runs for real


def fit_error(model: nn.Module, args: tuple[Any, ...]) -> BaseException | None:
    """What running ``model`` on ``args`` raises (None: they fit). A small model runs for real
    (milliseconds); a large one, or one built on the meta device, runs on meta: shapes only,
    whatever its size (the meta kernels' first use costs ~1.7 s of imports), and for real only
    when the meta run fails for a reason of its own (``.item()``, an op without a meta kernel).
    The model is left as it was: modes, buffers, attributes its ``forward`` set, and the
    random streams."""
    if meta_first(model):
        try:
            with _kept(model):
                _run_on_meta(model, args)
            return None
        except Exception as exc:  # noqa: BLE001 - the user's forward raised: no fit
            if not _meta_only(exc) or _on_meta(model):
                return exc
    try:
        with _kept(model):
            model(*args)
        return None
    except Exception as exc:  # noqa: BLE001
        return exc


def forward_flops(model: nn.Module, args: tuple[Any, ...]) -> int | None:
    """The floating-point operations of one forward on ``args``, counted on the meta device
    (no arithmetic; torch's FlopCounterMode counts matmuls, convolutions and attention); None
    when the meta run fails. The model is left as it was. The meta kernels' first use costs
    ~1 s: callers count where fit checks ran on meta already (``meta_first``)."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter, _kept(model):
            _run_on_meta(model, args)
    except Exception:  # noqa: BLE001 - the user's forward, or an op without a meta kernel
        return None
    return int(counter.get_total_flops())


@contextlib.contextmanager
def _kept(model: nn.Module) -> Iterator[None]:
    with torch.no_grad(), restored(model), user_code(), torch.random.fork_rng(devices=[]):
        model.train()
        yield


def _on_meta(model: nn.Module) -> bool:
    return any(p.device.type == "meta" for p in model.parameters())


def meta_first(model: nn.Module) -> bool:
    """Fit checks of this model run on meta first: it is built there, or it is large."""
    count = 0
    for p in model.parameters():
        if p.device.type == "meta":
            return True
        count += p.numel()
    return count > REAL_PARAMS


def _run_on_meta(model: nn.Module, args: tuple[Any, ...]) -> Any:
    meta_args = tree_map_tensors(lambda t: t.to("meta"), args)
    # one name per tensor: functional_call ties the other names of a shared weight (a GPT's
    # embedding and head) itself, and refuses values for two names of one tied tensor
    state = {k: v for k, v in [*model.named_parameters(), *model.named_buffers()]
             if v.device.type != "meta"}
    with torch.device("meta"):
        if not state:
            return model(*meta_args)
        from torch.func import functional_call

        meta_state = {k: v.to("meta") for k, v in state.items()}
        return functional_call(model, meta_state, tuple(meta_args))


def _meta_only(exc: BaseException) -> bool:
    """A failure of the meta device, not of the inputs: the same run on real tensors may pass."""
    text = str(exc).lower()
    return isinstance(exc, NotImplementedError) or "meta" in text or "data-dependent" in text


def tree_map_tensors(fn: Any, value: Any) -> Any:
    """``value`` with every tensor in its tuples, lists and dicts replaced by ``fn(tensor)``."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        items = [tree_map_tensors(fn, v) for v in value]
        return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
    if isinstance(value, dict):
        return {k: tree_map_tensors(fn, v) for k, v in value.items()}
    return value
