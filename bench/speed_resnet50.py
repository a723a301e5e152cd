"""bench/speed_models.py's ResNet-50 as a user's model file would give it, with its example
input: ``gradlint bench/speed_resnet50.py`` is the command bench/speed.py times."""

from __future__ import annotations

import torch
from speed_models import ResNet50 as _ResNet50  # gradlint puts this folder on sys.path


class ResNet50(_ResNet50):
    """torchvision's layout: Bottleneck blocks [3, 4, 6, 3]."""


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randn(1, 3, 224, 224),)
