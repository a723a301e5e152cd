"""How import-time code reaches work: the chain of links, and the sentence that tells it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Literal, NamedTuple

from gradlint.load.prefilter.scopes import Resolver


@dataclass(frozen=True)
class Link:
    """One step of how import-time code reaches work; the last link of a chain is the work."""

    kind: Literal["call", "import", "pass", "escape", "work"]
    what: str  # "`main(...)`", "`for` loop", "train.py", "`os.remove`"
    path: str
    line: int
    col: int
    context: str = ""  # "module-level", "class-level", "decorator", ... ("" in a function body)
    detail: str = ""  # why the last link is work, when its name does not say
    target: str = ""  # the file an import runs


Work = tuple[Link, ...]


class Where(NamedTuple):
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
             detail: str = "", target: str = "") -> Link:
        line, col = self.at(node)
        return Link(kind, what, self.path, line, col, self.context, detail, target)


def render(work: Work, judge: Resolver) -> str:
    """``module-level call `main(...)` at line 9 runs at import and calls `open(...)` at line
    4``; ``importing train.py runs its module-level `for` loop at line 12``."""
    def adj(link: Link) -> str:
        return f"{link.context} " if link.context else ""

    def noun(link: Link) -> str:
        if link.kind == "import":
            return f"import of {judge.show_path(link.target)}"
        if link.kind in ("pass", "escape"):
            return f"{link.what} handed on"
        return f"call {link.what}" if link.what.endswith("(...)`") else link.what

    def verb(link: Link) -> str:
        if link.kind == "import":
            return f"imports {judge.show_path(link.target)}"
        if link.kind in ("pass", "escape"):
            return f"hands on {link.what}"
        return f"calls {link.what}" if link.what.endswith("(...)`") else f"runs {link.what}"

    def runs(link: Link) -> str:
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
