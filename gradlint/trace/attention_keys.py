"""How many keys each query of an attention can see, read from its mask where the trace holds
real values: a causal, padding or shifted-window mask leaves query i n_i keys, and near-uniform
attention averages its values over those n_i, not over all n_k (docs/design.md, *Keys per
query*). The estimate needs two averages over the query rows: h1 = mean 1/n_i (what averaging
keeps of the values' mean square, and what the values' gradient receives) and h2 = mean 1/n_i^2
(the softmax Jacobian centres each row on its own keys: Q and K see h1 - h2).

``None`` everywhere means "every key": no mask, a mask that hides nothing, or no values (a model
on the meta device), and the estimate then takes n_k."""

from __future__ import annotations

from typing import Any

import torch

KeyCounts = tuple[float, float]  # (mean over query rows of 1/n_i, of 1/n_i^2)

# an additive mask or logit this far below its row's largest is a hidden key: exp(-50) ~ 2e-22.
# Masks write -inf, the dtype's minimum, -1e4..-1e9 or Swin's -100; logits at init spread O(1)
_HIDDEN = 50.0
# a masked_fill value at or below this hides the key it fills
_FILL = -1e4


def causal(n_q: int, n_k: int) -> KeyCounts | None:
    """``is_causal=True``: query i sees keys 0..i (torch's top-left alignment)."""
    if n_q <= 0 or n_k <= 1:
        return None
    counts = torch.arange(1, n_q + 1, dtype=torch.float64).clamp(max=n_k)
    return _averages(counts, n_k)


def from_mask(mask: Any, n_k: int, hides: bool = False) -> KeyCounts | None:
    """A mask over the last dimension (keys): boolean (True = may attend, or True = hidden when
    ``hides``, as nn.MultiheadAttention's masks are) or additive float."""
    return combined((mask, hides), n_k=n_k)


def from_logits(x: Any, dim: int) -> KeyCounts | None:
    """A softmax's input: entries far below their row's largest are masked keys."""
    if not _readable(x) or not x.is_floating_point() or x.dim() == 0:
        return None
    x = x.detach().movedim(dim, -1)
    live = _live(x, False)
    return None if live is None else _counted(live, x.shape[-1])


def combined(*masks: tuple[Any, bool], n_k: int) -> KeyCounts | None:
    """Several masks on one attention (nn.MultiheadAttention's ``attn_mask`` and
    ``key_padding_mask``, each already broadcastable to (..., n_q, n_k)): a key is live where
    every mask lets it through."""
    live: torch.Tensor | None = None
    for mask, hides in masks:
        one = _live(mask, hides)
        if one is None:
            continue
        try:
            live = one if live is None else live & one
        except RuntimeError:  # shapes that do not broadcast: no reading
            return None
    if live is None or live.shape[-1] != n_k:
        return None
    return _counted(live, n_k)


def _readable(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.device.type != "meta" and t.numel() > 0 and not (
        t.is_complex())


def _live(mask: Any, hides: bool) -> torch.Tensor | None:
    """Boolean: which keys each row may attend to."""
    if not _readable(mask):
        return None
    mask = mask.detach()
    if mask.dtype == torch.bool:
        return ~mask if hides else mask
    if not mask.is_floating_point():
        return None
    if mask.dim() == 0:
        return None
    m = mask.double()
    top = m.amax(dim=-1, keepdim=True)
    return (m > top - _HIDDEN) & (m > float("-inf"))


def _counted(live: torch.Tensor, n_k: int) -> KeyCounts | None:
    counts = live.sum(dim=-1, dtype=torch.float64).reshape(-1)
    if bool((counts >= n_k).all()):
        return None  # nothing hidden
    # a row with every key hidden: softmax over equal -inf/minimum entries is uniform (or NaN)
    counts = torch.where(counts > 0, counts, torch.full_like(counts, float(n_k)))
    return _averages(counts, n_k)


def _averages(counts: torch.Tensor, n_k: int) -> KeyCounts | None:
    if counts.numel() == 0 or bool((counts >= n_k).all()):
        return None
    inv = counts.reciprocal()
    return float(inv.mean()), float((inv * inv).mean())


def masked_fill_hides(value: Any) -> bool:
    """Does ``masked_fill(mask, value)`` hide the keys it fills?"""
    return isinstance(value, (int, float)) and value <= _FILL


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], pos: int, name: str,
         default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[pos] if pos < len(args) else default


def of_call(key: str, args: tuple[Any, ...], kwargs: dict[str, Any], module: Any = None
            ) -> KeyCounts | None:
    """Keys per query of one attention call with its runtime arguments: ``key`` is the
    catalogue's op (sdpa, softmax, multihead_attention); ``module`` the nn.Module called."""
    if key == "sdpa":
        q, k = _arg(args, kwargs, 0, "query"), _arg(args, kwargs, 1, "key")
        if not isinstance(q, torch.Tensor) or not isinstance(k, torch.Tensor) or q.dim() < 2:
            return None
        n_q, n_k = q.shape[-2], k.shape[-2]
        mask = _arg(args, kwargs, 3, "attn_mask")
        if mask is not None:
            return from_mask(mask, n_k)
        return causal(n_q, n_k) if _arg(args, kwargs, 5, "is_causal", False) is True else None
    if key == "softmax":
        x = _arg(args, kwargs, 0, "input")
        dim = getattr(module, "dim", None) if module is not None else _arg(args, kwargs, 1, "dim")
        return from_logits(x, dim if isinstance(dim, int) else -1)
    if key == "multihead_attention":
        return _multihead(args, kwargs, module)
    return None


def _multihead(args: tuple[Any, ...], kwargs: dict[str, Any], module: Any) -> KeyCounts | None:
    """nn.MultiheadAttention: ``attn_mask`` (L, S) or (N * heads, L, S) and ``key_padding_mask``
    (N, S), boolean True = hidden, or additive."""
    key = _arg(args, kwargs, 1, "key")
    padding = _arg(args, kwargs, 3, "key_padding_mask")
    mask = _arg(args, kwargs, 5, "attn_mask")
    if not isinstance(key, torch.Tensor) or key.dim() < 2 or (padding is None and mask is None):
        return None
    batch_first = bool(getattr(module, "batch_first", False))
    n_k = key.shape[1 if batch_first and key.dim() == 3 else 0]
    parts: list[tuple[Any, bool]] = []
    if isinstance(mask, torch.Tensor) and mask.dim() == 3 and isinstance(padding, torch.Tensor):
        mask = mask.reshape(padding.shape[0], -1, *mask.shape[-2:])
    if isinstance(mask, torch.Tensor):
        parts.append((mask, True))
    if isinstance(padding, torch.Tensor) and padding.dim() == 2:
        parts.append((padding[:, None, None, :], True))
    return combined(*parts, n_k=n_k)
