"""The judge: the work a module, function, constructor or statement does when it runs."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Sequence

from gradlint.load.prefilter.expressions import ExpressionJudge
from gradlint.load.prefilter.limits import MAX_BODIES, MAX_DEPTH, MAX_MODULES, TooDeep, TooMuch
from gradlint.load.prefilter.literal_loops import literal_iterable
from gradlint.load.prefilter.module_verdicts import (
    VERDICTS_KEPT,
    ModuleVerdict,
    being_judged,
    module_verdicts,
    verdict_for,
)
from gradlint.load.prefilter.scopes import (
    ClassRef,
    ClassScope,
    Func,
    FuncScope,
    Lib,
    LocalClass,
    ModuleScope,
    Scope,
    Vals,
)
from gradlint.load.prefilter.syntax import LEVEL_CONTEXT, LOOPS, dotted, is_guard, own_expressions
from gradlint.load.prefilter.work import Link, Where, Work

_NOT_ON_INSTANCES = frozenset({"__init__", "__new__", "__init_subclass__", "__class_getitem__",
                               "__prepare__", "__instancecheck__", "__subclasscheck__"})


class Judge(ExpressionJudge):
    """Judges the import-time code of one checked file and everything it reaches."""

    def memo_run(self, key: object, run: Callable[[], Work | None]) -> Work | None:
        """Judge each body once; a body already being judged (recursion) adds nothing — its
        own judgement reports its work — and what depended on it is judged again later."""
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            self.low = min(self.low, self.active[key])
            return None
        index = len(self.active)
        if index + self.depth >= MAX_DEPTH:
            raise TooDeep
        self.bodies += 1
        if self.bodies > MAX_BODIES:
            raise TooMuch
        self.active[key] = index
        outer_low, self.low = self.low, index
        try:
            found = run()
        finally:
            del self.active[key]
        mine = self.low
        self.low = min(outer_low, mine)
        if found is not None or mine >= index:
            self.memo[key] = found
        return found

    # ------------------------------------------------------------------ judging code

    def module(self, scope: ModuleScope) -> Work | None:
        """The work a module does when it is imported. A local module is judged on its own
        (its import-time code reaches only what it imports itself, whoever imports it), and the
        verdict is kept for the run: a package ``__init__.py`` that imports the whole package
        is judged once, not once per file of the package."""
        if scope.path == self.path:
            return self.memo_run(("module", scope.path),
                                 lambda: self.block(scope.tree.body, scope, "module"))
        known = verdict_for(scope.path, tuple(self.roots))
        if known is None:
            if scope.path in being_judged:  # imported again while it runs: what it does is
                self.assumed.add(scope.path)  # reported where it is being judged
                return None
            self.judged[0] += 1
            if self.judged[0] > MAX_MODULES:
                raise TooMuch
            judge = Judge(scope.path, scope.path, self.roots, self.depth + len(self.active) + 1,
                           self.judged)
            being_judged.add(scope.path)
            try:
                work = judge.module(judge.module_scope(scope.path, scope.tree) or scope)
            finally:
                being_judged.discard(scope.path)
            judge.assumed.discard(scope.path)  # judged now, whatever it found
            known = ModuleVerdict(work, tuple(judge.read.items()),
                             tuple(self.roots), tuple(judge.roots), tuple(judge.imported),
                             tuple(judge.tops.items()), judge.exact,
                             frozenset(judge.assumed) if work is None else frozenset())
            if sum(map(len, module_verdicts.values())) >= VERDICTS_KEPT:
                module_verdicts.clear()
            module_verdicts.setdefault(scope.path, []).append(known)
        self.assumed |= known.assumes
        self.tops.update(known.tops)
        self.read.update(known.files)
        self.exact |= known.exact
        if known.roots != known.roots_in:  # its sys.path.insert calls hold for later imports
            self.roots[:] = known.roots  # its sys.path.insert calls hold for later imports
        for path in known.imported:
            self.note_import(path)
        return known.work

    def note_import(self, path: str) -> None:
        """A local module's import was judged: its classes may have instances from now on."""
        if path not in self.imported:
            self.imported.append(path)
            if self.universe_roots is not None and path not in self.in_universe:
                self.grown(path)

    def function(self, func: Func, handed_on: bool = True) -> Work | None:
        """The work calling a local function does (its body, whatever the arguments).
        ``handed_on``: its caller is not in sight (it was passed on, or the runtime calls it),
        so what it returns may be called too. A direct call's caller judges what it does with
        the result (``result``: a factory's closure called later is judged there), so then
        its returns are not taken as called: a decorator factory's wrapper is not run at
        import."""
        def run() -> Work | None:
            scope = self.func_scope(func)
            node = func.node
            if isinstance(node, ast.Lambda):
                return self.expr(node.body, scope, Where(scope.path, None, ""))
            outer, self.returns_called = self.returns_called, handed_on
            try:
                return self.block(node.body, scope, "function")
            finally:
                self.returns_called = outer
        if not handed_on and self.memo.get((func.node, id(func.scope), True), 1) is None:
            return None  # no work even with its returns called: none without (one body less)
        return self.memo_run((func.node, id(func.scope), handed_on), run)

    def construct(self, cls: LocalClass) -> Work | None:
        """The work making an instance of a local class does: ``__new__``, ``__init__`` and
        ``__post_init__`` of the class or its local bases, and every other dunder method and
        property, which run on the instance without an explicit call (``print(obj)``)."""
        def run() -> Work | None:
            seen: set[str] = set()
            for k in self.mro(cls):
                if not isinstance(k, LocalClass):
                    continue
                for name, method in k.methods.items():
                    if name in seen:
                        continue
                    wanted = name in ("__new__", "__init__", "__post_init__") or (
                        name.startswith("__") and name.endswith("__")
                        and name not in _NOT_ON_INSTANCES) or self.is_property(method)
                    if not wanted:
                        continue
                    seen.add(name)
                    found = self.functions(self.method(k, name))
                    if found and name == "__init__":
                        return found
                    if found:
                        return (Link("call", f"`{k.name}.{name}`", k.body.path, method.lineno,
                                      method.col_offset + 1),) + found
            return None
        return self.memo_run(("construct", cls.node), run)

    def block(self, body: Sequence[ast.stmt], scope: Scope, level: str) -> Work | None:
        for stmt in body:
            found = self.stmt(stmt, scope, level)
            if found:
                return found
        return None

    def stmt(self, stmt: ast.stmt, scope: Scope, level: str) -> Work | None:
        where = Where(scope.path, stmt if level != "function" else None, LEVEL_CONTEXT[level])
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return self.definition(stmt, scope, level)
        if isinstance(stmt, ast.ClassDef):
            return self.class_definition(stmt, scope, level)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            return self.import_(stmt, scope, where)
        if type(stmt) in LOOPS and level != "function" and not (
                level == "module" and isinstance(stmt, ast.For)
                and literal_iterable(stmt.iter, scope.module().tree)):
            return (where.link("work", LOOPS[type(stmt)], stmt),)
        if isinstance(stmt, ast.If) and is_guard(stmt.test):
            return self.block(stmt.orelse, scope, level)
        found = None
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            found = self.assignment(stmt, scope, where, level)
        elif isinstance(stmt, ast.Return) and stmt.value is not None:
            found = self.expr(stmt.value, scope, where) or (self.escape(
                self.value(stmt.value, scope), stmt.value, where) if self.returns_called
                else None)
        elif isinstance(stmt, ast.Raise):
            for part in (stmt.exc, stmt.cause):
                if part is not None:
                    found = found or self.expr(part, scope, where) or self.escape(
                        self.value(part, scope), part, where)
        else:
            for expr in own_expressions(stmt):
                found = found or self.expr(expr, scope, where,
                                           passive=isinstance(stmt, ast.Delete))
        if found:
            return found
        for handler in getattr(stmt, "handlers", []):
            if handler.type is not None:
                found = self.expr(handler.type, scope, where, passive=True)
            found = found or self.block(handler.body, scope, level)
            if found:
                return found
        for case in getattr(stmt, "cases", []):
            found = (self.expr(case.guard, scope, where) if case.guard is not None else None)
            found = found or self.block(case.body, scope, level)
            if found:
                return found
        for name in ("body", "orelse", "finalbody"):
            nested = getattr(stmt, name, None)
            if isinstance(nested, list):
                found = self.block(nested, scope, level)
                if found:
                    return found
        return None

    def assignment(self, stmt: ast.Assign | ast.AnnAssign | ast.AugAssign, scope: Scope,
                   where: Where, level: str) -> Work | None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if isinstance(stmt, ast.AnnAssign) and level != "function" and not (
                scope.module().future_annotations):
            found = self.expr(stmt.annotation, scope, where, passive=True)
            if found:
                return found
        if stmt.value is None:
            return None
        found = self.expr(stmt.value, scope, where)
        if found:
            return found
        escapes = isinstance(stmt, ast.AugAssign) and level == "class"
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, (ast.Attribute, ast.Subscript)):
                    changed = [v.name if isinstance(node, ast.Subscript)
                               else f"{v.name}.{node.attr}"
                               for v in self.value(node.value, scope) if isinstance(v, Lib)]
                    if "sys.path" in changed:
                        return (where.link("work", "change to `sys.path`", node,
                                           "imports would then find files gradlint cannot "
                                           "work out statically"),)
                    escapes = True
                    found = self.expr(node.value, scope, where) or (
                        self.expr(node.slice, scope, where, passive=True)
                        if isinstance(node, ast.Subscript) else None)
                    if found:
                        return found
                elif isinstance(node, ast.Name):
                    if level == "class" or (isinstance(scope, FuncScope)
                                            and node.id in scope.declared):
                        escapes = True
        if escapes:
            return self.escape(self.value(stmt.value, scope), stmt.value, where)
        return None

    def definition(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope,
                   level: str) -> Work | None:
        """What ``def`` runs: decorators, default arguments, annotations — not the body."""
        inner = level == "function"
        args = stmt.args
        for default in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
            found = self.expr(default, scope, Where(scope.path, None,
                                                     "" if inner else "default-argument"))
            if found:
                return found
        if not scope.module().future_annotations:
            notes = [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                            *(x for x in (args.vararg, args.kwarg) if x)]
                     if a.annotation is not None]
            for note in [*notes, *([stmt.returns] if stmt.returns is not None else [])]:
                found = self.expr(note, scope, Where(scope.path, None,
                                                      "" if inner else "annotation"),
                                  passive=True)
                if found:
                    return found
        owner = scope.cls if isinstance(scope, ClassScope) else None
        return self.decorate(stmt, (Func(stmt, scope, owner),), scope, inner)

    def decorate(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                 subject: Vals, scope: Scope, inner: bool) -> Work | None:
        """Decorators run bottom-up, each called with what the one below returned. One that
        only wraps (``wrappers.only_wraps``) runs none of it; any other, but a storing one,
        is handed it."""
        where = Where(scope.path, None, "" if inner else "decorator")
        for decorator in stmt.decorator_list:  # evaluated top-down
            found = self.expr(decorator, scope, where)
            if found:
                return found
        for decorator in reversed(stmt.decorator_list):
            callee = self.value(decorator, scope)
            for v in callee:
                found = self.apply(v, decorator, None, scope, where)
                if found:
                    return found
            keeps = (dotted(decorator) or "").endswith((".setter", ".getter", ".deleter"))
            if not keeps and not all(self.stores(v) or self.only_wraps(v) for v in callee):
                found = self.escape(subject, decorator, where, name=stmt.name)
                if found:
                    return found
            subject = self.decoration(callee, subject)
        return None

    def class_definition(self, stmt: ast.ClassDef, scope: Scope, level: str) -> Work | None:
        """What ``class`` runs: bases, keywords (a local metaclass), the body, local bases'
        ``__init_subclass__``, decorators."""
        inner = level == "function"
        where = Where(scope.path, stmt if not inner else None, LEVEL_CONTEXT[level])
        for base in stmt.bases:
            found = self.expr(base, scope, where, passive=True)
            if found:
                return found
        for keyword in stmt.keywords:
            found = self.expr(keyword.value, scope, where) or (
                self.escape(self.value(keyword.value, scope), keyword.value, where)
                if keyword.arg == "metaclass" else None)
            if found:
                return found
        cls = self.class_of(stmt, scope)
        for k in self.mro(cls)[1:]:
            if isinstance(k, LocalClass) and "__init_subclass__" in k.methods:
                found = self.functions(self.method(k, "__init_subclass__"))
                if found:
                    return (where.link("call", f"`{k.name}.__init_subclass__`", stmt),) + found
        found = self.block(stmt.body, cls.body, "function" if inner else "class")
        return found or self.decorate(stmt, (ClassRef(cls),), scope, inner)

    def import_(self, stmt: ast.Import | ast.ImportFrom, scope: Scope,
                where: Where) -> Work | None:
        if not self.resolving:
            return None
        for mod in self.imports_of(scope.path, stmt):
            if not mod.path:
                continue
            target = self.module_scope(mod.path)
            if target is not None:
                self.note_import(target.path)
            found = self.module(target) if target is not None else None
            if found:
                path = os.path.abspath(mod.path)  # shown beside the checked file when rendered
                return (where.link("import", path, stmt, target=path),) + found
        return None
