"""A normalization's eps as it is: ``BatchNorm2d(c, 0.8)`` (GAN code, where 0.8 lands in eps)
shrinks x̂'s mean square to var / (var + eps), forward and in γ's gradient; both tracers read
it. Before, the forward ignored eps and the export path dropped it: GL101 errors on healthy
GAN discriminators, estimates 1.5-3.7 decades off."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from gradlint.core.graph import InputSpec
from gradlint.core.values import Target
from gradlint.run.check_file import check_model
from gradlint.trace.example_inputs import input_specs
from gradlint.trace.export import export_target
from gradlint.trace.fx import trace_target
from gradlint.trace.weight_stats import owners_of, parameter_stats
from gradlint.verify.compare import verify_model


class BigEpsStack(nn.Module):
    """Conv-BN(eps 0.8)-LeakyReLU blocks: the input to each BN has variance ~0.03-0.3, so
    eps dominates and x̂ has mean square ~0.1."""

    def __init__(self, depth: int = 8, c: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1)]
        for _ in range(depth):
            layers += [nn.BatchNorm2d(c, 0.8), nn.LeakyReLU(0.2), nn.Conv2d(c, c, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


class Discriminator(nn.Module):
    """The usual GAN discriminator: strided convs, LeakyReLU, Dropout2d, BatchNorm2d(c, 0.8)."""

    def __init__(self) -> None:
        super().__init__()

        def block(i: int, o: int, bn: bool = True) -> list[nn.Module]:
            layers = [nn.Conv2d(i, o, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
            return layers + [nn.BatchNorm2d(o, 0.8)] if bn else layers

        self.model = nn.Sequential(*block(1, 16, bn=False), *block(16, 32), *block(32, 64),
                                   *block(64, 128))
        self.adv_layer = nn.Sequential(nn.Linear(128 * 2 ** 2, 1), nn.Sigmoid())

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        out = self.model(img)
        return self.adv_layer(out.view(out.shape[0], -1))


@pytest.mark.parametrize("make, shape, max_mean_error", [
    (BigEpsStack, (8, 3, 32, 32), 0.3),
    (Discriminator, (8, 1, 32, 32), 0.15),
])
def test_large_eps_batchnorm_is_quiet_and_measured_right(make: type[nn.Module],
                                                         shape: tuple[int, ...],
                                                         max_mean_error: float) -> None:
    torch.manual_seed(0)
    model = make()
    report = check_model(model, torch.randn(*shape))
    assert report.status == "ok"
    assert [d.code for d in report.diagnostics] == [], report.diagnostics
    v = verify_model(model, (InputSpec(shape, "float32"),), report.layers)
    assert v.error is None and v.mean_error is not None
    # before eps was used forward: 0.80 and 0.71 decades (GL101 on the stack's first 7 layers)
    assert v.mean_error < max_mean_error, v


class Norms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(8, 0.8)
        self.ln = nn.LayerNorm(8, eps=0.5)
        self.gn = nn.GroupNorm(2, 8, eps=0.3)
        self.rms = nn.RMSNorm(8, eps=1e-3)
        self.rms_default = nn.RMSNorm(8)  # eps None: the dtype's, no attribute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gn(self.ln(self.bn(x)).unsqueeze(-1)).squeeze(-1)
        return self.rms_default(self.rms(h))


def test_both_tracers_read_eps() -> None:
    model, x = Norms(), torch.randn(4, 8)
    target = Target("Norms", model, __file__, 1, (x,))
    stats, default_init = parameter_stats(model)
    exported = export_target(target, model, (x,), input_specs((x,)),
                             owners_of(model, {}, stats), stats, default_init)

    def eps(graph: object) -> list[tuple[str, object]]:
        return [(n.op, n.attrs.get("eps")) for n in graph.nodes  # type: ignore[attr-defined]
                if n.kind == "norm"]

    expected = [("batch_norm", 0.8), ("layer_norm", 0.5), ("group_norm", 0.3),
                ("rms_norm", 1e-3), ("rms_norm", None)]
    assert eps(trace_target(target)) == eps(exported) == expected
