"""Importing one user file and running user code: stdout kept off the report, exceptions
turned into a location in the user's code and one line of text for a diagnostic.

Files are imported as pytest imports test files (gradlint/load/import_resolver.py says which
folders go first on ``sys.path``, the pre-filter resolves local imports from the same list): a
file inside a package (folders with ``__init__.py``, ``src/`` layouts too) is imported by its
dotted name (``pkg.model``) with the folder above its top package on ``sys.path``, so
``from .parts import Block`` and ``from pkg.parts import Block`` both work; a file outside
packages is imported under a unique name, so two ``model.py`` files in different folders never
collide (each file is imported in a fresh worker process anyway).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import keyword
import os
import re
import sys
import types
from collections.abc import Iterator

import torch

from gradlint.core.values import Location
from gradlint.load.construction_sites import SiteRecorder
from gradlint.load.import_resolver import import_roots, package_root
from gradlint.load.meta_probe import OutsideEffect
from gradlint.load.sources import display_path, exception_line, exception_site


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
    return exception_line(exc)


@contextlib.contextmanager
def user_code() -> Iterator[None]:
    """Run user code with its stdout on our stderr (reports own stdout)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def import_file(path: str, recorder: SiteRecorder, meta: bool = False) -> types.ModuleType:
    """Import the user's file ``path`` (running it) while ``recorder`` notes where each module
    is built; on the meta device with ``meta``."""
    roots = import_roots(path)
    sys.path[:] = [*roots, *(p for p in sys.path if p not in roots)]
    with recorder, user_code(), (torch.device("meta") if meta else contextlib.nullcontext()):
        dotted = package_name(path)
        if dotted is not None and _importable_as(dotted, path):
            _claim_namespace(dotted, path)
            return _import_dotted(dotted, path)
        return _import_unique(path)


def package_name(path: str) -> str | None:
    """``pkg.sub.model`` for ``<root>/pkg/sub/model.py`` when ``pkg`` and ``sub`` are packages
    (``pkg.sub`` for their ``__init__.py``); None for a file outside packages, or in a folder
    whose name no import can spell."""
    top = package_root(path)
    if top is None:
        return None
    rel = os.path.relpath(os.path.abspath(path), os.path.dirname(top))
    parts = os.path.splitext(rel)[0].split(os.sep)
    if parts[-1] == "__init__":
        parts.pop()
    if not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts[:-1]):
        return None
    return ".".join(parts)


def _importable_as(dotted: str, path: str) -> bool:
    """The top package is not already loaded from elsewhere (a package named like one torch
    imported): importing by name would then find that one, not the user's file."""
    loaded = sys.modules.get(dotted.partition(".")[0])
    if loaded is None:
        return True
    top = os.path.dirname(package_root(path) or path)
    where = [*getattr(loaded, "__path__", ()), getattr(loaded, "__file__", None) or ""]
    return any(os.path.abspath(w).startswith(top + os.sep) for w in where if w)


def _claim_namespace(dotted: str, path: str) -> None:
    """Load the folders of a namespace package (``models/`` without ``__init__.py``, imported
    relatively) as packages of exactly those folders: Python's finder would let a regular
    package of the same name anywhere on ``sys.path`` (an installed ``models``) take them."""
    top = package_root(path)
    if top is None or os.path.isfile(os.path.join(top, "__init__.py")):
        return
    folder, name = os.path.dirname(top), ""
    for part in dotted.split(".")[:-1]:
        folder, name = os.path.join(folder, part), f"{name}.{part}" if name else part
        if name not in sys.modules:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [folder]
            sys.modules[name] = importlib.util.module_from_spec(spec)


def _import_dotted(dotted: str, path: str) -> types.ModuleType:
    """Import ``path`` as the module ``dotted`` of its package (its parents' ``__init__.py``
    run first, as in any import). A file whose name is not an identifier (``my-model.py``) is
    run under an identifier in its package, so its relative imports still work."""
    package, _, stem = dotted.rpartition(".")
    if stem.isidentifier() and not keyword.iskeyword(stem):
        module = importlib.import_module(dotted)
        found = getattr(module, "__file__", None)
        if found is None or os.path.realpath(found) != os.path.realpath(path):
            raise ImportError(f"`import {dotted}` finds {found or 'a namespace package'}, not "
                              f"{path}; rename one of them")
        return module
    if package:
        importlib.import_module(package)
    name = f"{package}.{_identifier(stem)}" if package else _unique_name(path)
    return _exec_as(name, path)


def _import_unique(path: str) -> types.ModuleType:
    return _exec_as(_unique_name(path), path)


def _identifier(stem: str) -> str:
    return re.sub(r"\W", "_", stem if stem[:1].isalpha() else f"_{stem}")


def _unique_name(path: str) -> str:
    digest = hashlib.sha1(os.fsencode(os.path.abspath(path))).hexdigest()[:10]
    stem = os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    return f"gradlint_target_{digest}_{stem}"


def _exec_as(name: str, path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
