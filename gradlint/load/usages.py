"""Calls of a model class that its own repository writes: the checked file's ``__main__``
block, the README's examples, the other scripts, the tests.

A class whose constructor needs arguments no convention supplies
(``TransformerWrapper(num_tokens, max_seq_len, attn_layers)``) is usually built somewhere in
its repository with literal arguments: ``TransformerWrapper(num_tokens=20000,
max_seq_len=1024, attn_layers=Decoder(dim=512, depth=12, heads=8))`` in the README. Such a call
is one more recipe (``conventions.Recipe``), tried after the conventions.

Sources are parsed, never run. A call counts when its callee resolves, through the source's
own imports, to the very class (identity, in modules already imported: nothing is imported
here), and every argument is a literal or, recursively, a call with such arguments of a
class or function of the same top-level package, or of an ``nn.Module`` class. Order: the
checked file, the README, the other scripts, tests last (their configurations are the
smallest, and depth 1 says little about vanishing gradients).
"""

from __future__ import annotations

import ast
import copy
import inspect
import os
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import torch.nn as nn

from gradlint.load.conventions import Recipe
from gradlint.load.import_resolver import (
    package_root,
    parse,
    parse_source,
    project_root,
    python_files,
    signature,
)
from gradlint.load.sources import display_path

MAX_FILES = 200  # scripts looked through per repository, as part_users.MAX_FILES
MAX_RECIPES = 3  # calls tried per class
MAX_TEXT = 160  # characters of a call shown in "built as"
_SKIPPED = frozenset({"build", "dist", "site-packages", "node_modules", "venv", "env"})
_PYTHON = frozenset({"", "python", "py", "python3"})

Make = Callable[[], Any]


def usage_recipes(cls: type, module: types.ModuleType, path: str) -> list[Recipe]:
    """Up to MAX_RECIPES calls of ``cls`` found in its repository, in the order above."""
    package = cls.__module__.partition(".")[0]
    found: dict[str, Recipe] = {}
    here = os.path.abspath(path)
    for where, tree in _sources(here):
        calls = _calls(tree).get(cls.__name__)
        if not calls:
            continue
        names = _Names(tree, module if where == here else None)
        for call in calls:
            if names.resolve(call.func) is not cls:
                continue
            make = _maker(call, names, package)
            if make is None:
                continue
            text = ast.unparse(call)
            if len(text) > MAX_TEXT:
                text = text[:MAX_TEXT - 3] + "..."
            shown = f"{text} as {display_path(where)}:{call.lineno} builds it"
            found.setdefault(text, Recipe(make, shown))
            if len(found) >= MAX_RECIPES:
                return list(found.values())
    return list(found.values())


def _calls(tree: ast.Module) -> dict[str, list[ast.Call]]:
    """The tree's calls by the callee's last name (``Wrapper``, ``wrap.Wrapper``), in source
    order; worked out once per tree (trees are cached while their file is unchanged)."""
    index = getattr(tree, "_gradlint_calls", None)
    if index is None:
        index = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(
                    func, ast.Attribute) else None
                if name is not None:
                    index.setdefault(name, []).append(node)
        for found in index.values():
            found.sort(key=lambda n: (n.lineno, n.col_offset))
        setattr(tree, "_gradlint_calls", index)  # noqa: B010 - an AST node's own __dict__
    return index


def _root(path: str) -> str:
    """The repository folder to look in: the project's root, else the folder above the top
    package, else the file's folder."""
    top = package_root(path)
    return project_root(path) or (os.path.dirname(top) if top else
                                  os.path.dirname(os.path.abspath(path)))


def _sources(here: str) -> Iterator[tuple[str, ast.Module]]:
    """(file, tree) of each source, in the order calls are taken from."""
    tree = parse(here)
    if tree is not None:
        yield here, tree
    root = _root(here)
    for name in ("README.md", "readme.md", "README.markdown"):
        readme = os.path.join(root, name)
        if os.path.isfile(readme):
            yield from _readme(readme)
            break
    scripts: list[str] = []
    tests: list[str] = []
    for file in _scripts(root, here):
        rel = os.path.relpath(file, root).replace(os.sep, "/")
        is_test = rel.startswith("tests/") or "/tests/" in rel or os.path.basename(
            file).startswith("test_")
        (tests if is_test else scripts).append(file)
    for file in scripts + tests:
        found = parse(file)
        if found is not None:
            yield file, found


def _scripts(root: str, here: str) -> Iterator[str]:
    return python_files(root, here, MAX_FILES,
                        lambda d: not d.startswith((".", "_")) and d not in _SKIPPED)


_readmes: dict[str, tuple[tuple[int, int, int] | None, ast.Module | None]] = {}


def _readme(readme: str) -> Iterator[tuple[str, ast.Module]]:
    """The README's Python code blocks as one module (an example's imports are often in an
    earlier block), each block's lines where they are in the file; kept while it is
    unchanged."""
    key = signature(readme)
    if readme not in _readmes or _readmes[readme][0] != key:
        _readmes[readme] = (key, _read_readme(readme))
    tree = _readmes[readme][1]
    if tree is not None:
        yield readme, tree


def _read_readme(readme: str) -> ast.Module | None:
    try:
        with open(readme, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    body: list[ast.stmt] = []
    for start, code in _code_blocks(lines):
        try:
            block = parse_source(code, readme)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(block):
            if hasattr(node, "lineno"):
                node.lineno += start
        body.extend(block.body)
    return ast.Module(body=body, type_ignores=[]) if body else None


def _code_blocks(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(lines before it, text) of each fenced block marked Python or unmarked."""
    opened: int | None = None
    python = False
    for i, line in enumerate(lines):
        fence = line.strip()
        if not fence.startswith("```"):
            continue
        if opened is None:
            opened, python = i, fence[3:].strip().lower() in _PYTHON
        else:
            if python:
                yield opened + 1, "\n".join(lines[opened + 1:i]) + "\n"
            opened = None


class _Names:
    """What a source's names stand for, through its imports, in modules already imported."""

    def __init__(self, tree: ast.Module, module: types.ModuleType | None) -> None:
        self.module = module
        self.bound: dict[str, tuple[str, str | None]] = {}  # name -> (module, attribute)
        # a variable's assignments (line, value), and what is set on it after: ``cfg = C()``,
        # then ``cfg.depth = 12`` / ``cfg["depth"] = 12`` -> (line, path, value)
        self.assigned: dict[str, list[tuple[int, ast.expr]]] = {}
        self.updates: dict[str, list[tuple[int, list[str | ast.expr], ast.expr]]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                self._note(node.targets[0], node.value, node.lineno)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.bound[alias.asname] = (alias.name, None)
                    else:
                        top = alias.name.partition(".")[0]
                        self.bound[top] = (top, None)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    if alias.name != "*":
                        self.bound[alias.asname or alias.name] = (node.module, alias.name)

    def _note(self, target: ast.expr, value: ast.expr, line: int) -> None:
        if isinstance(target, ast.Name):
            self.assigned.setdefault(target.id, []).append((line, value))
            return
        path: list[str | ast.expr] = []
        while isinstance(target, (ast.Attribute, ast.Subscript)):
            path.append(target.attr if isinstance(target, ast.Attribute) else target.slice)
            target = target.value
        if path and isinstance(target, ast.Name):
            self.updates.setdefault(target.id, []).append((line, path[::-1], value))

    def variable(self, name: str, at: int
                 ) -> tuple[int, ast.expr, list[tuple[int, list[str | ast.expr], ast.expr]]] | None:
        """The last assignment of ``name`` before line ``at`` and what is set on it between
        the two, in order; None when it is not assigned before."""
        before = [a for a in self.assigned.get(name, ()) if a[0] < at]
        if not before:
            return None
        line, value = max(before, key=lambda a: a[0])
        sets = sorted((u for u in self.updates.get(name, ()) if line < u[0] < at),
                      key=lambda u: u[0])
        return line, value, sets

    def resolve(self, node: ast.expr) -> Any:
        """The object a name or attribute chain stands for, or None."""
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return None if base is None else getattr(base, node.attr, None) if isinstance(
                base, (types.ModuleType, type)) else None
        if not isinstance(node, ast.Name):
            return None
        if node.id in self.bound:
            name, attr = self.bound[node.id]
            mod = sys.modules.get(name)
            if mod is None:
                return None
            if attr is None:
                return mod
            return getattr(mod, attr, None) or sys.modules.get(f"{name}.{attr}")
        if self.module is not None:
            return vars(self.module).get(node.id)
        return None


def _maker(call: ast.Call, names: _Names, package: str) -> Make | None:
    """A function making a fresh object for ``call`` (arguments may be changed by the
    constructor), or None when an argument is not a literal, a package call of literals, or a
    variable assigned one before the call (then changed only by literals set on it)."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
            k.arg is None for k in call.keywords):
        return None
    fn = names.resolve(call.func)
    if fn is None or not _own(fn, package):
        return None
    args = [_value(a, names, package, call.lineno) for a in call.args]
    kwargs = {k.arg: _value(k.value, names, package, call.lineno) for k in call.keywords if k.arg}
    if any(a is None for a in args) or any(v is None for v in kwargs.values()):
        return None
    made_args = [a for a in args if a is not None]
    made_kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return lambda: fn(*[a() for a in made_args], **{k: v() for k, v in made_kwargs.items()})


def _value(node: ast.expr, names: _Names, package: str, at: int) -> Make | None:
    """What makes the value of argument ``node`` of a call on line ``at``."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    else:
        return lambda: copy.deepcopy(value)
    if isinstance(node, ast.Call):
        return _maker(node, names, package)
    if isinstance(node, ast.Name):
        return _variable(node.id, names, package, at)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_value(e, names, package, at) for e in node.elts]
        if any(i is None for i in items) or any(isinstance(e, ast.Starred) for e in node.elts):
            return None
        kind = list if isinstance(node, ast.List) else tuple
        made = [i for i in items if i is not None]
        return lambda: kind(i() for i in made)
    return None


def _variable(name: str, names: _Names, package: str, at: int) -> Make | None:
    """A configuration built in steps, as READMEs write it: ``cfg = GPT.get_default_config()``,
    ``cfg.vocab_size = 50257``, ..., then ``GPT(cfg)``: the assignment's value, then each
    setting in order; None when any of them is not a value ``_value`` can make."""
    found = names.variable(name, at)
    if found is None:
        return None
    line, value, sets = found
    base = _value(value, names, package, line)
    if base is None:
        return None
    steps: list[tuple[list[Any], Make]] = []
    for where, path, assigned in sets:
        keys: list[Any] = []
        for part in path:
            if isinstance(part, str):
                keys.append(part)
                continue
            try:
                keys.append((ast.literal_eval(part),))  # a subscript's key, boxed
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
        made = _value(assigned, names, package, where)
        if made is None:
            return None
        steps.append((keys, made))

    def make() -> Any:
        obj = base()
        for keys, made in steps:
            holder = obj
            for key in keys[:-1]:
                holder = holder[key[0]] if isinstance(key, tuple) else getattr(holder, key)
            last = keys[-1]
            if isinstance(last, tuple):
                holder[last[0]] = made()
            else:
                setattr(holder, last, made())
        return obj

    return make


def _own(fn: Any, package: str) -> bool:
    """A class or function of the model's own top-level package, or any module class
    (``nn.GELU()`` as an argument)."""
    if inspect.isclass(fn) and issubclass(fn, nn.Module):
        return True
    if not (inspect.isclass(fn) or inspect.isfunction(fn)):
        return False
    return str(getattr(fn, "__module__", "")).partition(".")[0] == package
