"""Recurrent cells: the per-step gradient decay against autograd, and GL104's verdicts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint.core.values import Target
from gradlint.estimate.recurrent import analyse_cell
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.trace.fx import trace_target
from gradlint.verify.measure import measure_time_decay


class Classifier(nn.Module):
    def __init__(self, mode: str, hidden: int = 64, forget_bias: float = 0.0,
                 nonlinearity: str = "tanh") -> None:
        super().__init__()
        if mode == "RNN":
            self.rnn: nn.RNNBase = nn.RNN(16, hidden, batch_first=True,
                                          nonlinearity=nonlinearity)
        else:
            self.rnn = getattr(nn, mode)(16, hidden, batch_first=True)
        if forget_bias:
            with torch.no_grad():
                self.rnn.bias_ih_l0[hidden:2 * hidden].fill_(forget_bias)
                self.rnn.bias_hh_l0[hidden:2 * hidden].zero_()
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def predicted_decay(model: nn.Module, steps: int) -> float:
    graph = trace_target(Target("t", model, "t.py", 1, (torch.randn(4, steps, 16),)))
    est = estimate_gradients(graph)
    node = next(n for n in graph.nodes if n.op == "recurrent")
    return math.log10(analyse_cell(node, est.moments[node.inputs[0]].second).rho)


def measured_decay(model: nn.Module, steps: int) -> float:
    return measure_time_decay(model, steps, 16)


@pytest.mark.parametrize("hidden", [64, 256])
@pytest.mark.parametrize("nonlinearity", ["tanh"])
def test_vanilla_rnn_per_step_decay_matches_autograd(hidden: int, nonlinearity: str) -> None:
    pred, meas = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        model = Classifier("RNN", hidden, nonlinearity=nonlinearity)
        pred.append(predicted_decay(model, 60))
        meas.append(measured_decay(model, 60))
    p, m = sum(pred) / 3, sum(meas) / 3
    assert abs(p - m) < 0.05, (p, m)  # decades per step


def test_forget_bias_one_slows_the_lstm_decay() -> None:
    torch.manual_seed(0)
    default = predicted_decay(Classifier("LSTM"), 60)
    torch.manual_seed(0)
    biased = predicted_decay(Classifier("LSTM", forget_bias=1.0), 60)
    assert default < biased < 0
    torch.manual_seed(0)
    assert measured_decay(Classifier("LSTM"), 60) < measured_decay(
        Classifier("LSTM", forget_bias=1.0), 60)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_gl104_verdicts(mode: str) -> None:
    torch.manual_seed(0)
    short = gradlint.check(Classifier(mode), torch.randn(4, 10, 16))
    long = gradlint.check(Classifier(mode), torch.randn(4, 200, 16))
    assert short.status == long.status == "ok"
    assert "GL104" not in {d.code for d in short.diagnostics}
    assert "GL104" in {d.code for d in long.diagnostics}
    rnn_layer = next(le for le in long.layers if le.module == "rnn")
    assert rnn_layer.confidence == "high"  # one layer: the rate is within 0.02 decades
