"""Tokenized task data and batches.

Every example is addressed by an item `(task_index, example_index)` into a task's training
split; strategies (replay, joint) build training sets as lists of items, which keeps
buffers tiny and JSON-serialisable."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from petl.stream import Example

Item = tuple[int, int]


@dataclass
class Encoded:
    """One tokenized example with its label id and task index."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    label: int
    task: int


def encode_split(
    label_ids: dict[str, int],
    task_index: int,
    examples: Sequence[Example],
    tokenizer,
    max_length: int,
) -> list[Encoded]:
    if not examples:  # e.g. no validation split; tokenizers fail on an empty list
        return []
    ids = label_ids
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    has_pairs = any(p is not None for p in pairs)
    enc = tokenizer(
        texts,
        [p or "" for p in pairs] if has_pairs else None,
        truncation=True,
        max_length=max_length,
    )
    types = enc.get("token_type_ids")
    return [
        Encoded(
            enc["input_ids"][i], types[i] if types is not None else None, ids[e.label], task_index
        )
        for i, e in enumerate(examples)
    ]


def collate(rows: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if rows[0].token_type_ids is not None:
        batch["token_type_ids"] = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        ids[i, :n] = torch.tensor(row.input_ids)
        mask[i, :n] = 1
        if row.token_type_ids is not None:
            batch["token_type_ids"][i, :n] = torch.tensor(row.token_type_ids)
    batch["labels"] = torch.tensor([r.label for r in rows])
    batch["task_ids"] = torch.tensor([r.task for r in rows])
    return batch


class RowsDataset(torch.utils.data.Dataset):
    def __init__(self, rows: Sequence[Encoded], ids: Sequence[int] | None = None) -> None:
        self.rows = rows
        self.ids = list(ids) if ids is not None else list(range(len(rows)))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, Encoded]:
        return self.ids[i], self.rows[i]


def make_loader(
    rows: Sequence[Encoded],
    batch_size: int,
    pad_id: int,
    ids: Sequence[int] | None = None,
    collate_fn: Callable[..., dict[str, torch.Tensor]] = collate,
) -> torch.utils.data.DataLoader:
    """A loader in the given order; each batch also carries `positions`: `ids` of its rows
    (by default their index in `rows`). `collate_fn(rows, pad_id)` is the task family's."""

    def _collate(pairs: list[tuple[int, Encoded]]) -> dict[str, torch.Tensor]:
        batch = collate_fn([r for _, r in pairs], pad_id)
        batch["positions"] = torch.tensor([i for i, _ in pairs])
        return batch

    return torch.utils.data.DataLoader(
        RowsDataset(rows, ids), batch_size=batch_size, shuffle=False, collate_fn=_collate
    )


def iter_batches(
    rows: Sequence[Encoded],
    batch_size: int,
    pad_id: int,
    device: torch.device,
    collate_fn: Callable[..., dict[str, torch.Tensor]] = collate,
) -> Iterator[dict[str, torch.Tensor]]:
    """Plain local batches (no sharding), for strategies' own passes over data."""
    for start in range(0, len(rows), batch_size):
        batch = collate_fn(rows[start : start + batch_size], pad_id)
        batch["positions"] = torch.arange(start, start + len(batch["labels"]))
        yield {k: v.to(device) for k, v in batch.items()}
