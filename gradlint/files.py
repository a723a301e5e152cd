"""Which files to look at, and which of them are safe and worth importing.

Importing a file runs it, so the decision is made statically with ``ast``: a file is imported
only when it imports torch, defines or builds an ``nn.Module``, and does no work at import
(loops, ``with`` blocks, calls beyond building modules and configs). A training script without
an ``if __name__ == "__main__":`` guard must never be started by accident. Never import torch
or user code here: this module runs before anything is loaded and must stay fast.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Literal

SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__", "build", "dist",
                       "node_modules"})
VENV_NAMES = frozenset({"venv", ".venv", "env"})
TORCH_PACKAGES = frozenset({"torch", "transformers"})
MODULE_BASES = frozenset({"Module", "Sequential", "ModuleList", "ModuleDict"})
MODEL_LIBRARIES = ("transformers.", "torchvision.models.", "timm.")
# functions that build configs/tensors or set up the process, never start training
HARMLESS_CALLS = frozenset({
    "torch.manual_seed", "torch.set_default_dtype", "torch.set_default_device", "torch.device",
    "torch.dtype", "torch.randn", "torch.zeros", "torch.ones", "torch.tensor", "torch.empty",
    "torch.arange", "torch.rand", "torch.randint", "torch.linspace", "torch.full", "torch.eye",
    "torch.cuda.is_available", "torch.cuda.device_count", "torch.backends.mps.is_available",
    "logging.getLogger", "getLogger", "logging.basicConfig", "TypeVar", "namedtuple",
    "collections.namedtuple", "dataclass", "dataclasses.dataclass", "field", "dataclasses.field",
    "partial", "functools.partial", "cast", "typing.cast", "dict", "list", "tuple", "set",
    "frozenset", "range", "len", "int", "float", "str", "bool", "min", "max", "abs", "round",
    "sum", "sorted", "zip", "enumerate", "isinstance", "hasattr", "getattr", "print",
    "os.environ.get", "os.getenv", "os.path.join", "os.path.dirname", "os.path.abspath",
    "os.path.basename", "os.path.realpath", "os.path.exists", "sys.path.insert",
    "sys.path.append", "warnings.filterwarnings", "warnings.simplefilter",
})
# methods that only move or convert a tensor/module (harmless on any receiver)
MODULE_METHODS = frozenset({"to", "eval", "cpu", "float", "double", "half", "bfloat16"})
# methods harmless on a value built in the same expression (``Path(__file__).resolve()``);
# not on a bare name, where ``requests.get`` would be a download
VALUE_METHODS = frozenset({"format", "join", "resolve", "absolute", "expanduser", "joinpath",
                           "with_suffix", "get", "split", "strip", "lower", "upper", "replace",
                           "keys", "values", "items", "copy"})


@dataclass(frozen=True)
class SourceFile:
    """A file to lint; ``explicit`` files were named by the user, not found by walking."""

    path: str
    explicit: bool


@dataclass(frozen=True)
class Prefilter:
    """The static verdict on one file, and where the problem is when there is one."""

    verdict: Literal["model", "no-model", "does-work", "syntax-error"]
    line: int = 1
    col: int = 1
    reason: str = ""


# ---------------------------------------------------------------------------- finding files


def _is_venv(path: str, name: str) -> bool:
    if os.path.isfile(os.path.join(path, "pyvenv.cfg")):
        return True
    return name in VENV_NAMES and (
        os.path.exists(os.path.join(path, "bin", "python"))
        or os.path.exists(os.path.join(path, "Scripts", "python.exe")))


def _excluded(rel: str, path: str, patterns: Sequence[str]) -> bool:
    """A pattern matches the path relative to the walked root, the joined path, or any part."""
    rel = rel.replace(os.sep, "/")
    parts = rel.split("/")
    joined = path.replace(os.sep, "/")
    return any(fnmatch(rel, p) or fnmatch(joined, p) or any(fnmatch(part, p) for part in parts)
               for p in patterns)


def _walk(root: str, patterns: Sequence[str]) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        keep = []
        for name in sorted(dirnames):
            full = os.path.join(dirpath, name)
            if (name.startswith(".") or name in SKIP_DIRS or _is_venv(full, name)
                    or _excluded(os.path.relpath(full, root), full, patterns)):
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if (name.endswith(".py") and os.path.isfile(full)  # not a dangling symlink
                    and not _excluded(os.path.relpath(full, root), full, patterns)):
                yield full


def find_source_files(paths: Sequence[str], exclude: Sequence[str] = ()
                      ) -> tuple[list[SourceFile], list[str]]:
    """Expand files and directories into .py files (sorted, deduplicated, deterministic order).

    Returns (files, missing) where missing lists paths that do not exist. ``exclude`` applies
    to walked files only: a file the user names is wanted. Named files that are not ``.py``
    (stubs, other languages passed by pre-commit) cannot be imported and are left out.
    """
    patterns = [p.rstrip("/").removeprefix("./") for p in exclude if p.strip("/")]
    found: dict[str, SourceFile] = {}
    missing: list[str] = []
    for given in paths:  # keyed by the real path: a symlinked file is checked once
        if os.path.isdir(given):  # symlinked folders are not followed (no cycles)
            for path in _walk(given, patterns):
                found.setdefault(os.path.normcase(os.path.realpath(path)),
                                 SourceFile(path, False))
        elif os.path.isfile(given):
            if given.endswith(".py"):  # explicit wins over the same file found by walking
                found[os.path.normcase(os.path.realpath(given))] = SourceFile(given, True)
        elif given not in missing:
            missing.append(given)
    files = sorted(found.values(), key=lambda f: path_order(f.path))
    return files, missing


def path_order(path: str) -> tuple[list[str], str]:
    """Folder by folder, so ``a/z.py`` comes before ``a/b/c.py``'s siblings deterministically."""
    return os.path.normpath(path).split(os.sep), path


# ---------------------------------------------------------------------------- the pre-filter


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


def _children(stmt: ast.stmt) -> list[ast.stmt]:
    """The statements nested in a compound statement, in source order (none for def/class)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    nested: list[ast.stmt] = list(getattr(stmt, "body", []))
    for holder in getattr(stmt, "handlers", []) + getattr(stmt, "cases", []):
        nested.extend(holder.body)
    return nested + getattr(stmt, "orelse", []) + getattr(stmt, "finalbody", [])


def _module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement run at import time, in source order (not inside def/class bodies)."""
    for stmt in body:
        yield stmt
        yield from _module_statements(_children(stmt))


class _Names:
    """Import aliases of one file, so ``from torch.nn import Module as M`` is recognised."""

    def __init__(self, statements: list[ast.stmt]) -> None:
        self.aliases: dict[str, str] = {}
        self.torch = False
        for stmt in statements:
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    self.torch |= alias.name.split(".")[0] in TORCH_PACKAGES
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
            elif isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
                self.torch |= stmt.module.split(".")[0] in TORCH_PACKAGES
                for alias in stmt.names:
                    self.aliases[alias.asname or alias.name] = f"{stmt.module}.{alias.name}"

    def resolve(self, dotted: str) -> str:
        head, sep, rest = dotted.partition(".")
        full = self.aliases.get(head, head)
        return f"{full}{sep}{rest}"

    def under_nn(self, dotted: str) -> bool:
        return any(d.startswith(("nn.", "torch.nn.")) for d in (dotted, self.resolve(dotted)))

    def library_model(self, dotted: str) -> bool:
        """A class from a model library (``transformers.LlamaForCausalLM``)."""
        full = self.resolve(dotted)
        last = full.rsplit(".", 1)[-1]
        return full.startswith(MODEL_LIBRARIES) and last[:1].isupper() and (
            "Model" in last or "For" in last)


def _module_classes(statements: list[ast.stmt], names: _Names) -> set[str]:
    """Classes of this file that are nn.Modules, following bases defined in the same file."""
    classes = [s for s in statements if isinstance(s, ast.ClassDef)]
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for cls in classes:
            if cls.name in found:
                continue
            for base in filter(None, map(_dotted, cls.bases)):
                last = base.rsplit(".", 1)[-1]
                if (base in found or last in MODULE_BASES or last.endswith(("Model", "Module"))
                        or names.under_nn(base) or names.library_model(base)):
                    found.add(cls.name)
                    changed = True
                    break
    return found


def _builds_module(value: ast.expr | None, names: _Names, classes: set[str]) -> bool:
    """``nn.Sequential(...)``, ``Net()``, also behind ``.to(device)`` / ``.eval()``."""
    while isinstance(value, ast.Call):
        callee = _dotted(value.func)
        if callee is not None:
            last = callee.rsplit(".", 1)[-1]
            return callee in classes or (last[:1].isupper() and names.under_nn(callee)) or (
                names.library_model(callee))
        value = value.func.value if isinstance(value.func, ast.Attribute) else None
    return False


def _evaluated(node: ast.AST) -> Iterator[ast.AST]:
    """Nodes evaluated when ``node`` runs; lambda bodies run later, if ever."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if not isinstance(current, ast.Lambda):
            stack.extend(ast.iter_child_nodes(current))


def _harmless(call: ast.Call, names: _Names) -> bool:
    """Building modules and configs, seeding, paths and logging set-up are not work."""
    callee = _dotted(call.func)
    if callee is None:
        method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
        return method in MODULE_METHODS or method in VALUE_METHODS
    last = callee.rsplit(".", 1)[-1]
    resolved = names.resolve(callee)
    return (last[:1].isupper() or names.under_nn(callee) or callee in HARMLESS_CALLS
            or resolved in HARMLESS_CALLS or resolved.startswith("math.")
            or ("." in callee and last in MODULE_METHODS))


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


_LOOPS = {ast.For: "`for` loop", ast.AsyncFor: "`async for` loop", ast.While: "`while` loop",
          ast.With: "`with` block", ast.AsyncWith: "`async with` block"}


def _statement_work(stmt: ast.stmt, names: _Names) -> str | None:
    """Why this statement itself (not its nested body) would do work at import."""
    line = stmt.lineno
    if type(stmt) in _LOOPS:
        return f"module-level {_LOOPS[type(stmt)]} at line {line} runs at import"
    if isinstance(stmt, ast.If):
        header: ast.AST | None = None if _is_guard(stmt.test) else stmt.test
    elif isinstance(stmt, ast.Match):
        header = stmt.subject
    elif isinstance(stmt, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign)):
        header = stmt
    else:  # imports, def, class, pass, global, del, assert, raise, try
        return None
    nodes = list(_evaluated(header)) if header is not None else []
    if any(isinstance(n, ast.Await) for n in nodes):
        return f"module-level `await` at line {line} runs at import"
    calls = sorted((n for n in nodes if isinstance(n, ast.Call)),
                   key=lambda c: (c.lineno, c.col_offset))
    for call in calls:
        if not _harmless(call, names):
            return f"module-level call `{_show(call.func)}(...)` at line {line} runs at import"
    return None


def _work(body: list[ast.stmt], names: _Names) -> tuple[ast.stmt, str] | None:
    """The first statement that would do work at import, and why; None when there is none."""
    for stmt in body:
        reason = _statement_work(stmt, names)
        if reason:
            return stmt, reason
        if isinstance(stmt, ast.If) and _is_guard(stmt.test):
            found = _work(stmt.orelse, names)  # the guarded body never runs at import
        else:
            found = _work(_children(stmt), names)
        if found:
            return found
    return None


def _located_error(source: str, err: SyntaxError | ValueError) -> Prefilter:
    line = getattr(err, "lineno", None)
    col = getattr(err, "offset", None)
    if line is None and "\0" in source:  # null bytes: point at the first one
        index = source.index("\0")
        line = source.count("\n", 0, index) + 1
        col = index - source.rfind("\n", 0, index)
    reason = getattr(err, "msg", None) or str(err)
    return Prefilter("syntax-error", line or 1, max(col or 1, 1), reason)


def prefilter_source(source: str, filename: str = "<string>") -> Prefilter:
    """Decide statically whether importing this source is worth it and safe."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences are not our business
            tree = ast.parse(source, filename)
    except (SyntaxError, ValueError) as err:
        return _located_error(source, err)
    except (RecursionError, MemoryError):
        return Prefilter("syntax-error", 1, 1, "source is too deeply nested to parse")
    statements = list(_module_statements(tree.body))
    names = _Names(statements)
    if not names.torch:
        return Prefilter("no-model", reason="does not import torch")
    classes = _module_classes(statements, names)
    if not classes and not any(
            isinstance(s, (ast.Assign, ast.AnnAssign)) and _builds_module(s.value, names, classes)
            for s in statements):
        return Prefilter("no-model", reason="defines or builds no nn.Module")
    found = _work(tree.body, names)
    if found:
        stmt, reason = found
        return Prefilter("does-work", stmt.lineno, stmt.col_offset + 1, reason)
    return Prefilter("model")


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
    return prefilter_source(source, path)
