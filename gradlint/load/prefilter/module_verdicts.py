"""Verdicts on importing local modules, kept for the run while the files they rest on are
unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from gradlint.load import import_resolver
from gradlint.load.prefilter.work import Work


@dataclass(frozen=True)
class ModuleVerdict:
    """What importing a local module does, and what that rests on: the files it and the
    modules it imports are read from, and their folders (a new file can change what an import
    finds), each with its stat signature."""

    work: Work | None
    files: tuple[tuple[str, tuple[int, int, int] | None], ...]
    roots_in: tuple[str, ...]  # the sys.path it was judged on
    roots: tuple[str, ...]  # sys.path after it ran (its sys.path.insert calls)
    imported: tuple[str, ...]  # local modules its import imported
    tops: tuple[tuple[str, import_resolver.LocalModule | None], ...]  # where its imports were found
    exact: bool  # holds on ``roots_in`` only
    # no work found, on the assumption that these modules (being imported when it was judged,
    # in a cycle) do none either: it holds while they are being judged again or do none
    assumes: frozenset[str] = frozenset()

    def holds(self, roots: tuple[str, ...]) -> bool:
        """Whether it still holds, judged on ``roots``: on another sys.path only if the module
        does not change sys.path and its imports are all found where they were."""
        if roots != self.roots_in and (self.exact or self.roots != self.roots_in):
            return False
        if not all(import_resolver.top_level(name, roots) == found for name, found in self.tops):
            return False
        if not all(import_resolver.signature(path) == sig for path, sig in self.files):
            return False
        return all(path in being_judged or any(known.work is None and not known.assumes
                                           for known in module_verdicts.get(path, ()))
                   for path in self.assumes)


def verdict_for(path: str, roots: tuple[str, ...]) -> ModuleVerdict | None:
    """A verdict on importing the module at ``path`` that holds on this sys.path."""
    return next((v for v in module_verdicts.get(path, ()) if v.holds(roots)), None)


VERDICTS_KEPT = 4096
module_verdicts: dict[str, list[ModuleVerdict]] = {}  # by module
being_judged: set[str] = set()  # modules whose import is being judged (by this judge or above)
