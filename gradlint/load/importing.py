"""Importing one user file and running user code: stdout kept off the report, exceptions
turned into a location in the user's code and one line of text for a diagnostic.

The file is imported under a unique module name with its folder on ``sys.path`` (as pytest
does); the package-aware import of issue 17 belongs here.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator

import torch

from gradlint.core.values import Location
from gradlint.load.construction_sites import SiteRecorder
from gradlint.load.meta_probe import OutsideEffect
from gradlint.load.sources import display_path, exception_site


def user_location(exc: BaseException, path: str) -> Location:
    """Where in the user's code an exception came from: their file first, else any user frame."""
    site = exception_site(exc, prefer=path)
    if site is not None:
        return site
    if isinstance(exc, SyntaxError) and exc.lineno:
        return Location(display_path(exc.filename or path), exc.lineno, exc.offset or 1)
    return Location(path, 1)


def describe_exception(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r})"
    if isinstance(exc, OutsideEffect):
        return f"OutsideEffect: {exc}"
    if isinstance(exc, MemoryError):
        return "MemoryError (out of memory: --max-memory sets the limit; --meta builds models " \
            "without memory)"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


@contextlib.contextmanager
def user_code() -> Iterator[None]:
    """Run user code with its stdout on our stderr (reports own stdout)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def import_file(path: str, recorder: SiteRecorder, meta: bool = False) -> types.ModuleType:
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    digest = hashlib.sha1(os.fsencode(os.path.abspath(path))).hexdigest()[:10]
    stem = os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    name = f"gradlint_target_{digest}_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with recorder, user_code(), (torch.device("meta") if meta else contextlib.nullcontext()):
        spec.loader.exec_module(module)
    return module
