"""``--input SHAPE[:DTYPE]`` specs, read without torch (the parent process checks them before
any worker starts, and must not pay torch's import for it)."""

from __future__ import annotations

from dataclasses import dataclass

from gradlint.core.graph import InputSpec

DTYPES = ("float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64",
          "long", "int32", "int", "int16", "short", "int8", "uint8", "bool", "complex64",
          "complex128")


def parse_spec(spec: str) -> tuple[tuple[int, ...], str]:
    """``8x3x224x224`` or ``2x128:int64`` -> ((8, 3, 224, 224), "float32") / ((2, 128), "int64");
    ValueError with the spec in the message when it is malformed."""
    shape_text, _, dtype_text = spec.partition(":")
    try:
        shape = tuple(int(s) for s in shape_text.lower().split("x"))
    except ValueError:
        raise ValueError(f"bad --input {spec!r}: expected a shape like 8x3x224x224[:int64]") \
            from None
    if any(n <= 0 for n in shape):
        raise ValueError(f"bad --input {spec!r}: every size must be positive")
    dtype = dtype_text or "float32"
    if dtype not in DTYPES:
        raise ValueError(f"bad --input {spec!r}: unknown dtype {dtype_text!r} "
                         f"(one of {', '.join(DTYPES)})")
    return shape, dtype


@dataclass(frozen=True)
class HeldArgument(InputSpec):
    """A positional argument of ``forward`` that is not one tensor (an LSTM's ``(h, c)``,
    ``None`` in a keyword's place, an int): ``value`` is it with each tensor replaced by its
    InputSpec, so ``--verify`` can draw fresh tensors and pass the rest as the user gave it."""

    shape: tuple[int, ...] = ()
    dtype: str = "held"
    value: object = None


def spec_text(spec: InputSpec) -> str:
    """How the report shows an example input, in ``--input``'s syntax where it is one tensor:
    ``4x1x28x28``, ``2x64:int64``; a held argument as its structure: ``(4x2x16, 4x2x16)``."""
    if isinstance(spec, HeldArgument):
        return _held_text(spec.value)
    shape = "x".join(map(str, spec.shape)) or "scalar"
    return shape if spec.dtype == "float32" else f"{shape}:{spec.dtype}"


def _held_text(value: object) -> str:
    if isinstance(value, InputSpec):
        return spec_text(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_held_text(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_held_text(v)}" for k, v in value.items()) + "}"
    return repr(value)[:40]
