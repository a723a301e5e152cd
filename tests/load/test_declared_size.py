"""The image size a model's constructor was given (gradlint/load/declared_sizes.py) is the
size its inferred input gets first: a position table that slices or broadcasts to fit also
takes the input search's 32x32, which gives other token counts than the model was built for."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from gradlint.core.values import Diagnostic, Target
from gradlint.load.declared_sizes import frame_count, image_size
from gradlint.load.targets import LoadRequest, load_targets
from gradlint.trace.fx import trace_target


def _frame_of(**kwargs: object) -> types.FrameType:
    """The frame of an ``__init__`` called with these keyword arguments."""
    seen: list[types.FrameType] = []

    class Probe:
        def __init__(self, dim: int = 8, image_size: object = None, img_size: object = None,
                     input_size: object = None, frames: object = None, **rest: object) -> None:
            seen.append(sys._getframe())

    Probe(**kwargs)
    return seen[0]


@pytest.mark.parametrize(("kwargs", "side"), [
    ({"image_size": 256}, 256), ({"img_size": (224, 224)}, 224),
    ({"input_size": (3, 64, 64)}, 64), ({"resolution": 96}, 96),  # through **rest
    ({"image_size": (224, 160)}, None), ({"image_size": True}, None),
    ({"image_size": 4}, None), ({"dim": 256}, None), ({}, None)])
def test_the_side_read_from_constructor_arguments(kwargs: dict[str, object],
                                                  side: int | None) -> None:
    assert image_size(_frame_of(**kwargs)) == side


@pytest.mark.parametrize(("kwargs", "count"), [
    ({"frames": 16}, 16), ({"num_frames": 8}, 8), ({"frames": True}, None),
    ({"frames": 0}, None), ({"image_size": 16}, None)])
def test_the_frame_count_read_from_constructor_arguments(kwargs: dict[str, object],
                                                         count: int | None) -> None:
    assert frame_count(_frame_of(**kwargs)) == count


VIT = """
import torch
import torch.nn as nn

class PatchViT(nn.Module):
    def __init__(self, image_size, patch=16, dim=64):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, (image_size // patch) ** 2, dim))
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = x + self.pos[:, :x.shape[1]]  # slices to fit: a 32x32 image runs too
        return self.head((x + self.mlp(x)).mean(1))

class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))

class Video(nn.Module):  # tubelets of 2 frames x 8 x 8: its table fits what it was built for

    def __init__(self, image_size, frames, dim=32):
        super().__init__()
        self.tubelets = nn.Conv3d(3, dim, (2, 8, 8), stride=(2, 8, 8))
        self.pos = nn.Parameter(torch.randn(1, frames // 2 * (image_size // 8) ** 2, dim))
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.tubelets(x).flatten(2).transpose(1, 2)
        return self.head((x + self.pos).mean(1))

model = PatchViT(image_size=128)
plain = Plain()
video = Video(image_size=64, frames=4)
"""


def test_a_model_runs_on_the_image_size_it_was_built_for(tmp_path: Path) -> None:
    path = tmp_path / "vit.py"
    path.write_text(textwrap.dedent(VIT), encoding="utf-8")
    found = load_targets(LoadRequest(str(path)))
    assert not isinstance(found, Diagnostic)
    vit, plain = (next(t for t in found if t.name.endswith(f"::{n}")) for n in ("model", "plain"))
    assert isinstance(vit, Target) and vit.frames is None
    assert isinstance(vit, Target) and isinstance(plain, Target)
    assert vit.image_size == 128 and plain.image_size is None
    assert [s.shape for s in trace_target(vit).inputs] == [(4, 3, 128, 128)]
    assert [s.shape for s in trace_target(plain).inputs] == [(4, 3, 32, 32)]  # as before


def test_a_video_model_gets_its_frames(tmp_path: Path) -> None:
    """No volume the search tries fits its table: (C, T, H, W) of what it was built for."""
    path = tmp_path / "vit.py"
    path.write_text(textwrap.dedent(VIT), encoding="utf-8")
    found = load_targets(LoadRequest(str(path)))
    assert not isinstance(found, Diagnostic)
    video = next(t for t in found if t.name.endswith("::video"))
    assert isinstance(video, Target) and (video.image_size, video.frames) == (64, 4)
    assert [s.shape for s in trace_target(video).inputs] == [(4, 3, 4, 64, 64)]


class _Untraceable(nn.Module):
    """Branches on a size (fx cannot trace it: the export path)."""

    def __init__(self, img_size: int) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 8, stride=8)
        self.pos = nn.Parameter(torch.zeros(1, 16, (img_size // 8) ** 2))
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch(x).flatten(2)
        if h.shape[2] > 0:
            h = h + self.pos[:, :, :h.shape[2]]
        return self.head(h.mean(2))


def test_the_export_path_takes_it_too() -> None:
    graph = trace_target(Target("m.py::M", _Untraceable(64), "m.py", 1, image_size=64))
    assert graph.tracer == "export"
    assert [s.shape for s in graph.inputs] == [(4, 3, 64, 64)]


def test_a_size_that_does_not_run_falls_back_to_the_search() -> None:
    """A wrong word (the size of another input, say) costs nothing but a fit check."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
    target = Target("m.py::M", model, "m.py", 1, image_size=128)
    assert [s.shape for s in trace_target(target).inputs] == [(4, 3, 32, 32)]
