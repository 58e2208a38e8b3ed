"""Predictions split across processes: each process predicts a contiguous share of the
rows and the shares are gathered back in order (the token and generation families; the
classification family's logits are split by Accelerate's data loader instead)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def sharded_predict(
    learner: Any, rows: Sequence[Any], predict: Any
) -> tuple[list[Any], np.ndarray]:
    """`predict(rows) -> (predictions, confidences)` split across processes, as the
    classification family's logits are: each process takes a contiguous share of `rows`,
    and the shares are gathered back in order, so every process returns the whole list.
    One process: `predict(rows)` itself."""
    acc: Any = learner.accelerator
    world = acc.num_processes
    if world <= 1:
        preds, conf = predict(rows)
        return list(preds), np.asarray(conf, dtype=float)
    from accelerate.utils import gather_object

    rank, n = acc.process_index, len(rows)
    share = rows[n * rank // world : n * (rank + 1) // world]
    preds, conf = predict(share) if share else ([], [])
    parts = gather_object([(list(preds), [float(c) for c in conf])])  # one entry per rank
    return [p for part, _ in parts for p in part], np.array(
        [c for _, part in parts for c in part], dtype=float
    )
