"""Inputs the user gave, per model (gradlint/load/given_inputs.py): a file's one
``example_inputs()`` applies to the models it fits, or is a dict keyed by model name; a file's
only model keeps it unchecked; keyword dicts still map onto ``forward``'s parameters."""

from __future__ import annotations

import textwrap
import types

import torch
import torch.nn as nn

from gradlint.load.given_inputs import fit_error, given_inputs

GAN = """
import torch
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 16)

    def forward(self, z):
        return self.fc(z).view(-1, 1, 4, 4)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 1)

    def forward(self, img):
        return self.fc(img.flatten(1))


disc = Discriminator()
"""


def module_from(source: str, name: str = "user_gan") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(textwrap.dedent(source), f"{name}.py", "exec"), vars(module))  # noqa: S102
    return module


def example(module: types.ModuleType, value: object) -> None:
    module.example_inputs = lambda: value  # type: ignore[attr-defined]


def test_example_inputs_feed_the_model_they_fit_and_not_the_other() -> None:
    module = module_from(GAN)
    z = torch.randn(3, 10)
    example(module, (z,))
    gen = module.Generator()
    inputs = given_inputs(module, gen, (), "Generator")
    assert inputs is not None and inputs[0] is z
    assert given_inputs(module, module.disc, (), "disc") is None  # inferred instead


def test_example_inputs_keyed_by_model_name_or_class() -> None:
    module = module_from(GAN)
    z, img = torch.randn(3, 10), torch.randn(3, 1, 4, 4)
    example(module, {"Generator": z, "Discriminator": img})
    assert given_inputs(module, module.Generator(), (), "Generator") == (z,)
    disc = given_inputs(module, module.disc, (), "disc")  # the instance, by its class's name
    assert disc is not None and disc[0] is img
    example(module, {"Generator": z})
    assert given_inputs(module, module.disc, (), "disc") is None


def test_a_files_only_model_keeps_its_inputs_even_when_they_do_not_fit() -> None:
    module = module_from("""
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x, hidden):
                return self.fc(x) + hidden[0]
    """, "user_single")
    wrong = torch.randn(2, 5)
    example(module, (wrong, (torch.zeros(2, 2),)))
    inputs = given_inputs(module, module.Net(), (), "Net")
    assert inputs is not None and inputs[0] is wrong  # its GL903 is the user's to see
    assert isinstance(inputs[1], tuple)


def test_keyword_dicts_map_onto_forward_parameters() -> None:
    class Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    decoder_input_ids: torch.Tensor | None = None) -> torch.Tensor:
            return self.fc(input_ids + (decoder_input_ids if decoder_input_ids is not None
                                        else 0))

    module = module_from("")
    ids = torch.randn(2, 4)
    example(module, {"input_ids": ids, "decoder_input_ids": ids})
    assert given_inputs(module, Seq(), (), "Seq") == (ids, None, ids)


def test_shape_specs_win_over_example_inputs() -> None:
    module = module_from(GAN)
    example(module, (torch.randn(3, 10),))
    (x,) = given_inputs(module, module.Generator(), ("2x10",), "Generator") or ()
    assert x.shape == (2, 10)


def test_fit_error_says_why_and_leaves_the_model_alone() -> None:
    module = module_from(GAN)
    gen = module.Generator()
    weight = gen.fc.weight.detach().clone()
    assert fit_error(gen, (torch.randn(2, 10),)) is None
    assert isinstance(fit_error(gen, (torch.randn(2, 11),)), RuntimeError)
    assert torch.equal(weight, gen.fc.weight) and gen.training


def test_a_large_model_with_tied_weights_is_fitted_on_meta() -> None:
    """Above REAL_PARAMS the fit check runs on meta through functional_call, which refuses a
    value for each name of one tied tensor (a GPT's token embedding and head)."""

    class TiedLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(40_000, 512)
            self.head = nn.Linear(512, 40_000, bias=False)
            self.head.weight = self.wte.weight

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            return self.head(self.wte(idx))

    model = TiedLM()
    assert sum(p.numel() for p in model.parameters()) > 20_000_000
    assert fit_error(model, (torch.randint(0, 40_000, (2, 8)),)) is None
    assert isinstance(fit_error(model, (torch.randn(2, 8, 3),)), Exception)
    assert model.head.weight is model.wte.weight


def test_the_report_shows_inputs_in_the_input_flags_syntax() -> None:
    from gradlint.core.graph import InputSpec
    from gradlint.core.input_specs import HeldArgument, spec_text

    assert spec_text(InputSpec((4, 1, 28, 28), "float32")) == "4x1x28x28"
    assert spec_text(InputSpec((2, 64), "int64", 100)) == "2x64:int64"
    state = (InputSpec((1, 4, 16), "float32"), InputSpec((1, 4, 16), "float32"))
    assert spec_text(HeldArgument(value=state)) == "(1x4x16, 1x4x16)"
    assert spec_text(HeldArgument(value=None)) == "None"
