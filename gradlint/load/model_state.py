"""Putting a user's model back as it was after gradlint ran it: a trace, an export or a fit
check may store values on modules (``self.mask = ...`` leaves an fx Proxy behind), switch modes
and update buffers (BatchNorm's running statistics). Linting must never change the model (its
outputs, or a test run after ``gradlint.check``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn


@contextlib.contextmanager
def attributes_kept(model: nn.Module) -> Iterator[None]:
    """Put back every module's attributes, parameters, buffers and submodules as they were
    (the same objects: a shallow snapshot of each dict, no copy of any tensor; a deep copy
    would double a large model's memory)."""
    saved = [(held, dict(held)) for m in model.modules()
             for held in (vars(m), m._parameters, m._buffers, m._modules)]
    try:
        yield
    finally:
        for held, before in saved:
            for key in [k for k in held if k not in before]:
                del held[key]
            for key, value in before.items():
                if held.get(key) is not value:
                    held[key] = value


@contextlib.contextmanager
def restored(model: nn.Module) -> Iterator[None]:
    """Running the model in train mode updates BatchNorm's running statistics (and any other
    buffer a forward writes), sets every submodule's mode, and may store values on the modules
    (``self.mask = ...``, a cache): put all three back, so linting never changes the user's
    model (its outputs, or a test run after ``gradlint.check``)."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers() if b.device.type != "meta"]
    try:
        with attributes_kept(model):
            yield
    finally:
        for m, mode in modes:
            m.training = mode
        with torch.no_grad():
            for b, kept in buffers:
                b.copy_(kept)
