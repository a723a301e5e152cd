"""``--baseline FILE``: adopt gradlint on an existing codebase by recording today's findings once
and reporting only new ones afterwards.

An entry is keyed by what survives edits elsewhere in the file, never by line number: the
repository-relative file, the rule code, the model (the target's name without its path), the
module and a fingerprint, the reported source line with its whitespace collapsed. Entries are a
multiset (two identical findings need two entries). The file is JSON with one sorted entry per
line, so a refresh shows up in a review as the lines added and removed.

A GL9xx error is never recorded or hidden: it means a target was not checked at all, so it still
shows and still exits 2. A baseline entry counts as fixed (stale) only when its file was checked
this run (every target built and traced) or no longer exists.
"""

from __future__ import annotations

import json
import linecache
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields

from gradlint.core.repo_paths import display_path, repo_root
from gradlint.core.surrogates import LONE_SURROGATE
from gradlint.core.values import Diagnostic, Report
from gradlint.lint.suppressions import judged_files

VERSION = 1


class BaselineError(Exception):
    """The baseline file cannot be read or written; the message names it."""


@dataclass(frozen=True, order=True)
class Entry:
    file: str
    code: str
    target: str
    module: str
    source: str


@dataclass(frozen=True)
class Outcome:
    """What the baseline did to one run's findings."""

    shown: list[Diagnostic]  # not in the baseline (and every GL9xx error)
    hidden: int  # findings the baseline matched
    stale: int  # entries of checked files that matched nothing: fixed since
    written: int | None = None  # entries written, when the file was created or updated
    created: bool = False

    def summary(self, path: str) -> str:
        """The one line for stderr."""
        if self.created:
            return (f"gradlint: wrote {_n(self.written or 0, 'finding')} to the baseline {path}; "
                    f"runs with --baseline {path} report only new findings")
        text = f"gradlint: baseline {path}: {_n(self.hidden, 'finding')} hidden, "
        if self.written is not None:
            return text + (f"{_n(self.stale, 'fixed entry', 'fixed entries')} dropped; updated "
                           f"it to {_n(self.written, 'entry', 'entries')}")
        text += f"{_n(self.stale, 'entry', 'entries')} fixed (stale)"
        return text + ("; refresh it with --update-baseline" if self.stale else "")


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def recorded(d: Diagnostic) -> bool:
    """Whether a baseline may hold ``d``: everything but a target that could not be checked."""
    return not (d.code.startswith("GL9") and d.severity == "error")


def fingerprint(path: str, line: int) -> str:
    """The reported source line, whitespace collapsed (survives re-indentation)."""
    return " ".join(linecache.getline(os.path.abspath(path), line).split()) if line > 0 else ""


def entry_of(d: Diagnostic, root: str) -> Entry:
    return Entry(display_path(d.location.file, root), d.code, d.target.rpartition("::")[2],
                 d.module or "", fingerprint(d.location.file, d.location.line))


def _entry_json(entry: dict[str, str]) -> str:
    """One entry's line, UTF-8 as it is; a file name that is not UTF-8 (a lone surrogate in
    Python, which UTF-8 cannot hold) as json's ``\\udce9`` escape, which reads back to the same
    name."""
    line = json.dumps(entry, ensure_ascii=False)
    return line if LONE_SURROGATE.search(line) is None else json.dumps(entry)


def to_json(entries: Iterable[Entry]) -> str:
    """Stable, one entry per line, keys in a fixed order."""
    names = [f.name for f in fields(Entry)]
    lines = [_entry_json(dict(zip(names, astuple(e), strict=True))) for e in sorted(entries)]
    body = ",\n".join("    " + line for line in lines)
    findings = f"[\n{body}\n  ]" if lines else "[]"
    return f'{{\n  "gradlint_baseline": {VERSION},\n  "findings": {findings}\n}}\n'


def read_baseline(path: str) -> list[Entry]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"cannot read --baseline {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BaselineError(f"--baseline {path} is not JSON ({exc}); delete it to record a "
                            "new baseline") from None
    names = {f.name for f in fields(Entry)}
    if (not isinstance(data, dict) or data.get("gradlint_baseline") != VERSION
            or not isinstance(data.get("findings"), list)
            or not all(isinstance(e, dict) and set(e) == names
                       and all(isinstance(v, str) for v in e.values())
                       for e in data["findings"])):
        raise BaselineError(f"--baseline {path} is not a gradlint baseline (version {VERSION}); "
                            "delete it to record a new one")
    return [Entry(**e) for e in data["findings"]]


def write_baseline(path: str, entries: Iterable[Entry]) -> None:
    """Atomically: a reader never sees half a baseline."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".gradlint-baseline-", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(to_json(entries))
        os.replace(tmp, path)
    except OSError as exc:
        raise BaselineError(f"cannot write --baseline {path}: {exc.strerror or exc}") from None


def apply_baseline(path: str, report: Report, diagnostics: Sequence[Diagnostic],
                   update: bool = False) -> Outcome:
    """Create the baseline when ``path`` does not exist (or ``update``), then hide what it
    holds. An update keeps the entries of files this run could not judge."""
    linecache.checkcache()  # --fix may have rewritten the files
    root = repo_root()
    entries = {id(d): entry_of(d, root) for d in diagnostics if recorded(d)}
    failed = [d for d in diagnostics if id(d) not in entries]
    if os.path.isdir(path):
        raise BaselineError(f"--baseline {path} is a folder")
    if not os.path.exists(path):
        write_baseline(path, entries.values())
        return Outcome(failed, len(entries), 0, len(entries), created=True)
    left = Counter(read_baseline(path))
    shown: list[Diagnostic] = []
    for d in diagnostics:
        entry = entries.get(id(d))
        if entry is not None and left[entry] > 0:
            left[entry] -= 1
        else:
            shown.append(d)
    hidden = len(diagnostics) - len(shown)
    judged = {display_path(f, root) for f in judged_files(report.models, report.diagnostics)}
    fixed = {e for e in left if e.file in judged or not os.path.exists(os.path.join(root, e.file))}
    stale = sum(left[e] for e in fixed)
    if not update:
        return Outcome(shown, hidden, stale)
    kept = [e for e, n in left.items() if e not in fixed for _ in range(n)]
    write_baseline(path, [*entries.values(), *kept])
    return Outcome(failed, len(entries), stale, len(entries) + len(kept))
