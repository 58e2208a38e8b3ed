"""Cross-check petl.metrics against avalanche-lib's forgetting/BWT metrics.

avalanche (0.6.0, `avalanche/evaluation/metrics/forgetting_bwt.py`) computes, per
experience j, "initial" = the accuracy recorded when j is evaluated while j is the current
training experience (R[j, j]) and "last" = its accuracy in the latest evaluation (R[i, j]);
forgetting_j = initial - last and BWT_j = -forgetting_j. Stream metrics average over the
experiences that have both values, i.e. j < i (never the one just trained).

So, on the final row:
- avalanche StreamBWT == petl.backward_transfer, always;
- avalanche StreamForgetting == -petl.backward_transfer, always;
- petl.forgetting (Chaudhry et al.) uses max_{l <= T-2} R[l, j] instead of R[j, j], so it
  equals avalanche's only when R[j, j] is that column maximum; in general
  petl f_j - avalanche f_j = max_{l <= T-2} R[l, j] - R[j, j] >= 0.

The plugin metrics are driven here by a minimal stand-in for a strategy, with mini-batches
whose accuracy is exactly R[i, j], following the event order of avalanche's eval loop.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.extras import need

need("avalanche", "petl[avalanche]")

from avalanche.evaluation.metrics.forgetting_bwt import (  # noqa: E402
    BWT,
    ExperienceBWT,
    ExperienceForgetting,
    Forgetting,
    StreamBWT,
    StreamForgetting,
)

from petl.metrics import backward_transfer, forgetting, forgetting_per_task  # noqa: E402

N = 20  # examples per evaluation; matrix entries below are multiples of 1 / N

# R[j, j] is the max of column j over rows 0..T-2 for every j (and every prefix): the
# definitions agree.
R_AGREE = np.array(
    [
        [0.90, 0.10, 0.20],
        [0.70, 0.80, 0.30],
        [0.60, 0.50, 0.90],
    ]
)

# Task 0 improves after training task 1 (0.80 -> 0.85): petl's max picks 0.85, avalanche
# keeps R[0, 0] = 0.80.
R_IMPROVES = np.array(
    [
        [0.80, 0.20, 0.10, 0.25],
        [0.85, 0.90, 0.15, 0.20],
        [0.70, 0.50, 0.85, 0.30],
        [0.50, 0.60, 0.40, 0.95],
    ]
)

# Task 1 scores 0.90 before it is trained (row 0): petl's max over l in 0..T-2 includes
# rows before the task was trained; avalanche never looks at them.
R_BEFORE = np.array(
    [
        [0.50, 0.90, 0.00],
        [0.50, 0.40, 0.00],
        [0.50, 0.30, 0.80],
    ]
)


def _batch(acc: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and logits of N examples, of which exactly acc * N are right."""
    k = round(acc * N)
    assert k / N == pytest.approx(acc), "matrix entries must be multiples of 1 / N"
    y = torch.zeros(N, dtype=torch.long)
    logits = torch.zeros(N, 2)
    logits[:k, 0] = 1.0
    logits[k:, 1] = 1.0
    return y, logits


def _experience(i: int) -> SimpleNamespace:
    return SimpleNamespace(
        current_experience=i, origin_stream=SimpleNamespace(name="test"), task_labels=[0]
    )


def _run_avalanche(R: np.ndarray) -> dict:
    """Train on experience i, then evaluate every experience; for each row i of R."""
    plugins = {
        "stream_forgetting": StreamForgetting(),
        "stream_bwt": StreamBWT(),
        "exp_forgetting": ExperienceForgetting(),
        "exp_bwt": ExperienceBWT(),
    }
    strategy = SimpleNamespace(is_eval=False, clock=SimpleNamespace(train_iterations=0))
    stream_forgetting, stream_bwt = [], []
    T = R.shape[0]
    for i in range(T):
        strategy.is_eval, strategy.experience = False, _experience(i)
        for p in plugins.values():
            p.before_training_exp(strategy)
        strategy.is_eval = True
        for p in plugins.values():
            p.before_eval(strategy)
        for j in range(T):
            strategy.experience = _experience(j)
            strategy.mb_y, strategy.mb_output = _batch(R[i, j])
            for p in plugins.values():
                p.before_eval_exp(strategy)
                p.after_eval_iteration(strategy)
                p.after_eval_exp(strategy)
        for name, out in (("stream_forgetting", stream_forgetting), ("stream_bwt", stream_bwt)):
            [value] = plugins[name].after_eval(strategy)
            out.append(value.value)
        for name in ("exp_forgetting", "exp_bwt"):
            plugins[name].after_eval(strategy)
    return {
        "stream_forgetting": stream_forgetting,  # one value per row i
        "stream_bwt": stream_bwt,
        "exp_forgetting": plugins["exp_forgetting"].result(),  # {j: value} after last row
        "exp_bwt": plugins["exp_bwt"].result(),
    }


def _approx(x):
    return pytest.approx(x, abs=1e-9)


def test_definitions_agree_when_diagonal_is_the_column_max():
    av = _run_avalanche(R_AGREE)
    T = R_AGREE.shape[0]
    # Every prefix of the stream (after training task i) agrees, not only the end.
    for i in range(T):
        prefix = R_AGREE[: i + 1, : i + 1]
        assert av["stream_forgetting"][i] == _approx(forgetting(prefix))
        assert av["stream_bwt"][i] == _approx(backward_transfer(prefix))
    # Final values: (0.3 + 0.3) / 2 = 0.3 and its negative.
    assert av["stream_forgetting"][-1] == _approx(0.3)
    assert av["stream_bwt"][-1] == _approx(-0.3)
    f = forgetting_per_task(R_AGREE)
    assert sorted(av["exp_forgetting"]) == list(range(T - 1))  # last task not reported
    for j, value in av["exp_forgetting"].items():
        assert value == _approx(f[j])
        assert av["exp_bwt"][j] == _approx(-f[j])


@pytest.mark.parametrize("R", [R_IMPROVES, R_BEFORE], ids=["improves", "score-before-training"])
def test_forgetting_differs_by_max_minus_diagonal(R):
    av = _run_avalanche(R)
    T = R.shape[0]
    # avalanche's BWT is Lopez-Paz & Ranzato's BWT; its forgetting is exactly -BWT.
    assert av["stream_bwt"][-1] == _approx(backward_transfer(R))
    assert av["stream_forgetting"][-1] == _approx(-backward_transfer(R))
    # petl's per-task forgetting exceeds avalanche's by max_{l <= T-2} R[l, j] - R[j, j].
    gap = R[: T - 1, : T - 1].max(axis=0) - np.diag(R)[: T - 1]
    assert (gap >= 0).all() and gap.max() > 0
    f = forgetting_per_task(R)
    for j, value in av["exp_forgetting"].items():
        assert f[j] - value == _approx(gap[j])
    assert forgetting(R) - av["stream_forgetting"][-1] == _approx(gap.mean())
    assert forgetting(R) > av["stream_forgetting"][-1]


def test_improves_matrix_numbers():
    av = _run_avalanche(R_IMPROVES)
    # avalanche: ((0.80 - 0.50) + (0.90 - 0.60) + (0.85 - 0.40)) / 3 = 1.05 / 3 = 0.35
    # petl:      ((0.85 - 0.50) + (0.90 - 0.60) + (0.85 - 0.40)) / 3 = 1.10 / 3
    assert av["stream_forgetting"][-1] == _approx(0.35)
    assert forgetting(R_IMPROVES) == _approx(1.10 / 3)


def test_standalone_forgetting_and_bwt_classes():
    # The functional pieces the plugins use: update(j, R[j, j], initial=True) when j is
    # trained, update(j, R[T-1, j]) at the end; keys seen both ways get a value.
    for R in (R_AGREE, R_IMPROVES, R_BEFORE):
        T = R.shape[0]
        fm, bm = Forgetting(), BWT()
        for metric in (fm, bm):
            for j in range(T):
                metric.update(j, float(R[j, j]), initial=True)
            for j in range(T - 1):
                metric.update(j, float(R[T - 1, j]))
        assert float(np.mean(list(bm.result().values()))) == _approx(backward_transfer(R))
        assert float(np.mean(list(fm.result().values()))) == _approx(-backward_transfer(R))


def test_one_task_stream():
    R = np.array([[0.75]])
    av = _run_avalanche(R)
    assert av["stream_forgetting"] == [0.0] and forgetting(R) == 0.0
    assert av["stream_bwt"] == [0.0] and backward_transfer(R) == 0.0
    assert av["exp_forgetting"] == {}
