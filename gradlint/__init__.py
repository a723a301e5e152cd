"""gradlint: find vanishing-gradient risk in PyTorch model code before training.

The pipeline is ``load -> trace -> estimate -> rules -> report``; ``check`` runs it on a model
object you already have (a notebook, a test), without loading any file.

Each stage is a subpackage; bottom-up, a module imports only from its own stage and lower ones::

    core <- load <- trace <- estimate <- verify <- lint <- report <- run <- cli

``core`` holds the torch-free values and the IR every stage shares; ``verify`` (the estimate
against autograd, ``--verify``) needs only ``core`` and is called by ``run``. Above them all sit
the entry points: this package's root, ``__main__``, and the public ``rule``, ``ftypes`` and
``testing`` modules. tests/test_architecture.py checks the order and that there are no cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradlint.core.options import DEFAULT_THRESHOLD
from gradlint.core.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from gradlint.core.values import ModelReport


def check(model: Any, inputs: Any = None, threshold: float = DEFAULT_THRESHOLD
          ) -> ModelReport:
    """Lint an ``nn.Module`` instance in-process; imported lazily so ``--version`` stays fast."""
    from gradlint.run.check_file import check_model

    return check_model(model, inputs=inputs, threshold=threshold)


__all__ = ["__version__", "check"]
