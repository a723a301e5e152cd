"""The pre-filter: whether importing a file is safe and worth it, decided with ``ast`` alone.

Importing a file runs it, so before gradlint imports a file the parent process reads it (and the
local modules it imports) and judges **all the code that runs at import, and only that**:
module-level statements, class bodies, decorators, default arguments and annotations (unless
``from __future__ import annotations``), the import-time code of every local module it imports
(gradlint/load/import_resolver.py finds them), and — transitively — the bodies of the local
functions and
constructors that code calls. Bodies that do not run at import (``forward``, methods nobody
calls, ``if __name__ == "__main__":``, ``if TYPE_CHECKING:``) are not judged.

That code may build models and configs; it may not do work. Every call is resolved to what it
calls, never guessed from its spelling:

* a function or class of the file or of a local module: its body is judged (for a class, its
  constructor chain and every dunder method and property of it and its local bases, since those
  run on the instance without an explicit call);
* a library name (through the file's imports): harmless only when gradlint/load/harmless.py lists it
  (and its conditions hold: no ``pretrained=True``); anything else does work;
* a method on a value whose type is known (``self``, an instance of a local class): that class's
  method, or, inherited from a library base, harmless unless its name is an effect (``save``,
  ``fit``, ``write_text``...);
* a method on a value whose type is not known statically (a parameter, an element, a library
  object): harmless unless its name is an effect, and every method of that name in the local
  modules imported at import is judged (the value may be an instance of any of their classes);
  calling such a value is harmless (a local ``__call__`` was judged when its instance was made;
  a ``torch.nn`` container runs the ``forward`` of the local modules it may hold: those are
  judged);
* calling an instance of a local ``nn.Module`` runs its ``forward``: that is judged;
* a name that cannot be resolved: work.

Values handed on — passed as arguments, stored in containers or attributes, returned — may be
called later by whoever receives them (``self.apply(self._init_weights)``), so a local function
or class handed on is judged as if called, and a library name handed on must be harmless to call
with any arguments (``nn.ReLU`` is, ``os.remove`` is not). Loops, ``with`` blocks and
comprehensions are fine inside judged function bodies (constructors build layers in loops); at
module level and in class bodies a ``for``/``while``/``with`` is work, as in a training script.

Installed libraries are trusted with what their own code does (their import, a library base
class's ``__init_subclass__``); what is judged is the user's code and the library calls it makes.

Each local module's import is judged on its own and the verdict kept for the run (while the
files it read are unchanged), so a tree whose files all import one package judges it once.
Recursion ends (bodies are judged once; a body already being judged adds nothing), chains deeper
than ``MAX_DEPTH`` and files reaching more than ``MAX_BODIES`` bodies or ``MAX_MODULES`` local
modules are not assumed harmless. Never import torch or user code here: this runs in the parent
process on every file of a tree.
"""

from __future__ import annotations

import ast
import builtins
import io
import os
import tokenize
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from gradlint.load import harmless
from gradlint.load import import_resolver as modules

TORCH_PACKAGES = frozenset({"torch", "transformers", "torchvision", "timm", "lightning",
                            "pytorch_lightning"})
MODULE_BASES = frozenset({"Module", "Sequential", "ModuleList", "ModuleDict"})
MODEL_LIBRARIES = ("transformers.", "torchvision.models.", "timm.")
MAX_DEPTH = 40  # nested calls followed; deeper chains are not assumed harmless
MAX_BODIES = 5000  # function bodies judged for one file; beyond that it is not assumed harmless
MAX_MODULES = 400  # local modules judged for one file; beyond that it is not assumed harmless
_BUILTINS = frozenset(dir(builtins))
_MODULE_DUNDERS = frozenset({"__file__", "__name__", "__doc__", "__spec__", "__package__",
                             "__loader__", "__builtins__", "__path__", "__dict__",
                             "__annotations__", "__cached__"})
_NOT_ON_INSTANCES = frozenset({"__init__", "__new__", "__init_subclass__", "__class_getitem__",
                               "__prepare__", "__instancecheck__", "__subclasscheck__"})
_PROPERTIES = frozenset({"property", "cached_property", "functools.cached_property",
                         "abc.abstractproperty"})
_SYS_PATH = frozenset({"sys.path.insert", "sys.path.append", "sys.path.extend"})


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


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True)
class _Lib:
    """A library name, fully qualified through the imports (``torch.nn.Linear``)."""

    name: str


@dataclass(frozen=True)
class _Func:
    """A function, method or lambda of the file or a local module, with its defining scope."""

    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    scope: _Scope
    owner: _Class | None = None  # the class whose body defines it


@dataclass(frozen=True)
class _ClassRef:
    cls: _Class


@dataclass(frozen=True)
class _Mod:
    mod: modules.LocalModule


@dataclass(frozen=True)
class _Inst:
    """An instance of a local class; not ``exact`` when it may be of a local subclass (``self``)."""

    cls: _Class
    exact: bool = True


@dataclass(frozen=True)
class _Super:
    cls: _Class  # the class whose method called ``super()``


@dataclass(frozen=True)
class _LibInit:
    """``super().__init__`` reaching a library base class: calling it runs that constructor."""

    name: str


@dataclass(frozen=True)
class _Param:
    """What a caller passed; callers hand values on only after judging them."""

    func: ast.AST
    name: str


@dataclass(frozen=True)
class _Opaque:
    """A value whose type is not known statically (``attr``: the method ``value.attr``)."""

    attr: str | None = None
    origin: str | None = None  # the library call that made it (``pathlib.Path``)
    known: bool = False  # the receiver's class is known: no other local method can run


@dataclass(frozen=True)
class _Unknown:
    name: str


_Val = _Lib | _Func | _ClassRef | _Mod | _Inst | _Super | _LibInit | _Param | _Opaque | _Unknown
_Vals = tuple[_Val, ...]
_OPAQUE: _Vals = (_Opaque(),)


def _union(*groups: Iterable[_Val]) -> _Vals:
    return tuple(dict.fromkeys(v for group in groups for v in group))


# ---------------------------------------------------------------------------- scopes


_Binding = tuple[str, object, object]  # ("expr", node, None) | ("vals", vals, None) | imports


class _Scope:
    """Names bound in one module, class body, function or comprehension, evaluated lazily and
    flow-insensitively (every binding of a name counts, wherever it is)."""

    def __init__(self, judge: _Judge, path: str, parent: _Scope | None) -> None:
        self.judge = judge
        self.path = path
        self.parent = parent
        self.bindings: dict[str, list[_Binding]] = {}
        self.cache: dict[str, _Vals] = {}

    def bind(self, name: str, binding: _Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def own(self, name: str) -> _Vals | None:
        """The values of ``name`` bound here, None when this scope does not bind it."""
        if name not in self.bindings:
            return None
        if name in self.cache:
            return self.cache[name]
        self.cache[name] = _OPAQUE  # a binding that refers to itself
        vals = _union(*(self.judge.binding(self, b) for b in self.bindings[name]))
        self.cache[name] = vals
        return vals

    def enclosing(self) -> _Scope | None:
        """The scope a nested function or class looks names up in (class bodies are skipped)."""
        scope = self.parent
        while isinstance(scope, _ClassScope):
            scope = scope.parent
        return scope

    def lookup(self, name: str) -> _Vals:
        found = self.own(name)
        if found is not None:
            return found
        outer = self.enclosing()
        return outer.lookup(name) if outer is not None else (_Unknown(name),)

    def module(self) -> _ModuleScope:
        scope: _Scope = self
        while scope.parent is not None:
            scope = scope.parent
        assert isinstance(scope, _ModuleScope)
        return scope

    def owner(self) -> _Class | None:
        """The class of the method this code runs in (for ``super()``)."""
        scope: _Scope | None = self
        while scope is not None:
            if isinstance(scope, _FuncScope) and scope.func.owner is not None:
                return scope.func.owner
            scope = scope.parent
        return None


class _ModuleScope(_Scope):
    def __init__(self, judge: _Judge, path: str, tree: ast.Module) -> None:
        super().__init__(judge, path, None)
        self.tree = tree
        self.stars: list[ast.ImportFrom] = []
        self.future_annotations = any(
            isinstance(s, ast.ImportFrom) and s.module == "__future__"
            and any(a.name == "annotations" for a in s.names) for s in tree.body)
        judge.collect(self, tree.body, guards=True)

    def member(self, name: str) -> _Vals | None:
        """``module.name`` from another module: what the module binds, builtins excluded."""
        found = self.own(name)
        if found is not None:
            return found
        return self.star(name)

    def star(self, name: str) -> _Vals | None:
        vals: list[_Val] = []
        for stmt in self.stars:
            chain = self.judge.resolve(self.path, stmt.module, stmt.level)
            if chain:
                self.judge.exact = True  # star imports inside it are resolved on this sys.path
                if chain[-1].path and name in modules.star_names(chain[-1].path,
                                                                 self.judge.roots):
                    vals.extend(self.judge.attr(_Mod(chain[-1]), name))
            elif stmt.level == 0 and stmt.module:
                vals.append(_Lib(f"{stmt.module}.{name}"))
        return _union(vals) if vals else None

    def lookup(self, name: str) -> _Vals:
        found = self.own(name)
        if found is not None:
            return found
        if name in _MODULE_DUNDERS:
            return _OPAQUE
        starred = self.star(name)
        builtin = (_Lib(f"builtins.{name}"),) if name in _BUILTINS else ()
        if starred is not None:
            return _union(starred, builtin)
        return builtin or (_Unknown(name),)


class _ClassScope(_Scope):
    def __init__(self, judge: _Judge, cls: _Class) -> None:
        super().__init__(judge, cls.scope.path, cls.scope)
        self.cls = cls
        judge.collect(self, cls.node.body, guards=False)

    def lookup(self, name: str) -> _Vals:
        found = self.own(name)
        if found is not None:
            return found
        outer = self.enclosing()
        assert outer is not None
        return outer.lookup(name)


class _FuncScope(_Scope):
    def __init__(self, judge: _Judge, func: _Func) -> None:
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
            self.bind(arg.arg, ("vals", (_Param(node, arg.arg),), None))
            if arg.arg in defaults:  # evaluated where the function is defined
                self.bind(arg.arg, ("outer", defaults[arg.arg], None))
        for star in (args.vararg, args.kwarg):
            if star is not None:
                self.bind(star.arg, ("vals", _OPAQUE, None))
        if isinstance(node, ast.Lambda):
            judge.collect_walrus(self, node.body)
        else:
            judge.collect(self, node.body, guards=False)

    def _first_param(self, positional: list[ast.arg]) -> _Vals | None:
        """``self`` (an instance of the class or a local subclass) or ``cls`` of a method."""
        owner = self.func.owner
        node = self.func.node
        if owner is None or not positional or isinstance(node, ast.Lambda):
            return None
        decorators = {_dotted(d) for d in node.decorator_list}
        if decorators & {"staticmethod", "builtins.staticmethod"}:
            return None
        if decorators & {"classmethod", "builtins.classmethod"} or node.name in (
                "__new__", "__init_subclass__", "__class_getitem__"):
            return self.judge.class_and_subclasses(owner)
        return (_Inst(owner, exact=False),)

    def lookup(self, name: str) -> _Vals:
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


class _Overlay(_Scope):
    """Comprehension variables: values of an iteration, not known statically."""

    def __init__(self, judge: _Judge, parent: _Scope, names: Iterable[str]) -> None:
        super().__init__(judge, parent.path, parent)
        for name in names:
            self.bind(name, ("vals", _OPAQUE, None))

    def enclosing(self) -> _Scope | None:
        return self.parent


class _Class:
    """A class of the file or a local module."""

    def __init__(self, judge: _Judge, node: ast.ClassDef, scope: _Scope) -> None:
        self.node = node
        self.scope = scope
        self.name = node.name
        self.methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for stmt in modules.module_statements(node.body):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.methods[stmt.name] = stmt
        self.judge = judge
        self._body: _ClassScope | None = None
        self.mro_cache: list[_Class | _Lib | _Unknown] | None = None
        self.attrs: dict[str, list[tuple[ast.FunctionDef | ast.AsyncFunctionDef,
                                         ast.expr | None]]] | None = None

    @property
    def body(self) -> _ClassScope:
        """The names the class body binds (made when first needed: most classes of the
        modules a file imports are only ever asked for their bases)."""
        if self._body is None:
            self._body = _ClassScope(self.judge, self)
        return self._body


class _Index:
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
        self.imports = [s for s in modules.module_statements(tree.body)
                        if isinstance(s, (ast.Import, ast.ImportFrom))]
        self.walrus: bool = getattr(tree, "gradlint_walrus", True)

    @staticmethod
    def of(tree: ast.Module) -> _Index:
        index = getattr(tree, "_gradlint_index", None)
        if index is None:
            index = _Index(tree)
            setattr(tree, "_gradlint_index", index)  # noqa: B010 - an AST node's own __dict__
        return index


# ---------------------------------------------------------------------------- work found


@dataclass(frozen=True)
class _Link:
    """One step of how import-time code reaches work; the last link of a chain is the work."""

    kind: Literal["call", "import", "pass", "escape", "work"]
    what: str  # "`main(...)`", "`for` loop", "train.py", "`os.remove`"
    path: str
    line: int
    col: int
    context: str = ""  # "module-level", "class-level", "decorator", ... ("" in a function body)
    detail: str = ""  # why the last link is work, when its name does not say
    target: str = ""  # the file an import runs


_Work = tuple[_Link, ...]


class _Where(NamedTuple):
    """Where findings are reported: at the statement (module and class level) or at the node
    itself (function bodies, decorators, defaults)."""

    path: str
    anchor: ast.stmt | None
    context: str

    def at(self, node: ast.AST) -> tuple[int, int]:
        spot = self.anchor if self.anchor is not None else node
        return getattr(spot, "lineno", 1), getattr(spot, "col_offset", 0) + 1

    def link(self, kind: Literal["call", "import", "pass", "escape", "work"], what: str,
             node: ast.AST,
             detail: str = "", target: str = "") -> _Link:
        line, col = self.at(node)
        return _Link(kind, what, self.path, line, col, self.context, detail, target)


def _dotted(node: ast.expr) -> str | None:
    """``torch.nn.Linear`` -> "torch.nn.Linear"; None for anything but names and attributes."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _show(func: ast.expr) -> str:
    """A short name for a callee: ``trainer.fit``, ``Trainer(...).fit``."""
    if isinstance(func, ast.Attribute):
        return f"{_show(func.value)}.{func.attr}"
    if isinstance(func, ast.Call):
        return f"{_show(func.func)}(...)"
    if isinstance(func, ast.Name):
        return func.id
    text = ast.unparse(func)
    return text if len(text) <= 30 else text[:27] + "..."


def _is_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either order) or ``TYPE_CHECKING``: never run at import."""
    if _dotted(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
        return True
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def _own_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """The nodes of a function body that are its own, not those of nested functions, lambdas
    or classes (their ``return`` is not this function's)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


def _targets(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            yield from _targets(elt)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)


def _expressions(stmt: ast.stmt) -> Iterator[ast.expr]:
    """The expressions a statement evaluates itself (not its nested statements, not the names
    it binds)."""
    for name, value in ast.iter_fields(stmt):
        if name in ("body", "orelse", "finalbody", "handlers", "cases", "target"):
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, ast.expr):
                yield item
            elif isinstance(item, ast.withitem):
                yield item.context_expr


_LOOPS: dict[type, str] = {ast.For: "`for` loop", ast.AsyncFor: "`async for` loop",
                           ast.While: "`while` loop", ast.With: "`with` block",
                           ast.AsyncWith: "`async with` block"}
_LEVEL_CONTEXT = {"module": "module-level", "class": "class-level", "function": ""}


# ---------------------------------------------------------------------------- the judge


class _Judge:
    """Judges the import-time code of one checked file and everything it reaches."""

    def __init__(self, path: str, display: str, roots: Sequence[str] | None = None,
                 depth: int = 0, judged: list[int] | None = None) -> None:
        self.path = path
        self.display_dir = os.path.dirname(display)
        self.resolving = os.path.isfile(path)
        self.roots: list[str] = list(roots) if roots is not None else list(
            modules.search_roots(path)) if self.resolving else []
        self.depth = depth  # calls and imports already followed by the judges above this one
        self.judged = judged if judged is not None else [0]  # modules judged for the file
        # modules being judged above that were imported again (a cycle) and taken to do no
        # work here: their own judgement reports what they do
        self.assumed: set[str] = set()
        self.tops: dict[str, modules.LocalModule | None] = {}  # absolute imports' first parts
        self.read: dict[str, tuple[int, int, int] | None] = {}  # files and folders read
        self.exact = False  # the verdict holds on this very sys.path only
        self.scopes: dict[str, _ModuleScope | None] = {}
        self.classes: dict[ast.ClassDef, _Class] = {}
        self.func_scopes: dict[tuple[ast.AST, int], _FuncScope] = {}
        self.memo: dict[object, _Work | None] = {}
        self.active: dict[object, int] = {}
        self.low = 0
        self.bodies = 0
        self.universe_roots: tuple[str, ...] | None = None  # the sys.path it was found on
        self.universe_classes: list[_Class] = []
        self.pending: list[str] = []  # modules whose classes join the universe when next asked
        self.subclass_cache: dict[_Class, list[_Class]] = {}
        self.values: dict[tuple[ast.AST, int], _Vals] = {}
        self.returned: dict[tuple[ast.AST, int], _Vals] = {}
        self.resolved: dict[tuple[str, str | None, int, tuple[str, ...]],
                            list[modules.LocalModule] | None] = {}
        self.overlays: dict[tuple[ast.AST, int], _Overlay] = {}
        self.statements: dict[tuple[ast.AST, tuple[str, ...]], list[modules.LocalModule]] = {}
        self.named: dict[str, list[_Func]] = {}
        self.imported: list[str] = []  # local modules whose import was judged, in order
        self.in_universe: set[str] = set()

    # ------------------------------------------------------------------ modules and scopes

    def show_path(self, path: str) -> str:
        """A local module's path as the report shows it: beside the checked file's path."""
        rel = os.path.relpath(path, os.path.dirname(os.path.abspath(self.path)))
        return os.path.normpath(os.path.join(self.display_dir, rel))

    def resolve(self, importer: str, module: str | None, level: int
                ) -> list[modules.LocalModule] | None:
        if not self.resolving:
            return None
        key = (importer, module, level, tuple(self.roots))
        if key not in self.resolved:
            self.resolved[key] = modules.resolve_module(importer, module, level, self.roots)
            if not level and module:
                self.note_top(module)
        return self.resolved[key]

    def note_top(self, name: str) -> None:
        """Record where an absolute import's first part was found: the verdict on a module is
        reused on another ``sys.path`` that finds the same for every such name."""
        top = name.partition(".")[0]
        if top not in self.tops:
            self.tops[top] = modules.top_level(top, self.roots)

    def imports_of(self, importer: str, stmt: ast.Import | ast.ImportFrom
                   ) -> list[modules.LocalModule]:
        """The local modules an import statement runs, on the current ``sys.path``."""
        key = (stmt, tuple(self.roots))
        if key not in self.statements:
            self.statements[key] = modules.resolve_import(importer, stmt, self.roots)
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    self.note_top(alias.name)
            elif not stmt.level and stmt.module:
                self.note_top(stmt.module)
        return self.statements[key]

    def module_scope(self, path: str, tree: ast.Module | None = None) -> _ModuleScope | None:
        path = os.path.abspath(path) if self.resolving else path
        if path not in self.scopes:
            tree = tree if tree is not None else modules.parse(path)
            self.scopes[path] = None if tree is None else _ModuleScope(self, path, tree)
            if self.resolving:  # what a verdict rests on: the files read, and their folders
                for read in (path, os.path.dirname(path)):
                    self.read.setdefault(read, modules.signature(read))
        return self.scopes[path]

    def class_of(self, node: ast.ClassDef, scope: _Scope) -> _Class:
        if node not in self.classes:
            self.classes[node] = _Class(self, node, scope)
        return self.classes[node]

    def func_scope(self, func: _Func) -> _FuncScope:
        key = (func.node, id(func.scope))
        if key not in self.func_scopes:
            self.func_scopes[key] = _FuncScope(self, func)
        return self.func_scopes[key]

    def collect(self, scope: _Scope, body: list[ast.stmt], guards: bool) -> None:
        """Record the names ``body`` binds in ``scope`` (nested blocks included, guarded
        blocks left out at module level: they do not run at import)."""
        owner = scope.cls if isinstance(scope, _ClassScope) else None
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scope.bind(stmt.name, ("vals", (_Func(stmt, scope, owner),), None))
                continue
            if isinstance(stmt, ast.ClassDef):
                scope.bind(stmt.name, ("class", stmt, None))
                continue
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    name = alias.asname or alias.name.partition(".")[0]
                    scope.bind(name, ("import", stmt, alias))
            elif isinstance(stmt, ast.ImportFrom):
                for alias in stmt.names:
                    if alias.name == "*":
                        if isinstance(scope, _ModuleScope):
                            scope.stars.append(stmt)
                    else:
                        scope.bind(alias.asname or alias.name, ("from", stmt, alias))
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    self._bind_target(scope, target, stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                self._bind_target(scope, stmt.target, stmt.value)
            elif isinstance(stmt, ast.AugAssign):
                for name in _targets(stmt.target):
                    scope.bind(name, ("vals", _OPAQUE, None))
            elif isinstance(stmt, (ast.For, ast.AsyncFor)):
                for name in _targets(stmt.target):
                    scope.bind(name, ("vals", _OPAQUE, None))
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                for item in stmt.items:
                    if item.optional_vars is not None:
                        for name in _targets(item.optional_vars):
                            scope.bind(name, ("vals", _OPAQUE, None))
            elif isinstance(stmt, (ast.Global, ast.Nonlocal)) and isinstance(scope, _FuncScope):
                for name in stmt.names:
                    scope.declared[name] = "global" if isinstance(stmt, ast.Global) else (
                        "nonlocal")
            for expr in _expressions(stmt):
                self.collect_walrus(scope, expr)
            if isinstance(stmt, ast.If) and guards and _is_guard(stmt.test):
                self.collect(scope, stmt.orelse, guards)
                continue
            for handler in getattr(stmt, "handlers", []):
                if handler.name:
                    scope.bind(handler.name, ("vals", _OPAQUE, None))
                self.collect(scope, handler.body, guards)
            for case in getattr(stmt, "cases", []):
                for node in ast.walk(case.pattern):
                    for bound in (getattr(node, "name", None), getattr(node, "rest", None)):
                        if isinstance(bound, str):
                            scope.bind(bound, ("vals", _OPAQUE, None))
                self.collect(scope, case.body, guards)
            for field_name in ("body", "orelse", "finalbody"):
                nested = getattr(stmt, field_name, None)
                if isinstance(nested, list):
                    self.collect(scope, nested, guards)

    def collect_walrus(self, scope: _Scope, expr: ast.expr) -> None:
        if not _Index.of(scope.module().tree).walrus:  # most files have none: skip the walk
            return
        stack: list[ast.AST] = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
                scope.bind(node.target.id, ("expr", node.value, None))
            if not isinstance(node, ast.Lambda):
                stack.extend(ast.iter_child_nodes(node))

    def _bind_target(self, scope: _Scope, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id, ("expr", value, None))
        elif (isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple,
                                                                               ast.List))
              and len(target.elts) == len(value.elts)
              and not any(isinstance(e, ast.Starred) for e in target.elts + value.elts)):
            for t, v in zip(target.elts, value.elts, strict=True):
                self._bind_target(scope, t, v)
        else:
            for name in _targets(target):
                scope.bind(name, ("vals", _OPAQUE, None))

    def binding(self, scope: _Scope, binding: _Binding) -> _Vals:
        kind, node, alias = binding
        if kind == "vals":
            return node  # type: ignore[return-value]
        if kind == "expr":
            assert isinstance(node, ast.expr)
            return self.value(node, scope)
        if kind == "outer":  # a default argument, evaluated where the function is defined
            assert isinstance(node, ast.expr) and scope.parent is not None
            return self.value(node, scope.parent)
        if kind == "class":
            assert isinstance(node, ast.ClassDef)
            return (_ClassRef(self.class_of(node, scope)),)
        assert isinstance(alias, ast.alias)
        if kind == "import":
            assert isinstance(node, ast.Import)
            chain = self.resolve(scope.path, alias.name, 0)
            if chain:
                if alias.asname:
                    return (_Mod(chain[-1]),) if chain[-1].name == alias.name else (
                        _Unknown(alias.name),)
                return (_Mod(chain[0]),)
            return (_Lib(alias.name if alias.asname else alias.name.partition(".")[0]),)
        assert isinstance(node, ast.ImportFrom)
        chain = self.resolve(scope.path, node.module, node.level)
        if chain:
            return self.attr(_Mod(chain[-1]), alias.name)
        if node.level or not node.module:
            return (_Unknown(f"{'.' * node.level}{node.module or ''}.{alias.name}"),)
        return (_Lib(f"{node.module}.{alias.name}"),)

    # ------------------------------------------------------------------ classes

    def bases(self, cls: _Class) -> list[_Vals]:
        return [self.value(b, cls.scope) for b in cls.node.bases]

    def mro(self, cls: _Class) -> list[_Class | _Lib | _Unknown]:
        """The class, its local bases and library bases in (approximately) Python's order."""
        if cls.mro_cache is not None:
            return cls.mro_cache
        cls.mro_cache = [cls]  # a class that names itself as a base
        order: list[_Class | _Lib | _Unknown] = [cls]
        for vals in self.bases(cls):
            for v in vals:
                if isinstance(v, _ClassRef):
                    order.extend(self.mro(v.cls))
                elif isinstance(v, _Lib):
                    order.append(v)
                elif isinstance(v, _Unknown):
                    order.append(v)
        seen: list[_Class | _Lib | _Unknown] = []
        for item in reversed(order):  # the last occurrence wins, as in C3 for a diamond
            if item not in seen:
                seen.append(item)
        cls.mro_cache = list(reversed(seen))
        return cls.mro_cache

    def class_and_subclasses(self, cls: _Class) -> _Vals:
        return tuple(_ClassRef(c) for c in [cls, *self.subclasses(cls)])

    def universe(self) -> list[_Class]:
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
                raise _TooMuch
            index = _Index.of(scope.tree)
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

    def defining_scope(self, node: ast.AST, module: _ModuleScope) -> _Scope:
        """The scope a def or class nested anywhere in ``module`` is defined in."""
        holder = _Index.of(module.tree).parents.get(node)
        if holder is None:
            return module
        outer = self.defining_scope(holder, module)
        if isinstance(holder, ast.ClassDef):
            return self.class_of(holder, outer).body
        assert isinstance(holder, (ast.FunctionDef, ast.AsyncFunctionDef))
        owner = outer.cls if isinstance(outer, _ClassScope) else None
        return self.func_scope(_Func(holder, outer, owner))

    def subclasses(self, cls: _Class) -> list[_Class]:
        universe = self.universe()
        if cls not in self.subclass_cache:
            self.subclass_cache[cls] = []  # a base computed from an attribute of itself
            self.subclass_cache[cls] = [c for c in universe if c is not cls and cls in self.mro(c)]
        return self.subclass_cache[cls]

    def methods_named(self, name: str) -> list[_Func]:
        """Every local method called ``name``: what ``value.name(...)`` may run when the type
        of ``value`` is not known."""
        universe = self.universe()
        if name not in self.named:
            self.named[name] = [_Func(c.methods[name], c.body, c) for c in universe
                                if name in c.methods]
        return self.named[name]

    def self_attrs(self, cls: _Class, name: str) -> _Vals:
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
        vals: list[_Val] = []
        for method, value in cls.attrs.get(name, []):
            if value is None:
                vals.append(_Opaque())
            else:
                scope = self.func_scope(_Func(method, cls.body, cls))
                vals.extend(self.value(value, scope))
        return _union(vals)

    def is_property(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        return any((_dotted(d) or "").rsplit(".", 1)[-1] in _PROPERTIES
                   or (_dotted(d) or "").endswith((".setter", ".getter", ".deleter"))
                   for d in func.decorator_list)

    # ------------------------------------------------------------------ values

    def value(self, node: ast.expr, scope: _Scope) -> _Vals:
        """What an expression can evaluate to (without judging what evaluating it does)."""
        key = (node, id(scope))
        if key in self.values:
            return self.values[key]
        self.values[key] = _OPAQUE
        vals = self._value(node, scope)
        self.values[key] = vals
        return vals

    def _value(self, node: ast.expr, scope: _Scope) -> _Vals:
        if isinstance(node, ast.Name):
            return scope.lookup(node.id)
        if isinstance(node, ast.Attribute):
            return _union(*(self.attr(v, node.attr) for v in self.value(node.value, scope)))
        if isinstance(node, ast.Call):
            return self.result(node, scope)
        if isinstance(node, ast.Lambda):
            return (_Func(node, scope),)
        if isinstance(node, ast.IfExp):
            return _union(self.value(node.body, scope), self.value(node.orelse, scope))
        if isinstance(node, ast.BoolOp):
            return _union(*(self.value(v, scope) for v in node.values))
        if isinstance(node, (ast.NamedExpr, ast.Starred)):
            return self.value(node.value, scope)
        if isinstance(node, ast.Subscript):
            out: list[_Val] = []
            for v in self.value(node.value, scope):
                if isinstance(v, _Lib):  # ``Optional[int]`` is typing; ``os.environ[k]`` is
                    # data; ``sys.modules[k]`` is any module
                    out.append(v if v.name.startswith(("typing.", "typing_extensions.",
                                                       "collections.abc.", "builtins."))
                               else _Opaque() if harmless.inert(v.name)
                               else _Unknown(f"{v.name}[...]"))
                elif isinstance(v, _Unknown):
                    out.append(v)
                else:
                    out.append(_Opaque())
            return _union(out)
        return _OPAQUE

    def attr(self, v: _Val, name: str) -> _Vals:
        """``v.name``."""
        if isinstance(v, _Lib):
            return (_Lib(f"{v.name}.{name}"),)
        if isinstance(v, _Mod):
            scope = self.module_scope(v.mod.path) if v.mod.path else None
            found = scope.member(name) if scope is not None else None
            sub = modules.submodule(v.mod, name)
            if sub is not None:
                found = _union(found or (), (_Mod(sub),))
            return found if found else (_Unknown(f"{v.mod.name}.{name}"),)
        if isinstance(v, _ClassRef):
            return self.class_attr(v.cls, name)
        if isinstance(v, _Inst):
            return self.inst_attr(v.cls, v.exact, name)
        if isinstance(v, _Super):
            return self.super_attr(v.cls, name)
        if isinstance(v, _Unknown):
            return (_Unknown(f"{v.name}.{name}"),)
        if isinstance(v, _Opaque):
            return (_Opaque(attr=name, origin=v.origin),)
        return (_Opaque(attr=name),)

    def _class_member(self, cls: _Class, name: str, instance: bool) -> _Vals | None:
        for k in self.mro(cls):
            if isinstance(k, _Class):
                if name in k.methods:
                    method = k.methods[name]
                    if instance and self.is_property(method):
                        return _OPAQUE  # the getter ran when the instance was made
                    return (_Func(method, k.body, k),)
                found = k.body.own(name)
                if found is not None:
                    return found
        return None

    def _library_member(self, cls: _Class, name: str) -> _Vals:
        libs = [k for k in self.mro(cls) if not isinstance(k, _Class)]
        if not libs:
            return (_Opaque(attr=name, known=True),)
        return tuple(_Lib(f"{k.name}.{name}") if isinstance(k, _Lib)
                     else _Unknown(f"{k.name}.{name}") for k in libs)

    def class_attr(self, cls: _Class, name: str) -> _Vals:
        if name in ("__name__", "__qualname__", "__doc__", "__module__", "__dict__"):
            return _OPAQUE
        found = self._class_member(cls, name, instance=False)
        return found if found is not None else self._library_member(cls, name)

    def inst_attr(self, cls: _Class, exact: bool, name: str) -> _Vals:
        if name == "__class__":
            return (_ClassRef(cls),) if exact else self.class_and_subclasses(cls)
        out: list[_Val] = []
        for k in [cls] if exact else [cls, *self.subclasses(cls)]:
            found = self._class_member(k, name, instance=True)
            assigned = _union(*(self.self_attrs(c, name) for c in self.mro(k)
                                if isinstance(c, _Class)))
            if found is None and not assigned:
                libs = [c for c in self.mro(k) if not isinstance(c, _Class)]
                out.append(_Opaque(attr=name, known=True) if all(isinstance(c, _Lib)
                                                                  for c in libs)
                           else _Unknown(f"{k.name}.{name}"))
            out.extend(found or ())
            out.extend(assigned)
        return _union(out)

    def super_attr(self, cls: _Class, name: str) -> _Vals:
        """``super().name`` in a method of ``cls``, for ``cls`` and every local subclass."""
        out: list[_Val] = []
        for k in [cls, *self.subclasses(cls)]:
            order = self.mro(k)
            after = order[order.index(cls) + 1:] if cls in order else []
            found: _Vals | None = None
            for c in after:
                if isinstance(c, _Class):
                    if name in c.methods:
                        found = (_Func(c.methods[name], c.body, c),)
                        break
                elif name == "__init__":
                    found = (_LibInit(c.name) if isinstance(c, _Lib) else c,)
                    break
                else:
                    found = (_Opaque(attr=name, known=True),)
                    break
            out.extend(found or (_Opaque(attr=name, known=True),))
        return _union(out)

    def result(self, call: ast.Call, scope: _Scope) -> _Vals:
        """What a call returns, as far as it matters: instances, stored callables."""
        out: list[_Val] = []
        for v in self.value(call.func, scope):
            if isinstance(v, _Lib):
                out.extend(self._library_result(v.name, call, scope))
            elif isinstance(v, _ClassRef):
                out.append(_Inst(v.cls))
            elif isinstance(v, _Func):
                out.extend(self.returns(v))
            elif isinstance(v, _Opaque) and v.attr is None and v.origin and self.stores(v):
                out.extend(self.value(call.args[0], scope) if call.args else _OPAQUE)
            elif isinstance(v, _Opaque):
                out.append(_Opaque(origin=v.origin))
            elif isinstance(v, _Unknown):
                out.append(_Unknown(f"{v.name}(...)"))
            else:
                out.append(_Opaque())
        return _union(out)

    def returns(self, func: _Func) -> _Vals:
        """What a local function returns (a factory's closure, an instance), whatever the
        arguments: what a parameter brings is not known (its value was judged where it was
        passed). A generator or coroutine function returns an object of its own."""
        key = (func.node, id(func.scope))
        if key in self.returned:
            return self.returned[key]
        self.returned[key] = _OPAQUE  # a function returning its own result
        node = func.node
        scope = self.func_scope(func)
        if isinstance(node, ast.Lambda):
            found = self.value(node.body, scope)
        elif isinstance(node, ast.AsyncFunctionDef) or any(
                isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(node.body)):
            found = _OPAQUE
        else:
            found = _union(*(self.value(n.value, scope) if n.value is not None else _OPAQUE
                             for n in _own_nodes(node.body) if isinstance(n, ast.Return)))
        found = tuple(_Opaque() if isinstance(v, _Param) else v for v in found) or _OPAQUE
        self.returned[key] = found
        return found

    def _library_result(self, name: str, call: ast.Call, scope: _Scope) -> _Vals:
        args = call.args
        if name == "builtins.getattr" and len(args) >= 2:
            default = self.value(args[2], scope) if len(args) > 2 else ()
            key = args[1]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                return _union(*(self.attr(v, key.value) for v in self.value(args[0], scope)),
                              default)
            dynamic = [_Lib(f"{v.name}.{harmless.ANY}") if isinstance(v, _Lib)
                       and harmless.lookup(f"{v.name}.{harmless.ANY}") is not None
                       else _Unknown(f"getattr({_show(args[0])}, ...)")
                       for v in self.value(args[0], scope)]
            return _union(dynamic, default)
        if name == "builtins.type" and len(args) == 1:
            out: list[_Val] = []
            for v in self.value(args[0], scope):
                out.extend(self.inst_attr(v.cls, v.exact, "__class__") if isinstance(v, _Inst)
                           else _OPAQUE)
            return _union(out)
        if name == "builtins.super":
            if args:
                return _union(_Super(v.cls) for v in self.value(args[0], scope)
                              if isinstance(v, _ClassRef)) or _OPAQUE
            owner = scope.owner()
            return (_Super(owner),) if owner is not None else _OPAQUE
        api = harmless.lookup(name)
        if api is not None and api.stores:
            return self.value(args[0], scope) if args else (_Opaque(origin=name),)
        return (_Opaque(origin=name),)

    def stores(self, v: _Val) -> bool:
        """Calling ``v`` keeps its callable arguments instead of calling them."""
        name = v.name if isinstance(v, _Lib) else v.origin if (
            isinstance(v, _Opaque) and v.attr is None) else None
        api = harmless.lookup(name) if name else None
        return api is not None and api.stores

    # ------------------------------------------------------------------ memo and limits

    def memo_run(self, key: object, run: Callable[[], _Work | None]) -> _Work | None:
        """Judge each body once; a body already being judged (recursion) adds nothing — its
        own judgement reports its work — and what depended on it is judged again later."""
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            self.low = min(self.low, self.active[key])
            return None
        index = len(self.active)
        if index + self.depth >= MAX_DEPTH:
            raise _TooDeep
        self.bodies += 1
        if self.bodies > MAX_BODIES:
            raise _TooMuch
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

    def module(self, scope: _ModuleScope) -> _Work | None:
        """The work a module does when it is imported. A local module is judged on its own
        (its import-time code reaches only what it imports itself, whoever imports it), and the
        verdict is kept for the run: a package ``__init__.py`` that imports the whole package
        is judged once, not once per file of the package."""
        if scope.path == self.path:
            return self.memo_run(("module", scope.path),
                                 lambda: self.block(scope.tree.body, scope, "module"))
        known = _known(scope.path, tuple(self.roots))
        if known is None:
            if scope.path in _judging:  # imported again while it runs: what it does is
                self.assumed.add(scope.path)  # reported where it is being judged
                return None
            self.judged[0] += 1
            if self.judged[0] > MAX_MODULES:
                raise _TooMuch
            judge = _Judge(scope.path, scope.path, self.roots, self.depth + len(self.active) + 1,
                           self.judged)
            _judging.add(scope.path)
            try:
                work = judge.module(judge.module_scope(scope.path, scope.tree) or scope)
            finally:
                _judging.discard(scope.path)
            judge.assumed.discard(scope.path)  # judged now, whatever it found
            known = _Verdict(work, tuple(judge.read.items()),
                             tuple(self.roots), tuple(judge.roots), tuple(judge.imported),
                             tuple(judge.tops.items()), judge.exact,
                             frozenset(judge.assumed) if work is None else frozenset())
            if sum(map(len, _verdicts.values())) >= _VERDICTS_KEPT:
                _verdicts.clear()
            _verdicts.setdefault(scope.path, []).append(known)
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

    def function(self, func: _Func) -> _Work | None:
        """The work calling a local function does (its body, whatever the arguments)."""
        def run() -> _Work | None:
            scope = self.func_scope(func)
            node = func.node
            if isinstance(node, ast.Lambda):
                return self.expr(node.body, scope, _Where(scope.path, None, ""))
            return self.block(node.body, scope, "function")
        return self.memo_run((func.node, id(func.scope)), run)

    def construct(self, cls: _Class) -> _Work | None:
        """The work making an instance of a local class does: ``__new__``, ``__init__`` and
        ``__post_init__`` of the class or its local bases, and every other dunder method and
        property, which run on the instance without an explicit call (``print(obj)``)."""
        def run() -> _Work | None:
            seen: set[str] = set()
            for k in self.mro(cls):
                if not isinstance(k, _Class):
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
                    found = self.function(_Func(method, k.body, k))
                    if found and name == "__init__":
                        return found
                    if found:
                        return (_Link("call", f"`{k.name}.{name}`", k.body.path, method.lineno,
                                      method.col_offset + 1),) + found
            return None
        return self.memo_run(("construct", cls.node), run)

    def block(self, body: Sequence[ast.stmt], scope: _Scope, level: str) -> _Work | None:
        for stmt in body:
            found = self.stmt(stmt, scope, level)
            if found:
                return found
        return None

    def stmt(self, stmt: ast.stmt, scope: _Scope, level: str) -> _Work | None:
        where = _Where(scope.path, stmt if level != "function" else None, _LEVEL_CONTEXT[level])
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return self.definition(stmt, scope, level)
        if isinstance(stmt, ast.ClassDef):
            return self.class_definition(stmt, scope, level)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            return self.import_(stmt, scope, where)
        if type(stmt) in _LOOPS and level != "function":
            return (where.link("work", _LOOPS[type(stmt)], stmt),)
        if isinstance(stmt, ast.If) and _is_guard(stmt.test):
            return self.block(stmt.orelse, scope, level)
        found = None
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            found = self.assignment(stmt, scope, where, level)
        elif isinstance(stmt, ast.Return) and stmt.value is not None:
            found = self.expr(stmt.value, scope, where) or self.escape(
                self.value(stmt.value, scope), stmt.value, where)
        elif isinstance(stmt, ast.Raise):
            for part in (stmt.exc, stmt.cause):
                if part is not None:
                    found = found or self.expr(part, scope, where) or self.escape(
                        self.value(part, scope), part, where)
        else:
            for expr in _expressions(stmt):
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

    def assignment(self, stmt: ast.Assign | ast.AnnAssign | ast.AugAssign, scope: _Scope,
                   where: _Where, level: str) -> _Work | None:
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
                               for v in self.value(node.value, scope) if isinstance(v, _Lib)]
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
                    if level == "class" or (isinstance(scope, _FuncScope)
                                            and node.id in scope.declared):
                        escapes = True
        if escapes:
            return self.escape(self.value(stmt.value, scope), stmt.value, where)
        return None

    def definition(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef, scope: _Scope,
                   level: str) -> _Work | None:
        """What ``def`` runs: decorators, default arguments, annotations — not the body."""
        inner = level == "function"
        args = stmt.args
        for default in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
            found = self.expr(default, scope, _Where(scope.path, None,
                                                     "" if inner else "default-argument"))
            if found:
                return found
        if not scope.module().future_annotations:
            notes = [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                            *(x for x in (args.vararg, args.kwarg) if x)]
                     if a.annotation is not None]
            for note in [*notes, *([stmt.returns] if stmt.returns is not None else [])]:
                found = self.expr(note, scope, _Where(scope.path, None,
                                                      "" if inner else "annotation"),
                                  passive=True)
                if found:
                    return found
        owner = scope.cls if isinstance(scope, _ClassScope) else None
        return self.decorate(stmt, (_Func(stmt, scope, owner),), scope, inner)

    def decorate(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                 subject: _Vals, scope: _Scope, inner: bool) -> _Work | None:
        """Decorators run bottom-up, each called with what the one below returned."""
        where = _Where(scope.path, None, "" if inner else "decorator")
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
            keeps = (_dotted(decorator) or "").endswith((".setter", ".getter", ".deleter"))
            if not keeps and not all(self.stores(v) for v in callee):
                found = self.escape(subject, decorator, where, name=stmt.name)
                if found:
                    return found
        return None

    def class_definition(self, stmt: ast.ClassDef, scope: _Scope, level: str) -> _Work | None:
        """What ``class`` runs: bases, keywords (a local metaclass), the body, local bases'
        ``__init_subclass__``, decorators."""
        inner = level == "function"
        where = _Where(scope.path, stmt if not inner else None, _LEVEL_CONTEXT[level])
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
            if isinstance(k, _Class) and "__init_subclass__" in k.methods:
                found = self.function(_Func(k.methods["__init_subclass__"], k.body, k))
                if found:
                    return (where.link("call", f"`{k.name}.__init_subclass__`", stmt),) + found
        found = self.block(stmt.body, cls.body, "function" if inner else "class")
        return found or self.decorate(stmt, (_ClassRef(cls),), scope, inner)

    def import_(self, stmt: ast.Import | ast.ImportFrom, scope: _Scope,
                where: _Where) -> _Work | None:
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

    def expr(self, node: ast.expr, scope: _Scope, where: _Where,
             passive: bool = False) -> _Work | None:
        """The work evaluating ``node`` does. ``passive``: its value is not handed on (an
        ``isinstance`` argument, an annotation, an index)."""
        if isinstance(node, ast.Call):
            return self.call(node, scope, where)
        if isinstance(node, ast.Lambda):  # the body runs when called; defaults run now
            for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d]]:
                found = self.expr(default, scope, where)
                if found:
                    return found
            return None
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            return self.comprehension(node, scope, where, passive)
        if isinstance(node, ast.Await) and where.context:
            return (where.link("work", "`await`", node),)
        if isinstance(node, ast.Subscript):
            found = self.expr(node.value, scope, where) or self.expr(node.slice, scope, where,
                                                                      passive=True)
            for v in () if found else self.value(node.value, scope):
                if isinstance(v, _ClassRef):  # ``Config[int]`` runs __class_getitem__
                    for k in self.mro(v.cls):
                        if isinstance(k, _Class) and "__class_getitem__" in k.methods:
                            method = k.methods["__class_getitem__"]
                            found = self.function(_Func(method, k.body, k))
                            if found:
                                return (where.link("call", f"`{k.name}.__class_getitem__`",
                                                   node),) + found
                            break
            return found
        if isinstance(node, ast.Compare):
            for part in [node.left, *node.comparators]:
                found = self.expr(part, scope, where, passive=True)
                if found:
                    return found
            return None
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                found = self.expr(child, scope, where, passive=passive and isinstance(
                    node, (ast.Tuple, ast.List, ast.Starred)))
                if found:
                    return found
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)) and not passive:
            items: list[ast.expr | None] = [*node.keys, *node.values] if isinstance(
                node, ast.Dict) else list(node.elts)
            parts = [p for p in items if p is not None]
            for part in parts:
                found = self.escape(self.value(part, scope), part, where)
                if found:
                    return found
        if isinstance(node, (ast.Yield, ast.YieldFrom)) and node.value is not None:
            return self.escape(self.value(node.value, scope), node.value, where)
        return None

    def comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
                      scope: _Scope, where: _Where, passive: bool) -> _Work | None:
        key = (node, id(scope))
        if key not in self.overlays:  # kept: values are cached by scope
            names = [n for gen in node.generators for n in _targets(gen.target)]
            self.overlays[key] = _Overlay(self, scope, names)
        inner = self.overlays[key]
        for index, gen in enumerate(node.generators):
            found = self.expr(gen.iter, scope if index == 0 else inner, where)
            for test in gen.ifs:
                found = found or self.expr(test, inner, where)
            if found:
                return found
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for part in parts:
            found = self.expr(part, inner, where) or (
                None if passive else self.escape(self.value(part, inner), part, where))
            if found:
                return found
        return None

    def call(self, node: ast.Call, scope: _Scope, where: _Where) -> _Work | None:
        found = self.expr(node.func, scope, where)
        if found:
            return found
        callee = self.value(node.func, scope)
        passive = bool(callee) and all(isinstance(v, _Lib) and v.name in harmless.PASSIVE
                                       for v in callee)
        args = [a.value if isinstance(a, ast.Starred) else a for a in node.args]
        args += [k.value for k in node.keywords]
        for arg in args:
            found = self.expr(arg, scope, where, passive=passive)
            if found:
                return found
        for v in callee:
            found = self.apply(v, node.func, node, scope, where)
            if found:
                return found
        if passive or all(self.stores(v) for v in callee):
            return None
        for arg in args:
            found = self.escape(self.value(arg, scope), arg, where)
            if found:
                return found
        return None

    def apply(self, v: _Val, func: ast.expr, call: ast.Call | None, scope: _Scope,
              where: _Where) -> _Work | None:
        """The work calling ``v`` does (``call`` is None for a decorator)."""
        shown = f"`{_show(func)}(...)`"
        site = call if call is not None else func
        synthetic = call if call is not None else ast.Call(func=func, args=[], keywords=[])
        if isinstance(v, _Lib):
            if v.name in _SYS_PATH and call is not None:
                return self.sys_path(v.name, call, scope, where)
            api = harmless.lookup(v.name)
            if api is None:
                same = _show(func) in (v.name, v.name.removeprefix("builtins."))
                detail = "" if same else f"`{v.name}` is not known to be harmless"
                return (where.link("work", shown, site, detail),)
            why = harmless.violation(api, synthetic)
            if why is None and v.name == "functools.partial" and synthetic.args:
                for target in self.value(synthetic.args[0], scope):
                    inner = harmless.lookup(target.name) if isinstance(target, _Lib) else None
                    if inner is not None:
                        why = why or harmless.violation(inner, synthetic, skip=1)
            return (where.link("work", shown, site, f"called{why}"),) if why else None
        if isinstance(v, _Func):
            found = self.function(v)
            return (where.link("call", shown, site),) + found if found else None
        if isinstance(v, _ClassRef):
            found = self.construct(v.cls)
            if found:
                return (where.link("call", shown, site),) + found
            return self.library_init(v.cls, synthetic, shown, site, where)
        if isinstance(v, _LibInit):
            api = harmless.lookup(v.name)
            why = harmless.violation(api, synthetic) if api is not None else (
                f"the constructor of `{v.name}` is not known to be harmless")
            if why:
                return (where.link("work", shown, site, why if api is None else f"called{why}"),)
            return None
        if isinstance(v, _Inst):
            return self.call_instance(v, shown, site, where)
        if isinstance(v, _Unknown):
            return (where.link("work", shown, site,
                               f"`{v.name}` cannot be resolved statically"),)
        if isinstance(v, _Opaque):
            return self.call_opaque(v, shown, site, where)
        return None  # a parameter: what the caller passed was judged there

    def library_init(self, cls: _Class, call: ast.Call, shown: str, site: ast.AST,
                     where: _Where) -> _Work | None:
        """A local class without its own ``__init__`` runs its library bases' constructor."""
        if any(isinstance(k, _Class) and "__init__" in k.methods for k in self.mro(cls)):
            return None
        for k in self.mro(cls):
            if isinstance(k, _Class):
                continue
            api = harmless.lookup(k.name) if isinstance(k, _Lib) else None
            why = harmless.violation(api, call) if api is not None else (
                f"the constructor of its base `{k.name}` is not known to be harmless")
            if why:
                return (where.link("work", shown, site, why if api is None else f"called{why}"),)
        return None

    def call_instance(self, v: _Inst, shown: str, site: ast.AST, where: _Where) -> _Work | None:
        """Calling an instance runs ``__call__`` (judged with the class) or, for an
        ``nn.Module``, its ``forward``."""
        for k in [v.cls] if v.exact else [v.cls, *self.subclasses(v.cls)]:
            for c in self.mro(k):
                if isinstance(c, _Class) and "forward" in c.methods:
                    found = self.function(_Func(c.methods["forward"], c.body, c))
                    if found:
                        return (where.link("call", shown, site),) + found
                    break
        return None

    def call_opaque(self, v: _Opaque, shown: str, site: ast.AST, where: _Where) -> _Work | None:
        if v.attr is not None:
            if v.attr in harmless.EFFECT_METHODS or (
                    v.origin is not None and v.origin.startswith("pathlib.")
                    and v.attr in harmless.PATH_EFFECT_METHODS):
                return (where.link("work", shown, site,
                                   f"`.{v.attr}(...)` does work on any object"),)
            candidates = [] if v.known else self.methods_named(v.attr)
        else:  # a local instance's __call__ was judged when it was made
            candidates = []
            if v.origin is not None and v.origin.startswith("torch.nn.") and not self.stores(v):
                # a torch.nn container runs the forward of whatever local module it holds
                candidates = self.methods_named("forward")
        for func in candidates:
            found = self.function(func)
            if found:
                return (where.link("call", shown, site),) + found
        return None

    def escape(self, vals: _Vals, node: ast.AST, where: _Where,
               name: str | None = None) -> _Work | None:
        """A value handed on may be called by whoever receives it."""
        for v in vals:
            found: _Work | None = None
            label = name or (_show(node) if isinstance(node, ast.expr) else "")
            if isinstance(v, _Lib):
                if not harmless.inert(v.name):
                    return (where.link("escape", f"`{v.name}`", node,
                                       "it is not known to be harmless to call"),)
                continue
            if isinstance(v, _Unknown):
                return (where.link("escape", f"`{v.name}`", node,
                                   "it cannot be resolved statically"),)
            if isinstance(v, _Func):
                found = self.function(v)
            elif isinstance(v, _ClassRef):
                found = self.construct(v.cls)
            elif isinstance(v, _Mod) and v.mod.path:  # any of its functions may be called
                scope = self.module_scope(v.mod.path)
                for member in list(scope.bindings) if scope is not None else []:
                    assert scope is not None
                    defined = [d for d in scope.own(member) or ()
                               if isinstance(d, (_Func, _ClassRef))]
                    found = found or self.escape(tuple(defined), node, where, member)
            if found:
                return (where.link("pass", f"`{label}`", node),) + found
        return None

    def sys_path(self, name: str, call: ast.Call, scope: _Scope, where: _Where) -> _Work | None:
        """``sys.path.insert(0, <folder>)``: imports after it also look in that folder, so it
        joins the search roots when the folder can be worked out statically."""
        shown = f"`{name}(...)`"
        args = call.args
        if name == "sys.path.extend":
            items = args[0].elts if args and isinstance(args[0], (ast.List, ast.Tuple)) else None
            paths = [self.static_path(e, scope) for e in items] if items is not None else [None]
        else:
            paths = [self.static_path(args[-1], scope) if args else None]
        if any(p is None for p in paths):
            return (where.link("work", shown, call,
                               "it adds a folder gradlint cannot work out statically, where "
                               "later imports would find files"),)
        position = len(self.roots)
        if name == "sys.path.insert" and args and isinstance(args[0], ast.Constant) and (
                isinstance(args[0].value, int)):
            position = max(0, min(args[0].value, len(self.roots)))
        for offset, path in enumerate(paths):
            assert path is not None
            if path not in self.roots:
                self.roots.insert(position + offset, path)
        return None

    def static_path(self, node: ast.expr, scope: _Scope, depth: int = 0) -> str | None:
        """A folder built from ``__file__``, constants and ``os.path``/``pathlib`` calls."""
        if depth > 20:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return os.path.abspath(node.value)
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return os.path.abspath(scope.path)
            holder: _Scope | None = scope
            while holder is not None and node.id not in holder.bindings:
                holder = holder.enclosing()
            bound = holder.bindings[node.id] if holder is not None else []
            if len(bound) == 1 and bound[0][0] == "expr" and isinstance(bound[0][1], ast.expr):
                assert holder is not None
                return self.static_path(bound[0][1], holder, depth + 1)
            return None
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            inner = self.static_path(node.value, scope, depth + 1)
            return os.path.dirname(inner) if inner else None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and (
                node.value.attr == "parents" and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, int)):
            inner = self.static_path(node.value.value, scope, depth + 1)
            for _ in range(node.slice.value + 1):
                inner = os.path.dirname(inner) if inner else None
            return inner
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left = self.static_path(node.left, scope, depth + 1)
            right = node.right
            if left and isinstance(right, ast.Constant) and isinstance(right.value, str):
                return os.path.normpath(os.path.join(left, right.value))
            return None
        if not isinstance(node, ast.Call):
            return None
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("resolve", "absolute"):
            inner = self.static_path(node.func.value, scope, depth + 1)
            return os.path.abspath(inner) if inner else None
        names = {v.name for v in self.value(node.func, scope) if isinstance(v, _Lib)}
        if len(names) != 1:
            return None
        name = names.pop()
        if name == "os.getcwd":
            return os.getcwd()
        parts = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str)
                 else self.static_path(a, scope, depth + 1) for a in node.args]
        if not parts or any(p is None for p in parts) or node.keywords:
            return None
        text = [p for p in parts if p is not None]
        if name in ("os.path.dirname",):
            return os.path.dirname(os.path.abspath(text[0]))
        if name in ("os.path.abspath", "os.path.realpath", "os.path.normpath",
                    "os.path.expanduser", "builtins.str", "os.fspath", "pathlib.Path",
                    "pathlib.PurePath"):
            joined = os.path.join(*text) if name.startswith("pathlib") else text[0]
            return os.path.abspath(os.path.expanduser(joined))
        if name == "os.path.join":
            return os.path.normpath(os.path.abspath(os.path.join(*text)))
        return None


@dataclass(frozen=True)
class _Verdict:
    """What importing a local module does, and what that rests on: the files it and the
    modules it imports are read from, and their folders (a new file can change what an import
    finds), each with its stat signature."""

    work: _Work | None
    files: tuple[tuple[str, tuple[int, int, int] | None], ...]
    roots_in: tuple[str, ...]  # the sys.path it was judged on
    roots: tuple[str, ...]  # sys.path after it ran (its sys.path.insert calls)
    imported: tuple[str, ...]  # local modules its import imported
    tops: tuple[tuple[str, modules.LocalModule | None], ...]  # where its imports were found
    exact: bool  # holds on ``roots_in`` only
    # no work found, on the assumption that these modules (being imported when it was judged,
    # in a cycle) do none either: it holds while they are being judged again or do none
    assumes: frozenset[str] = frozenset()

    def holds(self, roots: tuple[str, ...]) -> bool:
        """Whether it still holds, judged on ``roots``: on another sys.path only if the module
        does not change sys.path and its imports are all found where they were."""
        if roots != self.roots_in and (self.exact or self.roots != self.roots_in):
            return False
        if not all(modules.top_level(name, roots) == found for name, found in self.tops):
            return False
        if not all(modules.signature(path) == sig for path, sig in self.files):
            return False
        return all(path in _judging or any(known.work is None and not known.assumes
                                           for known in _verdicts.get(path, ()))
                   for path in self.assumes)


def _known(path: str, roots: tuple[str, ...]) -> _Verdict | None:
    """A verdict on importing the module at ``path`` that holds on this sys.path."""
    return next((v for v in _verdicts.get(path, ()) if v.holds(roots)), None)


_VERDICTS_KEPT = 4096
_verdicts: dict[str, list[_Verdict]] = {}  # by module
_judging: set[str] = set()  # modules whose import is being judged (by this judge or above)


class _TooDeep(Exception):
    """Calls nested deeper than MAX_DEPTH."""


class _TooMuch(Exception):
    """More than MAX_BODIES function bodies for one file."""


# ---------------------------------------------------------------------------- model or not


def _imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for stmt in modules.module_statements(tree.body):
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            yield stmt


def _imports_torch(tree: ast.Module) -> bool:
    for stmt in _imports(tree):
        names = [a.name for a in stmt.names] if isinstance(stmt, ast.Import) else (
            [stmt.module] if stmt.module and not stmt.level else [])
        if any(n.split(".")[0] in TORCH_PACKAGES for n in names):
            return True
    return False


def _model_name(name: str) -> bool:
    """Spelled like a model base: ``nn.Module``, ``Sequential``, ``PreTrainedModel``."""
    last = name.rsplit(".", 1)[-1]
    return last in MODULE_BASES or last.endswith(("Model", "Module"))


def _library_model(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return (name.startswith(("torch.nn.", "nn.")) and last[:1].isupper()) or (
        name.startswith(MODEL_LIBRARIES) and last[:1].isupper()
        and ("Model" in last or "For" in last))


class _Models:
    """Whether a file defines or builds an ``nn.Module`` (is worth importing at all)."""

    def __init__(self, judge: _Judge, scope: _ModuleScope) -> None:
        self.judge = judge
        self.scope = scope
        self.classes: dict[_Class, bool] = {}

    def is_model_class(self, cls: _Class) -> bool:
        if cls in self.classes:
            return self.classes[cls]
        self.classes[cls] = False
        found = False
        for base, vals in zip(cls.node.bases, self.judge.bases(cls), strict=True):
            text = _dotted(base) or ""
            if _model_name(text) or text.startswith(("nn.", "torch.nn.")):
                found = True
            for v in vals:
                if isinstance(v, _Lib) and (_library_model(v.name) or _model_name(v.name)):
                    found = True
                elif isinstance(v, _ClassRef) and self.is_model_class(v.cls):
                    found = True
        self.classes[cls] = found
        return found

    def builds(self, value: ast.expr | None, scope: _Scope, depth: int = 0) -> bool:
        """``nn.Sequential(...)``, ``Net()``, ``resnet50()``, also behind ``.to(device)``, a
        class method of a model class (``BertModel.from_pretrained``), or a local function
        returning one."""
        while isinstance(value, ast.Call):
            receiver = value.func.value if isinstance(value.func, ast.Attribute) else None
            receivers = self.judge.value(receiver, scope) if receiver is not None else ()
            for v in [*self.judge.value(value.func, scope), *receivers]:
                if isinstance(v, _ClassRef) and self.is_model_class(v.cls):
                    return True
                if isinstance(v, _Lib) and (_library_model(v.name)
                                            or harmless.builds_model(v.name)):
                    return True
                if isinstance(v, _Func) and depth < 2 and not isinstance(v.node, ast.Lambda):
                    inner = self.judge.func_scope(v)
                    if any(isinstance(n, ast.Return) and self.builds(n.value, inner, depth + 1)
                           for n in ast.walk(v.node)):
                        return True
            value = value.func.value if isinstance(value.func, ast.Attribute) else None
        return False

    def found(self) -> bool:
        tree = self.scope.tree
        for stmt in modules.module_statements(tree.body):
            if isinstance(stmt, ast.ClassDef):
                if self.is_model_class(self.judge.class_of(stmt, self.scope)):
                    return True
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and self.builds(stmt.value,
                                                                               self.scope):
                return True
        return False


# ---------------------------------------------------------------------------- the verdict


def _render(work: _Work, judge: _Judge) -> str:
    """``module-level call `main(...)` at line 9 runs at import and calls `open(...)` at line
    4``; ``importing train.py runs its module-level `for` loop at line 12``."""
    def adj(link: _Link) -> str:
        return f"{link.context} " if link.context else ""

    def noun(link: _Link) -> str:
        if link.kind == "import":
            return f"import of {judge.show_path(link.target)}"
        if link.kind in ("pass", "escape"):
            return f"{link.what} handed on"
        return f"call {link.what}" if link.what.endswith("(...)`") else link.what

    def verb(link: _Link) -> str:
        if link.kind == "import":
            return f"imports {judge.show_path(link.target)}"
        if link.kind in ("pass", "escape"):
            return f"hands on {link.what}"
        return f"calls {link.what}" if link.what.endswith("(...)`") else f"runs {link.what}"

    def runs(link: _Link) -> str:
        return "may be called at import" if link.kind in ("pass", "escape") else (
            "runs at import")

    first = work[0]
    if first.kind == "import":  # the next link is at the top level of the imported module
        text, here, state = f"importing {judge.show_path(first.target)} runs", first.target, (
            "module")
    else:
        text = f"{adj(first)}{noun(first)} at line {first.line} {runs(first)}"
        here, state = first.path, "head"
    for link in work[1:]:
        if state == "module":
            text += f" its {adj(link)}{noun(link)} at line {link.line}"
            if link.kind in ("pass", "escape"):
                text += ", which may be called at import"
        else:
            where = f"line {link.line}"
            if link.path != here:
                where += f" of {judge.show_path(link.path)}"
            text += f"{' and' if state == 'head' else ', which'} {verb(link)} at {where}"
        # after a hand-on, what follows is what the function handed on does
        here, state = link.path, "head" if link.kind == "pass" else "chain"
        if link.kind == "import":
            text += ", which runs"
            here, state = link.target, "module"
    last = work[-1]
    return f"{text} ({last.detail})" if last.detail else text


def _located_error(source: str, err: SyntaxError | ValueError) -> Prefilter:
    line = getattr(err, "lineno", None)
    col = getattr(err, "offset", None)
    if line is None and "\0" in source:  # null bytes: point at the first one
        index = source.index("\0")
        line = source.count("\n", 0, index) + 1
        col = index - source.rfind("\n", 0, index)
    reason = getattr(err, "msg", None) or str(err)
    return Prefilter("syntax-error", line or 1, max(col or 1, 1), reason)


def _has_local_imports(judge: _Judge, tree: ast.Module, path: str) -> bool:
    return judge.resolving and any(
        modules.resolve_import(path, stmt, judge.roots) for stmt in _imports(tree))


def _extend_roots(judge: _Judge, scope: _ModuleScope) -> None:
    """Apply the file's top-level ``sys.path.insert(...)`` calls before anything is resolved,
    so the modules they make importable count as local from the start (the judgement of the
    statements themselves comes later, in order)."""
    where = _Where(scope.path, None, "")
    for stmt in modules.module_statements(scope.tree.body):
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            for v in judge.value(stmt.value.func, scope):
                if isinstance(v, _Lib) and v.name in _SYS_PATH:
                    judge.sys_path(v.name, stmt.value, scope, where)


def prefilter_source(source: str, filename: str = "<string>", display: str | None = None
                     ) -> Prefilter:
    """Decide statically whether importing this source is worth it and safe. ``filename`` is
    where it lives (its local imports are found from there); ``display`` is that path as the
    report shows it (local modules are named beside it)."""
    try:
        tree = modules.parse_source(source, filename)
    except (SyntaxError, ValueError) as err:
        return _located_error(source, err)
    except (RecursionError, MemoryError):
        return Prefilter("syntax-error", 1, 1, "source is too deeply nested to parse")
    judge = _Judge(filename, display if display is not None else filename)
    try:
        return _verdict(judge, tree, filename)
    except _TooDeep:
        reason = f"calls nest more than {MAX_DEPTH} deep, too deep to follow statically"
    except (_TooMuch, RecursionError):
        reason = "too much code runs at import to follow statically"
    return Prefilter("does-work", 1, 1, reason, judge.path, 1)


def _verdict(judge: _Judge, tree: ast.Module, filename: str) -> Prefilter:
    if judge.resolving:
        modules.remember(filename, tree)
    scope = judge.module_scope(filename, tree)
    assert scope is not None
    if judge.resolving:
        _extend_roots(judge, scope)
    if not _imports_torch(tree) and not _has_local_imports(judge, tree, filename):
        return Prefilter("no-model", reason="does not import torch")
    if not _Models(judge, scope).found():
        return Prefilter("no-model", reason="defines or builds no nn.Module")
    _judging.add(scope.path)
    try:
        work = judge.module(scope)
    finally:
        _judging.discard(scope.path)
    if not work:
        return Prefilter("model")
    first, last = work[0], work[-1]
    return Prefilter("does-work", first.line, first.col, _render(work, judge),
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
