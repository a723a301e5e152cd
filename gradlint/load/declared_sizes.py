"""The image size a model's constructor was given, read from its arguments while it builds.

A model built for 256x256 images often also runs on the input search's first sizes: vit-pytorch
slices its position table to the tokens it gets, U-ViT's table broadcasts over one patch. It
then runs, but on an input it was not built for, with other token counts and other numbers.
So the constructor's own word comes first: an argument named as image sizes are
(``image_size``, ``img_size``, ``input_resolution``...), an int or a square (H, W) or
(C, H, W), in the parameters of the ``__init__`` chain that built the module; and for a
video model the frame count (``frames``, ``num_frames``), which makes its input (C, T, H, W).
"""

from __future__ import annotations

import re
import types
from typing import Any

NAMES = re.compile(r"(image|img|input)_?(size|res|resolution|shape)|resolution")
FRAMES = re.compile(r"(num_|n_)?frames|num_frame|clip_len(gth)?")
SIZES = (8, 4096)  # an image side outside this is not one
FRAME_COUNTS = (1, 1024)


def image_size(frame: types.FrameType) -> int | None:
    """The square image side among the parameters of the ``__init__`` running in ``frame``."""
    for value in _arguments(frame, NAMES):
        side = _side(value)
        if side is not None:
            return side
    return None


def frame_count(frame: types.FrameType) -> int | None:
    """The number of video frames among those parameters (``frames=16``, ``num_frames``)."""
    for value in _arguments(frame, FRAMES):
        if isinstance(value, int) and not isinstance(value, bool) \
                and FRAME_COUNTS[0] <= value <= FRAME_COUNTS[1]:
            return value
    return None


def _arguments(frame: types.FrameType, names: re.Pattern[str]) -> list[Any]:
    """The values of the parameters (and ``**kwargs`` keys) whose names match ``names``."""
    code = frame.f_code
    count = code.co_argcount + code.co_kwonlyargcount
    values = frame.f_locals
    found = [values.get(name) for name in code.co_varnames[:count] if names.fullmatch(name)]
    if code.co_flags & 0x08:  # **kwargs: its keys too
        extra = values.get(code.co_varnames[count + bool(code.co_flags & 0x04)])
        if isinstance(extra, dict):
            found += [v for k, v in extra.items() if isinstance(k, str) and names.fullmatch(k)]
    return found


def _side(value: Any) -> int | None:
    if isinstance(value, (tuple, list)) and len(value) in (2, 3):
        h, w = value[-2], value[-1]
        value = h if h == w else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if SIZES[0] <= value <= SIZES[1] else None
