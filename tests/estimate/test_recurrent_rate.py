"""The per-step gradient rate of gated cells against autograd (issue 18, GL104), and what
GL104's message says: the horizon, the first/last ratio, where T came from."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint.core.values import Target
from gradlint.estimate.recurrent import analyse_cell, renewal_rate
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.trace.fx import trace_target
from gradlint.verify.measure import measure_time_decay


class Classifier(nn.Module):
    def __init__(self, mode: str, hidden: int, features: int, gate_bias: float = 0.0) -> None:
        super().__init__()
        self.rnn: nn.RNNBase = getattr(nn, mode)(features, hidden, batch_first=True)
        if gate_bias:  # the forget gate (LSTM) or the update gate (GRU): the second chunk
            with torch.no_grad():
                self.rnn.bias_ih_l0[hidden:2 * hidden].fill_(gate_bias)
                self.rnn.bias_hh_l0[hidden:2 * hidden].zero_()
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _estimated(model: nn.Module, steps: int, features: int) -> float:
    graph = trace_target(Target("t", model, "t.py", 1, (torch.randn(4, steps, features),)))
    est = estimate_gradients(graph)
    node = next(n for n in graph.nodes if n.op == "recurrent")
    return math.log10(analyse_cell(node, est.moments[node.inputs[0]].second).rho)


_SLOW = pytest.mark.slow  # ~15 s each (autograd over 60 steps): CI runs them in its slow step


@pytest.mark.parametrize(("mode", "hidden", "features", "gate_bias"), [
    ("LSTM", 64, 16, 0.0), pytest.param("LSTM", 64, 64, 1.0, marks=_SLOW),
    pytest.param("GRU", 32, 8, 0.0, marks=_SLOW), ("GRU", 64, 16, 1.0),
    pytest.param("RNN", 128, 16, 0.0, marks=_SLOW)])
def test_per_step_rate_within_two_hundredths_of_a_decade(mode: str, hidden: int, features: int,
                                                         gate_bias: float) -> None:
    pred, meas = [], []
    for seed in range(2):
        torch.manual_seed(seed)
        model = Classifier(mode, hidden, features, gate_bias)
        pred.append(_estimated(model, 60, features))
        meas.append(measure_time_decay(model, 60, features))
    p, m = sum(pred) / 2, sum(meas) / 2
    assert abs(p - m) < 0.02, (p, m)  # decades per step


def test_renewal_rate_limits() -> None:
    assert renewal_rate(0.5, 0.0, 0.1) == pytest.approx(0.35)  # fresh weights: a^2 + noise
    assert renewal_rate(0.0, 0.4, 0.1) == pytest.approx(0.26)  # vanilla: b^2 + noise
    assert renewal_rate(0.5, 0.1, 0.0) == pytest.approx(0.36)  # coherent: (a + b)^2
    assert 0.36 < renewal_rate(0.5, 0.1, 0.02) < 0.5 ** 2 + 0.1 ** 2 + 0.02 + 0.2


def test_gl104_message_gives_horizon_ratio_and_length() -> None:
    torch.manual_seed(0)
    given = gradlint.check(Classifier("LSTM", 64, 16), torch.randn(4, 200, 16))
    (diag,) = [d for d in given.diagnostics if d.code == "GL104"]
    assert "horizon of ξ = " in diag.message and "first/last ratio" in diag.message
    assert "the example input's T = 200 steps" in diag.message
    span = float(diag.message.split("is 10^")[1].split()[0])
    assert -44 < span < -36  # measured first/last: 10^-39.7 (issue 18)
    assert "gates can learn to open" in diag.message
    torch.manual_seed(0)
    guessed = gradlint.check(Classifier("RNN", 64, 16))
    (diag,) = [d for d in guessed.diagnostics if d.code == "GL104"]
    assert "a length gradlint guessed" in diag.message and "--input" in diag.message
