"""Recording where every submodule was constructed, while the user's file builds its models.

While active, ``nn.Module.__init__`` and ``copy.deepcopy`` note the first frame of user code on
the stack for each new module: this finds layers built in helper functions, loops,
``ModuleList.append``, ``add_module`` and deepcopy clones (README, "How it works"). Frames
inside the module's own ``__init__`` chain are skipped, so a user class is placed where it
was instantiated.
"""

from __future__ import annotations

import copy
import sys
import types
from typing import Any

import torch.nn as nn

from gradlint.core.values import Location
from gradlint.load.declared_sizes import frame_count, image_size
from gradlint.load.sources import is_library_file, stack_sites

Site = tuple[Location | None, Location | None]

_active: list[SiteRecorder] = []
_orig_init = nn.Module.__init__
_orig_deepcopy = copy.deepcopy


def _construction_frame(frame: types.FrameType | None, mod: nn.Module
                        ) -> types.FrameType | None:
    """Skip library frames and the module's own __init__ chain (``super().__init__()``)."""
    while frame is not None and (is_library_file(frame.f_code.co_filename)
                                 or frame.f_locals.get("self") is mod):
        frame = frame.f_back
    return frame


def _recording_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
    _orig_init(self, *args, **kwargs)
    if _active and id(self) not in _active[-1].sites:
        _active[-1].note(self, sys._getframe(1))
        _active[-1].note_size(self, sys._getframe(1))


def _recording_deepcopy(x: Any, memo: dict[int, Any] | None = None, _nil: Any = ()) -> Any:
    result = _orig_deepcopy(x, memo) if memo is not None else _orig_deepcopy(x)
    if _active and isinstance(result, nn.Module) and not _active[-1].copying:
        rec = _active[-1]
        rec.copying = True
        try:
            frame = sys._getframe(1)
            for mod in result.modules():
                if id(mod) not in rec.sites:
                    rec.note(mod, frame)
        finally:
            rec.copying = False
    return result


def _first(model: nn.Module, found: dict[int, int]) -> int | None:
    for m in model.modules():
        if id(m) in found:
            return found[id(m)]
    return None


class SiteRecorder:
    """Context manager collecting ``id(module) -> (definition, anchor)`` while active."""

    def __init__(self, anchor_file: str) -> None:
        self.anchor_file = anchor_file
        self.sites: dict[int, Site] = {}
        self.sizes: dict[int, int] = {}  # id(module) -> the image side its constructor was given
        self.frames: dict[int, int] = {}  # id(module) -> the frame count it was given
        self._keep: list[nn.Module] = []  # ids stay unique while we hold the objects
        self.copying = False

    def note(self, mod: nn.Module, frame: types.FrameType | None) -> None:
        self.sites[id(mod)] = stack_sites(_construction_frame(frame, mod), self.anchor_file)
        self._keep.append(mod)

    def note_size(self, mod: nn.Module, frame: types.FrameType | None) -> None:
        """The image side and frame count among the arguments of ``mod``'s ``__init__``
        chain, if any."""
        while frame is not None and frame.f_locals.get("self") is mod:
            side, frames = image_size(frame), frame_count(frame)
            if side is not None:
                self.sizes.setdefault(id(mod), side)
            if frames is not None:
                self.frames.setdefault(id(mod), frames)
            frame = frame.f_back

    def image_size(self, model: nn.Module) -> int | None:
        """The image side ``model`` or, failing that, its first submodule was built for."""
        return _first(model, self.sizes)

    def frame_count(self, model: nn.Module) -> int | None:
        """The video frame count ``model`` or, failing that, its first submodule was built
        for."""
        return _first(model, self.frames)

    def sites_of(self, model: nn.Module) -> dict[str, Site]:
        return {name: self.sites.get(id(m), (None, None))
                for name, m in model.named_modules(remove_duplicate=False)}

    def __enter__(self) -> SiteRecorder:
        if not _active:
            nn.Module.__init__ = _recording_init  # type: ignore[method-assign]
            copy.deepcopy = _recording_deepcopy
        _active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _active.remove(self)
        if not _active:
            nn.Module.__init__ = _orig_init  # type: ignore[method-assign]
            copy.deepcopy = _orig_deepcopy
