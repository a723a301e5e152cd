"""The training script of bad.py, fixed: the optimizer and the training loop run under
`if __name__ == "__main__":`, so importing the file only defines the model. gradlint imports it
and checks `Net`. `gradlint` reports nothing."""

import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def train(model: nn.Module, epochs: int = 3) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(epochs):
        x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    train(Net())
