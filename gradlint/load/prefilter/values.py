"""What a name or expression can stand for when the pre-filter evaluates it statically."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gradlint.load import import_resolver

if TYPE_CHECKING:
    from gradlint.load.prefilter.scopes import LocalClass, Scope


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
