"""Inferred inputs that run (gradlint/trace/input_search.py, shapes.shape_pass): common sizes,
the size a Linear's fan-in after a flatten solves, layouts rearranged in front; GL902 when no
input feeds a model, GL903 when its first layers take the input and it still fails; the search
leaves the model as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import gradlint.load.given_inputs as given_inputs
from gradlint.core.values import StageError, Target
from gradlint.trace.fx import trace_target
from gradlint.trace.input_search import search


def shapes_of(model: nn.Module) -> list[tuple[int, ...]]:
    graph = trace_target(Target("m.py::M", model, "m.py", 1))
    return [spec.shape for spec in graph.inputs]


class Mnist(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.bn = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = torch.flatten(F.max_pool2d(self.bn(x), 2), 1)
        self.last = x  # a forward that stores a value on the module
        return self.fc2(F.relu(self.fc1(x)))


def test_mnist_net_gets_28x28() -> None:
    assert shapes_of(Mnist()) == [(4, 1, 28, 28)]


class Odd(nn.Module):
    """Needs 40x40 (or 41x41), which no common size is: solved from fc's fan-in."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8 * 19 * 19, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.max_pool2d(self.conv(x), 2).flatten(1))


def test_a_size_no_common_one_has_is_solved_from_the_linear_fan_in() -> None:
    assert shapes_of(Odd()) == [(4, 3, 40, 40)]


class Signal(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 5, stride=2)
        self.fc = nn.Linear(4 * 62, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def test_one_dimensional_lengths() -> None:
    assert shapes_of(Signal()) == [(4, 2, 128)]


class Patches(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // 4) * (w // 4), 16 * c)


class PatchNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patches = Patches()
        self.embed = nn.Linear(48, 16)
        self.pos = nn.Parameter(torch.zeros(1, 64, 16))
        self.head = nn.Linear(16, 2)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.head((self.embed(self.patches(img)) + self.pos).mean(1))


def test_a_layout_rearranged_in_front_is_searched_for() -> None:
    assert shapes_of(PatchNet()) == [(4, 3, 32, 32)]


class WithDefaults(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, k: int = 3
                ) -> torch.Tensor:
        return self.fc(x)


def test_arguments_with_defaults_keep_them() -> None:
    assert shapes_of(WithDefaults()) == [(4, 6)]


class NeverFed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.view(-1, 7))  # no input reaches fc with 5 features


def test_a_model_no_input_feeds_is_gl902_with_the_config_line() -> None:
    with pytest.raises(StageError) as err:
        shapes_of(NeverFed())
    assert err.value.code == "GL902"
    assert '[tool.gradlint.targets."m.py::M"] inputs = ["4x5"]' in err.value.message


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))  # the model's own mismatch: no input fixes it


def test_a_model_its_first_layer_takes_the_input_of_and_still_fails_is_gl903() -> None:
    with pytest.raises(StageError) as err:
        shapes_of(Broken())
    assert err.value.code == "GL903"
    assert err.value.location is not None and err.value.location.line > 1


class Huge(nn.Module):
    """Its forward allocates more than any address space holds: the machine's limit."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        scratch = h.new_empty(1 << 60)  # 8 EiB: fits on meta, nowhere else
        return h + scratch[:8]


def test_running_out_of_memory_on_the_example_is_gl905_not_the_models_error() -> None:
    with pytest.raises(StageError) as err:
        shapes_of(Huge())
    assert err.value.code == "GL905"
    assert err.value.message.startswith("ran out of memory running Huge on an example input")
    assert "--input" in err.value.message


@pytest.mark.parametrize("meta_first", [False, True])
def test_the_search_leaves_the_model_as_it_was(monkeypatch: pytest.MonkeyPatch,
                                               meta_first: bool) -> None:
    if meta_first:  # a large model's fit checks run on the meta device
        monkeypatch.setattr(given_inputs, "REAL_PARAMS", 0)
    model = Mnist().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    found = search(model, [model.conv1])
    assert found is not None and found[0].shape == (4, 1, 28, 28)
    assert not hasattr(model, "last")
    assert not model.training and not model.bn.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert torch.equal(rng, torch.random.get_rng_state())


def test_a_model_built_on_meta_is_searched_on_meta() -> None:
    with torch.device("meta"):
        model = Mnist()
    found = search(model, [model.conv1])
    assert found is not None and found[0].shape == (4, 1, 28, 28)


class PooledWrongHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(7, 2)  # gets 8 features whatever the image size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.conv(x), 1).flatten(1))


def test_sizes_that_cannot_change_a_linear_fan_in_are_not_all_tried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import gradlint.trace.input_search as input_search

    runs: list[int] = []

    def counted(model: nn.Module, args: tuple[object, ...]) -> BaseException | None:
        runs.append(1)
        return given_inputs.fit_error(model, args)

    monkeypatch.setattr(input_search, "fit_error", counted)
    model = PooledWrongHead()
    assert search(model, [model.conv]) is None
    assert len(runs) < 30  # the common sizes of two image layouts and no bisection
    with pytest.raises(StageError) as err:
        shapes_of(model)
    assert err.value.code == "GL903"  # conv took the input: the head is the model's own bug


class Tokens(nn.Module):
    """A patch embedding whose position table fixes the image size (64x64: 256 tokens), and
    an attention over the tokens; ``norm``: a BatchNorm1d over the pooled features, which
    needs two examples in train mode."""

    def __init__(self, norm: bool = False) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 32, 4, 4)
        self.pos = nn.Parameter(torch.zeros(1, 256, 32))
        self.qkv = nn.Linear(32, 96)
        self.norm = nn.BatchNorm1d(32) if norm else nn.Identity()
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        t = F.scaled_dot_product_attention(q, k, v)
        return self.head(self.norm(t.mean(1)))


@pytest.mark.parametrize("norm, batch", [(False, 1), (True, 4)])
def test_a_searched_input_past_the_flop_budget_runs_one_example(
        monkeypatch: pytest.MonkeyPatch, norm: bool, batch: int) -> None:
    """Past FLOP_BUDGET (counted on meta, for a model whose fit checks ran there) the shape
    pass runs on the batch's first example; a model one example does not run (BatchNorm in
    train mode) keeps the batch. Within the budget the batch stays."""
    import gradlint.trace.input_search as input_search

    monkeypatch.setattr(given_inputs, "REAL_PARAMS", 0)
    assert shapes_of(Tokens(norm)) == [(4, 3, 64, 64)]
    monkeypatch.setattr(input_search, "FLOP_BUDGET", 1e6)
    assert shapes_of(Tokens(norm)) == [(batch, 3, 64, 64)]


def test_one_example_takes_the_batch_where_the_first_layer_has_it() -> None:
    from gradlint.trace.example_inputs import BATCH, input_for, one_example

    lstm, linear = nn.LSTM(8, 8), nn.Linear(8, 2)
    inputs = (input_for(lstm), input_for(linear))
    assert inputs[0] is not None and inputs[0].shape == (16, BATCH, 8)
    small = one_example(inputs, [lstm, linear])
    assert small is not None
    assert [t.shape for t in small] == [(16, 1, 8), (1, 8)]
    assert torch.equal(small[0][:, 0], inputs[0][:, 0])
    assert one_example((torch.randn(3, 8),), [linear]) is None  # not a batch of BATCH


class _Conditioned(nn.Module):
    """DiT's forward(x, t, y): latents patchified by a conv, a timestep through a sinusoidal
    table into a Linear, a class label into an Embedding, added and broadcast over the
    patches. ``t`` and ``y`` take one number per example."""

    def __init__(self, dim: int = 32, first: str = "t") -> None:
        super().__init__()
        self.patch = nn.Conv2d(4, dim, 2, stride=2)
        self.time = nn.Linear(64, dim)
        self.label = nn.Embedding(11, dim)
        self.out = nn.Linear(dim, 4 * 4)
        self.first = first

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        freqs = torch.exp(-torch.arange(32) / 32.0)
        args = t[:, None].float() * freqs[None]
        c = self.time(torch.cat([torch.cos(args), torch.sin(args)], dim=-1)) + self.label(y)
        h = self.patch(x).flatten(2).transpose(1, 2) + c[:, None]
        return self.out(h)


class _NamedLikeATimestep(nn.Module):
    """A parameter named ``t`` that is a feature vector after all: the next candidate."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(24, 8)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.fc(t.view(t.shape[0], 2, 12).flatten(1))


def test_a_timestep_and_a_label_are_one_number_per_example() -> None:
    """Before, ``t`` got the time Linear's features (4x64) and the model no input: GL902."""
    model = _Conditioned()
    graph = trace_target(Target("m.py::M", model, "m.py", 1))
    assert [spec.shape[1:] for spec in graph.inputs] == [(4, 32, 32), (), ()]
    assert [spec.dtype for spec in graph.inputs][1:] == ["float32", "int64"]
    assert shapes_of(_NamedLikeATimestep())[0][1:] == (24,)
