"""``per-file-ignores``: rule codes switched off for the files a glob matches, as in ruff.

A pattern is matched against the file's path relative to the folder of the pyproject.toml that
configures it (and against its absolute path); a pattern without ``/`` also matches the file's
name alone (``"conftest.py"``). ``*`` matches any characters including ``/`` (ruff and
``exclude`` behave so), ``**/`` any number of folders, ``?`` one character, ``[...]`` a class;
a leading ``!`` applies the codes to every file the rest does *not* match. The codes are prefixes:
``GL1`` switches off GL1xx in those files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

PerFileTable = tuple[tuple[str, tuple[str, ...]], ...]  # (pattern, codes), as configured


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regular expression over ``/``-separated paths (see the module docstring)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append(".*")
            i += 1
        elif c == "?":
            out.append(".")
            i += 1
        elif c == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class PerFileIgnores:
    """The configured table and the folder its patterns are relative to."""

    table: PerFileTable = ()
    base: str = "."

    def codes_for(self, path: str) -> tuple[str, ...]:
        """Every code prefix switched off in ``path`` (empty: none)."""
        if not self.table:
            return ()
        return _codes_for(self.table, os.path.abspath(self.base), os.path.abspath(path))

    def ignores(self, code: str, path: str) -> bool:
        return any(code.startswith(p) for p in self.codes_for(path))


@lru_cache(maxsize=4096)
def _codes_for(table: PerFileTable, base: str, full: str) -> tuple[str, ...]:
    rel = os.path.relpath(full, base).replace(os.sep, "/")
    absolute = full.replace(os.sep, "/")
    name = os.path.basename(full)
    codes: list[str] = []
    for raw, prefixes in table:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        pattern = pattern.removeprefix("./")
        regex = glob_regex(pattern)
        hit = bool(regex.match(rel) or regex.match(absolute)
                   or ("/" not in pattern and regex.match(name)))
        if hit != negated:
            codes.extend(prefixes)
    return tuple(dict.fromkeys(codes))
