"""What every position shares, through attention and into the weight gradients.

Near-uniform attention averages its values over the keys: what differs between keys shrinks,
what they share (the batch-shared per-unit mean S, which the residual stream of an encoder
builds up block by block: S/P 0.1 at T5's second block's values, 0.56 at its output) passes
whole. Backwards, every key receives (1/n_k) sum_i g_i whatever the weights: the values'
gradient is alike at every key, and a weight applied at m positions then sums m^2 s S, not
m r P. Without these T5's encoder value and output projections came out 0.5-0.9 decades low
(zoo hf/t5 mean error 0.31, now 0.23); a squeeze-excitation branch of timm's CoAtNet, already
close to GL101's threshold, crossed it once the attention above it was estimated right, until
a side branch counted its own factors only (as GL101's docs say it does)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlint.core.graph import InputSpec
from gradlint.core.values import Target
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.run.check_file import check_model
from gradlint.trace.fx import trace_target
from gradlint.verify.compare import verify_model


class SharedValues(nn.Module):
    """Values with a large mean every example and position shares (a bias), averaged by
    full attention."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(width, width) for _ in range(3))
        self.o = nn.Linear(width, width)
        with torch.no_grad():
            self.v.bias.normal_(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.scaled_dot_product_attention(self.q(x)[:, None], self.k(x)[:, None],
                                           self.v(x)[:, None])
        return self.o(a[:, 0])


def test_attention_passes_the_shared_part_whole() -> None:
    torch.manual_seed(0)
    model = SharedValues()
    x = torch.randn(64, 40, 32)
    est = estimate_gradients(trace_target(Target("M", model, __file__, 1, (x,))))
    sdpa = next(n for n in est.graph.nodes if n.op == "sdpa")
    with torch.no_grad():
        a = F.scaled_dot_product_attention(model.q(x)[:, None], model.k(x)[:, None],
                                           model.v(x)[:, None])
    measured = float((a ** 2).mean())
    assert est.moments[sdpa.index].second == pytest.approx(measured, rel=0.15)
    # averaging it as if every key were independent left 1/40 of it
    assert est.moments[sdpa.index].second > 0.5 * measured


def test_the_value_and_output_projections_sum_what_positions_share() -> None:
    torch.manual_seed(0)
    model = SharedValues()
    report = check_model(model, torch.randn(4, 40, 32))
    v = verify_model(model, (InputSpec((4, 40, 32), "float32"),), report.layers, batch=4,
                     seeds=(0,))
    assert v.error is None and v.mean_error is not None
    assert v.mean_error < 0.2, v  # 0.5 with the values averaged away and no shared gradient


def test_a_squeeze_excitation_branch_counts_its_own_factors() -> None:
    """CoAtNet at the zoo's 128 px: its stage-2 SE layers sit 10^-2.0 below the head, but
    only one factor of that is the branch's; the main path at the join does not vanish."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("coatnet_nano_rw_224", pretrained=False, img_size=128)
    report = check_model(model, torch.randn(2, 3, 128, 128))
    assert report.status == "ok"
    assert not [d for d in report.diagnostics if d.code == "GL101"]
    fc1 = next(le for le in report.layers if le.module == "stages.1.blocks.3.se.fc1")
    assert fc1.side_branch is not None and fc1.factors < 3
