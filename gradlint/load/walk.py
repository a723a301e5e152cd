"""Which files to look at: the ``.py`` files named or found under the folders named.

Whether a found file is safe and worth importing is the pre-filter's decision
(gradlint/load/prefilter/). Never import torch or user code here: this runs before anything is
loaded and must stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch

SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__", "build", "dist",
                       "node_modules"})
VENV_NAMES = frozenset({"venv", ".venv", "env"})


@dataclass(frozen=True)
class SourceFile:
    """A file to lint; ``explicit`` files were named by the user, not found by walking."""

    path: str
    explicit: bool


# ---------------------------------------------------------------------------- finding files


def _is_venv(path: str, name: str) -> bool:
    if os.path.isfile(os.path.join(path, "pyvenv.cfg")):
        return True
    return name in VENV_NAMES and (
        os.path.exists(os.path.join(path, "bin", "python"))
        or os.path.exists(os.path.join(path, "Scripts", "python.exe")))


def _excluded(rel: str, path: str, patterns: Sequence[str]) -> bool:
    """A pattern matches the path relative to the walked root, the joined path, or any part."""
    rel = rel.replace(os.sep, "/")
    parts = rel.split("/")
    joined = path.replace(os.sep, "/")
    return any(fnmatch(rel, p) or fnmatch(joined, p) or any(fnmatch(part, p) for part in parts)
               for p in patterns)


def _walk(root: str, patterns: Sequence[str]) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        keep = []
        for name in sorted(dirnames):
            full = os.path.join(dirpath, name)
            if (name.startswith(".") or name in SKIP_DIRS or _is_venv(full, name)
                    or _excluded(os.path.relpath(full, root), full, patterns)):
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if (name.endswith(".py") and os.path.isfile(full)  # not a dangling symlink
                    and not _excluded(os.path.relpath(full, root), full, patterns)):
                yield full


def find_source_files(paths: Sequence[str], exclude: Sequence[str] = ()
                      ) -> tuple[list[SourceFile], list[str]]:
    """Expand files and directories into .py files (sorted, deduplicated, deterministic order).

    Returns (files, missing) where missing lists paths that do not exist. ``exclude`` applies
    to walked files only: a file the user names is wanted. Named files that are not ``.py``
    (stubs, other languages passed by pre-commit) cannot be imported and are left out.
    """
    patterns = [p.rstrip("/").removeprefix("./") for p in exclude if p.strip("/")]
    found: dict[str, SourceFile] = {}
    missing: list[str] = []
    for given in paths:  # keyed by the real path: a symlinked file is checked once
        if os.path.isdir(given):  # symlinked folders are not followed (no cycles)
            for path in _walk(given, patterns):
                found.setdefault(os.path.normcase(os.path.realpath(path)),
                                 SourceFile(path, False))
        elif os.path.isfile(given):
            if given.endswith(".py"):  # explicit wins over the same file found by walking
                found[os.path.normcase(os.path.realpath(given))] = SourceFile(given, True)
        elif given not in missing:
            missing.append(given)
    files = sorted(found.values(), key=lambda f: path_order(f.path))
    return files, missing


def path_order(path: str) -> tuple[list[str], str]:
    """Folder by folder, so ``a/z.py`` comes before ``a/b/c.py``'s siblings deterministically."""
    return os.path.normpath(path).split(os.sep), path
