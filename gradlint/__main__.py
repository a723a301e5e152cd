"""``python -m gradlint``: the same as the ``gradlint`` script."""

from __future__ import annotations

import os
import sys

# -m puts the working directory first on sys.path, where a user's ``ast.py`` or ``json.py``
# would shadow the interpreter's own modules in gradlint's process; the script has no such entry
if sys.path and os.path.abspath(sys.path[0] or ".") == os.getcwd():
    del sys.path[0]

from gradlint.cli.command import main  # noqa: E402

if __name__ == "__main__":
    main()
