"""The image size a model's constructor was given, read from its arguments while it builds.

A model built for 256x256 images often also runs on the input search's first sizes: vit-pytorch
slices its position table to the tokens it gets, U-ViT's table broadcasts over one patch. It
then runs, but on an input it was not built for, with other token counts and other numbers.
So the constructor's own word comes first: an argument named as image sizes are
(``image_size``, ``img_size``, ``input_resolution``...), an int or a square (H, W) or
(C, H, W), in the parameters of the ``__init__`` chain of user code that built the module.
"""

from __future__ import annotations

import re
import types
from typing import Any

NAMES = re.compile(r"(image|img|input)_?(size|res|resolution|shape)|resolution")
SIZES = (8, 4096)  # an image side outside this is not one


def image_size(frame: types.FrameType) -> int | None:
    """The square image side among the parameters of the ``__init__`` running in ``frame``."""
    code = frame.f_code
    count = code.co_argcount + code.co_kwonlyargcount
    names = code.co_varnames[:count]
    values = frame.f_locals
    found = {name: values.get(name) for name in names if NAMES.fullmatch(name)}
    if code.co_flags & 0x08:  # **kwargs: its keys too
        extra = values.get(code.co_varnames[count + bool(code.co_flags & 0x04)])
        if isinstance(extra, dict):
            found.update((k, v) for k, v in extra.items()
                         if isinstance(k, str) and NAMES.fullmatch(k))
    for value in found.values():
        side = _side(value)
        if side is not None:
            return side
    return None


def _side(value: Any) -> int | None:
    if isinstance(value, (tuple, list)) and len(value) in (2, 3):
        h, w = value[-2], value[-1]
        value = h if h == w else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if SIZES[0] <= value <= SIZES[1] else None
