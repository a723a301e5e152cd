"""Opt-in fixes (``--fix``, ``--diff``): a hidden saturating activation becomes a ReLU-family one.

Two halves. The rules (GL101, GL102) call ``gradlint.lint.fix_targets.activation_edits`` on the
traced
graph, which decides which activations are *hidden* (never an output, a gate or softmax); an
edit names a source span symbolically (``sigmoid -> relu``) and travels in
``Diagnostic.fix.edits`` (frozen, picklable). This module is the other half: the CLI calls
``plan_fixes`` on the diagnostics it kept, and a libcst codemod finds the call at each span,
checks that it really is that activation (qualified names, so ``nn.Sigmoid`` may be
``torch.nn.Sigmoid``), and rewrites only that call, so formatting and comments elsewhere stay
byte-for-byte.

The replacement is ReLU (``nn.ReLU()``, ``torch.relu``, ``F.relu``, ``x.relu()``): derivative 1
where active and, with Kaiming init, a per-layer gain of exactly 1 (docs/design.md). In a model with
attention (transformer-like code, where normalization sets the scale) it is GELU, the
convention there. Every fix changes the model, so all are ``unsafe``: applied only with
``--unsafe-fixes``.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider, QualifiedNameProvider

from gradlint.core.values import Diagnostic, Edit
from gradlint.load.walk import SKIP_DIRS, VENV_NAMES

_MODULE_CLASSES = {"sigmoid": "Sigmoid", "tanh": "Tanh", "hardtanh": "Hardtanh",
                   "softsign": "Softsign", "hardsigmoid": "Hardsigmoid"}
_NEW_CLASSES = {"relu": "ReLU", "gelu": "GELU"}
_FUNCTIONS = {"sigmoid": ("torch.sigmoid", "torch.nn.functional.sigmoid",
                          "torch.special.expit"),
              "tanh": ("torch.tanh", "torch.nn.functional.tanh"),
              "hardtanh": ("torch.nn.functional.hardtanh",),
              "softsign": ("torch.nn.functional.softsign",),
              "hardsigmoid": ("torch.nn.functional.hardsigmoid",)}
_METHODS = {"sigmoid": ("sigmoid", "sigmoid_"), "tanh": ("tanh", "tanh_")}
_NAMESPACES = frozenset({"torch", "torch.nn", "torch.nn.functional", "torch.special"})
_DROPPABLE = frozenset({"min_val", "max_val"})  # hardtanh's bounds mean nothing to ReLU
_FUNCTIONAL = "torch.nn.functional"


def _module_names(old: str) -> set[str]:
    cls = _MODULE_CLASSES.get(old)
    if cls is None:
        return set()
    return {f"torch.nn.{cls}", f"torch.nn.modules.{cls}", f"torch.nn.modules.activation.{cls}"}


@dataclass(frozen=True)
class _Found:
    """A call in the source that is a saturating activation, and in which syntax."""

    node: cst.Call
    old: str
    form: str  # "module" | "function" | "method"
    qname: str  # the callee's qualified name (function/module forms)
    line: int
    cols: tuple[int, int]  # start column as characters and as UTF-8 bytes (0-based)


class _Finder(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider, QualifiedNameProvider)

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines
        self.found: list[_Found] = []
        self.torch: str | None = None  # how the file names torch, torch.nn.functional
        self.functional: str | None = None

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = get_full_name_for_node(alias.name)
            bound = alias.evaluated_alias
            if full == "torch" and self.torch is None:
                self.torch = bound or "torch"
            elif full == _FUNCTIONAL and bound and self.functional is None:
                self.functional = bound

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.module is None or get_full_name_for_node(node.module) != "torch.nn" \
                or isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            if alias.evaluated_name == "functional" and self.functional is None:
                self.functional = alias.evaluated_alias or "functional"

    def visit_Call(self, node: cst.Call) -> None:
        names = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        for old in _MODULE_CLASSES:
            form, qname = self._form(node, old, names)
            if form:
                pos = self.get_metadata(PositionProvider, node).start
                text = self.lines[pos.line - 1] if pos.line <= len(self.lines) else ""
                cols = (pos.column, len(text[:pos.column].encode("utf-8")))
                self.found.append(_Found(node, old, form, qname, pos.line, cols))
                return

    def _form(self, node: cst.Call, old: str, names: set[str]) -> tuple[str, str]:
        for q in names:
            if q in _module_names(old):
                return "module", q
            if q in _FUNCTIONS.get(old, ()):
                return "function", q
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _METHODS.get(old, ()):
            receiver = {q.name for q in self.get_metadata(QualifiedNameProvider, func.value,
                                                          set())}
            if not receiver & _NAMESPACES and not node.args:
                return "method", ""
        return "", ""


def _attr(base: cst.BaseExpression, *names: str) -> cst.BaseExpression:
    for name in names:
        base = cst.Attribute(value=base, attr=cst.Name(name))
    return base


def _dotted(text: str) -> cst.BaseExpression:
    first, *rest = text.split(".")
    return _attr(cst.Name(first), *rest)


class _Rewriter(cst.CSTTransformer):
    """Replaces exactly the chosen call nodes (by identity) and notes imports it needs."""

    def __init__(self, chosen: dict[int, tuple[_Found, str]], finder: _Finder,
                 context: CodemodContext) -> None:
        super().__init__()
        self.chosen = chosen
        self.finder = finder
        self.context = context
        self.done: set[int] = set()

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        pick = self.chosen.get(id(original))
        if pick is None:
            return updated
        found, new = pick
        out = self._rewrite(found, new, updated)
        if out is None:
            return updated
        self.done.add(id(original))
        return out

    def _rewrite(self, found: _Found, new: str, call: cst.Call) -> cst.BaseExpression | None:
        func = call.func
        if found.form == "module":
            args = _keep_args(call.args, found.old, False, new == "relu")
            if args is None:
                return None
            name = _NEW_CLASSES[new]
            if isinstance(func, cst.Attribute):
                return call.with_changes(func=func.with_changes(attr=cst.Name(name)), args=args)
            AddImportsVisitor.add_needed_import(self.context, "torch.nn", name)
            return call.with_changes(func=cst.Name(name), args=args)
        if found.form == "function":
            from_f = found.qname.startswith(_FUNCTIONAL + ".")
            args = _keep_args(call.args, found.old, True, from_f and new == "relu")
            if args is None:
                return None
            return call.with_changes(func=self._function(found, new, func), args=args)
        assert isinstance(func, cst.Attribute)
        in_place = func.attr.value.endswith("_")
        if new == "relu" or in_place:  # no Tensor.gelu_: in place stays ReLU
            return call.with_changes(func=func.with_changes(
                attr=cst.Name("relu_" if in_place else "relu")))
        functional = self._functional_expr()
        if functional is None:
            return call.with_changes(func=func.with_changes(attr=cst.Name("relu")))
        return cst.Call(func=_attr(functional, "gelu"), args=[cst.Arg(value=func.value)])

    def _function(self, found: _Found, new: str, func: cst.BaseExpression) -> cst.BaseExpression:
        if found.qname.startswith(_FUNCTIONAL + ".") or new == "gelu":
            if isinstance(func, cst.Attribute) and found.qname.startswith(_FUNCTIONAL + "."):
                return func.with_changes(attr=cst.Name(new))
            functional = self._functional_expr()
            if functional is not None:
                return _attr(functional, new)
            AddImportsVisitor.add_needed_import(self.context, _FUNCTIONAL, new)
            return cst.Name(new)
        # torch.sigmoid / torch.tanh / torch.special.expit -> torch.relu
        if isinstance(func, cst.Attribute):
            base = func.value
            if found.qname == "torch.special.expit" and isinstance(base, cst.Attribute):
                base = base.value
            return cst.Attribute(value=base, attr=cst.Name("relu"))
        AddImportsVisitor.add_needed_import(self.context, "torch", "relu")
        return cst.Name("relu")

    def _functional_expr(self) -> cst.BaseExpression | None:
        if self.finder.functional:
            return cst.Name(self.finder.functional)
        if self.finder.torch:
            return _attr(_dotted(self.finder.torch), "nn", "functional")
        return None


def _keep_args(args: Sequence[cst.Arg], old: str, function: bool,
               inplace: bool) -> list[cst.Arg] | None:
    """The arguments the ReLU-family call keeps: the input (functions) and ``inplace`` where
    the new callee takes it. Hardtanh's bounds mean nothing to ReLU and are dropped; anything
    else (``out=``, a positional ``inplace``) means the call is not rewritten."""
    kept: list[cst.Arg] = []
    bounds = range(1, 3) if function else range(0, 2)  # hardtanh's positional min/max
    for i, arg in enumerate(args):
        key = arg.keyword.value if arg.keyword is not None else None
        if arg.star:
            return None
        if function and ((i == 0 and key is None) or key == "input"):
            kept.append(arg)
        elif key == "inplace":
            if inplace:
                kept.append(arg)
            elif not _is_false(arg.value):
                return None
        elif old == "hardtanh" and (key in _DROPPABLE or (key is None and i in bounds)):
            continue
        else:
            return None
    if kept and len(kept) < len(args):
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return kept


def _is_false(value: cst.BaseExpression) -> bool:
    return isinstance(value, cst.Name) and value.value == "False"


@dataclass(frozen=True)
class FileFix:
    """One file's planned rewrite: ``path`` as reported, the bytes before and after."""

    path: str
    before: bytes
    after: bytes
    applied: tuple[Edit, ...]
    skipped: tuple[tuple[Edit, str], ...] = ()

    def diff(self) -> str:
        enc = "utf-8"
        old = self.before.decode(enc, "replace").splitlines(keepends=True)
        new = self.after.decode(enc, "replace").splitlines(keepends=True)
        lines = list(difflib.unified_diff(old, new, self.path, self.path))
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in lines)


@dataclass(frozen=True)
class FixPlan:
    """Every fix the diagnostics offer, resolved against the sources."""

    files: tuple[FileFix, ...] = ()
    fixes: int = 0  # diagnostics with at least one edit that applies

    @property
    def edits(self) -> int:
        return sum(len(f.applied) for f in self.files)

    def diff(self) -> str:
        return "".join(f.diff() for f in self.files if f.after != f.before)

    def write(self) -> None:
        """Write the fixed files (as bytes: line endings and encoding unchanged) and drop
        their cached bytecode, so the re-check never runs a stale ``.pyc`` of the same size
        written in the same second."""
        for f in self.files:
            if f.after == f.before:
                continue
            with open(f.path, "wb") as out:
                out.write(f.after)
            try:
                os.remove(importlib.util.cache_from_source(os.path.abspath(f.path)))
            except (OSError, NotImplementedError, ValueError):
                pass


def _inside(path: str, roots: Sequence[str]) -> bool:
    """Only files under the paths the user asked to check, never installed packages."""
    parts = set(os.path.normpath(path).split(os.sep))
    if parts & SKIP_DIRS or parts & VENV_NAMES or not path.endswith(".py"):
        return False
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def plan_fixes(diagnostics: Iterable[Diagnostic], paths: Sequence[str]) -> FixPlan:
    """Resolve the edits of the ``unsafe`` fixes against the files under ``paths``."""
    roots = [os.path.abspath(p.partition("::")[0]) for p in paths]
    by_file: dict[str, dict[tuple[int, int], Edit]] = {}
    shown: dict[str, str] = {}
    owners: dict[tuple[str, int, int], list[int]] = {}
    diags = [d for d in diagnostics if d.fix is not None and d.fix.applicability == "unsafe"]
    for i, d in enumerate(diags):
        assert d.fix is not None
        for e in d.fix.edits:
            path = os.path.abspath(e.location.file)
            if not _inside(path, roots):
                continue
            shown.setdefault(path, e.location.file)
            key = (e.location.line, e.location.col)
            by_file.setdefault(path, {}).setdefault(key, e)
            owners.setdefault((path, *key), []).append(i)
    files: list[FileFix] = []
    fixed: set[int] = set()
    for path, edits in sorted(by_file.items()):
        ff = _fix_file(path, shown[path], list(edits.values()))
        if ff is None:
            continue
        files.append(ff)
        for e in ff.applied:
            fixed.update(owners[(path, e.location.line, e.location.col)])
    return FixPlan(tuple(files), len(fixed))


def _fix_file(path: str, shown: str, edits: list[Edit]) -> FileFix | None:
    try:
        with open(path, "rb") as f:
            before = f.read()
        module = cst.parse_module(before)
    except (OSError, cst.ParserSyntaxError):
        return None
    wrapper = MetadataWrapper(module)
    finder = _Finder(module.code.split("\n"))
    wrapper.visit(finder)
    chosen: dict[int, tuple[_Found, str]] = {}
    skipped: list[tuple[Edit, str]] = []
    by_call: dict[int, Edit] = {}
    for e in edits:
        cands = [f for f in finder.found if f.line == e.location.line and f.old == e.old]
        if e.exact:
            cands = [f for f in cands if e.location.col - 1 in f.cols]
        if len(cands) != 1:
            skipped.append((e, "no such call at that place" if not cands else
                            f"{len(cands)} {e.old} calls on that line"))
            continue
        chosen[id(cands[0].node)] = (cands[0], e.new)
        by_call[id(cands[0].node)] = e
    if not chosen:
        return FileFix(shown, before, before, (), tuple(skipped))
    context = CodemodContext()
    rewriter = _Rewriter(chosen, finder, context)
    fixed = wrapper.module.visit(rewriter)
    fixed = AddImportsVisitor(context).transform_module(fixed)
    applied = tuple(by_call[i] for i in by_call if i in rewriter.done)
    skipped += [(by_call[i], "arguments the replacement cannot take") for i in by_call
                if i not in rewriter.done]
    return FileFix(shown, before, fixed.bytes, applied, tuple(skipped))


def fix_or_diff(paths: Sequence[str], diagnostics: Sequence[Diagnostic], diff: bool,
                unsafe: bool) -> bool:
    """``--diff`` prints the fixes ``--fix`` would apply (stdout, nothing written); ``--fix``
    writes them. All fixes are unsafe, so without ``--unsafe-fixes`` both only say how many
    are available (as ruff does). Returns whether files were written (re-check them)."""
    import click

    plan = plan_fixes(diagnostics, paths)
    if not unsafe:
        if plan.fixes:
            s = "es" if plan.fixes != 1 else ""
            click.echo(f"gradlint: no fixes applied; {plan.fixes} unsafe fix{s} available with "
                       "--unsafe-fixes (they change the model: review them with --diff "
                       "--unsafe-fixes)", err=True)
        else:
            click.echo("gradlint: no fixes available", err=True)
        return False
    for f in plan.files:
        for e, why in f.skipped:
            click.echo(f"gradlint: not fixed: {e.describe()}: {why}", err=True)
    files = sum(1 for f in plan.files if f.after != f.before)
    n = f"{plan.edits} edit{'s' if plan.edits != 1 else ''} in {files} file" \
        f"{'s' if files != 1 else ''}"
    if diff:
        click.echo(plan.diff(), nl=False)
        click.echo(f"gradlint: would apply {n} (--fix --unsafe-fixes)" if plan.edits
                   else "gradlint: no fixes available", err=True)
        return False
    if not plan.edits:
        click.echo("gradlint: no fixes available", err=True)
        return False
    plan.write()
    click.echo(f"gradlint: applied {n} ({plan.fixes} unsafe fix{'es' if plan.fixes != 1 else ''}"
               "); the report below is after the fix", err=True)
    return True
