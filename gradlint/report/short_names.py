"""Module names shortened for a table column without making neighbouring rows look alike.

Cutting a name from the left turns ``down1.maxpool_conv.1.double_conv.0`` and
``down2.maxpool_conv.1.double_conv.0`` into the same ``…conv.0``; cutting from the right loses
which sublayer a row is. So a long name keeps the component that tells it from the rows above
and below, its last component, and as many of the others as fit, ``…`` standing for those left
out: ``down1.….1.double_conv.0`` (the row below, ``down1.….1.double_conv.3``, differs in its last
component, the one after it, ``down2.…``, in its first).
"""

from __future__ import annotations

from collections.abc import Sequence

GAP = "…"


def short_names(names: Sequence[str], width: int) -> list[str]:
    """Each name in at most ``width`` characters (``width`` >= 3), telling neighbours apart."""
    parts = [name.split(".") for name in names]
    out = []
    for i, name in enumerate(names):
        if len(name) <= width:
            out.append(name)
            continue
        keys = {_first_difference(parts[i], parts[j]) for j in (i - 1, i + 1)
                if 0 <= j < len(names)}
        out.append(_shorten(parts[i], keys or {0}, width))
    return out


def _first_difference(a: list[str], b: list[str]) -> int:
    """The index of the first component of ``a`` that differs from ``b`` (its last when ``a``
    continues ``b`` or equals it)."""
    for k, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return k
    return min(len(b), len(a) - 1)


def _render(comps: list[str], kept: set[int]) -> str:
    out: list[str] = []
    for k, comp in enumerate(comps):
        if k in kept:
            out.append(comp)
        elif not out or out[-1] != GAP:
            out.append(GAP)
    return ".".join(out)


def _shorten(comps: list[str], keys: set[int], width: int) -> str:
    """Keep the ``keys`` components and the last, then the ones before the last (nearest
    first) down to the first key, then the first ones (in order), each while the name fits;
    both ends of the characters when even the first ones kept do not fit."""
    last = len(comps) - 1
    kept = keys | {last}
    if len(_render(comps, kept)) > width:
        name = ".".join(comps)
        head = (width - 1) // 2
        return name[:head] + GAP + name[len(name) - (width - 1 - head):]
    low = min(keys)
    for order in (range(last - 1, low, -1), range(0, low)):
        for k in order:
            if len(_render(comps, kept | {k})) > width:
                break
            kept.add(k)
    return _render(comps, kept)
