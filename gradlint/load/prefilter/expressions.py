"""Judging expressions: calls resolved to what they call, and values handed on."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from gradlint.load import harmless
from gradlint.load.prefilter.scopes import (
    ClassRef,
    Func,
    Inst,
    Lib,
    LibInit,
    LocalClass,
    Mod,
    Opaque,
    Overlay,
    Scope,
    Unknown,
    Val,
    Vals,
)
from gradlint.load.prefilter.syntax import bound_names, show
from gradlint.load.prefilter.sys_path import SYS_PATH_CALLS, SysPathTracker
from gradlint.load.prefilter.work import Where, Work


class ExpressionJudge(SysPathTracker):
    """The work evaluating an expression does: its calls, and the values it hands on."""

    if TYPE_CHECKING:  # defined by Judge: calling a local function or class runs its body
        def function(self, func: Func, handed_on: bool = True) -> Work | None:
            """The work calling a local function does."""
            ...

        def construct(self, cls: LocalClass) -> Work | None:
            """The work making an instance of a local class does."""
            ...

    def expr(self, node: ast.expr, scope: Scope, where: Where,
             passive: bool = False) -> Work | None:
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
                if isinstance(v, ClassRef):  # ``Config[int]`` runs __class_getitem__
                    for k in self.mro(v.cls):
                        if isinstance(k, LocalClass) and "__class_getitem__" in k.methods:
                            found = self.functions(self.method(k, "__class_getitem__"))
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
                      scope: Scope, where: Where, passive: bool) -> Work | None:
        key = (node, id(scope))
        if key not in self.overlays:  # kept: values are cached by scope
            names = [n for gen in node.generators for n in bound_names(gen.target)]
            self.overlays[key] = Overlay(self, scope, names)
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

    def call(self, node: ast.Call, scope: Scope, where: Where) -> Work | None:
        found = self.expr(node.func, scope, where)
        if found:
            return found
        callee = self.value(node.func, scope)
        passive = bool(callee) and all(isinstance(v, Lib) and v.name in harmless.PASSIVE
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

    def apply(self, v: Val, func: ast.expr, call: ast.Call | None, scope: Scope,
              where: Where) -> Work | None:
        """The work calling ``v`` does (``call`` is None for a decorator)."""
        shown = f"`{show(func)}(...)`"
        site = call if call is not None else func
        synthetic = call if call is not None else ast.Call(func=func, args=[], keywords=[])
        if isinstance(v, Lib):
            if v.name in SYS_PATH_CALLS and call is not None:
                return self.sys_path(v.name, call, scope, where)
            api = harmless.lookup(v.name)
            if api is None:
                same = show(func) in (v.name, v.name.removeprefix("builtins."))
                detail = "" if same else f"`{v.name}` is not known to be harmless"
                return (where.link("work", shown, site, detail),)
            why = harmless.violation(api, synthetic)
            if why is None and v.name == "functools.partial" and synthetic.args:
                for target in self.value(synthetic.args[0], scope):
                    inner = harmless.lookup(target.name) if isinstance(target, Lib) else None
                    if inner is not None:
                        why = why or harmless.violation(inner, synthetic, skip=1)
            return (where.link("work", shown, site, f"called{why}"),) if why else None
        if isinstance(v, Func):
            found = self.function(v, handed_on=False)
            return (where.link("call", shown, site),) + found if found else None
        if isinstance(v, ClassRef):
            found = self.construct(v.cls)
            if found:
                return (where.link("call", shown, site),) + found
            return self.library_init(v.cls, synthetic, shown, site, where)
        if isinstance(v, LibInit):
            api = harmless.lookup(v.name)
            why = harmless.violation(api, synthetic) if api is not None else (
                f"the constructor of `{v.name}` is not known to be harmless")
            if why:
                return (where.link("work", shown, site, why if api is None else f"called{why}"),)
            return None
        if isinstance(v, Inst):
            return self.call_instance(v, shown, site, where)
        if isinstance(v, Unknown):
            return (where.link("work", shown, site,
                               f"`{v.name}` cannot be resolved statically"),)
        if isinstance(v, Opaque):
            return self.call_opaque(v, shown, site, where)
        return None  # a parameter: what the caller passed was judged there

    def functions(self, funcs: list[Func]) -> Work | None:
        """The work calling a method does: its def, and the closures that wrap it."""
        for func in funcs:
            found = self.function(func)
            if found:
                return found
        return None

    def library_init(self, cls: LocalClass, call: ast.Call, shown: str, site: ast.AST,
                     where: Where) -> Work | None:
        """A local class without its own ``__init__`` runs its library bases' constructor."""
        if any(isinstance(k, LocalClass) and "__init__" in k.methods for k in self.mro(cls)):
            return None
        for k in self.mro(cls):
            if isinstance(k, LocalClass):
                continue
            api = harmless.lookup(k.name) if isinstance(k, Lib) else None
            why = harmless.violation(api, call) if api is not None else (
                f"the constructor of its base `{k.name}` is not known to be harmless")
            if why:
                return (where.link("work", shown, site, why if api is None else f"called{why}"),)
        return None

    def call_instance(self, v: Inst, shown: str, site: ast.AST, where: Where) -> Work | None:
        """Calling an instance runs ``__call__`` (judged with the class) or, for an
        ``nn.Module``, its ``forward``."""
        for k in [v.cls] if v.exact else [v.cls, *self.subclasses(v.cls)]:
            for c in self.mro(k):
                if isinstance(c, LocalClass) and "forward" in c.methods:
                    found = self.functions(self.method(c, "forward"))
                    if found:
                        return (where.link("call", shown, site),) + found
                    break
        return None

    def call_opaque(self, v: Opaque, shown: str, site: ast.AST, where: Where) -> Work | None:
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

    def escape(self, vals: Vals, node: ast.AST, where: Where,
               name: str | None = None) -> Work | None:
        """A value handed on may be called by whoever receives it."""
        for v in vals:
            found: Work | None = None
            label = name or (show(node) if isinstance(node, ast.expr) else "")
            if isinstance(v, Lib):
                if not harmless.inert(v.name):
                    return (where.link("escape", f"`{v.name}`", node,
                                       "it is not known to be harmless to call"),)
                continue
            if isinstance(v, Unknown):
                return (where.link("escape", f"`{v.name}`", node,
                                   "it cannot be resolved statically"),)
            if isinstance(v, Func):
                found = self.function(v)
            elif isinstance(v, ClassRef):
                found = self.construct(v.cls)
            elif isinstance(v, Mod) and v.mod.path:  # any of its functions may be called
                scope = self.module_scope(v.mod.path)
                for member in list(scope.bindings) if scope is not None else []:
                    assert scope is not None
                    defined = [d for d in scope.own(member) or ()
                               if isinstance(d, (Func, ClassRef))]
                    found = found or self.escape(tuple(defined), node, where, member)
            if found:
                return (where.link("pass", f"`{label}`", node),) + found
        return None
