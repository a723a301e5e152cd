"""A healthy residual MLP that still carries a suppression comment from before it was fixed:
the `# gradlint: ignore[GL101]` on `self.blocks` suppresses nothing any more.
`gradlint --select GL1,GL9,GL100` reports GL100 (warning) at the comment."""

import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x):
        return x + self.act(self.fc(self.norm(x)))


class ResidualReLUMLP(nn.Module):
    def __init__(self, width: int = 64, depth: int = 12, classes: int = 10) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])  # gradlint: ignore[GL101]
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.norm(self.blocks(x)))
