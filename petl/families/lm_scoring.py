"""Scoring answers of a causal LM: log-probabilities of target tokens, and of every
candidate answer after every prompt with the prompt's key/value cache shared by the
candidates (label-restricted decoding). `LMModel` is the wrapper petl trains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from petl.families.prompts import IGNORE, LMRow, collate_lm


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence sum of log p(target) over positions whose target is not -100, and the
    number of such positions."""
    targets = labels[:, 1:]
    mask = targets != IGNORE
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1), mask.sum(-1)


class LMModel(nn.Module):
    """A (PEFT-adapted) causal LM; `forward(batch)` gives next-token logits aligned with
    `batch["input_ids"]` (virtual tokens of prompt-learning methods cut off)."""

    heads = None

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["input_ids"]
        logits = self.backbone(input_ids=ids, attention_mask=batch["attention_mask"]).logits
        return logits[:, -ids.shape[1] :]


def is_prompt_learning(backbone: nn.Module) -> bool:
    config = getattr(backbone, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def _last_logit_only(model: LMModel) -> dict[str, int]:
    """`logits_to_keep=1` where the model takes it: the prompt pass needs only the last
    position's logits (the LM head over the vocabulary is a fifth of a small LM's compute)."""
    import inspect

    backbone: Any = model.backbone
    base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
    return (
        {"logits_to_keep": 1}
        if "logits_to_keep" in inspect.signature(base.forward).parameters
        else {}
    )


def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s) :] = torch.tensor(list(s))
        mask[i, width - len(s) :] = 1
    return ids, mask


@torch.no_grad()
def candidate_logprobs(
    model: LMModel,
    prompts: Sequence[Sequence[int]],
    candidates: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(candidate | prompt) for every prompt x candidate pair, summed over the
    candidate's tokens: (len(prompts), len(candidates)) sums and token counts.

    The prompts run once (left-padded, explicit position ids) and their key/value cache is
    repeated for the candidates; prompt-learning methods, whose virtual tokens live in the
    cache, take the plain path (every pair as one sequence)."""
    K = len(candidates)
    counts = torch.tensor([len(c) for c in candidates]).repeat(len(prompts), 1)
    if is_prompt_learning(model.backbone):
        rows = [
            LMRow([*p, *c], [IGNORE] * len(p) + list(c), len(p), 0, -1, "")
            for p in prompts
            for c in candidates
        ]
        batch = {k: v.to(device) for k, v in collate_lm(rows, pad_id).items()}
        sums, _ = token_logprobs(model(batch), batch["labels"])
        return sums.view(len(prompts), K).cpu(), counts
    ids, mask = _left_pad(prompts, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model.backbone(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **_last_logit_only(model),
    )
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (B, V)
    # transformers 5 names the cache `cache`; 4.x `past_key_values`.
    cache = out["cache"] if "cache" in out else out["past_key_values"]
    cache_arg = "cache" if "cache" in out else "past_key_values"
    cache.batch_repeat_interleave(K)
    width = max(len(c) for c in candidates)
    cand = torch.full((K, width), pad_id, dtype=torch.long)
    cand_mask = torch.zeros((K, width), dtype=torch.long)
    for k, c in enumerate(candidates):
        cand[k, : len(c)] = torch.tensor(list(c))
        cand_mask[k, : len(c)] = 1
    B = len(prompts)
    cand, cand_mask = cand.repeat(B, 1).to(device), cand_mask.repeat(B, 1).to(device)
    full_mask = torch.cat([mask.repeat_interleave(K, 0), cand_mask], dim=1)
    start = mask.sum(-1).repeat_interleave(K)[:, None]
    cand_pos = start + torch.arange(width, device=device)[None]
    out = model.backbone(
        input_ids=cand,
        attention_mask=full_mask,
        position_ids=cand_pos,
        use_cache=True,
        **{cache_arg: cache},
    )
    logp = torch.log_softmax(out.logits.float(), dim=-1)  # (B*K, width, V)
    total = first.repeat_interleave(K, 0).gather(-1, cand[:, :1]).squeeze(-1)
    if width > 1:
        rest = logp[:, :-1].gather(-1, cand[:, 1:].unsqueeze(-1)).squeeze(-1)
        total = total + (rest * cand_mask[:, 1:]).sum(-1)
    return total.view(B, K).cpu(), counts
