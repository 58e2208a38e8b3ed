"""Batches of a task family's rows (the family tokenizes and collates; see petl.families).

Every example is addressed by an item `(task_index, example_index)` into a task's training
split; strategies (replay, joint) build training sets as lists of items, which keeps
buffers tiny and JSON-serialisable."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

Item = tuple[int, int]
#: A task family's `collate(rows, pad_id)`: rows of its own type into a padded batch.
Collate = Callable[[Sequence[Any], int], dict[str, torch.Tensor]]


class RowsDataset(torch.utils.data.Dataset):
    def __init__(self, rows: Sequence[Any], ids: Sequence[int] | None = None) -> None:
        self.rows = rows
        self.ids = list(ids) if ids is not None else list(range(len(rows)))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, Any]:
        return self.ids[i], self.rows[i]


def make_loader(
    rows: Sequence[Any],
    batch_size: int,
    pad_id: int,
    collate_fn: Collate,
    ids: Sequence[int] | None = None,
) -> torch.utils.data.DataLoader:
    """A loader in the given order; each batch also carries `positions`: `ids` of its rows
    (by default their index in `rows`). `collate_fn(rows, pad_id)` is the task family's."""

    def _collate(pairs: list[tuple[int, Any]]) -> dict[str, torch.Tensor]:
        batch = collate_fn([r for _, r in pairs], pad_id)
        batch["positions"] = torch.tensor([i for i, _ in pairs])
        return batch

    return torch.utils.data.DataLoader(
        RowsDataset(rows, ids), batch_size=batch_size, shuffle=False, collate_fn=_collate
    )


def iter_batches(
    rows: Sequence[Any],
    batch_size: int,
    pad_id: int,
    device: torch.device,
    collate_fn: Collate,
) -> Iterator[dict[str, torch.Tensor]]:
    """Plain local batches (no sharding), for strategies' own passes over data."""
    for start in range(0, len(rows), batch_size):
        batch = collate_fn(rows[start : start + batch_size], pad_id)
        batch["positions"] = torch.arange(start, start + len(batch["labels"]))
        yield {k: v.to(device) for k, v in batch.items()}
