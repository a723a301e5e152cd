"""Which classes of a file other local files build inside their own model classes (UNet's
``Down`` and ``Up``, defined in ``unet_parts.py`` and built by ``UNet`` in ``unet_model.py``).

Such a class is a part: its own GL902 would be noise, since it is analysed inside the model that
builds it. Static only (the files are parsed, never imported), and only the files next to it:
its folder and, inside a package, the top package's tree.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator

from gradlint.load.import_resolver import package_root, parse, python_files, resolve_import

MAX_FILES = 200  # a larger tree is not scanned: the GL902s stay, nothing is hidden by guessing


def part_users(path: str, names: set[str]) -> dict[str, tuple[str, str]]:
    """``{name: (user class, user file)}`` for the classes ``names`` of ``path`` that a class of
    a neighbouring file builds (calls, after importing it from ``path``)."""
    here = os.path.abspath(path)
    found: dict[str, tuple[str, str]] = {}
    for other in _neighbours(here):
        tree = parse(other)
        if tree is None:
            continue
        aliases = _imported_from(other, tree, here, names)
        if not aliases:
            continue
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for call in (n for n in ast.walk(cls) if isinstance(n, ast.Call)):
                name = aliases.get(getattr(call.func, "id", ""))
                if name is not None and name not in found:
                    found[name] = (cls.name, other)
    return found


def _neighbours(here: str) -> Iterator[str]:
    """The files of the top package's tree, or of the file's own folder only."""
    top = package_root(here)
    if top is None:
        return python_files(os.path.dirname(here), here, MAX_FILES, lambda d: False)
    return python_files(top, here, MAX_FILES, lambda d: not d.startswith((".", "__")))


def _imported_from(importer: str, tree: ast.Module, here: str, names: set[str]
                   ) -> dict[str, str]:
    """Local name -> class name, for the module-level ``from ... import`` statements of
    ``importer`` that import ``here`` (a star import brings every name)."""
    aliases: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        modules = resolve_import(importer, node)
        if not any(os.path.abspath(m.path) == here for m in modules if m.path):
            continue
        for alias in node.names:
            if alias.name == "*":
                aliases.update({n: n for n in names})
            elif alias.name in names:
                aliases[alias.asname or alias.name] = alias.name
    return aliases
