"""Source locations: where the user's code built a layer or called an op.

Construction sites come from the frames on the stack while the model is built (exact spans from
the code object's positions); functional ops come from the fx stack trace (line only), and libcst
refines those to the span of the call on that line.
"""

from __future__ import annotations

import functools
import os
import re
import traceback
import types
from pathlib import Path

import libcst as cst
import torch
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from gradlint.ftypes import Location

_TORCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(str(torch.__file__))))
_GRADLINT_DIR = os.path.dirname(os.path.abspath(__file__))
_FRAME_RE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')


def is_library_file(filename: str) -> bool:
    """torch's own files, gradlint's, and the stdlib never define a user's layer."""
    path = os.path.abspath(filename)
    if path.startswith(os.path.join(_TORCH_DIR, "torch") + os.sep) or path.startswith(
            _GRADLINT_DIR + os.sep):
        return True
    return filename.startswith("<") or path.startswith(os.path.dirname(os.__file__) + os.sep) \
        and "site-packages" not in path


_GIVEN: dict[str, str] = {}


def remember_given_path(given: str) -> None:
    """Report a checked file under the path the user typed, whatever frames call it."""
    _GIVEN[os.path.abspath(given)] = given


def display_path(filename: str) -> str:
    """The path as given on the command line, else relative to the working directory."""
    path = os.path.abspath(filename)
    if path in _GIVEN:
        return _GIVEN[path]
    cwd = os.getcwd()
    if path.startswith(cwd + os.sep):
        return os.path.relpath(path, cwd)
    return path


def frame_location(frame: types.FrameType) -> Location:
    """The exact span of the instruction a frame is executing (Python >= 3.11 positions)."""
    code = frame.f_code
    line = frame.f_lineno
    file = display_path(code.co_filename)
    positions = getattr(code, "co_positions", None)
    if positions is not None and frame.f_lasti >= 0:
        try:
            start, end, col, end_col = list(positions())[frame.f_lasti // 2]
        except (IndexError, ValueError):
            start = None
        if start is not None and col is not None:
            return Location(file, start, col + 1, end, None if end_col is None else end_col + 1)
    return Location(file, line or 1)


def stack_sites(frame: types.FrameType | None, anchor_file: str | None) -> tuple[
        Location | None, Location | None]:
    """(definition, anchor): the innermost non-library frame, and the innermost frame in the file
    being checked (they differ when a library such as Hugging Face builds the layer)."""
    definition = anchor = None
    anchor_abs = os.path.abspath(anchor_file) if anchor_file else None
    while frame is not None and (definition is None or anchor is None):
        filename = frame.f_code.co_filename
        if definition is None and not is_library_file(filename):
            definition = frame_location(frame)
        if anchor is None and anchor_abs is not None and os.path.abspath(filename) == anchor_abs:
            anchor = frame_location(frame)
        frame = frame.f_back
    return definition, anchor or definition


def trace_site(stack_trace: str | None, anchor_file: str | None = None,
               name_hint: str | None = None) -> tuple[Location | None, Location | None]:
    """(definition, anchor) from an fx ``stack_trace`` (innermost frame last)."""
    if not stack_trace:
        return None, None
    frames = [(m["file"], int(m["line"])) for m in _FRAME_RE.finditer(stack_trace)]
    definition = anchor = None
    anchor_abs = os.path.abspath(anchor_file) if anchor_file else None
    for file, line in reversed(frames):
        if definition is None and not is_library_file(file):
            definition = refine(Location(display_path(file), line), name_hint)
        if anchor is None and anchor_abs and os.path.abspath(file) == anchor_abs:
            anchor = refine(Location(display_path(file), line), name_hint)
    return definition, anchor or definition


@functools.lru_cache(maxsize=64)
def _calls_by_line(path: str, mtime: float) -> dict[int, list[tuple[str, CodeRange]]]:
    """Every call expression in a file, by start line, with its callee's last name."""
    try:
        module = cst.parse_module(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
        return {}
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    found: dict[int, list[tuple[str, CodeRange]]] = {}

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            name = func.attr.value if isinstance(func, cst.Attribute) else (
                func.value if isinstance(func, cst.Name) else "")
            rng = positions[node]
            found.setdefault(rng.start.line, []).append((name, rng))

    wrapper.module.visit(_Calls())
    return found


def refine(loc: Location, name_hint: str | None = None) -> Location:
    """Widen a line-only location to the span of the call on that line that best matches."""
    try:
        calls = _calls_by_line(os.path.abspath(loc.file), os.path.getmtime(loc.file))
    except OSError:
        return loc
    cands = calls.get(loc.line, [])
    if not cands:
        return loc
    pick = cands[0]
    if name_hint:
        hint = name_hint.lower().lstrip("_")
        for name, rng in cands:
            if name.lower().lstrip("_") == hint:
                pick = (name, rng)
                break
    rng = pick[1]
    return Location(loc.file, rng.start.line, rng.start.column + 1, rng.end.line,
                    rng.end.column + 1)


def exception_site(exc: BaseException, prefer: str | None = None) -> Location | None:
    """Where user code raised: the innermost frame in ``prefer`` (the checked file) if any,
    else the innermost frame outside torch, gradlint and the stdlib."""
    frames = traceback.extract_tb(exc.__traceback__)
    if prefer is not None:
        target = os.path.abspath(prefer)
        for fr in reversed(frames):
            if os.path.abspath(fr.filename) == target:
                return Location(display_path(fr.filename), fr.lineno or 1)
    for fr in reversed(frames):
        if not is_library_file(fr.filename):
            return Location(display_path(fr.filename), fr.lineno or 1)
    return None
