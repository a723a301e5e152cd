"""A training script: it defines a model and then, at module level and with no
`if __name__ == "__main__":` guard, builds an optimizer and runs a training loop. Importing the
file would start training, so gradlint's pre-filter does not import it. `gradlint` reports GL907
(info, exit status 0) saying to add the guard or to name the model (`bad.py::Net`)."""

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


model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
