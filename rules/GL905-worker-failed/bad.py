"""A model whose constructor reads memory at address 0 (a stand-in for a crashing C extension).
The process that runs it dies with SIGSEGV; gradlint checks each file in a worker process, so
only this file is lost: GL905 at the line that was running, exit status 2, other files checked."""

import ctypes

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        ctypes.string_at(0)  # crashes the interpreter

    def forward(self, x):
        return self.fc(x)
