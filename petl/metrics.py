"""`petl.metrics`: continual-learning metrics as pure numpy functions of an accuracy matrix.

A run over T tasks yields the accuracy matrix R (T x T): R[i, j] is the score on task j
after training on tasks 0..i, with scores in [0, 1]. Row i is one evaluation of every
task; the diagonal R[j, j] is the score on a task right after training on it. Entries
above the diagonal (tasks not trained yet) are only read by `forward_transfer` and by the
max in `forgetting`. `initial[j]` is the score on task j before any training.

Formulas (indices from 0; a mean over an empty set is 0.0, so one-task streams give 0.0):

    average_accuracy             ACC  = 1/T * sum_j R[T-1, j]
    forgetting_per_task          f_j  = max_{l in 0..T-2} R[l, j] - R[T-1, j]  for j < T-1,
                                 f_{T-1} = 0                      (Chaudhry et al. 2018)
    forgetting                   F    = 1/(T-1) * sum_{j < T-1} f_j
    backward_transfer            BWT  = 1/(T-1) * sum_{j < T-1} (R[T-1, j] - R[j, j])
                                                                  (Lopez-Paz & Ranzato 2017)
    forward_transfer             FWT  = 1/(T-1) * sum_{j >= 1} (R[j-1, j] - initial[j])
    plasticity                   P    = 1/T * sum_j R[j, j]
    average_incremental_accuracy AIA  = 1/T * sum_i (1/(i+1) * sum_{j <= i} R[i, j])
                                                                  (Rebuffi et al. 2017)

Every function accepts a numpy array or nested lists and raises `petl.errors.ConfigError`
for a matrix that is not square, 2-D, non-empty and finite. See docs/metrics.md for how
these definitions differ from avalanche-lib's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from petl.errors import ConfigError

__all__ = [
    "accuracy",
    "average_accuracy",
    "average_incremental_accuracy",
    "backward_transfer",
    "forgetting",
    "forgetting_per_task",
    "forward_transfer",
    "per_class_accuracy",
    "plasticity",
    "summarize",
    "tidy",
]


def _as_matrix(R: ArrayLike) -> np.ndarray:
    """Returns R as a float (T, T) array, or raises ConfigError saying what is wrong."""
    try:
        m = np.asarray(R, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"The accuracy matrix must be numeric with rows of equal length ({e})."
        ) from e
    if m.ndim != 2:
        raise ConfigError(
            f"The accuracy matrix must be 2-D (T x T, R[i, j] = score on task j after "
            f"training task i); got {m.ndim}-D with shape {m.shape}."
        )
    if m.size == 0:
        raise ConfigError("The accuracy matrix is empty: it needs at least one task (1 x 1).")
    if m.shape[0] != m.shape[1]:
        raise ConfigError(
            f"The accuracy matrix must be square (one row per training task, one column per "
            f"task evaluated); got shape {m.shape}."
        )
    if not np.isfinite(m).all():
        bad = [tuple(int(k) for k in idx) for idx in np.argwhere(~np.isfinite(m))[:5]]
        raise ConfigError(
            f"The accuracy matrix must be finite; NaN or inf at {bad}. Evaluate every task "
            f"after every training task, or fill entries not measured yet with a number."
        )
    return m


def _as_initial(initial: ArrayLike, T: int) -> np.ndarray:
    try:
        v = np.asarray(initial, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"`initial` must be a numeric vector ({e}).") from e
    if v.ndim != 1 or v.shape[0] != T:
        raise ConfigError(
            f"`initial` must hold one score per task before any training: length {T}, "
            f"got shape {v.shape}."
        )
    if not np.isfinite(v).all():
        raise ConfigError("`initial` must be finite; it holds NaN or inf.")
    return v


def average_accuracy(R: ArrayLike) -> float:
    """Mean score over all tasks after training on the last task.

    Args:
        R: Accuracy matrix (T x T), R[i, j] = score on task j after training task i.

    Returns:
        mean_j R[T-1, j].
    """
    m = _as_matrix(R)
    return float(m[-1].mean())


def forgetting_per_task(R: ArrayLike) -> np.ndarray:
    """Forgetting of each task: best earlier score minus final score (Chaudhry et al. 2018).

    Args:
        R: Accuracy matrix (T x T).

    Returns:
        Array of length T: f_j = max_{l in 0..T-2} R[l, j] - R[T-1, j] for j < T-1, and 0.0
        for the last task (it cannot have been forgotten yet). Negative entries mean the
        task improved.
    """
    m = _as_matrix(R)
    f = np.zeros(m.shape[0])
    if m.shape[0] > 1:
        f[:-1] = m[:-1, :-1].max(axis=0) - m[-1, :-1]
    return f


def forgetting(R: ArrayLike) -> float:
    """Average forgetting over the tasks before the last (Chaudhry et al. 2018).

    Args:
        R: Accuracy matrix (T x T).

    Returns:
        mean_{j < T-1} f_j with f_j from `forgetting_per_task`; 0.0 for one task.
    """
    f = forgetting_per_task(R)
    return float(f[:-1].mean()) if f.shape[0] > 1 else 0.0


def backward_transfer(R: ArrayLike) -> float:
    """Backward transfer, BWT (Lopez-Paz & Ranzato 2017); negative means forgetting.

    Args:
        R: Accuracy matrix (T x T).

    Returns:
        mean_{j < T-1} (R[T-1, j] - R[j, j]); 0.0 for one task.
    """
    m = _as_matrix(R)
    T = m.shape[0]
    if T == 1:
        return 0.0
    return float((m[-1, :-1] - np.diag(m)[:-1]).mean())


def forward_transfer(R: ArrayLike, initial: ArrayLike) -> float:
    """Forward transfer, FWT (Lopez-Paz & Ranzato 2017): gain on a task before training it.

    Args:
        R: Accuracy matrix (T x T).
        initial: Length-T scores of the model before any training (e.g. the pretrained
            model, or a freshly initialized one).

    Returns:
        mean_{j >= 1} (R[j-1, j] - initial[j]); 0.0 for one task.
    """
    m = _as_matrix(R)
    T = m.shape[0]
    b = _as_initial(initial, T)
    if T == 1:
        return 0.0
    j = np.arange(1, T)
    return float((m[j - 1, j] - b[1:]).mean())


def plasticity(R: ArrayLike) -> float:
    """Mean score on each task right after training on it: mean_j R[j, j].

    Args:
        R: Accuracy matrix (T x T).
    """
    m = _as_matrix(R)
    return float(np.diag(m).mean())


def average_incremental_accuracy(R: ArrayLike) -> float:
    """Average incremental accuracy (Rebuffi et al. 2017).

    Args:
        R: Accuracy matrix (T x T).

    Returns:
        mean_i mean_{j <= i} R[i, j]: the mean over training steps of the average score on
        the tasks seen so far.
    """
    m = _as_matrix(R)
    return float(np.mean([m[i, : i + 1].mean() for i in range(m.shape[0])]))


def summarize(R: ArrayLike, initial: ArrayLike | None = None) -> dict[str, Any]:
    """All matrix metrics in one JSON-ready dict.

    Args:
        R: Accuracy matrix (T x T).
        initial: Optional length-T scores before any training; needed for "fwt".

    Returns:
        Keys "average_accuracy", "forgetting", "bwt", "fwt" (None without `initial`),
        "plasticity", "average_incremental_accuracy" (floats) and
        "final_accuracy_per_task" (list of T floats, the last row of R).
    """
    m = _as_matrix(R)
    return {
        "average_accuracy": tidy(average_accuracy(m)),
        "forgetting": tidy(forgetting(m)),
        "bwt": tidy(backward_transfer(m)),
        "fwt": tidy(forward_transfer(m, initial)) if initial is not None else None,
        "plasticity": tidy(plasticity(m)),
        "average_incremental_accuracy": tidy(average_incremental_accuracy(m)),
        "final_accuracy_per_task": [float(x) for x in m[-1]],
    }


SUMMARY_DECIMALS = 12


def tidy(value: float) -> float:
    """`value` rounded to SUMMARY_DECIMALS places: a summary of accuracies (ratios of counts)
    then reads as its exact value (15/300 forgetting as 0.05, not the 0.05000000000000001
    that a float mean of differences gives), which matters wherever a figure is compared
    with a bar. The rounding moves a value by at most 5e-13."""
    return round(float(value), SUMMARY_DECIMALS)


def _preds_labels(preds: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(preds)
    y = np.asarray(labels)
    if p.ndim == 2:  # logits or probabilities, one row per example
        p = p.argmax(axis=-1)
    if p.ndim != 1 or y.ndim != 1:
        raise ConfigError(
            f"`preds` must be 1-D class ids (or 2-D scores, one row per example) and "
            f"`labels` 1-D class ids; got shapes {np.shape(preds)} and {y.shape}."
        )
    if p.shape[0] != y.shape[0]:
        raise ConfigError(
            f"`preds` and `labels` must have the same length; got {p.shape[0]} and {y.shape[0]}."
        )
    if y.shape[0] == 0:
        raise ConfigError("Accuracy of no examples is undefined: `labels` is empty.")
    return p, y


def accuracy(preds: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of examples whose predicted class equals the label.

    Args:
        preds: Predicted class ids (n,), or scores (n, C) reduced by argmax.
        labels: True class ids (n,).
    """
    p, y = _preds_labels(preds, labels)
    return float((p == y).mean())


def per_class_accuracy(
    preds: ArrayLike, labels: ArrayLike, label_names: Sequence[str]
) -> dict[str, float]:
    """Accuracy (recall) of each class that occurs in `labels`.

    Args:
        preds: Predicted class ids (n,), or scores (n, C) reduced by argmax.
        labels: True class ids (n,), integers in [0, len(label_names)).
        label_names: Name of each class id, in id order.

    Returns:
        {name: fraction of that class's examples predicted correctly}, in class-id order;
        classes absent from `labels` are omitted.
    """
    p, y = _preds_labels(preds, labels)
    names = list(label_names)
    ids = np.unique(y)
    if not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= len(names):
        raise ConfigError(
            f"`labels` must be integer class ids in [0, {len(names)}) to index `label_names` "
            f"({len(names)} names); got ids {ids[:10].tolist()}."
        )
    return {names[int(c)]: float((p[y == c] == c).mean()) for c in ids}
