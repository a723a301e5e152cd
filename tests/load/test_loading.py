"""The load stage: where each layer was built and which models a file yields (README, "What
gets checked").

Mostly in-process through ``load_targets`` / ``check_paths``; two runs of the installed command
check what only the command shows (exit code, a clean JSON stdout).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from gradlint.core.options import Options
from gradlint.core.values import Diagnostic, Location, ModelReport, Target
from gradlint.load.targets import LoadRequest, load_targets
from gradlint.run.pipeline import check_paths, selected


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, needle: str, nth: int = 0) -> int:
    """1-based line of the ``nth`` line containing ``needle``."""
    hits = [i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
            if needle in text]
    assert len(hits) > nth, f"{needle!r} not found in {path}"
    return hits[nth]


def col_of(path: Path, line: int, needle: str) -> int:
    return path.read_text(encoding="utf-8").splitlines()[line - 1].index(needle) + 1


def targets(path: Path | str, *names: str) -> dict[str, Target | ModelReport]:
    loaded = load_targets(LoadRequest(str(path), names))
    assert not isinstance(loaded, Diagnostic), loaded
    return {t.name.rpartition("::")[2]: t for t in loaded}


def target(path: Path, name: str) -> Target:
    found = targets(path, name)[name]
    assert isinstance(found, Target), found
    return found


def definition(t: Target, module: str) -> Location:
    site = t.sites[module][0]
    assert site is not None, f"no construction site recorded for {module!r}"
    return site


def layer_lines(path: Path, name: str) -> dict[str, int | None]:
    """The checked model's layers -> the line the report gives for each."""
    report, missing = check_paths([f"{path}::{name}"], Options())
    assert not missing
    (model,) = report.models
    assert model.status == "ok", model.diagnostics
    return {le.module: le.location.line if le.location else None for le in model.layers}


# ---------------------------------------------------------------------------- source locations

LOCATIONS = """
import copy

import torch
import torch.nn as nn


def make_layer(n):
    return nn.Linear(n, n)  # helper-line


class Helper(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = make_layer(8)

    def forward(self, x):
        return self.fc(x)


class Loop(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(3):
            self.layers.append(nn.Linear(8, 8))  # append-line

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


class AddModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = nn.Linear(8, 8)
        self.add_module("fc", nn.Linear(8, 8))  # add-module-line

    def forward(self, x):
        return self.fc(self.pre(x))


class Clones(nn.Module):
    def __init__(self):
        super().__init__()
        base = nn.Linear(8, 8)  # base-line
        self.layers = nn.ModuleList(
            [copy.deepcopy(base) for _ in range(3)]  # clone-line
        )

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


class MultiLine(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(8, 8),
            nn.Sigmoid(),
            nn.Linear(8, 2),
        )

    def forward(self, x):
        return self.net(x)


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)
        self.c = nn.Linear(16, 16)
        self.d = nn.Linear(16, 16)

    def forward(self, x):
        x = torch.sigmoid(self.a(x))  # sig-1
        x = torch.sigmoid(self.b(x))  # sig-2
        x = torch.sigmoid(self.c(x))  # sig-3
        return self.d(x)
"""


def test_layer_built_in_helper_function(tmp_path: Path) -> None:
    path = write(tmp_path, "locs.py", LOCATIONS)
    helper = line_of(path, "# helper-line")
    site = definition(target(path, "Helper"), "fc")
    assert site.line == helper
    assert site.col == col_of(path, helper, "nn.Linear")
    assert layer_lines(path, "Helper") == {"fc": helper}


def test_layers_appended_in_loop(tmp_path: Path) -> None:
    path = write(tmp_path, "locs.py", LOCATIONS)
    append = line_of(path, "# append-line")
    t = target(path, "Loop")
    for i in range(3):
        site = definition(t, f"layers.{i}")
        assert site.line == append
        assert site.col == col_of(path, append, "nn.Linear")
    assert layer_lines(path, "Loop") == {f"layers.{i}": append for i in range(3)}


def test_add_module(tmp_path: Path) -> None:
    path = write(tmp_path, "locs.py", LOCATIONS)
    line = line_of(path, "# add-module-line")
    assert definition(target(path, "AddModule"), "fc").line == line
    assert layer_lines(path, "AddModule")["fc"] == line


def test_deepcopy_clones_in_comprehension(tmp_path: Path) -> None:
    path = write(tmp_path, "locs.py", LOCATIONS)
    clone = line_of(path, "# clone-line")
    t = target(path, "Clones")
    for i in range(3):
        assert definition(t, f"layers.{i}").line == clone
    assert layer_lines(path, "Clones") == {f"layers.{i}": clone for i in range(3)}


def test_multiline_sequential_items_on_their_own_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "locs.py", LOCATIONS)
    first = line_of(path, "nn.Linear(8, 8),", nth=0)
    sigmoid = line_of(path, "nn.Sigmoid(),")
    last = line_of(path, "nn.Linear(8, 2),")
    t = target(path, "MultiLine")
    assert definition(t, "net.0").line == first
    assert definition(t, "net.0").col == col_of(path, first, "nn.Linear")
    assert definition(t, "net.1").line == sigmoid
    assert definition(t, "net.2").line == last
    assert layer_lines(path, "MultiLine") == {"net.0": first, "net.2": last}


def test_functional_ops_located_at_call_line(tmp_path: Path) -> None:
    path = write(tmp_path, "locs.py", LOCATIONS)
    sig_lines = [line_of(path, f"# sig-{i}") for i in (1, 2, 3)]
    report, _ = check_paths([f"{path}::Functional"], Options())
    gl102 = [d for d in selected(report, Options()) if d.code == "GL102"]
    assert len(gl102) == 1, gl102
    loc = gl102[0].location
    assert loc.line in sig_lines
    assert loc.col == col_of(path, loc.line, "torch.sigmoid")
    for line in sig_lines:  # every sigmoid of the chain is named at its own line
        assert f"{path}:{line}" in gl102[0].message


def test_layer_from_sibling_module_anchored_in_checked_file(tmp_path: Path) -> None:
    """Definition in the helper file; the diagnostic sits on the checked file's line, with the
    helper's line under ``related`` (docs/output.md)."""
    helpers = write(tmp_path, "siblinglayers.py", """
        import torch.nn as nn


        def sig_block(width):
            return nn.Sequential(nn.Linear(width, width), nn.Sigmoid())  # def-line
        """)
    path = write(tmp_path, "deep.py", """
        import torch.nn as nn

        from siblinglayers import sig_block


        class Deep(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(*[sig_block(64) for _ in range(12)])  # use-line
                self.head = nn.Linear(64, 1)

            def forward(self, x):
                return self.head(self.body(x))
        """)
    def_line, use_line = line_of(helpers, "# def-line"), line_of(path, "# use-line")
    site_def, site_anchor = target(path, "Deep").sites["body.0.0"]
    assert site_def is not None and site_anchor is not None
    assert (Path(site_def.file).name, site_def.line) == ("siblinglayers.py", def_line)
    assert (Path(site_anchor.file).name, site_anchor.line) == ("deep.py", use_line)
    report, _ = check_paths([str(path)], Options())
    gl101 = [d for d in selected(report, Options()) if d.code == "GL101"]
    assert gl101, "a 12-deep sigmoid stack must raise GL101"
    loc = gl101[0].location
    assert (Path(loc.file).name, loc.line) == ("deep.py", use_line)
    assert loc.col == col_of(path, use_line, "sig_block")
    assert [(Path(r.file).name, r.line) for r in gl101[0].related] == [
        ("siblinglayers.py", def_line)]


# ---------------------------------------------------------------------------- discovery

DISCOVERY = """
import torch
import torch.nn as nn

print("printed at import")


class Base(nn.Module):
    def scale(self):
        return 1.0


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return torch.relu(self.fc(x))


class Net(Base):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = Block()

    def forward(self, x):
        return self.b(self.a(x))


class Sized(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x)


class Other(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


model = Net()  # the-instance
"""


def test_discovery_outermost_models(tmp_path: Path) -> None:
    path = write(tmp_path, "disc.py", DISCOVERY)
    found = targets(path)
    # Net is reported once, as its module-level instance; Block only lives inside Net;
    # Base has no forward; Sized needs arguments
    assert sorted(found) == ["Other", "Sized", "model"]
    instance = found["model"]
    assert isinstance(instance, Target)
    assert instance.name == f"{path}::model"
    assert instance.line == line_of(path, "# the-instance")
    sized = found["Sized"]
    assert isinstance(sized, ModelReport) and sized.status == "skipped"
    (diag,) = sized.diagnostics
    assert (diag.code, diag.severity) == ("GL902", "info")
    assert diag.location.line == line_of(path, "class Sized")
    assert "width" in diag.message


def test_named_target_picks_one_model(tmp_path: Path) -> None:
    path = write(tmp_path, "disc.py", DISCOVERY)
    report, missing = check_paths([f"{path}::Other"], Options())
    assert not missing
    assert [m.target for m in report.models] == [f"{path}::Other"]
    assert report.models[0].status == "ok"
    assert not report.diagnostics


def test_discovery_through_the_command(tmp_path: Path, run_gradlint: Any) -> None:
    write(tmp_path, "disc.py", DISCOVERY)
    proc = run_gradlint("disc.py", "--format", "json", cwd=tmp_path)
    # GL902 is info: nothing at warning or above, so exit 0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)  # the import-time print went to stderr, not into the report
    assert "printed at import" in proc.stderr
    status = {m["target"]: m["status"] for m in doc["models"]}
    assert status == {"disc.py::model": "ok", "disc.py::Other": "ok",
                      "disc.py::Sized": "skipped"}
    assert [(d["code"], d["severity"]) for d in doc["diagnostics"]] == [("GL902", "info")]
    assert doc["summary"]["failed"] == 0


def test_print_in_forward_does_not_corrupt_json(tmp_path: Path, run_gradlint: Any) -> None:
    write(tmp_path, "chatty.py", """
        import torch
        import torch.nn as nn


        class Chatty(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                print("printed in forward")
                return torch.relu(self.fc(x))
        """)
    proc = run_gradlint("chatty.py", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert [m["status"] for m in doc["models"]] == ["ok"]


def test_example_inputs_function_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "conv.py", """
        import torch
        import torch.nn as nn


        class ConvNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3, padding=1)
                self.head = nn.Linear(4 * 64 * 64, 10)

            def forward(self, x):
                return self.head(torch.relu(self.conv(x)).flatten(1))


        def example_inputs():
            return (torch.randn(2, 3, 64, 64),)
        """)
    t = target(path, "ConvNet")
    assert t.inputs is not None
    assert tuple(t.inputs[0].shape) == (2, 3, 64, 64)  # type: ignore[attr-defined]
    report, _ = check_paths([str(path)], Options())
    assert [m.status for m in report.models] == ["ok"], report.models
    assert {le.module for le in report.models[0].layers} == {"conv", "head"}


def test_the_meta_size_probe_draws_no_random_numbers() -> None:
    """Sizing a model on meta runs its constructor's inits; on meta they have nothing to fill,
    and torch sends each (``uniform_`` for every default Linear/Conv init, ``normal_``...)
    through Python decompositions, a third of sizing a deep MLP. The probe's mode hands the
    tensor back instead: no random op reaches torch's dispatcher, and the model is the same."""
    import torch
    import torch.nn as nn
    from torch.utils._python_dispatch import TorchDispatchMode

    from gradlint.load.meta_probe import MetaDrawsNothing

    class Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))

    def build() -> nn.Module:
        net = nn.Sequential(nn.Linear(4, 8), nn.Conv1d(8, 8, 3), nn.Embedding(10, 4))
        nn.init.uniform_(net[0].bias, -0.1, 0.1)
        nn.init.kaiming_uniform_(net[1].weight, a=0.1)
        net[2].weight.data.normal_(0.0, 0.02)
        net[0].weight.data.bernoulli_(0.5)
        return net

    ops = Ops()
    with ops, MetaDrawsNothing(), torch.device("meta"):
        net = build()
    draws = {"uniform", "normal", "bernoulli", "random", "exponential", "cauchy"}
    assert not [n for n in ops.names if n.split(".")[0].rstrip("_") in draws], ops.names
    with torch.device("meta"):
        plain = build()
    assert [(k, p.shape, p.device.type) for k, p in net.named_parameters()] == [
        (k, p.shape, p.device.type) for k, p in plain.named_parameters()]
