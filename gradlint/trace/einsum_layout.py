"""How ``torch.einsum`` reads as the products it computes: each operand's subscripts, and for
a pair of operands which subscripts are the batch, which are summed over (the inner product)
and which are free. One home for the IR's lowering (``ir_builder.EinsumLowering``) and for
the trace's token-coherence reading (``token_coherence.of_einsum``), which must see the same
right factor the estimate's matmul sees."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def einsum_terms(equation: str, ndims: list[int]) -> tuple[list[str], str] | None:
    """Each operand's subscripts and the output's, ``...`` spelled out as spare letters
    (aligned from the right, shared by every operand); None for what is not understood
    (a repeated subscript: a diagonal)."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        return None
    ell = max((nd - len(t.replace("...", "")) for t, nd in zip(terms, ndims, strict=True)
               if "..." in t), default=0)
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in eq][:ell]
    spelled = []
    for t, nd in zip(terms, ndims, strict=True):
        n = nd - len(t.replace("...", ""))
        spelled.append(t.replace("...", "".join(spare[ell - n:]) if n > 0 else ""))
    if arrow:
        out = out.replace("...", "".join(spare))
    else:  # implicit output: the ellipsis, then the subscripts used once, sorted
        once = [c for c in sorted(set("".join(spelled))) if "".join(spelled).count(c) == 1]
        out = "".join(spare) + "".join(c for c in once if c not in spare)
    if any(len(set(t)) != len(t) for t in [*spelled, out]) or any(
            len(t) != nd for t, nd in zip(spelled, ndims, strict=True)):
        return None
    return spelled, out


def pair_subscripts(a_idx: str, b_idx: str, needed: set[str], examples: set[str]
                    ) -> tuple[list[str], list[str], list[str], list[str]]:
    """(batch, inner, free of a, free of b) of one product ``a @ b`` of an einsum: a batch
    subscript is needed later and shared, or an example's (an activation's first subscript:
    the estimate is per example); an inner one is shared and summed away."""
    batch = [c for c in a_idx + b_idx if c in needed and (
        c in a_idx and c in b_idx or c in examples)]
    batch = sorted(set(batch), key=batch.index)
    inner = [c for c in a_idx if c in b_idx and c not in needed]
    free_a = [c for c in a_idx if c not in b_idx and c not in batch]
    free_b = [c for c in b_idx if c not in a_idx and c not in batch]
    return batch, inner, free_a, free_b


def right_factor(equation: str, operands: Sequence[torch.Tensor], activations: Sequence[bool]
                 ) -> torch.Tensor | None:
    """The second operand of a two-operand einsum laid out as the lowering's matmul has it,
    (batch..., k, m): ``einsum('b h i j, b h j d -> b h i d', attn, v)`` gives v itself,
    ``'b n, b n d -> b d'`` gives (b, n, d). None for other einsums (one or three operands,
    a subscript only one operand has and nothing needs: the lowering sums it first).
    ``activations``: which operands are not parameters (their first subscript is the
    example's)."""
    if len(operands) != 2:
        return None
    terms = einsum_terms(equation, [t.dim() for t in operands])
    if terms is None:
        return None
    (a_idx, b_idx), out = terms
    if any(c not in b_idx and c not in out for c in a_idx) or any(
            c not in a_idx and c not in out for c in b_idx):
        return None
    examples = {t[0] for t, act in zip((a_idx, b_idx), activations, strict=True) if t and act}
    batch, inner, _, free_b = pair_subscripts(a_idx, b_idx, set(out), examples)
    b = operands[1]
    lead = [c for c in batch if c in b_idx]
    order = [b_idx.index(c) for c in [*lead, *inner, *free_b]]
    k = 1
    for c in inner:
        k *= b.shape[b_idx.index(c)]
    m = 1
    for c in free_b:
        m *= b.shape[b_idx.index(c)]
    return b.permute(order).reshape(*(b.shape[b_idx.index(c)] for c in lead), k, m)
