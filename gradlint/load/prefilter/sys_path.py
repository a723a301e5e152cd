"""``sys.path`` changes the pre-filter can follow: folders built from ``__file__`` and constants."""

from __future__ import annotations

import ast
import os

from gradlint.load.prefilter.evaluation import Evaluator
from gradlint.load.prefilter.scopes import Lib, Scope
from gradlint.load.prefilter.work import Where, Work

SYS_PATH_CALLS = frozenset({"sys.path.insert", "sys.path.append", "sys.path.extend"})


class SysPathTracker(Evaluator):
    """Follows ``sys.path.insert(...)`` calls whose folder can be worked out statically."""

    def sys_path(self, name: str, call: ast.Call, scope: Scope, where: Where) -> Work | None:
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

    def static_path(self, node: ast.expr, scope: Scope, depth: int = 0) -> str | None:
        """A folder built from ``__file__``, constants and ``os.path``/``pathlib`` calls."""
        if depth > 20:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return os.path.abspath(node.value)
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return os.path.abspath(scope.path)
            holder: Scope | None = scope
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
        names = {v.name for v in self.value(node.func, scope) if isinstance(v, Lib)}
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
