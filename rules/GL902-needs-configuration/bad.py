"""A model class whose constructor needs arguments (`Net(width)`), and no module-level instance:
gradlint cannot know what to pass, so it skips the class. `gradlint` reports GL902 (info, exit
status 0) saying how to configure it."""

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width, classes):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))
