"""What a run is asked to do: the configuration, the run's options and the jobs it hands out.

These are plain values shared by every stage and by both processes (the parent pickles
``Options`` and ``FileJob`` to its workers), so they live in the torch-free core; reading
``[tool.gradlint]`` into a ``Config`` is the CLI's job (gradlint/cli/config.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

# GL101's attenuation threshold (GL103 fires on growth above its inverse): the one default
# that --threshold, [tool.gradlint] threshold and the Python API start from
DEFAULT_THRESHOLD = 1e-2
DEFAULT_TIMEOUT = 120.0  # seconds a worker may spend on one file


class ConfigError(Exception):
    """A bad configuration: names the file and the key."""


@dataclass(frozen=True)
class TargetConfig:
    """How to build and feed one model: constructor arguments, or a ``build`` expression, and
    example input shapes."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # "8x3x224x224" or "2x128:int64", as --input
    output: str | None = None  # which output the loss is taken on (dict key)
    # a Python expression evaluated in the module's namespace, for what TOML cannot spell:
    # "GPT(GPTConfig(n_layer=4))"; never together with args/kwargs
    build: str | None = None


@dataclass(frozen=True)
class Config:
    """``[tool.gradlint]`` of the nearest pyproject.toml (empty when there is none)."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    threshold: float = DEFAULT_THRESHOLD
    exclude: tuple[str, ...] = ()
    targets: dict[str, TargetConfig] = field(default_factory=dict)
    path: str | None = None
    # (glob, code prefixes) in file order; globs are relative to the pyproject's folder
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    extend_rules: tuple[str, ...] = ()  # absolute paths of extra rule folders

    @property
    def base(self) -> str:
        """The folder relative paths in the configuration start from."""
        return os.path.dirname(self.path) if self.path else os.getcwd()


@dataclass(frozen=True)
class Options:
    """One run's settings: the command line merged over the configuration."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    threshold: float = DEFAULT_THRESHOLD
    inputs: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    debug: bool = False
    verify: bool = False
    meta: bool = False
    config: Config = field(default_factory=Config)
    jobs: int = 1
    timeout: float = DEFAULT_TIMEOUT  # seconds per file
    # bytes of address space per worker; None: the default (gradlint/run/memory.py), 0: none
    max_memory: int | None = None


@dataclass(frozen=True)
class FileJob:
    """One file a worker must import, with the targets named for it (empty: discover)."""

    path: str
    names: tuple[str, ...]
