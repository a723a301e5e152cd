"""What an expression can evaluate to, without judging what evaluating it does."""

from __future__ import annotations

import ast

from gradlint.load import harmless, import_resolver
from gradlint.load.prefilter import wrappers
from gradlint.load.prefilter.class_hierarchy import ClassHierarchy
from gradlint.load.prefilter.scopes import (
    OPAQUE,
    ClassRef,
    Func,
    Inst,
    Lib,
    LibInit,
    LocalClass,
    Mod,
    Opaque,
    Param,
    Scope,
    Super,
    Unknown,
    Val,
    Vals,
    union,
)
from gradlint.load.prefilter.syntax import own_nodes, show


class Evaluator(ClassHierarchy):
    """What names, attributes and calls evaluate to (values, not the work they do)."""

    def value(self, node: ast.expr, scope: Scope) -> Vals:
        """What an expression can evaluate to (without judging what evaluating it does)."""
        key = (node, id(scope))
        if key in self.values:
            return self.values[key]
        self.values[key] = OPAQUE
        vals = self._value(node, scope)
        self.values[key] = vals
        return vals

    def _value(self, node: ast.expr, scope: Scope) -> Vals:
        if isinstance(node, ast.Name):
            return scope.lookup(node.id)
        if isinstance(node, ast.Attribute):
            return union(*(self.attr(v, node.attr) for v in self.value(node.value, scope)))
        if isinstance(node, ast.Call):
            return self.result(node, scope)
        if isinstance(node, ast.Lambda):
            return (Func(node, scope),)
        if isinstance(node, ast.IfExp):
            return union(self.value(node.body, scope), self.value(node.orelse, scope))
        if isinstance(node, ast.BoolOp):
            return union(*(self.value(v, scope) for v in node.values))
        if isinstance(node, (ast.NamedExpr, ast.Starred)):
            return self.value(node.value, scope)
        if isinstance(node, ast.Subscript):
            out: list[Val] = []
            for v in self.value(node.value, scope):
                if isinstance(v, Lib):  # ``Optional[int]`` is typing; ``os.environ[k]`` is
                    # data; ``sys.modules[k]`` is any module
                    out.append(v if v.name.startswith(("typing.", "typing_extensions.",
                                                       "collections.abc.", "builtins."))
                               else Opaque() if harmless.inert(v.name)
                               else Unknown(f"{v.name}[...]"))
                elif isinstance(v, Unknown):
                    out.append(v)
                else:
                    out.append(Opaque())
            return union(out)
        return OPAQUE

    def attr(self, v: Val, name: str) -> Vals:
        """``v.name``."""
        if isinstance(v, Lib):
            return (Lib(f"{v.name}.{name}"),)
        if isinstance(v, Mod):
            scope = self.module_scope(v.mod.path) if v.mod.path else None
            found = scope.member(name) if scope is not None else None
            sub = import_resolver.submodule(v.mod, name)
            if sub is not None:
                found = union(found or (), (Mod(sub),))
            return found if found else (Unknown(f"{v.mod.name}.{name}"),)
        if isinstance(v, ClassRef):
            return self.class_attr(v.cls, name)
        if isinstance(v, Inst):
            return self.inst_attr(v.cls, v.exact, name)
        if isinstance(v, Super):
            return self.super_attr(v.cls, name)
        if isinstance(v, Unknown):
            return (Unknown(f"{v.name}.{name}"),)
        if isinstance(v, Opaque):
            return (Opaque(attr=name, origin=v.origin),)
        return (Opaque(attr=name),)

    def _class_member(self, cls: LocalClass, name: str, instance: bool) -> Vals | None:
        for k in self.mro(cls):
            if isinstance(k, LocalClass):
                if name in k.methods:
                    method = k.methods[name]
                    if instance and self.is_property(method):
                        return OPAQUE  # the getter ran when the instance was made
                    return self.decorated(method, (Func(method, k.body, k),), k.body)
                found = k.body.own(name)
                if found is not None:
                    return found
        return None

    def _library_member(self, cls: LocalClass, name: str) -> Vals:
        libs = [k for k in self.mro(cls) if not isinstance(k, LocalClass)]
        if not libs:
            return (Opaque(attr=name, known=True),)
        return tuple(Lib(f"{k.name}.{name}") if isinstance(k, Lib)
                     else Unknown(f"{k.name}.{name}") for k in libs)

    def class_attr(self, cls: LocalClass, name: str) -> Vals:
        if name in ("__name__", "__qualname__", "__doc__", "__module__", "__dict__"):
            return OPAQUE
        found = self._class_member(cls, name, instance=False)
        return found if found is not None else self._library_member(cls, name)

    def inst_attr(self, cls: LocalClass, exact: bool, name: str) -> Vals:
        if name == "__class__":
            return (ClassRef(cls),) if exact else self.class_and_subclasses(cls)
        out: list[Val] = []
        for k in [cls] if exact else [cls, *self.subclasses(cls)]:
            found = self._class_member(k, name, instance=True)
            assigned = union(*(self.self_attrs(c, name) for c in self.mro(k)
                                if isinstance(c, LocalClass)))
            if found is None and not assigned:
                libs = [c for c in self.mro(k) if not isinstance(c, LocalClass)]
                out.append(Opaque(attr=name, known=True) if all(isinstance(c, Lib)
                                                                  for c in libs)
                           else Unknown(f"{k.name}.{name}"))
            out.extend(found or ())
            out.extend(assigned)
        return union(out)

    def super_attr(self, cls: LocalClass, name: str) -> Vals:
        """``super().name`` in a method of ``cls``, for ``cls`` and every local subclass."""
        out: list[Val] = []
        for k in [cls, *self.subclasses(cls)]:
            order = self.mro(k)
            after = order[order.index(cls) + 1:] if cls in order else []
            found: Vals | None = None
            for c in after:
                if isinstance(c, LocalClass):
                    if name in c.methods:
                        found = tuple(self.method(c, name))
                        break
                elif name == "__init__":
                    found = (LibInit(c.name) if isinstance(c, Lib) else c,)
                    break
                else:
                    found = (Opaque(attr=name, known=True),)
                    break
            out.extend(found or (Opaque(attr=name, known=True),))
        return union(out)

    def result(self, call: ast.Call, scope: Scope) -> Vals:
        """What a call returns, as far as it matters: instances, stored callables."""
        out: list[Val] = []
        for v in self.value(call.func, scope):
            if isinstance(v, Lib):
                out.extend(self._library_result(v.name, call, scope))
            elif isinstance(v, ClassRef):
                out.append(Inst(v.cls))
            elif isinstance(v, Func):
                out.extend(self.returns(v))
            elif isinstance(v, Opaque) and v.attr is None and v.origin and self.stores(v):
                out.extend(self.value(call.args[0], scope) if call.args else OPAQUE)
            elif isinstance(v, Opaque):
                out.append(Opaque(origin=v.origin))
            elif isinstance(v, Unknown):
                out.append(Unknown(f"{v.name}(...)"))
            else:
                out.append(Opaque())
        return union(out)

    def returns(self, func: Func) -> Vals:
        """What a local function returns (a factory's closure, an instance), whatever the
        arguments: what a parameter brings is not known (its value was judged where it was
        passed). A generator or coroutine function returns an object of its own."""
        key = (func.node, id(func.scope))
        if key in self.returned:
            return self.returned[key]
        self.returned[key] = OPAQUE  # a function returning its own result
        node = func.node
        scope = self.func_scope(func)
        if isinstance(node, ast.Lambda):
            found = self.value(node.body, scope)
        elif isinstance(node, ast.AsyncFunctionDef) or any(
                isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own_nodes(node.body)):
            found = OPAQUE
        else:
            found = union(*(self.value(n.value, scope) if n.value is not None else OPAQUE
                             for n in own_nodes(node.body) if isinstance(n, ast.Return)))
        found = tuple(Opaque() if isinstance(v, Param) else v for v in found) or OPAQUE
        self.returned[key] = found
        return found

    def _library_result(self, name: str, call: ast.Call, scope: Scope) -> Vals:
        args = call.args
        if name == "builtins.getattr" and len(args) >= 2:
            default = self.value(args[2], scope) if len(args) > 2 else ()
            key = args[1]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                return union(*(self.attr(v, key.value) for v in self.value(args[0], scope)),
                              default)
            dynamic = [Lib(f"{v.name}.{harmless.ANY}") if isinstance(v, Lib)
                       and harmless.lookup(f"{v.name}.{harmless.ANY}") is not None
                       else Unknown(f"getattr({show(args[0])}, ...)")
                       for v in self.value(args[0], scope)]
            return union(dynamic, default)
        if name == "builtins.type" and len(args) == 1:
            out: list[Val] = []
            for v in self.value(args[0], scope):
                out.extend(self.inst_attr(v.cls, v.exact, "__class__") if isinstance(v, Inst)
                           else OPAQUE)
            return union(out)
        if name == "builtins.super":
            if args:
                return union(Super(v.cls) for v in self.value(args[0], scope)
                              if isinstance(v, ClassRef)) or OPAQUE
            owner = scope.owner()
            return (Super(owner),) if owner is not None else OPAQUE
        api = harmless.lookup(name)
        if api is not None and api.stores and args and not api.factory:
            return self.value(args[0], scope)
        return (Opaque(origin=name),)

    def decorated(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                  subject: Vals, scope: Scope) -> Vals:
        """What a decorated def or class name is bound to: ``subject`` and what each local
        decorator returns (a wrapper closure runs where the name is called, and calls the
        subject, judged there with it)."""
        if not node.decorator_list:
            return subject
        key = (node, id(scope))
        if key not in self.decorations:
            self.decorations[key] = subject  # a decorator that refers to the name it decorates
            current = subject
            for decorator in reversed(node.decorator_list):
                current = self.decoration(self.value(decorator, scope), current)
            self.decorations[key] = current
        return self.decorations[key]

    def decoration(self, callee: Vals, received: Vals) -> Vals:
        """What applying a decorator returns: what it received (a library decorator keeps or
        wraps it) and what a local decorator function or class returns."""
        out = list(received)
        for v in callee:
            if isinstance(v, Func):
                out.extend(self.returns(v))
            elif isinstance(v, ClassRef):
                out.append(Inst(v.cls))
        return union(out)

    def only_wraps(self, v: Val) -> bool:
        """A local decorator that calls its subject only inside the closures it returns:
        applying it hands the subject on to nothing (``wrappers.only_wraps``)."""
        if not isinstance(v, Func) or v.owner is not None:
            return False
        key = (v.node, id(v.scope))
        if key not in self.wrapping:
            scope = self.func_scope(v)
            self.wrapping[key] = wrappers.only_wraps(v.node, lambda callee: bool(
                found := self.value(callee, scope)) and all(self.stores(f) for f in found))
        return self.wrapping[key]

    def method(self, cls: LocalClass, name: str) -> list[Func]:
        """What calling the method ``cls.name`` runs: its def and the closures its local
        decorators return."""
        node = cls.methods[name]
        return [v for v in self.decorated(node, (Func(node, cls.body, cls),), cls.body)
                if isinstance(v, Func)]

    def stores(self, v: Val) -> bool:
        """Calling ``v`` keeps its callable arguments instead of calling them."""
        name = v.name if isinstance(v, Lib) else v.origin if (
            isinstance(v, Opaque) and v.attr is None) else None
        api = harmless.lookup(name) if name else None
        return api is not None and api.stores
