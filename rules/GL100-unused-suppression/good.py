"""A deliberate bounded tanh stack whose GL102 warning is suppressed on purpose, on the closing
line of the statement that builds it: the comment suppresses a real diagnostic, so it is not
stale. `gradlint --select GL1,GL9,GL100` reports nothing."""

import torch.nn as nn


class TanhMLP(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.Tanh(),
            nn.Linear(width, width), nn.Tanh(),
            nn.Linear(width, width), nn.Tanh(),
            nn.Linear(width, classes),
        )  # gradlint: ignore[GL102] -- bounded features are the point of this model
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("tanh"))
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.net(x)
