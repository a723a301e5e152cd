"""The layers ``forward`` applies to an input, in call order, from its AST
(gradlint/trace/forward_order.py): what the export fallback's input guess follows instead of
registration order."""

from __future__ import annotations

import torch
import torch.nn as nn

from gradlint.trace.example_inputs import first_layers_forward, guess
from gradlint.trace.forward_order import layers_on


class OutOfOrder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.transformer = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 1)
        self.head = nn.Linear(16, 50)
        self.embed = nn.Embedding(50, 16)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens)
        return self.head(self.transformer(h))


def test_call_order_not_registration_order() -> None:
    model = OutOfOrder()
    assert layers_on(model)[:3] == [model.embed, model.transformer, model.head]
    (tokens,) = guess(first_layers_forward(model)) or ()
    assert tokens.dtype == torch.int64 and int(tokens.max()) < 50


class Shift(nn.Module):  # parameterless, with a forward of its own
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.roll(1, dims=-1)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8)  # registered first, called second
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm(self.fc(x))


class Containers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])
        self.stem = nn.Sequential(Shift(), nn.Linear(8, 8))
        self.unused = nn.Linear(3, 3)  # never called on the input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        for block in self.blocks:
            y = block(y)
        return y


def test_containers_loops_and_helpers_in_call_order() -> None:
    model = Containers()
    order = layers_on(model)
    shift, stem_fc = model.stem
    first = model.blocks[0]
    assert order[:5] == [shift, stem_fc, first, first.fc, first.norm]
    assert model.unused not in order
    assert first_layers_forward(model) == [stem_fc]  # through the parameterless helper


class Aliases(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4))
        self.inner = Block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.layers[1]
        if x.dim() > 5:
            x = x.flatten(1)
        z = self.inner.forward(first(x))
        return z


def test_aliases_indexing_branches_and_explicit_forward() -> None:
    model = Aliases()
    assert layers_on(model)[:3] == [model.layers[1], model.inner, model.inner.fc]


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.text = nn.Embedding(30, 8)
        self.image = nn.Conv2d(3, 8, 3)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.image(image).mean((2, 3)) + self.text(text).mean(1)


def test_each_required_input_gets_its_own_first_layer() -> None:
    model = TwoInputs()
    assert first_layers_forward(model) == [model.image, model.text]
    image, text = guess(first_layers_forward(model)) or ()
    assert image.shape[1] == 3 and text.dtype == torch.int64
    model(image, text)


def test_unreadable_source_falls_back_to_registration_order() -> None:
    namespace: dict[str, object] = {"nn": nn}
    exec("class Hidden(nn.Module):\n"  # noqa: S102 - a class without a source file
         "    def __init__(self):\n"
         "        super().__init__()\n"
         "        self.fc = nn.Linear(5, 2)\n"
         "    def forward(self, x):\n"
         "        return self.fc(x)\n", namespace)
    model = namespace["Hidden"]()  # type: ignore[operator]
    assert layers_on(model) == []
    assert first_layers_forward(model) == [model.fc]


class Holes(nn.Module):
    """A ModuleList with an empty slot (vit-pytorch's ScalableViT keeps None for a stage
    without a block): a gradlint error (GL905) before."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList([nn.Sequential(nn.Linear(8, 8)), None])
        self.stages[1] = None
        self.inner = nn.ModuleList([nn.ModuleList([None, nn.Linear(8, 4)])])
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            if stage is not None:
                x = stage(x)
        for block in self.inner:
            x = block(x)
        return self.head(x)


def test_an_empty_slot_in_a_container_runs_nothing() -> None:
    model = Holes()
    layers = layers_on(model)
    assert layers[0] is model.stages[0][0] and model.head in layers
    assert all(isinstance(m, nn.Module) for m in layers)
