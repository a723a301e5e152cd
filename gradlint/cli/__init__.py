"""The command line (imports torch only when it has a model to check)."""

from gradlint.cli.command import main

__all__ = ["main"]
