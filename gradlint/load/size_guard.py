"""A real build that gives up once the model grows past a size, so that the constructor of a
model that fits runs once, for real, with no meta-device probe before it.

Every parameter or buffer a module registers, and every module ``copy.deepcopy`` clones
(``nn.TransformerEncoder``'s layers), adds its bytes to a count; past the limit the build is
stopped with ``TooBig`` (a BaseException: a constructor's ``except Exception`` does not take it)
and gradlint sizes the model on the meta device instead (gradlint/load/building.py). The limit
is small (``REAL_FIRST_BYTES``), so a 70B config is stopped at its first large tensor, which
torch has reserved but not yet written (``torch.empty`` comes before the init fills it).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn as nn
from torch.nn.modules import module as module_hooks

REAL_FIRST_BYTES = 256 << 20  # parameters and buffers a build may reach before it is sized
_LAZY = (nn.parameter.UninitializedParameter, nn.parameter.UninitializedBuffer)  # sized later


class TooBig(BaseException):
    """The build passed its size limit: size it on the meta device instead."""


def tensor_bytes(tensors: Iterable[Any]) -> int:
    """Bytes of the tensors' elements; lazy ones (``nn.LazyLinear``'s, sized by the first
    forward) count 0."""
    return sum(t.numel() * t.element_size() for t in tensors
               if isinstance(t, torch.Tensor) and not isinstance(t, _LAZY))


class _Count:
    def __init__(self, limit: int) -> None:
        self.limit, self.total, self.passed = limit, 0, False

    def add(self, nbytes: int) -> None:
        self.total += nbytes
        if self.total > self.limit:
            self.passed = True  # stays set if the user's code swallows the exception
            raise TooBig(self.total)

    def registered(self, module: nn.Module, name: str, tensor: Any) -> None:
        self.add(tensor_bytes([tensor]))


@contextlib.contextmanager
def at_most(limit: int) -> Iterator[_Count]:
    """Count the bytes of what modules register or deepcopy clones while active; raise
    ``TooBig`` once they pass ``limit``. The caller checks ``passed`` afterwards too."""
    count = _Count(limit)
    handles = [module_hooks.register_module_parameter_registration_hook(count.registered),
               module_hooks.register_module_buffer_registration_hook(count.registered)]
    deepcopy = copy.deepcopy  # the construction-site recorder's, when it is active
    depth = [0]  # deepcopy calls itself for what it copies: count the outermost call only

    def counted_deepcopy(x: Any, memo: dict[int, Any] | None = None, _nil: Any = ()) -> Any:
        depth[0] += 1
        try:
            result = deepcopy(x, memo) if memo is not None else deepcopy(x)
        finally:
            depth[0] -= 1
        if not depth[0] and isinstance(result, nn.Module) and result is not x:
            count.add(tensor_bytes([*result.parameters(), *result.buffers()]))
        return result

    copy.deepcopy = counted_deepcopy
    try:
        yield count
    finally:
        copy.deepcopy = deepcopy
        for handle in handles:
            handle.remove()
