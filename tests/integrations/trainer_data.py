"""Helpers of the Trainer integration tests: a domain-incremental stream with forgetting,
Trainer arguments mirroring a petl TrainConfig, and a tiny BERT with LoRA."""

from __future__ import annotations

from typing import Any

import petl
from tests.cl.cl_data import interference_records, make_bert

LORA = {"r": 4}


def domain_stream(n_first: int = 48, n_later: int = 144, n_test: int = 40) -> petl.Stream:
    """Two tasks sharing the labels A/B (domain-incremental): task 1 answers A/B from
    other tokens than task 0, and task 0's inputs carry task 1's tokens as noise, so
    training task 1 overwrites how task 0 is answered (sequential training forgets)."""
    records = interference_records(n_first, n_later, n_test)
    rename = {"L0": "A", "L1": "B", "L2": "A", "L3": "B"}
    for task in records.values():
        for split in ("train", "test"):
            task[split] = [{**r, "label": rename[r["label"]]} for r in task[split]]
    return petl.Stream.from_records(records, scenario="domain", val_fraction=0)


def train_args(output_dir: str, cfg: petl.TrainConfig, **extra: Any) -> Any:
    """TrainingArguments with the hyperparameters of a petl TrainConfig."""
    from transformers import TrainingArguments

    settings: dict[str, Any] = {
        "report_to": [],
        "save_strategy": "no",
        "logging_steps": 1000,
        "disable_tqdm": True,
        "use_cpu": True,
        **extra,
    }
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=cfg.batch_size // cfg.grad_accum,
        gradient_accumulation_steps=cfg.grad_accum,
        per_device_eval_batch_size=cfg.eval_batch_size,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.for_method("lora").lr,  # None resolves to the method default
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.scheduler,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        **settings,
    )


def lora_bert(seed: int = 0, dropout: float = 0.0) -> Any:
    """The tiny BERT of tests/cl with LoRA r=4 (its classifier stays trainable); no dropout
    by default, so that a loss computed twice is the same."""
    return petl.apply(make_bert(seed=seed, dropout=dropout), "lora", **LORA)


def bert_trainer(args: Any, tok: Any, seed: int = 0) -> Any:
    from transformers import DataCollatorWithPadding, Trainer

    return Trainer(
        model=lora_bert(seed),
        args=args,
        data_collator=DataCollatorWithPadding(tok),
        processing_class=tok,
    )


def learner_like_bert(seed: int = 0, dropout: float = 0.0) -> Any:
    """The tiny BERT + LoRA exactly as `petl.Learner` starts it: after `set_seed(seed)`,
    LoRA's initial weights are drawn first, then the classifier's (the uniform draw of
    petl's TaskHeads, bias 0), so both runs of a comparison start from the same weights."""
    import math

    import torch
    from accelerate.utils import set_seed

    model = make_bert(seed=seed, dropout=dropout)
    set_seed(seed)
    model = petl.apply(model, "lora", **LORA)
    head = model.base_model.model.classifier.modules_to_save["default"]
    bound = 1 / math.sqrt(head.in_features)
    with torch.no_grad():
        head.weight.copy_(torch.empty_like(head.weight).uniform_(-bound, bound))
        head.bias.zero_()
    return model
