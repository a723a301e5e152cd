"""How alike the tokens are that an attention averages, read from the shape pass's own tensors.

Per-entry moments cannot tell N independent tokens from N tokens that share a common part
(``../docs/design.md``, *Token coherence*). Where the values share a part ρ_V of their energy,
near-uniform attention keeps it whole (P_out = P_v (ρ + (1 − ρ) Σp²), not P_v Σp²) and the
softmax Jacobian, which centres each row over its keys, passes only 1 − ρ_V of the logits'
gradient; the queries' gradient sees only the keys' centred part, 1 − ρ_K. ρ depends on
everything before the attention (biases, activation means, position embeddings, ReLU
streams), so it is measured where the trace holds real values: the one forward run of the shape
pass, per example and head, over the keys. ``None`` where there are no values (the meta device,
fake tensors of the export path): the estimate then takes the tokens as independent.

Recorded per call: sdpa → (ρ_V, ρ_K), both over the keys; ``A @ B`` → (ρ of B over its rows,
ρ of B over its columns): the first is the values' when A holds probabilities, the second the
keys' when A @ B gives logits (B = Kᵀ); a softmax → the share of its logits' energy that is
alike along the row, which the softmax ignores (it sees the variance within a row)."""

from __future__ import annotations

from typing import Any

import torch

from gradlint.trace.einsum_layout import right_factor

Coherence = tuple[float, float]


def shared_share(t: torch.Tensor, dim: int) -> float | None:
    """The share of ``t``'s energy that all entries along ``dim`` have in common, per slice:
    with t_j = √ρ·m + √(1 − ρ)·z_j over n entries, E[mean_j²] = q (ρ + (1 − ρ)/n), solved for
    ρ (so n independent entries give 0, not 1/n); clipped to [0, 1]."""
    if t.dim() < 2 or t.device.type == "meta" or not (t.is_floating_point()):
        return None
    n = t.shape[dim]
    if n < 2 or t.numel() == 0:
        return None
    x = t.detach().float()
    q = float((x * x).mean())
    if not q > 0.0 or q != q or q == float("inf"):
        return None
    raw = float((x.mean(dim) ** 2).mean()) / q
    return min(max((n * raw - 1.0) / (n - 1.0), 0.0), 1.0)


def of_call(op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Coherence | None:
    """(ρ_V, ρ_K) of an sdpa call, (rows, columns) of a matmul's right factor; None where the
    operands hold no values."""
    try:
        if op == "sdpa":
            k = args[1] if len(args) > 1 else kwargs.get("key")
            v = args[2] if len(args) > 2 else kwargs.get("value")
            if not isinstance(k, torch.Tensor) or not isinstance(v, torch.Tensor):
                return None
            pair = (shared_share(v, -2), shared_share(k, -2))
        else:
            b = args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2"))
            if not isinstance(b, torch.Tensor) or b.dim() < 2:
                return None
            pair = (shared_share(b, -2), shared_share(b, -1))
    except Exception:  # noqa: BLE001 - a tensor subclass without values (fake, lazy)
        return None
    if pair[0] is None or pair[1] is None:
        return None
    return (round(pair[0], 4), round(pair[1], 4))


def of_einsum(equation: Any, operands: list[Any], activations: list[bool]) -> Coherence | None:
    """(rows, columns) of a two-operand einsum's right factor as the estimate's matmul has it
    (``einsum_layout.right_factor``): an attention written ``einsum('bhij,bhjd->bhid')`` or a
    pooling ``einsum('bn,bnd->bd')`` reads its values' coherence as ``attn @ v`` does."""
    if not isinstance(equation, str) or not all(isinstance(t, torch.Tensor) for t in operands):
        return None
    try:
        b = right_factor(equation, operands, activations)
    except Exception:  # noqa: BLE001 - shapes the einsum itself rejects: the call fails there
        return None
    return None if b is None else of_call("matmul", (None, b), {})


def of_softmax(args: tuple[Any, ...], kwargs: dict[str, Any], module: Any = None
               ) -> float | None:
    """The share of a softmax input's energy alike along its dim (a row's common shift)."""
    x = args[0] if args else kwargs.get("input", kwargs.get("self"))
    dim = getattr(module, "dim", None) if module is not None else (
        args[1] if len(args) > 1 else kwargs.get("dim"))
    if not isinstance(x, torch.Tensor) or not isinstance(dim, int):
        return None
    try:
        found = shared_share(x, dim)
    except Exception:  # noqa: BLE001 - a tensor subclass without values, a bad dim
        return None
    return None if found is None else round(found, 4)
