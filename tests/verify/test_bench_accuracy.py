"""The accuracy benchmark's machinery on a tiny subset; its metrics on hand-computed inputs."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

from gradlint.verify.agreement import agreement, auroc, f1, ranks, spearman

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import accuracy  # noqa: E402


@pytest.mark.slow  # ~20 s: CI's slow step runs it
def test_quick_run_writes_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "acc.md"
    assert accuracy.main(["--quick", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for heading in ("## Targets (issue 4)", "## Grid", "### Grid by family",
                    "### Grid by activation", "## Held-out architectures", "## Verdicts",
                    "## 10 worst layers, all sets", "per-step rate (decades per step, log10 ρ)"):
        assert heading in text, heading
    assert "torch " in text and "CPUs" in text and "--quick" in text
    assert "## Failures\n\nnone" in text
    grid_row = next(line for line in text.splitlines() if line.startswith("| grid (all) |"))
    held_row = next(line for line in text.splitlines() if line.startswith("| held-out (all) |"))
    for line in (grid_row, held_row):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == len(accuracy.HEADER.strip("|").split("|"))
        # Spearman, mean error and max error are "gradlint / naive" numbers
        assert re.fullmatch(r"-?\d\.\d\d / (-?\d\.\d\d|—)", cells[4]), cells[4]
        assert re.fullmatch(r"\d+\.\d\d / \d+\.\d\d", cells[6]), cells[6]
        assert cells[3] in ("per-example", "batch") or cells[3].startswith("mixed")
    target_rows = [line for line in text.splitlines() if line.startswith("| Grid: ")]
    assert len(target_rows) == 4
    assert all(re.search(r"\| -?\d+\.\d{3} \|", r) for r in target_rows)
    assert "grid (all)" in capsys.readouterr().out


def test_spearman_hand_computed() -> None:
    assert spearman([1, 2, 3, 4, 5], [10, 20, 30, 40, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4, 5], [9, 7, 5, 3, -100]) == pytest.approx(-1.0)
    # ties: ranks of x are [1, 2.5, 2.5, 4]; Pearson of the ranks is 4.5 / sqrt(4.5 * 5)
    assert ranks([1, 2, 2, 3]) == [1.0, 2.5, 2.5, 4.0]
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # constant side


def test_auroc_f1_agreement_hand_computed() -> None:
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered correctly
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert auroc([0.5, 0.5], [True, False]) == pytest.approx(0.5)  # a tie counts 1/2
    assert auroc([0.1, 0.2], [True, True]) is None
    # tp 2, fp 1, fn 1 -> 2*2 / (2*2 + 1 + 1)
    assert f1([True, True, False, False, True],
              [True, False, True, False, True]) == pytest.approx(2 / 3)
    a = agreement([0.0, -1.0, -3.0], [0.0, -1.5, -2.0])
    assert a.n == 3
    assert a.mean_error == pytest.approx(0.5)
    assert a.max_error == pytest.approx(1.0)


def test_bench_compute_on_hand_made_layers() -> None:
    def layer(pred: float, naive: float, meas: float, low: bool = False) -> accuracy.Layer:
        return accuracy.Layer("m", "x", "Linear", pred, naive, meas, low)

    r = accuracy.ModelResult("m", "m", "grid", ("g",), layers=[
        layer(0.0, 0.0, 0.0), layer(-1.0, -0.5, -1.5), layer(-3.0, -1.0, -2.5),
        layer(-6.0, -1.5, -3.5, low=True)], per_example=True)
    s = accuracy.compute([r])
    assert s.layers == 4 and s.grad_mode == "per-example"
    assert s.spearman == (pytest.approx(1.0), pytest.approx(1.0))
    assert s.mean_err[0] == pytest.approx((0 + 0.5 + 0.5 + 2.5) / 4)
    assert s.mean_err[1] == pytest.approx((0 + 1.0 + 1.5 + 2.0) / 4)
    assert s.max_err == (pytest.approx(2.5), pytest.approx(2.0))
    assert s.vanishing == 2  # -2.5 and -3.5 are below -2
    assert s.auroc == (pytest.approx(1.0), pytest.approx(1.0))
    assert s.f1[0] == pytest.approx(1.0)  # gradlint predicts -3 and -6 below -2
    assert s.f1[1] == pytest.approx(0.0)  # naive never goes below -2: tp 0, fn 2
    assert s.big_err == 1 and s.big_err_low == pytest.approx(1.0)
    assert s.low_share == pytest.approx(0.25)
