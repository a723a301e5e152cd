"""Repository-relative paths for the CI formats (SARIF, GitHub annotations).

Code scanning and workflow annotations locate a file by its path from the repository root, not
from wherever gradlint ran: the root is the git top-level of the working directory when there is
one, else the working directory.
"""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote


@lru_cache(maxsize=4)
def _root_for(cwd: str) -> str:
    try:
        proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd,
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return cwd
    top = proc.stdout.strip()
    if proc.returncode != 0 or not top or not os.path.isdir(top):
        return cwd
    return os.path.realpath(top)


def repo_root() -> str:
    """The git top-level of the working directory, else the working directory itself."""
    return _root_for(os.path.realpath(os.getcwd()))


def repo_relative(path: str, root: str | None = None) -> str | None:
    """``path`` relative to the repository root with forward slashes, or None when it lies
    outside the root (a library file in site-packages)."""
    root = os.path.realpath(root) if root else repo_root()
    full = os.path.realpath(os.path.abspath(path))
    try:
        rel = os.path.relpath(full, root)
    except ValueError:  # another drive on Windows
        return None
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return Path(rel).as_posix()


def display_path(path: str, root: str | None = None) -> str:
    """Repository-relative where possible, else the absolute path (forward slashes)."""
    rel = repo_relative(path, root)
    return rel if rel is not None else Path(os.path.abspath(path)).as_posix()


def relative_uri(rel: str) -> str:
    """A relative URI reference for a repository-relative path (``%`` and spaces encoded),
    percent-encoding the name's bytes: a name that is not UTF-8 (``caf\\xe9.py``) keeps its
    bytes (``caf%E9.py``) instead of failing to encode."""
    return quote(os.fsencode(rel), safe="/")


def file_uri(path: str) -> str:
    """An absolute ``file://`` URI; a directory keeps its trailing slash."""
    uri = Path(os.path.abspath(path)).as_uri()
    return uri + "/" if os.path.isdir(path) and not uri.endswith("/") else uri
