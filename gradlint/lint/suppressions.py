"""Suppression comments (README, "Suppressing a diagnostic") and GL100 unused-suppression.

``# gradlint: ignore[GL101,GL102]`` or a bare ``# gradlint: ignore`` silences the diagnostics
reported on the comment's line, or on any line of the statement whose last line carries the
comment (a multi-line ``nn.Sequential(...)`` is suppressed from its closing line).
``# gradlint: ignore-file`` (optionally ``ignore-file[GL102]``) anywhere in a file silences it
all. Comments are read with ``tokenize`` (a ``#`` inside a string is not a comment) and statement
ends come from the stdlib ``ast``; both are computed once per file.
"""

from __future__ import annotations

import ast
import bisect
import io
import os
import re
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice

from gradlint.core.values import Diagnostic, Location, ModelReport, Report
from gradlint.lint.per_file_ignores import PerFileIgnores
from gradlint.lint.registry import diagnostic, discover_rules, is_selected

UNUSED_CODE = "GL100"  # its name and severity: rules/GL100-unused-suppression/check.py

_DIRECTIVE = re.compile(
    r"#\s*gradlint\s*:\s*(?P<kind>ignore-file|ignore)(?![\w-])(?:\s*\[(?P<codes>[^\]]*)\])?",
    re.IGNORECASE)
_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith,
             ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Try)
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class Suppression:
    """One suppression comment: ``codes`` is empty for a bare ``ignore`` / ``ignore-file``."""

    line: int
    col: int  # 1-based column of the comment
    end_col: int  # exclusive
    codes: tuple[str, ...]
    whole_file: bool
    text: str

    def covers(self, code: str) -> bool:
        return not self.codes or any(code.startswith(c) for c in self.codes)


@dataclass
class FileSuppressions:
    """The suppression comments of one file and, per line, the last line of its statement."""

    comments: tuple[Suppression, ...] = ()
    statement_end: dict[int, int] = field(default_factory=dict)

    def end_of_statement(self, line: int) -> int:
        return self.statement_end.get(line, line)

    def matching(self, d: Diagnostic) -> list[Suppression]:
        """The comments that suppress ``d`` (empty: it is reported)."""
        line = d.location.line
        lines = {line, self.end_of_statement(line)}
        return [s for s in self.comments
                if (s.whole_file or s.line in lines) and s.covers(d.code)]


def parse_codes(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(c.strip().upper() for c in re.split(r"[,\s]+", text) if c.strip())


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    """Every token up to the first tokenize error (a file with a syntax error keeps its
    comments before the error)."""
    out: list[tokenize.TokenInfo] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            out.append(tok)
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def comments_in(tokens: Iterable[tokenize.TokenInfo]) -> tuple[Suppression, ...]:
    found: list[Suppression] = []
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        m = _DIRECTIVE.search(tok.string)
        if m is None:
            continue
        found.append(Suppression(
            line=tok.start[0], col=tok.start[1] + m.start() + 1,
            end_col=tok.start[1] + m.end() + 1, codes=parse_codes(m.group("codes")),
            whole_file=m.group("kind").lower() == "ignore-file", text=m.group(0)))
    return tuple(found)


def _header_end(node: ast.stmt, tokens: Sequence[tokenize.TokenInfo],
                starts: Sequence[tuple[int, int]]) -> int:
    """The line of the ``:`` that ends a compound statement's header (``def f(\\n x):``)."""
    depth = 0
    for tok in islice(tokens, bisect.bisect_left(starts, (node.lineno, 0)), None):
        if tok.type != tokenize.OP:
            continue
        if tok.string in _OPEN:
            depth += 1
        elif tok.string in _CLOSE:
            depth = max(0, depth - 1)
        elif tok.string == ":" and depth == 0:
            return tok.start[0]
    return node.lineno


def statement_ends(tree: ast.AST, tokens: Sequence[tokenize.TokenInfo]) -> dict[int, int]:
    """line -> last line of the innermost statement containing it.

    Simple statements span ``lineno..end_lineno``; a compound statement (``def``, ``class``,
    ``if``, ``with``, ...) contributes only its header, since its body lines belong to the
    statements inside it. Those regions do not overlap, so every line has at most one.
    """
    ends: dict[int, int] = {}
    starts = [tok.start for tok in tokens]
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or node.end_lineno is None:
            continue
        if isinstance(node, _COMPOUND) or type(node).__name__ in ("TryStar", "Match"):
            first, last = node.lineno, _header_end(node, tokens, starts)
        else:
            first, last = node.lineno, node.end_lineno
        for line in range(first, last + 1):
            ends[line] = max(ends.get(line, last), last)  # `a = 1; b = (...)` share a line
    return ends


def analyse_source(source: str) -> FileSuppressions:
    tokens = _tokens(source)
    comments = comments_in(tokens)
    if not comments:
        return FileSuppressions()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return FileSuppressions(comments)
    return FileSuppressions(comments, statement_ends(tree, tokens))


@lru_cache(maxsize=1024)
def _for_file(path: str, mtime: float) -> FileSuppressions:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return FileSuppressions()
    try:
        source = raw.decode(tokenize.detect_encoding(io.BytesIO(raw).readline)[0])
    except (SyntaxError, LookupError, UnicodeDecodeError):
        source = raw.decode("utf-8", errors="replace")
    return analyse_source(source)


def for_file(path: str) -> FileSuppressions:
    """The (cached) suppressions of ``path``; empty for a file that cannot be read."""
    try:
        mtime = os.path.getmtime(path)
    except OSError:
        return FileSuppressions()
    return _for_file(os.path.abspath(path), mtime)


def apply(diagnostics: Iterable[Diagnostic]) -> tuple[list[Diagnostic],
                                                     dict[tuple[str, Suppression], set[str]]]:
    """Drop suppressed diagnostics. Returns the kept ones and, per (file, comment), the codes it
    suppressed (every comment that suppressed something appears)."""
    kept: list[Diagnostic] = []
    used: dict[tuple[str, Suppression], set[str]] = {}
    for d in diagnostics:
        if d.code == UNUSED_CODE:
            kept.append(d)
            continue
        hits = for_file(d.location.file).matching(d)
        if not hits:
            kept.append(d)
            continue
        key_file = os.path.abspath(d.location.file)
        for s in hits:
            used.setdefault((key_file, s), set()).add(d.code)
    return kept, used


def unused(files: Iterable[str], used: dict[tuple[str, Suppression], set[str]],
           judged: Sequence[str], known: Sequence[str]) -> list[Diagnostic]:
    """GL100 diagnostics for the suppression comments in ``files`` that suppressed nothing.

    ``judged`` is the rule codes that ran in this run and ``known`` every rule code. A comment is
    judged only on codes that ran (``ignore[GL101]`` is not stale just because GL101 was not
    selected); a code that names no rule at all is always reported. A comment that names GL100
    itself is left alone, and ``ignore-file[GL100]`` silences GL100 in its file.
    """
    out: list[Diagnostic] = []
    ran = [c for c in judged if c != UNUSED_CODE]
    for path in files:
        key_file = os.path.abspath(path)
        comments = for_file(path).comments
        if any(s.whole_file and UNUSED_CODE in s.codes for s in comments):
            continue
        for s in comments:
            if UNUSED_CODE in s.codes:
                continue
            hit = used.get((key_file, s), set())
            where = "in this file" if s.whole_file else "here"
            if not s.codes:
                if hit or not ran:
                    continue
                message = f"unused suppression: `{s.text}` suppressed nothing {where}"
            else:
                unknown = [c for c in s.codes if not any(k.startswith(c) for k in known)]
                stale = [c for c in s.codes if c not in unknown
                         and not any(h.startswith(c) for h in hit)
                         and any(j.startswith(c) for j in ran)]
                if not stale and not unknown:
                    continue
                if hit or len(stale) + len(unknown) < len(s.codes):
                    message = (f"unused suppression: {', '.join(stale + unknown)} in `{s.text}` "
                               f"suppressed nothing {where}")
                else:
                    message = f"unused suppression: `{s.text}` suppressed nothing {where}"
                if unknown:
                    message += f" ({', '.join(unknown)}: no such rule; `gradlint rules` lists them)"
            loc = Location(path, s.line, s.col, s.line, s.end_col)
            out.append(diagnostic(UNUSED_CODE, message, loc))
    return out


def judged_files(models: Iterable[ModelReport], file_diagnostics: Iterable[Diagnostic]
                 ) -> list[str]:
    """The files whose every target was checked: the only ones where a comment that suppressed
    nothing is known to be stale (a failed or skipped file never ran the rules)."""
    seen: dict[str, str] = {}
    bad: set[str] = set()
    for m in models:
        key = os.path.abspath(m.file)
        seen.setdefault(key, m.file)
        if m.status != "ok":
            bad.add(key)
    for d in file_diagnostics:
        if d.code.startswith("GL9"):
            bad.add(os.path.abspath(d.location.file))
    return [path for key, path in seen.items() if key not in bad]


def suppress(report: Report, diagnostics: Iterable[Diagnostic], select: Sequence[str] = (),
             ignore: Sequence[str] = (), per_file: PerFileIgnores | None = None
             ) -> list[Diagnostic]:
    """The diagnostics no comment suppresses, plus GL100 for stale comments when it is selected
    (it is off by default: ``--select GL1,GL9,GL100``). A code that ``per-file-ignores`` turns
    off in a file did not run there: its comments in that file are not judged on it."""
    kept, used = apply(diagnostics)
    if not is_selected(UNUSED_CODE, select, ignore):
        return kept
    known = [info.rule.code for info in discover_rules()]
    ran = [code for code in known if is_selected(code, select, ignore)]
    stale: list[Diagnostic] = []
    for path in judged_files(report.models, report.diagnostics):
        off = per_file.codes_for(path) if per_file else ()
        if any(UNUSED_CODE.startswith(c) for c in off):
            continue
        stale += unused([path], used, [c for c in ran if not c.startswith(off)], known)
    return kept + stale
