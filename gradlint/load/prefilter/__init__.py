"""The pre-filter: whether importing a file is safe and worth it, decided with ``ast`` alone.

Importing a file runs it, so before gradlint imports a file the parent process reads it (and the
local modules it imports) and judges **all the code that runs at import, and only that**:
module-level statements, class bodies, decorators, default arguments and annotations (unless
``from __future__ import annotations``), the import-time code of every local module it imports
(gradlint/load/import_resolver.py finds them), and — transitively — the bodies of the local
functions and constructors that code calls. Bodies that do not run at import (``forward``,
methods nobody calls, ``if __name__ == "__main__":``, ``if TYPE_CHECKING:``) are not judged.

That code may build models and configs; it may not do work. Every call is resolved to what it
calls, never guessed from its spelling:

* a function or class of the file or of a local module: its body is judged (for a class, its
  constructor chain and every dunder method and property of it and its local bases, since those
  run on the instance without an explicit call);
* a library name (through the file's imports): harmless only when gradlint/load/harmless.py
  lists it (and its conditions hold: no ``pretrained=True``); anything else does work;
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
module level and in class bodies a ``for``/``while``/``with`` is work, as in a training script,
but for a module-level ``for`` over literal data (a configuration table: ``literal_loops``),
whose body is judged as module-level code.

Installed libraries are trusted with what their own code does (their import, a library base
class's ``__init_subclass__``); what is judged is the user's code and the library calls it makes.

Each local module's import is judged on its own and the verdict kept for the run (while the
files it read are unchanged), so a tree whose files all import one package judges it once.
Recursion ends (bodies are judged once; a body already being judged adds nothing), chains deeper
than ``MAX_DEPTH`` and files reaching more than ``MAX_BODIES`` bodies or ``MAX_MODULES`` local
modules are not assumed harmless. Never import torch or user code here: this runs in the parent
process on every file of a tree.

The modules, bottom-up: ``syntax``, ``scopes`` (what a name can stand for, and the
names each scope binds), ``work`` (how code reaches work, and how that is told), ``limits``,
``module_verdicts`` (verdicts on local modules, kept for the run), the judge in layers —
``names`` → ``class_hierarchy`` → ``evaluation`` → ``sys_path`` → ``expressions`` → ``judge`` —,
``models`` (whether a file is worth importing at all) and ``verdict`` (the entry points).
"""

from gradlint.load.prefilter.limits import MAX_BODIES, MAX_DEPTH, MAX_MODULES
from gradlint.load.prefilter.models import MODEL_LIBRARIES, MODULE_BASES, TORCH_PACKAGES
from gradlint.load.prefilter.verdict import Prefilter, prefilter_file, prefilter_source

__all__ = ["MAX_BODIES", "MAX_DEPTH", "MAX_MODULES", "MODEL_LIBRARIES", "MODULE_BASES",
           "TORCH_PACKAGES", "Prefilter", "prefilter_file", "prefilter_source"]
