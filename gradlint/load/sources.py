"""Source locations: where the user's code built a layer or called an op.

Construction sites come from the frames on the stack while the model is built (exact spans from
the code object's positions); functional ops come from the fx stack trace (line only), and the
file's syntax tree (stdlib ``ast``: libcst costs ~0.35 s to import and ~20x longer to parse)
refines those to the span of the call on that line.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import traceback
import types
from pathlib import Path

import torch

from gradlint.core.values import Location, Target

_TORCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(str(torch.__file__))))
_GRADLINT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the package
_FRAME_RE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')


_LIBRARY_DIRS = (os.path.join(_TORCH_DIR, "torch") + os.sep, _GRADLINT_DIR + os.sep)
_STDLIB_DIR = os.path.dirname(os.__file__) + os.sep
# The construction recorder asks about every frame of every module built: these caches keep it
# linear in the model's size at a few microseconds per module (abspath/relpath cost ~10 µs).
_ABSPATH: dict[str, str] = {}
_DISPLAY: dict[str, str] = {}
_DISPLAY_CWD = [""]


def _abspath(filename: str) -> str:
    """``os.path.abspath``, cached for absolute names (code objects' are; others depend on the
    working directory)."""
    path = _ABSPATH.get(filename)
    if path is None:
        path = os.path.abspath(filename)
        if os.path.isabs(filename):
            _ABSPATH[filename] = path
    return path


def is_library_file(filename: str) -> bool:
    """torch's own files, gradlint's, and the stdlib never define a user's layer."""
    path = _abspath(filename)
    if path.startswith(_LIBRARY_DIRS):
        return True
    return filename.startswith("<") or path.startswith(_STDLIB_DIR) \
        and "site-packages" not in path


_GIVEN: dict[str, str] = {}


def remember_given_path(given: str) -> None:
    """Report a checked file under the path the user typed, whatever frames call it."""
    _GIVEN[os.path.abspath(given)] = given
    _DISPLAY.clear()


def display_path(filename: str) -> str:
    """The path as given on the command line, else relative to the working directory."""
    cwd = os.getcwd()
    if cwd != _DISPLAY_CWD[0]:
        _DISPLAY.clear()
        _DISPLAY_CWD[0] = cwd
    shown = _DISPLAY.get(filename)
    if shown is None:
        path = os.path.abspath(filename)
        if path in _GIVEN:
            shown = _GIVEN[path]
        elif path.startswith(cwd + os.sep):
            shown = os.path.relpath(path, cwd)
        else:
            shown = path
        _DISPLAY[filename] = shown
    return shown


@functools.lru_cache(maxsize=512)
def _positions(code: types.CodeType) -> tuple[tuple[int | None, ...], ...]:
    positions = getattr(code, "co_positions", None)  # Python >= 3.11
    return tuple(positions()) if positions is not None else ()


def frame_location(frame: types.FrameType) -> Location:
    """The exact span of the instruction a frame is executing (Python >= 3.11 positions)."""
    code = frame.f_code
    line = frame.f_lineno
    file = display_path(code.co_filename)
    if frame.f_lasti >= 0:
        try:
            start, end, col, end_col = _positions(code)[frame.f_lasti // 2]
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
        if anchor is None and anchor_abs is not None and _abspath(filename) == anchor_abs:
            anchor = frame_location(frame)
        frame = frame.f_back
    return definition, anchor or definition


def is_installed_file(filename: str) -> bool:
    """A file of an installed package (Hugging Face and the like), not of the user's code."""
    parts = _abspath(filename).split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def model_site(target: Target) -> Location:
    """The user's line that built the target (its instantiation, else its class)."""
    site = target.sites.get("", (None, None))
    return site[1] or Location(target.file, target.line)


def trace_site(stack_trace: str | None, anchor_file: str | None = None,
               name_hint: str | None = None, model: Location | None = None
               ) -> tuple[Location | None, Location | None]:
    """(definition, anchor) from an fx ``stack_trace`` (innermost frame last). An op defined in
    an installed library with no frame in ``anchor_file`` is anchored at ``model``, the user's
    line that built the library model (docs/output.md)."""
    if not stack_trace:
        return None, None
    frames = [(m["file"], int(m["line"])) for m in _FRAME_RE.finditer(stack_trace)]
    definition = anchor = None
    anchor_abs = os.path.abspath(anchor_file) if anchor_file else None
    for file, line in reversed(frames):
        if definition is None and not is_library_file(file):
            definition = refine(Location(display_path(file), line), name_hint)
        if anchor is None and anchor_abs and _abspath(file) == anchor_abs:
            anchor = refine(Location(display_path(file), line), name_hint)
        if definition is not None and anchor is not None:
            break
    if anchor is None and model is not None and definition is not None \
            and is_installed_file(definition.file):
        anchor = model
    return definition, anchor or definition


Span = tuple[int, int, int, int]  # start line, start column, end line, end column (0-based)


@functools.lru_cache(maxsize=64)
def _calls_by_line(path: str, mtime: float) -> dict[int, list[tuple[str, Span]]]:
    """Every call expression in a file, by start line, with its callee's last name, outermost
    first; columns count characters (``ast`` counts UTF-8 bytes)."""
    try:
        source = Path(path).read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return {}
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    def column(line: int, offset: int) -> int:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return offset if text.isascii() else len(text.encode()[:offset].decode(errors="replace"))

    found: dict[int, list[tuple[str, Span]]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else (
            func.id if isinstance(func, ast.Name) else "")
        end_line = node.end_lineno or node.lineno
        span = (node.lineno, column(node.lineno, node.col_offset), end_line,
                column(end_line, node.end_col_offset or 0))
        found.setdefault(node.lineno, []).append((name, span))
    for calls in found.values():  # source order, an enclosing call before the calls inside it
        calls.sort(key=lambda c: (c[1][1], -c[1][2], -c[1][3]))
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
    line, col, end_line, end_col = pick[1]
    return Location(loc.file, line, col + 1, end_line, end_col + 1)


def exception_site(exc: BaseException, prefer: str | None = None) -> Location | None:
    """Where user code raised (``exception_sites``' first half)."""
    return exception_sites(exc, prefer)[0]


def exception_sites(exc: BaseException, prefer: str | None = None
                    ) -> tuple[Location | None, tuple[Location, ...]]:
    """(where, related) for an exception raised in or under user code. ``where``: the
    innermost frame in ``prefer`` (the checked file) if any, else in the user's files (outside
    torch, gradlint, the stdlib and installed packages), else in an installed package; a
    user's line is what they can change. ``related``: the innermost installed-package frame
    below ``where`` (``timm/layers/patch_embed.py``), where the library itself raised."""
    frames = [(fr.filename, fr.lineno or 1) for fr in traceback.extract_tb(exc.__traceback__)]
    return _user_and_library(frames, prefer)


def failure_sites(stack_trace: str | None, exc: BaseException
                  ) -> tuple[Location | None, tuple[Location, ...]]:
    """``exception_sites`` for a failure while running a traced graph: the fx node's
    ``stack_trace`` (the forwards down to its call) continued by the traceback of ``exc``
    (what the call ran)."""
    frames = [(m["file"], int(m["line"])) for m in _FRAME_RE.finditer(stack_trace or "")]
    frames += [(fr.filename, fr.lineno or 1) for fr in traceback.extract_tb(exc.__traceback__)]
    return _user_and_library(frames)


def _user_and_library(frames: list[tuple[str, int]], prefer: str | None = None
                      ) -> tuple[Location | None, tuple[Location, ...]]:
    """The innermost user frame of ``frames`` (outermost first) and the innermost
    installed-package frame below it (see ``exception_sites``)."""
    frames = [fr for fr in frames if not is_library_file(fr[0])]
    target = os.path.abspath(prefer) if prefer is not None else None
    mine = [i for i, fr in enumerate(frames) if os.path.abspath(fr[0]) == target] or [
        i for i, fr in enumerate(frames) if not is_installed_file(fr[0])]
    at = mine[-1] if mine else len(frames) - 1
    if at < 0:
        return None, ()
    below = [fr for fr in frames[at + 1:] if is_installed_file(fr[0])]
    return _site(*frames[at]), tuple(_site(*fr) for fr in below[-1:])


def in_user_code(where: Location | None, related: tuple[Location, ...], fallback: Location
                 ) -> tuple[Location, tuple[Location, ...]]:
    """(where, related) with ``where`` in the user's code: a failure no user frame saw (a
    library's forward calling the user's override with arguments it does not take) is
    reported at ``fallback`` (the model's class), the library's line as related."""
    if where is None:
        return fallback, related
    if is_installed_file(where.file):
        return fallback, (where, *related)
    return where, related


def _site(filename: str, line: int) -> Location:
    return Location(display_path(filename), line)


def user_traceback(exc: BaseException) -> str:
    """The user's exception with its traceback and causes, as Python prints it (``--debug``
    shows it behind a GL903)."""
    return "".join(traceback.format_exception(exc))


def exception_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message`` (cut at ``limit``): what a one-line diagnostic says
    about an exception whose full text may be a page of compiler output."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:limit]}" if text else type(exc).__name__
