"""A tiny bag-of-words classifier whose frozen random features separate the classes of the
constructed streams (cl_data.py): mean of token embeddings, then tanh(Linear). Every class
owns its tokens, so class means are far apart before any training; what a strategy then
loses is its own doing (the head's bias toward new classes, a drifting backbone).

It has the shape petl expects of a transformers classifier (a last `classifier` Linear,
an output with `.logits`) and a `proj` Linear that LoRA can target."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from tests.cl.cl_data import SPECIALS, WORDS


class BagClassifier(nn.Module):
    """Mean-pooled token embeddings -> tanh(proj) -> classifier (replaced by petl's heads)."""

    def __init__(self, seed: int = 0, hidden: int = 32) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(len(SPECIALS) + len(WORDS), hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, 2)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> SimpleNamespace:
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return SimpleNamespace(logits=self.classifier(torch.tanh(self.proj(pooled))))
