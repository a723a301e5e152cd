"""Where a file's imports lead, found statically: the local files an import statement runs.

gradlint imports a user's file as pytest does (gradlint/load/importing.py): the file's folder
first on ``sys.path``, then the folder above its top package (a file inside packages, folders
with ``__init__.py``, is imported by its dotted name, so relative imports work), then the
project's root (the nearest folder above holding ``pyproject.toml``, ``setup.py`` or
``setup.cfg``) and its ``src/`` folder; ``PYTHONPATH`` is on every worker's path. An import
that finds a ``.py`` file or a package under those folders runs that file's code (and every
package ``__init__.py`` on the way), so the pre-filter must judge that code before importing
anything; an import that finds nothing there reaches an installed package (site-packages,
stdlib) and is not local.

Nothing here imports or runs the files: it looks at the file system and parses with ``ast``.
Parsed files are cached by path and stat signature, so a tree of files that share a helper
module parses it once. The resolver is torch-free: the pre-filter (gradlint/load/prefilter/),
which runs in the parent process, uses it to find the local modules whose code it judges.
"""

from __future__ import annotations

import ast
import io
import keyword
import os
import sys
import tokenize
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

# bytes of source whose syntax trees are kept (a tree takes ~10x its source): a run over a
# larger tree re-parses what fell out, the parent process never grows further
_CACHE_BYTES = 8 << 20


@dataclass(frozen=True)
class LocalModule:
    """A local module an import runs: its dotted name and the file that runs.

    For a package ``path`` is its ``__init__.py`` and ``search`` the folder its submodules are
    found in; a namespace package (a folder without ``__init__.py``) has ``path == ""`` because
    importing it runs nothing."""

    name: str
    path: str
    search: tuple[str, ...] = ()

    @property
    def package(self) -> bool:
        return bool(self.search)


# ---------------------------------------------------------------------------- parsing


_parsed: OrderedDict[str, tuple[tuple[int, int, int], ast.Module | None]] = OrderedDict()
_parsed_bytes = 0


def read_source(path: str) -> str:
    """The text of a Python file as the interpreter decodes it (coding cookie, BOM)."""
    with open(path, "rb") as handle:
        data = handle.read()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    source = data.decode(encoding)
    return source[1:] if source.startswith("\ufeff") else source


def parse_source(source: str, filename: str) -> ast.Module:
    """``ast.parse`` without the warnings (invalid escapes) that are not the pre-filter's. The
    tree remembers whether the source has a ``:=`` at all (most have none: no need to look)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(source, filename)
    tree.gradlint_walrus = ":=" in source  # type: ignore[attr-defined]
    return tree


def signature(path: str) -> tuple[int, int, int] | None:
    """What tells a file changed (mtime, size, inode); None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def parse(path: str) -> ast.Module | None:
    """The syntax tree of a local module, or None when it cannot be read or parsed (importing
    it then raises before any of its code runs). Cached while the file is unchanged."""
    path = os.path.abspath(path)
    key = signature(path)
    if key is None:
        return None
    cached = _parsed.get(path)
    if cached is not None and cached[0] == key:
        _parsed.move_to_end(path)
        return cached[1]
    try:
        tree: ast.Module | None = parse_source(read_source(path), path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, LookupError, RecursionError,
            MemoryError):
        tree = None
    _keep(path, key, tree)
    return tree


def _keep(path: str, key: tuple[int, int, int], tree: ast.Module | None) -> None:
    """Cache a tree, dropping the least recently used ones beyond the byte budget."""
    global _parsed_bytes
    old = _parsed.pop(path, None)
    if old is not None:
        _parsed_bytes -= old[0][1]
    _parsed[path] = (key, tree)
    _parsed_bytes += key[1]
    while _parsed_bytes > _CACHE_BYTES and len(_parsed) > 1:
        _, (dropped, _) = _parsed.popitem(last=False)
        _parsed_bytes -= dropped[1]


def remember(path: str, tree: ast.Module) -> None:
    """Cache a tree the caller parsed already (the checked file), so its imports reuse it."""
    path = os.path.abspath(path)
    key = signature(path)
    if key is not None:
        _keep(path, key, tree)


# ---------------------------------------------------------------------------- search roots


def _is_package_dir(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "__init__.py"))


def package_root(path: str) -> str | None:
    """The folder of the top package holding ``path`` (walking up through ``__init__.py``
    folders); for a file outside packages that imports relatively (``from .utils import
    GRN`` in ``models/`` without ``__init__.py``, as ``import models.net`` from the folder above
    runs it) the namespace folder its dots reach; else None."""
    folder = os.path.dirname(os.path.abspath(path))
    top = None
    while _is_package_dir(folder):
        top = folder
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return top if top is not None else _namespace_root(path)


def _namespace_root(path: str) -> str | None:
    """The folder ``path``'s deepest relative import reaches (``.`` its own folder, ``..`` the
    one above), when every folder from there down is a name an import can spell."""
    tree = parse(path)
    level = max((n.level for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)),
                default=0) if tree is not None else 0
    if level == 0:
        return None
    folder = _relative_base(path, level)
    here = os.path.dirname(os.path.abspath(path))
    if folder is None or os.path.dirname(folder) == folder:
        return None
    rel = os.path.relpath(here, os.path.dirname(folder)).split(os.sep)
    return folder if all(p.isidentifier() and not keyword.iskeyword(p) for p in rel) else None


def python_files(root: str, here: str, limit: int, descend: Callable[[str], bool]
                 ) -> Iterator[str]:
    """The ``.py`` files under ``root`` but ``here``, folders in sorted order, the first
    ``limit`` of them (a larger tree is not read further); ``descend(name)``: whether to
    look into a subfolder."""
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if descend(d))
        for name in sorted(files):
            full = os.path.join(folder, name)
            if not name.endswith(".py") or full == here:
                continue
            seen += 1
            if seen > limit:
                return
            yield full


PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")


def project_root(path: str) -> str | None:
    """The project's root folder (pytest's rootdir): the nearest folder above ``path`` holding
    ``pyproject.toml``, ``setup.py`` or ``setup.cfg``; None when there is none. A script in
    ``examples/`` importing the project's package finds it from there, as it does once the
    project is installed."""
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        if any(os.path.isfile(os.path.join(folder, name)) for name in PROJECT_FILES):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def import_roots(path: str) -> tuple[str, ...]:
    """The folders gradlint puts first on ``sys.path`` to import ``path``, in order: for a file
    in a package the folder above its top package (as ``python -m pkg.model`` has it), then the
    file's folder (sibling imports of scripts), the project's root and its ``src/`` (a ``src``
    layout); installed-package folders are never among them. The package's folder goes first
    so that a script beside the file named like its package (``style/style.py`` in the package
    ``style``) cannot shadow the package the dotted import goes through."""
    here = os.path.dirname(os.path.abspath(path))
    top = package_root(path)
    roots = [os.path.dirname(top), here] if top is not None else [here]
    project = project_root(path)
    if project is not None:
        roots.append(project)
        if os.path.isdir(os.path.join(project, "src")):
            roots.append(os.path.join(project, "src"))
    return tuple(dict.fromkeys(r for r in roots if r == here or not _installed(r)))


def _installed(folder: str) -> bool:
    """A folder of the interpreter's own or installed packages (never local)."""
    parts = set(os.path.normpath(folder).split(os.sep))
    if parts & {"site-packages", "dist-packages"}:
        return True
    prefixes = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return any(folder == p or folder.startswith(p + os.sep) for p in prefixes)


def search_roots(path: str) -> tuple[str, ...]:
    """The folders an absolute import in the checked file ``path`` is looked up in, in the
    order Python looks: ``import_roots`` (the loader puts them first on ``sys.path``), then
    ``PYTHONPATH`` (minus installed-package folders)."""
    roots = list(import_roots(path))
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry:
            folder = os.path.abspath(entry)
            if os.path.isdir(folder) and not _installed(folder):
                roots.append(folder)
    return tuple(dict.fromkeys(roots))


# ---------------------------------------------------------------------------- resolving


def _find_in(folders: Sequence[str], name: str, dotted: str) -> LocalModule | None:
    """Python's path-based finder for one name: per folder a package beats a module file
    beats a namespace folder; namespace portions count only when no folder has more."""
    portions: list[str] = []
    for folder in folders:
        base = os.path.join(folder, name)
        is_dir = os.path.isdir(base)
        if is_dir and os.path.isfile(os.path.join(base, "__init__.py")):
            return LocalModule(dotted, os.path.join(base, "__init__.py"), (base,))
        if os.path.isfile(base + ".py"):
            return LocalModule(dotted, base + ".py")
        if is_dir:
            portions.append(base)
    if portions:
        return LocalModule(dotted, "", tuple(portions))
    return None


def find_module(name: str, roots: Sequence[str]) -> list[LocalModule] | None:
    """Every local module ``import name`` runs, outermost package first (``a``, ``a.b``,
    ``a.b.c``); None when ``name`` is not local (an installed package, or not found — then the
    import fails without running local code). A local ``typing.py`` does not shadow the
    standard library's ``typing`` once that is loaded (it is, in any process running torch);
    one named like a standard module not loaded yet does, and counts as local."""
    if top_level(name, roots) is None:
        return None
    chain: list[LocalModule] = []
    folders: Sequence[str] = roots
    dotted = ""
    for part in name.split("."):
        if not part:
            return None
        dotted = f"{dotted}.{part}" if dotted else part
        found = _find_in(folders, part, dotted)
        if found is None:
            return chain or None  # ``a`` local but ``a.b`` missing: the import fails after a
        chain.append(found)
        if not found.package:
            break
        folders = found.search
    return chain


def top_level(name: str, roots: Sequence[str]) -> LocalModule | None:
    """Where the first part of the absolute import ``name`` is found under ``roots`` (None: not
    local). Two ``sys.path`` orders on which every name a module imports has the same top level
    resolve all of that module's imports alike."""
    top = name.partition(".")[0]
    if top in sys.builtin_module_names or (top in sys.stdlib_module_names
                                           and top in sys.modules):
        return None  # Python finds a loaded stdlib module in sys.modules before any folder
    return _find_in(roots, top, top) if top else None


def package_chain(folder: str) -> list[LocalModule]:
    """The packages from the top package down to ``folder`` (inclusive), as modules that run
    their ``__init__.py``; a folder without ``__init__.py`` counts as a namespace package."""
    folders: list[str] = [folder]
    while _is_package_dir(folders[-1]):
        parent = os.path.dirname(folders[-1])
        if parent == folders[-1] or not _is_package_dir(parent):
            break
        folders.append(parent)
    folders.reverse()
    names: list[str] = []
    chain = []
    for f in folders:
        names.append(os.path.basename(f))
        init = os.path.join(f, "__init__.py")
        chain.append(LocalModule(".".join(names), init if os.path.isfile(init) else "", (f,)))
    return chain


def _relative_base(importer: str, level: int) -> str | None:
    """The folder ``level`` dots refer to from ``importer`` (``.`` its own folder)."""
    folder = os.path.dirname(os.path.abspath(importer))
    for _ in range(level - 1):
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
    return folder


def resolve_module(importer: str, module: str | None, level: int = 0,
                   roots: Sequence[str] | None = None) -> list[LocalModule] | None:
    """The local modules ``import module`` / ``from <level dots>module import ...`` in the file
    ``importer`` runs, outermost first; the last one is the module itself. None when the module
    is not local. ``roots`` defaults to the importer's own ``search_roots`` (as if it were the
    checked file); modules imported by a checked file are resolved with the checked file's
    roots, since it is the checked file's ``sys.path`` they run under."""
    if level == 0:
        if not module:
            return None
        return find_module(module, search_roots(importer) if roots is None else roots)
    base = _relative_base(importer, level)
    if base is None:
        return None
    chain = package_chain(base)
    if not module:
        return chain
    for part in module.split("."):
        found = _find_in(chain[-1].search, part, f"{chain[-1].name}.{part}")
        if found is None:
            return None
        chain.append(found)
        if not found.package:
            break
    return chain


def resolve_import(importer: str, node: ast.Import | ast.ImportFrom,
                   roots: Sequence[str] | None = None) -> list[LocalModule]:
    """Every local module the import statement ``node`` in ``importer`` runs, in order, each
    once: packages' ``__init__.py`` on the way, the module, and for ``from pkg import name`` the
    submodule ``pkg/name.py`` when there is one (``from pkg import *`` imports the submodules
    listed in ``pkg.__all__``)."""
    found: list[LocalModule] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            found.extend(resolve_module(importer, alias.name, 0, roots) or ())
    else:
        chain = resolve_module(importer, node.module, node.level, roots) or []
        found.extend(chain)
        if chain and chain[-1].package:
            names = [a.name for a in node.names]
            if names == ["*"]:
                names = list(_declared_all(chain[-1]) or ())
            for name in names:
                sub = _find_in(chain[-1].search, name, f"{chain[-1].name}.{name}")
                if sub is not None:
                    found.append(sub)
    unique: dict[tuple[str, str], LocalModule] = {}
    for mod in found:
        unique.setdefault((mod.name, mod.path), mod)
    return list(unique.values())


def module_file(importer: str, module: str | None, level: int = 0,
                roots: Sequence[str] | None = None) -> str | None:
    """Which local file ``import module`` (or its relative form) in ``importer`` resolves to:
    the module's ``.py`` or package ``__init__.py``; None when it is not local or a namespace
    package."""
    chain = resolve_module(importer, module, level, roots)
    return chain[-1].path or None if chain else None


def submodule(mod: LocalModule, name: str) -> LocalModule | None:
    """``pkg.name`` when ``mod`` is a package with a submodule ``name``."""
    return _find_in(mod.search, name, f"{mod.name}.{name}") if mod.package else None


# ---------------------------------------------------------------------------- names


def module_statements(body: Iterable[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a module or class body that bind names when it runs: nested blocks
    (if/try/for/with/match) included, function and class bodies not."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        nested: list[ast.stmt] = list(getattr(stmt, "body", []))
        for holder in getattr(stmt, "handlers", []) + getattr(stmt, "cases", []):
            nested.extend(holder.body)
        nested += getattr(stmt, "orelse", []) + getattr(stmt, "finalbody", [])
        yield from module_statements(nested)


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _target_names(elt)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def bound_names(tree: ast.Module) -> list[str]:
    """Names a module binds at its top level (imports, defs, classes, assignment, loop and
    ``with`` targets), in source order, without those a ``from x import *`` adds."""
    names: list[str] = []
    for stmt in module_statements(tree.body):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(stmt.name)
        elif isinstance(stmt, ast.Import):
            names.extend(a.asname or a.name.partition(".")[0] for a in stmt.names)
        elif isinstance(stmt, ast.ImportFrom):
            names.extend(a.asname or a.name for a in stmt.names if a.name != "*")
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                names.extend(_target_names(target))
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
            names.extend(_target_names(stmt.target))
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            names.extend(_target_names(stmt.target))
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None:
                    names.extend(_target_names(item.optional_vars))
    return list(dict.fromkeys(names))


def _static_all(tree: ast.Module) -> list[str] | None:
    """``__all__`` when every assignment to it is a list/tuple of string constants (``=``,
    ``+=``, ``.extend``/``.append``); None when it is absent or computed."""
    found: list[str] | None = None

    def strings(node: ast.expr) -> list[str] | None:
        if isinstance(node, (ast.List, ast.Tuple)) and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            return [e.value for e in node.elts]  # type: ignore[attr-defined]
        return None

    for stmt in module_statements(tree.body):
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if not any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                continue
            value = strings(stmt.value) if stmt.value is not None else None
            if value is None:
                return None
            found = (found or []) + value if isinstance(stmt, ast.AugAssign) else value
        elif (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
              and isinstance(stmt.value.func, ast.Attribute)
              and isinstance(stmt.value.func.value, ast.Name)
              and stmt.value.func.value.id == "__all__"):
            args = stmt.value.args
            if stmt.value.func.attr == "extend" and len(args) == 1 and strings(args[0]) is not None:
                found = (found or []) + (strings(args[0]) or [])
            elif (stmt.value.func.attr == "append" and len(args) == 1
                  and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
                found = (found or []) + [args[0].value]
            else:
                return None
    return found


def _declared_all(mod: LocalModule) -> list[str] | None:
    tree = parse(mod.path) if mod.path else None
    return _static_all(tree) if tree is not None else None


def star_names(path: str, roots: Sequence[str] | None = None) -> tuple[str, ...]:
    """The names ``from m import *`` binds, where ``path`` is m's file: ``__all__`` when it is
    static, else every public name m binds at its top level, following m's own star imports of
    local modules. Names a star import of an installed package brings cannot be known without
    importing it and are not listed."""
    roots = search_roots(path) if roots is None else roots
    seen: set[str] = set()

    def names_of(file: str) -> list[str]:
        file = os.path.abspath(file)
        if file in seen:
            return []
        seen.add(file)
        tree = parse(file)
        if tree is None:
            return []
        declared = _static_all(tree)
        if declared is not None:
            return declared
        names = [n for n in bound_names(tree) if not n.startswith("_")]
        for stmt in module_statements(tree.body):
            if isinstance(stmt, ast.ImportFrom) and [a.name for a in stmt.names] == ["*"]:
                chain = resolve_module(file, stmt.module, stmt.level, roots)
                if chain and chain[-1].path:
                    names.extend(names_of(chain[-1].path))
        return names

    return tuple(dict.fromkeys(names_of(path)))
