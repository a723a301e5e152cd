"""``--verify`` runs the model on every argument it was traced with: an LSTM's ``(h, c)``, a
``None`` in a keyword's place, an int (HeldArgument specs), not only the tensors."""

from __future__ import annotations

import torch
import torch.nn as nn

from gradlint.core.input_specs import HeldArgument
from gradlint.trace.example_inputs import input_specs
from gradlint.verify.compare import _draw, verify_model


class Tagger(nn.Module):
    def __init__(self, layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=layers, batch_first=True)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]
                ) -> torch.Tensor:
        y, _ = self.lstm(x, hidden)
        return self.out(y)


def state(layers: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(layers, batch, 8), torch.zeros(layers, batch, 8)


def test_a_state_tuple_is_a_held_argument_redrawn_at_the_verify_batch() -> None:
    specs = input_specs((torch.randn(2, 5, 6), state(1, 2)))
    assert isinstance(specs[1], HeldArgument)
    x, (h, c) = _draw(specs, 16)
    assert x.shape == (16, 5, 6) and h.shape == c.shape == (1, 16, 8)
    x, (h, c) = _draw(specs, None)
    assert x.shape == (2, 5, 6) and h.shape == (1, 2, 8)


def test_verify_measures_a_model_that_takes_a_state_tuple() -> None:
    torch.manual_seed(0)
    model = Tagger()
    specs = input_specs((torch.randn(2, 5, 6), state(1, 2)))
    v = verify_model(model, specs, ())
    assert v.error is None, v.error
    assert v.batch == 16 and not v.per_example
    assert v.measured["lstm"] is not None and v.measured["out"] is not None


def test_where_the_batch_size_inside_a_tuple_is_ambiguous_the_example_batch_is_kept() -> None:
    torch.manual_seed(0)
    model = Tagger(layers=2)  # h is (2 layers, 2 examples, 8): the first 2 is not the batch
    specs = input_specs((torch.randn(2, 5, 6), state(2, 2)))
    v = verify_model(model, specs, ())
    assert v.error is None, v.error
    assert v.batch == 2


class Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, a: torch.Tensor, mask: torch.Tensor | None, b: torch.Tensor,
                scale: int) -> torch.Tensor:
        assert mask is None and scale == 3
        return self.fc(a + b) * scale


def test_none_and_ints_stay_in_their_places() -> None:
    specs = input_specs((torch.randn(2, 4), None, torch.randn(2, 4), 3))
    v = verify_model(Masked(), specs, ())
    assert v.error is None, v.error
    assert v.per_example and v.measured["fc"] is not None
