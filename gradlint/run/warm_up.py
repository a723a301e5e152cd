"""What the fork server runs once before any file, so that each file's process starts warm: a
small model file checked end to end (``warm_up``), or where pages cannot be copied ahead, a tiny
in-process check (``touch``). Both run gradlint only, never user code."""

from __future__ import annotations

import os
import sys

_WARM_UP = """
import torch
import torch.nn as nn


class WarmUp(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.acts = nn.ModuleList([nn.ReLU(), nn.GELU(), nn.Tanh(), nn.Sigmoid(), nn.SiLU()])
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        h = self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1)
        h = self.norm(self.fc(h))
        for act in self.acts:
            h = h + act(h)
        return self.head(h)
"""


def touch() -> None:
    """A spare's warm-up while it waits, where pages cannot be populated (not Linux >= 5.14):
    a tiny check faults in most pages a check writes."""
    import torch.nn as nn

    from gradlint.run.check_file import check_model

    check_model(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)))


def warm_up() -> None:
    """Check a small model file once, so that each child starts with what a first check loads
    lazily (numpy.random for the seeds, the quadrature grids, source lines of torch's files
    for construction sites) instead of paying ~0.1 s for it per file. sys.path and the
    module table are put back as they were."""
    import tempfile

    from gradlint.core.options import Options
    from gradlint.run.check_file import analyse_file

    path, modules = list(sys.path), set(sys.modules)
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "warm_up.py")
        with open(model, "w", encoding="utf-8") as f:
            f.write(_WARM_UP)
        analyse_file(model, (), Options())
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("gradlint_target_"):
            del sys.modules[name]
