"""The judge's state, and where names come from: local modules on ``sys.path``, the scopes of
their code, and what each name is bound to."""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gradlint.load import import_resolver
from gradlint.load.import_resolver import LocalModule
from gradlint.load.prefilter.scopes import (
    OPAQUE,
    Binding,
    ClassRef,
    ClassScope,
    Func,
    FuncScope,
    Lib,
    LocalClass,
    Mod,
    ModuleScope,
    Overlay,
    Scope,
    TreeIndex,
    Unknown,
    Val,
    Vals,
)
from gradlint.load.prefilter.syntax import bound_names, is_guard, own_expressions
from gradlint.load.prefilter.work import Work


class NameResolver:
    """The state of one judgement (caches, limits reached, ``sys.path``), the local modules
    it finds, and the names each scope binds. The judge is built in layers, one module each:
    names → class_hierarchy → evaluation → sys_path → expressions → judge; a layer calls an
    upper one only through the declarations below."""

    if TYPE_CHECKING:  # defined by Evaluator; binding a name evaluates what it is bound to
        def value(self, node: ast.expr, scope: Scope) -> Vals:
            """What an expression can evaluate to."""
            ...

        def attr(self, v: Val, name: str) -> Vals:
            """``v.name``."""
            ...

        def decorated(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                      subject: Vals, scope: Scope) -> Vals:
            """What a decorated def or class name is bound to."""
            ...

    if TYPE_CHECKING:  # defined by ClassHierarchy; ``cls`` in a class method is either
        def class_and_subclasses(self, cls: LocalClass) -> Vals:
            """The class and its local subclasses."""
            ...

    def __init__(self, path: str, display: str, roots: Sequence[str] | None = None,
                 depth: int = 0, judged: list[int] | None = None) -> None:
        self.path = path
        self.display_dir = os.path.dirname(display)
        self.resolving = os.path.isfile(path)
        self.roots: list[str] = list(roots) if roots is not None else list(
            import_resolver.search_roots(path)) if self.resolving else []
        self.depth = depth  # calls and imports already followed by the judges above this one
        self.judged = judged if judged is not None else [0]  # modules judged for the file
        # modules being judged above that were imported again (a cycle) and taken to do no
        # work here: their own judgement reports what they do
        self.assumed: set[str] = set()
        self.tops: dict[str, LocalModule | None] = {}  # absolute imports' first parts
        self.read: dict[str, tuple[int, int, int] | None] = {}  # files and folders read
        self.exact = False  # the verdict holds on this very sys.path only
        self.scopes: dict[str, ModuleScope | None] = {}
        self.classes: dict[ast.ClassDef, LocalClass] = {}
        self.func_scopes: dict[tuple[ast.AST, int], FuncScope] = {}
        self.memo: dict[object, Work | None] = {}
        self.active: dict[object, int] = {}
        self.low = 0
        self.bodies = 0
        # the body being judged returns to a caller gradlint cannot see, which may call what
        # it returns (``Judge.function``)
        self.returns_called = True
        self.universe_roots: tuple[str, ...] | None = None  # the sys.path it was found on
        self.universe_classes: list[LocalClass] = []
        self.pending: list[str] = []  # modules whose classes join the universe when next asked
        self.subclass_cache: dict[LocalClass, list[LocalClass]] = {}
        self.values: dict[tuple[ast.AST, int], Vals] = {}
        self.decorations: dict[tuple[ast.AST, int], Vals] = {}
        self.wrapping: dict[tuple[ast.AST, int], bool] = {}
        self.returned: dict[tuple[ast.AST, int], Vals] = {}
        self.resolved: dict[tuple[str, str | None, int, tuple[str, ...]],
                            list[LocalModule] | None] = {}
        self.overlays: dict[tuple[ast.AST, int], Overlay] = {}
        self.statements: dict[tuple[ast.AST, tuple[str, ...]], list[LocalModule]] = {}
        self.named: dict[str, list[Func]] = {}
        self.imported: list[str] = []  # local modules whose import was judged, in order
        self.in_universe: set[str] = set()

    # ------------------------------------------------------------------ modules and scopes

    def show_path(self, path: str) -> str:
        """A local module's path as the report shows it: beside the checked file's path."""
        rel = os.path.relpath(path, os.path.dirname(os.path.abspath(self.path)))
        return os.path.normpath(os.path.join(self.display_dir, rel))

    def resolve(self, importer: str, module: str | None, level: int
                ) -> list[LocalModule] | None:
        if not self.resolving:
            return None
        key = (importer, module, level, tuple(self.roots))
        if key not in self.resolved:
            self.resolved[key] = import_resolver.resolve_module(importer, module, level, self.roots)
            if not level and module:
                self.note_top(module)
        return self.resolved[key]

    def note_top(self, name: str) -> None:
        """Record where an absolute import's first part was found: the verdict on a module is
        reused on another ``sys.path`` that finds the same for every such name."""
        top = name.partition(".")[0]
        if top not in self.tops:
            self.tops[top] = import_resolver.top_level(top, self.roots)

    def imports_of(self, importer: str, stmt: ast.Import | ast.ImportFrom
                   ) -> list[LocalModule]:
        """The local modules an import statement runs, on the current ``sys.path``."""
        key = (stmt, tuple(self.roots))
        if key not in self.statements:
            self.statements[key] = import_resolver.resolve_import(importer, stmt, self.roots)
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    self.note_top(alias.name)
            elif not stmt.level and stmt.module:
                self.note_top(stmt.module)
        return self.statements[key]

    def module_scope(self, path: str, tree: ast.Module | None = None) -> ModuleScope | None:
        path = os.path.abspath(path) if self.resolving else path
        if path not in self.scopes:
            tree = tree if tree is not None else import_resolver.parse(path)
            self.scopes[path] = None if tree is None else ModuleScope(self, path, tree)
            if self.resolving:  # what a verdict rests on: the files read, and their folders
                for read in (path, os.path.dirname(path)):
                    self.read.setdefault(read, import_resolver.signature(read))
        return self.scopes[path]

    def class_of(self, node: ast.ClassDef, scope: Scope) -> LocalClass:
        if node not in self.classes:
            self.classes[node] = LocalClass(self, node, scope)
        return self.classes[node]

    def func_scope(self, func: Func) -> FuncScope:
        key = (func.node, id(func.scope))
        if key not in self.func_scopes:
            self.func_scopes[key] = FuncScope(self, func)
        return self.func_scopes[key]

    def collect(self, scope: Scope, body: list[ast.stmt], guards: bool) -> None:
        """Record the names ``body`` binds in ``scope`` (nested blocks included, guarded
        blocks left out at module level: they do not run at import)."""
        owner = scope.cls if isinstance(scope, ClassScope) else None
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scope.bind(stmt.name, ("def", Func(stmt, scope, owner), None))
                continue
            if isinstance(stmt, ast.ClassDef):
                scope.bind(stmt.name, ("class", stmt, None))
                continue
            self._bind_statement(scope, stmt)
            for expr in own_expressions(stmt):
                self.collect_walrus(scope, expr)
            self._collect_nested(scope, stmt, guards)

    def _bind_statement(self, scope: Scope, stmt: ast.stmt) -> None:
        """The names a statement binds itself (imports, assignments, loop and ``with``
        targets) and its ``global``/``nonlocal`` declarations."""
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                name = alias.asname or alias.name.partition(".")[0]
                scope.bind(name, ("import", stmt, alias))
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name == "*":
                    if isinstance(scope, ModuleScope):
                        scope.stars.append(stmt)
                else:
                    scope.bind(alias.asname or alias.name, ("from", stmt, alias))
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                self._bind_target(scope, target, stmt.value)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self._bind_target(scope, stmt.target, stmt.value)
        elif isinstance(stmt, ast.AugAssign):
            for name in bound_names(stmt.target):
                scope.bind(name, ("vals", OPAQUE, None))
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            for name in bound_names(stmt.target):
                scope.bind(name, ("vals", OPAQUE, None))
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None:
                    for name in bound_names(item.optional_vars):
                        scope.bind(name, ("vals", OPAQUE, None))
        elif isinstance(stmt, (ast.Global, ast.Nonlocal)) and isinstance(scope, FuncScope):
            for name in stmt.names:
                scope.declared[name] = "global" if isinstance(stmt, ast.Global) else (
                    "nonlocal")

    def _collect_nested(self, scope: Scope, stmt: ast.stmt, guards: bool) -> None:
        """The names bound in a statement's nested blocks, handlers and ``case`` patterns."""
        if isinstance(stmt, ast.If) and guards and is_guard(stmt.test):
            self.collect(scope, stmt.orelse, guards)
            return
        for handler in getattr(stmt, "handlers", []):
            if handler.name:
                scope.bind(handler.name, ("vals", OPAQUE, None))
            self.collect(scope, handler.body, guards)
        for case in getattr(stmt, "cases", []):
            for node in ast.walk(case.pattern):
                for bound in (getattr(node, "name", None), getattr(node, "rest", None)):
                    if isinstance(bound, str):
                        scope.bind(bound, ("vals", OPAQUE, None))
            self.collect(scope, case.body, guards)
        for field_name in ("body", "orelse", "finalbody"):
            nested = getattr(stmt, field_name, None)
            if isinstance(nested, list):
                self.collect(scope, nested, guards)

    def collect_walrus(self, scope: Scope, expr: ast.expr) -> None:
        if not TreeIndex.of(scope.module().tree).walrus:  # most files have none: skip the walk
            return
        stack: list[ast.AST] = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
                scope.bind(node.target.id, ("expr", node.value, None))
            if not isinstance(node, ast.Lambda):
                stack.extend(ast.iter_child_nodes(node))

    def _bind_target(self, scope: Scope, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id, ("expr", value, None))
        elif (isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple,
                                                                               ast.List))
              and len(target.elts) == len(value.elts)
              and not any(isinstance(e, ast.Starred) for e in target.elts + value.elts)):
            for t, v in zip(target.elts, value.elts, strict=True):
                self._bind_target(scope, t, v)
        else:
            for name in bound_names(target):
                scope.bind(name, ("vals", OPAQUE, None))

    def binding(self, scope: Scope, binding: Binding) -> Vals:
        kind, node, alias = binding
        if kind == "vals":
            return node  # type: ignore[return-value]
        if kind == "expr":
            assert isinstance(node, ast.expr)
            return self.value(node, scope)
        if kind == "outer":  # a default argument, evaluated where the function is defined
            assert isinstance(node, ast.expr) and scope.parent is not None
            return self.value(node, scope.parent)
        if kind == "def":
            assert isinstance(node, Func) and not isinstance(node.node, ast.Lambda)
            return self.decorated(node.node, (node,), scope)
        if kind == "class":
            assert isinstance(node, ast.ClassDef)
            return self.decorated(node, (ClassRef(self.class_of(node, scope)),), scope)
        assert isinstance(alias, ast.alias)
        if kind == "import":
            assert isinstance(node, ast.Import)
            chain = self.resolve(scope.path, alias.name, 0)
            if chain:
                if alias.asname:
                    return (Mod(chain[-1]),) if chain[-1].name == alias.name else (
                        Unknown(alias.name),)
                return (Mod(chain[0]),)
            return (Lib(alias.name if alias.asname else alias.name.partition(".")[0]),)
        assert isinstance(node, ast.ImportFrom)
        chain = self.resolve(scope.path, node.module, node.level)
        if chain:
            return self.attr(Mod(chain[-1]), alias.name)
        if node.level or not node.module:
            return (Unknown(f"{'.' * node.level}{node.module or ''}.{alias.name}"),)
        return (Lib(f"{node.module}.{alias.name}"),)
