"""Small frozen values that cross stage boundaries (locations, diagnostics, reports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Location:
    """A span in a source file; lines and columns are 1-based, ``end_col`` is exclusive."""

    file: str
    line: int
    col: int = 1
    end_line: int | None = None
    end_col: int | None = None

    def short(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Edit:
    """One machine-applicable change, symbolic so the codemod can pick the syntax that fits
    the source (``nn.Sigmoid()`` -> ``nn.ReLU()``, ``x.tanh()`` -> ``x.relu()``).

    ``exact``: ``location`` is the exact span of the call (a module's construction site);
    otherwise it is only known to be on that line (an op in ``forward()``), and the codemod
    edits it only where the line holds one such call.
    """

    location: Location
    old: str  # catalogue key of the activation there ("sigmoid")
    new: str  # catalogue key to put there ("relu", "gelu")
    action: str = "replace-activation"
    exact: bool = False

    def describe(self) -> str:
        return f"{self.old} → {self.new} at {self.location.file}:{self.location.line}"


@dataclass(frozen=True)
class Fix:
    """A suggested change. ``applicability``: ``display-only`` (text for a person) or
    ``unsafe`` (``edits`` can be applied with ``--fix --unsafe-fixes``; they change the model,
    so never by default)."""

    message: str
    suggestions: tuple[str, ...] = ()
    applicability: str = "display-only"
    edits: tuple[Edit, ...] = ()


@dataclass(frozen=True)
class Diagnostic:
    """One finding, anchored at the user's source line."""

    code: str
    name: str
    severity: Severity
    message: str
    location: Location
    target: str = ""
    module: str | None = None
    related: tuple[Location, ...] = ()
    fix: Fix | None = None


def diagnostic_order(d: Diagnostic) -> tuple[str, int, int, str]:
    """The order every report lists diagnostics in: file, line, column, code."""
    return (d.location.file, d.location.line, d.location.col, d.code)


@dataclass(frozen=True)
class LayerEstimate:
    """What the estimate says about one module that owns parameters (fields: docs/output.md)."""

    module: str
    type: str
    numel: int
    location: Location | None
    log10_grad: float | None
    log10_relative: float | None
    log10_signal: float | None
    log10_attenuation: float | None
    log10_bound: float | None
    saturating: int
    depth: int
    factors: int
    gate: str | None
    frozen: bool
    aliases: tuple[str, ...]
    zero: bool
    confidence: Literal["high", "low"]
    anchor: Location | None = None  # the user's line (differs from ``location`` for library code)
    # where the estimate depends on an unknown (attention's token coherence): log10_relative's
    # range over it, (low, high); the point estimate is one end
    range: tuple[float, float] | None = None
    # the largest single factor (log10, <= 0) in log10_attenuation: GL101 does not fire when
    # it carries most of the attenuation
    largest_factor: float = 0.0
    # the x * gate whose gate this layer feeds (squeeze-excitation): a side branch, judged by
    # the main path where it joins, its own factors counted from the gate on
    side_branch: str | None = None
    # log10 of the update ratio at init, weight-gradient RMS / weight RMS of the main weight
    # (informational: GL101 judges the gradient, docs/output.md says why)
    log10_update: float | None = None
    # why ``confidence`` is low, a short code (docs/output.md); None where it is high
    low_reason: str | None = None

    @classmethod
    def row(cls, values: dict[str, object]) -> LayerEstimate:
        """The same object as ``LayerEstimate(**values)`` with every field given, built in one
        step: the estimate makes one per layer, and a frozen dataclass's ``__init__`` sets
        its 20 fields one ``object.__setattr__`` at a time (2 µs of 2.9). A dict, not keyword
        arguments: the caller's dict literal is the one copy (keywords: 1.8 -> 1.1 µs)."""
        if values.keys() != _LAYER_FIELDS:
            return cls(**values)  # type: ignore[arg-type]  # raises for a missing field
        obj = object.__new__(cls)
        obj.__dict__.update(values)
        return obj


_LAYER_FIELDS = frozenset(LayerEstimate.__dataclass_fields__)


@dataclass(frozen=True)
class Verification:
    """The estimate beside autograd on the same model (``--verify``; protocol: docs/design.md)."""

    measured: dict[str, float | None]  # module -> measured log10 RMS weight gradient
    seeds: tuple[int, ...] = ()
    batch: int = 0
    per_example: bool = True
    layers: int = 0  # layers compared
    spearman: float | None = None
    mean_error: float | None = None
    max_error: float | None = None
    error: str | None = None  # why the model could not be measured

    def measured_relative(self, module: str) -> float | None:
        top = max((v for v in self.measured.values() if v is not None), default=None)
        value = self.measured.get(module)
        return None if value is None or top is None else value - top


@dataclass(frozen=True)
class OpaqueBlock:
    """A submodule that neither torch.fx nor torch.export could trace (GL904): it became one
    node of gain 1, so the weight layers inside it have no estimate. Kept on the model's
    report, whatever --select/--ignore keep, so the summary can say how much went unestimated."""

    module: str  # qualified name of the block
    type: str  # its class name
    reason: str  # why export failed on it
    layers: int = 0  # weight layers inside it that have no estimate

    def holds(self, layer: LayerEstimate) -> bool:
        """``layer`` is inside this block and got no estimate from elsewhere (tied weights)."""
        inside = layer.module == self.module or layer.module.startswith(self.module + ".")
        return inside and layer.log10_grad is None

    @classmethod
    def around(cls, module: str, type_name: str, reason: str,
               layers: tuple[LayerEstimate, ...]) -> OpaqueBlock:
        """The block with its count of learning weight layers that have no estimate."""
        block = cls(module, type_name, reason)
        count = sum(1 for le in layers if not le.frozen and block.holds(le))
        return cls(module, type_name, reason, count)


Status = Literal["ok", "failed", "skipped"]  # a model's outcome: checked, needs config, failed


@dataclass(frozen=True)
class ModelReport:
    """Everything gradlint learned about one target."""

    target: str
    name: str
    file: str
    line: int
    status: Status
    tracer: str | None = None
    init: str | None = None
    seconds: float = 0.0
    layers: tuple[LayerEstimate, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    verify: Verification | None = None
    built_as: str | None = None  # a convention gradlint built it with: "GPT(GPTConfig())"
    opaque: tuple[OpaqueBlock, ...] = ()  # blocks left untraced; their layers have no estimate
    inputs: tuple[str, ...] = ()  # the example inputs it was traced with: "4x1x28x28", "2x64:int64"

    @property
    def weight_layers(self) -> int:
        """Layers that learn (frozen ones are never diagnosed)."""
        return sum(1 for le in self.layers if not le.frozen)

    @property
    def unestimated(self) -> int:
        """Learning weight layers without an estimate (inside an opaque block)."""
        return sum(b.layers for b in self.opaque)

    @property
    def mostly_unestimated(self) -> bool:
        """More than half of the learning weight layers have no estimate: a summary must not
        call such a model free of problems."""
        return 2 * self.unestimated > self.weight_layers


@dataclass(frozen=True)
class RunCounts:
    """What happened to each file a run examined (named, or found under a folder; excluded
    files are not examined), so that a run never checks nothing silently. ``skipped`` and
    ``failed`` count files by reason: the code of the diagnostic that says why (GL907 not
    imported; GL900 syntax error, GL901 import failed, GL905 worker failed), or ``no-model``
    (the pre-filter found no nn.Module). ``examined = imported + skipped + failed``."""

    examined: int = 0
    imported: int = 0  # imported, and every model in it checked, skipped or failed
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """The result of one run over many files."""

    models: tuple[ModelReport, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = field(default=())
    counts: RunCounts | None = None  # None: not a run over files (a report built in code)


@dataclass(frozen=True)
class Target:
    """A built model ready to trace: the module, its example inputs, and where each submodule
    was constructed (qualified name -> (definition, anchor in the checked file))."""

    name: str  # e.g. "model.py::Net"
    model: object  # nn.Module; typed loosely so this module never imports torch
    file: str
    line: int
    inputs: tuple[object, ...] | None = None
    sites: dict[str, tuple[Location | None, Location | None]] = field(default_factory=dict)
    output_key: str | None = None
    built_as: str | None = None  # a convention that built it: "GPT(GPTConfig())"
    image_size: int | None = None  # the image side its constructor was given (image_size=256)
    frames: int | None = None  # the video frame count it was given (frames=16)


class StageError(Exception):
    """A user-caused failure inside a stage, carried to the report as a GL9xx diagnostic."""

    def __init__(self, code: str, message: str, location: Location | None = None,
                 related: tuple[Location, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.location = location
        self.related = related  # e.g. the library line under the user's line that failed
