"""A deep MLP whose only problem is its activations.

Kaiming init already keeps every layer's gain at 1 for ReLU, but each hidden nn.Sigmoid scales
the backward signal by at most 1/4, so the first layers get about 10^-6 of the gradient the
last ones get: `gradlint examples/kaiming_sigmoid.py` reports GL101 and GL102.
`gradlint --fix --unsafe-fixes examples/kaiming_sigmoid.py` replaces the hidden sigmoids with
nn.ReLU (the output sigmoid, a probability, stays) and both findings go away.
"""

import torch.nn as nn


class KaimingSigmoidClassifier(nn.Module):
    """Binary classifier: 12 hidden Linear + Sigmoid layers, a probability at the output."""

    def __init__(self, width: int = 128, depth: int = 12) -> None:
        super().__init__()
        # the hidden layers, built in a comprehension: one construction site for all of them
        self.layers = nn.Sequential(
            *[nn.Sequential(nn.Linear(width, width),   nn.Sigmoid())  # hidden activation
              for _ in range(depth)]
        )
        self.head = nn.Linear(width, 1)
        self.out = nn.Sigmoid()  # the output probability: --fix never touches it
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.out(self.head(self.layers(x)))
