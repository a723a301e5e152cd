"""Abstract values (what a name or expression can stand for when the pre-filter evaluates it
statically) and scopes: the names a module, class body, function or comprehension binds, and
the local classes and syntax-tree index they are read from. One module, since values hold the
scope they were defined in and scopes hold values."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from gradlint.load import import_resolver
from gradlint.load.prefilter.syntax import dotted


class Resolver(Protocol):
    """What scopes ask of the name resolver that owns them (names.NameResolver is one; declared
    here so that scopes do not import it back)."""

    path: str
    roots: list[str]
    exact: bool

    def attr(self, v: Val, name: str) -> Vals: ...
    def binding(self, scope: Scope, binding: Binding) -> Vals: ...
    def class_and_subclasses(self, cls: LocalClass) -> Vals: ...
    def collect(self, scope: Scope, body: list[ast.stmt], guards: bool) -> None: ...
    def collect_walrus(self, scope: Scope, expr: ast.expr) -> None: ...
    def resolve(self, importer: str, module: str | None, level: int
                ) -> list[import_resolver.LocalModule] | None: ...
    def show_path(self, path: str) -> str: ...


@dataclass(frozen=True)
class Lib:
    """A library name, fully qualified through the imports (``torch.nn.Linear``)."""

    name: str


@dataclass(frozen=True)
class Func:
    """A function, method or lambda of the file or a local module, with its defining scope."""

    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    scope: Scope
    owner: LocalClass | None = None  # the class whose body defines it


@dataclass(frozen=True)
class ClassRef:
    cls: LocalClass


@dataclass(frozen=True)
class Mod:
    mod: import_resolver.LocalModule


@dataclass(frozen=True)
class Inst:
    """An instance of a local class; not ``exact`` when it may be of a local subclass (``self``)."""

    cls: LocalClass
    exact: bool = True


@dataclass(frozen=True)
class Super:
    cls: LocalClass  # the class whose method called ``super()``


@dataclass(frozen=True)
class LibInit:
    """``super().__init__`` reaching a library base class: calling it runs that constructor."""

    name: str


@dataclass(frozen=True)
class Param:
    """What a caller passed; callers hand values on only after judging them."""

    func: ast.AST
    name: str


@dataclass(frozen=True)
class Opaque:
    """A value whose type is not known statically (``attr``: the method ``value.attr``)."""

    attr: str | None = None
    origin: str | None = None  # the library call that made it (``pathlib.Path``)
    known: bool = False  # the receiver's class is known: no other local method can run


@dataclass(frozen=True)
class Unknown:
    name: str


Val = Lib | Func | ClassRef | Mod | Inst | Super | LibInit | Param | Opaque | Unknown
Vals = tuple[Val, ...]
OPAQUE: Vals = (Opaque(),)


def union(*groups: Iterable[Val]) -> Vals:
    return tuple(dict.fromkeys(v for group in groups for v in group))


_BUILTINS = frozenset(dir(builtins))
_MODULE_DUNDERS = frozenset({"__file__", "__name__", "__doc__", "__spec__", "__package__",
                             "__loader__", "__builtins__", "__path__", "__dict__",
                             "__annotations__", "__cached__"})


Binding = tuple[str, object, object]  # ("expr", node, None) | ("vals", vals, None) | imports


class Scope:
    """Names bound in one module, class body, function or comprehension, evaluated lazily and
    flow-insensitively (every binding of a name counts, wherever it is)."""

    def __init__(self, judge: Resolver, path: str, parent: Scope | None) -> None:
        self.judge = judge
        self.path = path
        self.parent = parent
        self.bindings: dict[str, list[Binding]] = {}
        self.cache: dict[str, Vals] = {}

    def bind(self, name: str, binding: Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def own(self, name: str) -> Vals | None:
        """The values of ``name`` bound here, None when this scope does not bind it."""
        if name not in self.bindings:
            return None
        if name in self.cache:
            return self.cache[name]
        self.cache[name] = OPAQUE  # a binding that refers to itself
        vals = union(*(self.judge.binding(self, b) for b in self.bindings[name]))
        self.cache[name] = vals
        return vals

    def enclosing(self) -> Scope | None:
        """The scope a nested function or class looks names up in (class bodies are skipped)."""
        scope = self.parent
        while isinstance(scope, ClassScope):
            scope = scope.parent
        return scope

    def lookup(self, name: str) -> Vals:
        found = self.own(name)
        if found is not None:
            return found
        outer = self.enclosing()
        return outer.lookup(name) if outer is not None else (Unknown(name),)

    def module(self) -> ModuleScope:
        scope: Scope = self
        while scope.parent is not None:
            scope = scope.parent
        assert isinstance(scope, ModuleScope)
        return scope

    def owner(self) -> LocalClass | None:
        """The class of the method this code runs in (for ``super()``)."""
        scope: Scope | None = self
        while scope is not None:
            if isinstance(scope, FuncScope) and scope.func.owner is not None:
                return scope.func.owner
            scope = scope.parent
        return None


class ModuleScope(Scope):
    def __init__(self, judge: Resolver, path: str, tree: ast.Module) -> None:
        super().__init__(judge, path, None)
        self.tree = tree
        self.stars: list[ast.ImportFrom] = []
        self.future_annotations = any(
            isinstance(s, ast.ImportFrom) and s.module == "__future__"
            and any(a.name == "annotations" for a in s.names) for s in tree.body)
        judge.collect(self, tree.body, guards=True)

    def member(self, name: str) -> Vals | None:
        """``module.name`` from another module: what the module binds, builtins excluded."""
        found = self.own(name)
        if found is not None:
            return found
        return self.star(name)

    def star(self, name: str) -> Vals | None:
        vals: list[Val] = []
        for stmt in self.stars:
            chain = self.judge.resolve(self.path, stmt.module, stmt.level)
            if chain:
                self.judge.exact = True  # star imports inside it are resolved on this sys.path
                if chain[-1].path and name in import_resolver.star_names(chain[-1].path,
                                                                 self.judge.roots):
                    vals.extend(self.judge.attr(Mod(chain[-1]), name))
            elif stmt.level == 0 and stmt.module:
                vals.append(Lib(f"{stmt.module}.{name}"))
        return union(vals) if vals else None

    def lookup(self, name: str) -> Vals:
        found = self.own(name)
        if found is not None:
            return found
        if name in _MODULE_DUNDERS:
            return OPAQUE
        starred = self.star(name)
        builtin = (Lib(f"builtins.{name}"),) if name in _BUILTINS else ()
        if starred is not None:
            return union(starred, builtin)
        return builtin or (Unknown(name),)


class ClassScope(Scope):
    def __init__(self, judge: Resolver, cls: LocalClass) -> None:
        super().__init__(judge, cls.scope.path, cls.scope)
        self.cls = cls
        judge.collect(self, cls.node.body, guards=False)

    def lookup(self, name: str) -> Vals:
        found = self.own(name)
        if found is not None:
            return found
        outer = self.enclosing()
        assert outer is not None
        return outer.lookup(name)


class FuncScope(Scope):
    def __init__(self, judge: Resolver, func: Func) -> None:
        super().__init__(judge, func.scope.path, func.scope)
        self.func = func
        node = func.node
        self.declared: dict[str, str] = {}  # name -> "global" / "nonlocal"
        args = node.args
        positional = args.posonlyargs + args.args
        defaults: dict[str, ast.expr] = {}
        for arg, default in zip(positional[len(positional) - len(args.defaults):],
                                args.defaults, strict=True):
            defaults[arg.arg] = default
        for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            if kw_default is not None:
                defaults[arg.arg] = kw_default
        first = self._first_param(positional)
        for arg in positional + args.kwonlyargs:
            if first is not None and arg is positional[0]:
                self.bind(arg.arg, ("vals", first, None))
                continue
            self.bind(arg.arg, ("vals", (Param(node, arg.arg),), None))
            if arg.arg in defaults:  # evaluated where the function is defined
                self.bind(arg.arg, ("outer", defaults[arg.arg], None))
        for star in (args.vararg, args.kwarg):
            if star is not None:
                self.bind(star.arg, ("vals", OPAQUE, None))
        if isinstance(node, ast.Lambda):
            judge.collect_walrus(self, node.body)
        else:
            judge.collect(self, node.body, guards=False)

    def _first_param(self, positional: list[ast.arg]) -> Vals | None:
        """``self`` (an instance of the class or a local subclass) or ``cls`` of a method."""
        owner = self.func.owner
        node = self.func.node
        if owner is None or not positional or isinstance(node, ast.Lambda):
            return None
        decorators = {dotted(d) for d in node.decorator_list}
        if decorators & {"staticmethod", "builtins.staticmethod"}:
            return None
        if decorators & {"classmethod", "builtins.classmethod"} or node.name in (
                "__new__", "__init_subclass__", "__class_getitem__"):
            return self.judge.class_and_subclasses(owner)
        return (Inst(owner, exact=False),)

    def lookup(self, name: str) -> Vals:
        kind = self.declared.get(name)
        if kind == "global":
            return self.module().lookup(name)
        if kind != "nonlocal":
            found = self.own(name)
            if found is not None:
                return found
        outer = self.enclosing()
        assert outer is not None
        return outer.lookup(name)


class Overlay(Scope):
    """Comprehension variables: values of an iteration, not known statically."""

    def __init__(self, judge: Resolver, parent: Scope, names: Iterable[str]) -> None:
        super().__init__(judge, parent.path, parent)
        for name in names:
            self.bind(name, ("vals", OPAQUE, None))

    def enclosing(self) -> Scope | None:
        return self.parent


class LocalClass:
    """A class of the file or a local module."""

    def __init__(self, judge: Resolver, node: ast.ClassDef, scope: Scope) -> None:
        self.node = node
        self.scope = scope
        self.name = node.name
        self.methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for stmt in import_resolver.module_statements(node.body):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.methods[stmt.name] = stmt
        self.judge = judge
        self._body: ClassScope | None = None
        self.mro_cache: list[LocalClass | Lib | Unknown] | None = None
        self.attrs: dict[str, list[tuple[ast.FunctionDef | ast.AsyncFunctionDef,
                                         ast.expr | None]]] | None = None

    @property
    def body(self) -> ClassScope:
        """The names the class body binds (made when first needed: most classes of the
        modules a file imports are only ever asked for their bases)."""
        if self._body is None:
            self._body = ClassScope(self.judge, self)
        return self._body


class TreeIndex:
    """What the pre-filter needs from a syntax tree, worked out once per parsed tree (trees are
    cached across files): every class, nested ones too, with the def or class it is nested in,
    and the top-level imports."""

    def __init__(self, tree: ast.Module) -> None:
        self.parents: dict[ast.AST, ast.AST | None] = {}
        self.classes: list[ast.ClassDef] = []
        stack: list[tuple[ast.AST, ast.AST | None]] = [(tree, None)]
        while stack:
            current, holder = stack.pop()
            for child in ast.iter_child_nodes(current):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.parents[child] = holder
                    stack.append((child, child))
                    if isinstance(child, ast.ClassDef):
                        self.classes.append(child)
                elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                    stack.append((child, holder))
        self.imports = [s for s in import_resolver.module_statements(tree.body)
                        if isinstance(s, (ast.Import, ast.ImportFrom))]
        self.walrus: bool = getattr(tree, "gradlint_walrus", True)

    @staticmethod
    def of(tree: ast.Module) -> TreeIndex:
        index = getattr(tree, "_gradlint_index", None)
        if index is None:
            index = TreeIndex(tree)
            setattr(tree, "_gradlint_index", index)  # noqa: B010 - an AST node's own __dict__
        return index
