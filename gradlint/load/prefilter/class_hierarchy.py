"""Local classes: their bases and MRO, their subclasses among the classes that can have
instances, and what their methods assign to ``self``."""

from __future__ import annotations

import ast
import os
from typing import TYPE_CHECKING

from gradlint.load.prefilter.limits import MAX_MODULES, TooMuch
from gradlint.load.prefilter.names import NameResolver
from gradlint.load.prefilter.scopes import (
    ClassRef,
    ClassScope,
    Func,
    Lib,
    LocalClass,
    ModuleScope,
    Opaque,
    Scope,
    TreeIndex,
    Unknown,
    Val,
    Vals,
    union,
)
from gradlint.load.prefilter.syntax import dotted

_PROPERTIES = frozenset({"property", "cached_property", "functools.cached_property",
                         "abc.abstractproperty"})


class ClassHierarchy(NameResolver):
    """Bases, MRO and subclasses of local classes, and the classes that can have instances."""

    if TYPE_CHECKING:  # defined by Evaluator: a method's local decorators may wrap it
        def method(self, cls: LocalClass, name: str) -> list[Func]:
            """What calling the method ``cls.name`` runs."""
            ...

    def bases(self, cls: LocalClass) -> list[Vals]:
        return [self.value(b, cls.scope) for b in cls.node.bases]

    def mro(self, cls: LocalClass) -> list[LocalClass | Lib | Unknown]:
        """The class, its local bases and library bases in (approximately) Python's order."""
        if cls.mro_cache is not None:
            return cls.mro_cache
        cls.mro_cache = [cls]  # a class that names itself as a base
        order: list[LocalClass | Lib | Unknown] = [cls]
        for vals in self.bases(cls):
            for v in vals:
                if isinstance(v, ClassRef):
                    order.extend(self.mro(v.cls))
                elif isinstance(v, Lib):
                    order.append(v)
                elif isinstance(v, Unknown):
                    order.append(v)
        seen: list[LocalClass | Lib | Unknown] = []
        for item in reversed(order):  # the last occurrence wins, as in C3 for a diamond
            if item not in seen:
                seen.append(item)
        cls.mro_cache = list(reversed(seen))
        return cls.mro_cache

    def class_and_subclasses(self, cls: LocalClass) -> Vals:
        return tuple(ClassRef(c) for c in [cls, *self.subclasses(cls)])

    def universe(self) -> list[LocalClass]:
        """Every class of the file and of the local modules imported at import (the top-level
        imports of each, and those of the functions judged so far): the classes a value of
        unknown type can be an instance of, since a class's module runs before it has any.
        Grown as modules are found, started again if ``sys.path`` changes."""
        roots = tuple(self.roots)
        if self.universe_roots != roots:
            self.universe_roots = roots
            self.in_universe = set()
            self.universe_classes = []
            self.pending = [self.path, *self.imported]
            self.named, self.subclass_cache = {}, {}
        while self.pending:
            scope = self.module_scope(self.pending.pop(0))
            if scope is None or scope.path in self.in_universe:
                continue
            self.in_universe.add(scope.path)
            if len(self.in_universe) > MAX_MODULES:
                raise TooMuch
            index = TreeIndex.of(scope.tree)
            for node in index.classes:
                self.universe_classes.append(self.class_of(node,
                                                           self.defining_scope(node, scope)))
            for stmt in index.imports if self.resolving else ():
                for mod in self.imports_of(scope.path, stmt):
                    if mod.path and os.path.abspath(mod.path) not in self.in_universe:
                        self.pending.append(mod.path)
        return self.universe_classes

    def grown(self, path: str) -> None:
        """A judged function imported a module the universe lacked: its classes may now have
        instances, so what was found harmless on the smaller universe is judged again."""
        self.pending.append(path)
        self.named, self.subclass_cache = {}, {}
        self.memo = {key: found for key, found in self.memo.items() if found is not None}

    def defining_scope(self, node: ast.AST, module: ModuleScope) -> Scope:
        """The scope a def or class nested anywhere in ``module`` is defined in."""
        holder = TreeIndex.of(module.tree).parents.get(node)
        if holder is None:
            return module
        outer = self.defining_scope(holder, module)
        if isinstance(holder, ast.ClassDef):
            return self.class_of(holder, outer).body
        assert isinstance(holder, (ast.FunctionDef, ast.AsyncFunctionDef))
        owner = outer.cls if isinstance(outer, ClassScope) else None
        return self.func_scope(Func(holder, outer, owner))

    def subclasses(self, cls: LocalClass) -> list[LocalClass]:
        universe = self.universe()
        if cls not in self.subclass_cache:
            self.subclass_cache[cls] = []  # a base computed from an attribute of itself
            self.subclass_cache[cls] = [c for c in universe if c is not cls and cls in self.mro(c)]
        return self.subclass_cache[cls]

    def methods_named(self, name: str) -> list[Func]:
        """Every local method called ``name``: what ``value.name(...)`` may run when the type
        of ``value`` is not known."""
        universe = self.universe()
        if name not in self.named:
            self.named[name] = [f for c in universe if name in c.methods
                                for f in self.method(c, name)]
        return self.named[name]

    def self_attrs(self, cls: LocalClass, name: str) -> Vals:
        """Values the class's methods assign to ``self.name``."""
        if cls.attrs is None:
            cls.attrs = {}
            for method in cls.methods.values():
                positional = method.args.posonlyargs + method.args.args
                if not positional:
                    continue
                me = positional[0].arg
                for node in ast.walk(method):
                    targets: list[tuple[ast.expr, ast.expr | None]] = []
                    if isinstance(node, ast.Assign):
                        targets = [(t, node.value) for t in node.targets]
                    elif isinstance(node, ast.AnnAssign):
                        targets = [(node.target, node.value)]
                    elif isinstance(node, ast.AugAssign):
                        targets = [(node.target, None)]
                    for target, value in targets:
                        if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                                and target.value.id == me):
                            cls.attrs.setdefault(target.attr, []).append((method, value))
                        elif isinstance(target, (ast.Tuple, ast.List)):
                            for elt in ast.walk(target):
                                if (isinstance(elt, ast.Attribute) and isinstance(elt.value,
                                                                                  ast.Name)
                                        and elt.value.id == me):
                                    cls.attrs.setdefault(elt.attr, []).append((method, None))
        vals: list[Val] = []
        for method, value in cls.attrs.get(name, []):
            if value is None:
                vals.append(Opaque())
            else:
                scope = self.func_scope(Func(method, cls.body, cls))
                vals.extend(self.value(value, scope))
        return union(vals)

    def is_property(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        return any((dotted(d) or "").rsplit(".", 1)[-1] in _PROPERTIES
                   or (dotted(d) or "").endswith((".setter", ".getter", ".deleter"))
                   for d in func.decorator_list)
