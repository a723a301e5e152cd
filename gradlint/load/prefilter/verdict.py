"""The pre-filter's verdict on one file: its entry points."""

from __future__ import annotations

import ast
import io
import os
import tokenize
from dataclasses import dataclass
from typing import Literal

from gradlint.load import import_resolver
from gradlint.load.prefilter.judge import Judge
from gradlint.load.prefilter.limits import MAX_DEPTH, TooDeep, TooMuch
from gradlint.load.prefilter.models import ModelFinder, imports_torch, top_imports
from gradlint.load.prefilter.module_verdicts import being_judged
from gradlint.load.prefilter.scopes import Lib, ModuleScope
from gradlint.load.prefilter.sys_path import SYS_PATH_CALLS
from gradlint.load.prefilter.work import Link, Where, Work, render


@dataclass(frozen=True)
class Prefilter:
    """The static verdict on one file, and where the problem is when there is one.

    For ``does-work``, ``line``/``col`` are in the checked file (the statement, or the import or
    call that leads to the work) and ``work_file``/``work_line`` say where the work itself is:
    another line of the file, or a local module it imports."""

    verdict: Literal["model", "no-model", "does-work", "syntax-error"]
    line: int = 1
    col: int = 1
    reason: str = ""
    work_file: str = ""
    work_line: int = 0


def _located_error(source: str, err: SyntaxError | ValueError) -> Prefilter:
    line = getattr(err, "lineno", None)
    col = getattr(err, "offset", None)
    if line is None and "\0" in source:  # null bytes: point at the first one
        index = source.index("\0")
        line = source.count("\n", 0, index) + 1
        col = index - source.rfind("\n", 0, index)
    reason = getattr(err, "msg", None) or str(err)
    return Prefilter("syntax-error", line or 1, max(col or 1, 1), reason)


def _has_local_imports(judge: Judge, tree: ast.Module, path: str) -> bool:
    return judge.resolving and any(
        import_resolver.resolve_import(path, stmt, judge.roots) for stmt in top_imports(tree))


def _extend_roots(judge: Judge, scope: ModuleScope) -> None:
    """Apply the file's top-level ``sys.path.insert(...)`` calls before anything is resolved,
    so the modules they make importable count as local from the start (the judgement of the
    statements themselves comes later, in order)."""
    where = Where(scope.path, None, "")
    for stmt in import_resolver.module_statements(scope.tree.body):
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            for v in judge.value(stmt.value.func, scope):
                if isinstance(v, Lib) and v.name in SYS_PATH_CALLS:
                    judge.sys_path(v.name, stmt.value, scope, where)


def _package_work(judge: Judge, path: str) -> Work | None:
    """A file inside packages is imported by its dotted name (gradlint/load/importing.py), so
    its packages' ``__init__.py`` run first, top package first: their import-time code is
    judged as if the file's first line imported them."""
    if not judge.resolving:
        return None
    here = os.path.abspath(path)
    for mod in import_resolver.package_chain(os.path.dirname(here)):
        if not mod.path or os.path.abspath(mod.path) == here:
            continue
        target = judge.module_scope(mod.path)
        if target is None:
            continue
        judge.note_import(target.path)
        found = judge.module(target)
        if found:
            init = os.path.abspath(mod.path)
            return (Link("import", init, judge.path, 1, 1, target=init),) + found
    return None


def prefilter_source(source: str, filename: str = "<string>", display: str | None = None
                     ) -> Prefilter:
    """Decide statically whether importing this source is worth it and safe. ``filename`` is
    where it lives (its local imports are found from there); ``display`` is that path as the
    report shows it (local modules are named beside it)."""
    try:
        tree = import_resolver.parse_source(source, filename)
    except (SyntaxError, ValueError) as err:
        return _located_error(source, err)
    except (RecursionError, MemoryError):
        return Prefilter("syntax-error", 1, 1, "source is too deeply nested to parse")
    judge = Judge(filename, display if display is not None else filename)
    try:
        return _verdict(judge, tree, filename)
    except TooDeep:
        reason = f"calls nest more than {MAX_DEPTH} deep, too deep to follow statically"
    except (TooMuch, RecursionError):
        reason = "too much code runs at import to follow statically"
    return Prefilter("does-work", 1, 1, reason, judge.path, 1)


def _verdict(judge: Judge, tree: ast.Module, filename: str) -> Prefilter:
    if judge.resolving:
        import_resolver.remember(filename, tree)
    scope = judge.module_scope(filename, tree)
    assert scope is not None
    if judge.resolving:
        _extend_roots(judge, scope)
    if not imports_torch(tree) and not _has_local_imports(judge, tree, filename):
        return Prefilter("no-model", reason="does not import torch")
    if not ModelFinder(judge, scope).found():
        return Prefilter("no-model", reason="defines or builds no nn.Module")
    being_judged.add(scope.path)
    try:
        work = _package_work(judge, filename) or judge.module(scope)
    finally:
        being_judged.discard(scope.path)
    if not work:
        return Prefilter("model")
    first, last = work[0], work[-1]
    return Prefilter("does-work", first.line, first.col, render(work, judge),
                     last.path, last.line)


def prefilter_file(path: str) -> Prefilter:
    """``prefilter_source`` on a file; unreadable or undecodable files are syntax errors."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        return Prefilter("syntax-error", reason=f"cannot read file: {err.strerror or err}")
    encoding = "utf-8"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        source = data.decode(encoding)
    except SyntaxError as err:  # unknown coding cookie
        return _located_error("", err)
    except (UnicodeDecodeError, LookupError) as err:
        start = getattr(err, "start", 0)
        line = data.count(b"\n", 0, start) + 1
        col = start - data.rfind(b"\n", 0, start)
        return Prefilter("syntax-error", line, col,
                         f"file is not valid {encoding} text (byte offset {start})")
    if source.startswith("\ufeff"):
        source = source[1:]
    return prefilter_source(source, os.path.abspath(path), display=path)
